"""Output policy for exercises/: no stored outputs except graded cells' expected ✅ line."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labsupport.authoring.cells import is_graded, question_ids

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_outputs_are_only_expected_lines(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if not is_graded(cell):
            assert cell.outputs == [], f"stored output in an exercise cell: {cell.source[:60]}"
            continue
        expected = {f"✅ {q}: correct" for q in question_ids(cell)}
        # Stored text only (no errors, figures or rich output), and the expected line is there.
        # (A graded cell may print context before its line, e.g. 03.ex_servers.)
        for out in cell.outputs:
            assert out.output_type == "stream", f"{question_ids(cell)}: {out.output_type}"
        lines = {ln for out in cell.outputs for ln in out.text.splitlines()}
        assert expected <= lines, f"{question_ids(cell)}: expected line not stored"
