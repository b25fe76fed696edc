"""The course's own notebooks: valid nbformat, solutions grade full, exercises grade zero."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from labsupport.authoring.grade import Outcome, grade

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(
    p for folder in ("notebooks", "solutions", "exercises") for p in (ROOT / folder).glob("*.ipynb")
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_notebook_is_valid_nbformat(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    nbformat.validate(nbformat.from_dict(raw))  # strict: 4.4 forbids cell ids, 4.5 needs them
    has_ids = {"id" in c for c in raw["cells"]}
    assert has_ids == {raw["nbformat_minor"] >= 5}, "cell ids iff nbformat 4.5+"


def test_solutions_grade_full_marks() -> None:
    rows = grade(sorted((ROOT / "solutions").glob("*.ipynb")), ROOT / "solutions")
    assert rows
    bad = [r for r in rows if r.outcome is not Outcome.PASS]
    assert not bad, bad


def test_unfilled_exercises_grade_zero_and_none_is_malformed() -> None:
    rows = grade(sorted((ROOT / "exercises").glob("*.ipynb")), ROOT / "solutions")
    assert {r.notebook for r in rows} == {p.name for p in (ROOT / "solutions").glob("*.ipynb")}
    outcomes = {r.outcome for r in rows}
    assert Outcome.PASS not in outcomes
    assert not outcomes & {Outcome.MALFORMED, Outcome.CRASHED, Outcome.MISSING}, rows
