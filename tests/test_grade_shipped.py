"""The course's own notebooks: valid nbformat, solutions grade full marks.

Unfilled exercises grading zero: tests/test_grade_shipped_exercises.py (its own file, so
``--dist loadfile`` can run the two gradings of the whole course on two workers).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from labsupport.authoring.grade import Outcome, grade

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
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
    report = grade(sorted((ROOT / "solutions").glob("*.ipynb")), jobs=2, timeout=240)
    assert {n.notebook for n in report.notebooks} == {p.name for p in SOLUTIONS}
    assert not report.warnings, report.warnings
    bad = [q for q in report.questions() if q.outcome is not Outcome.PASS]
    assert not bad, bad
    assert report.score("solutions") == report.max_score() > 0
