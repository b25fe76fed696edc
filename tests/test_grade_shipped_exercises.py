"""The course's unfilled exercises grade zero, and none is malformed."""

from __future__ import annotations

from pathlib import Path

from labsupport.authoring.grade import Outcome, grade

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_unfilled_exercises_grade_zero_and_none_is_malformed() -> None:
    report = grade(sorted((ROOT / "exercises").glob("*.ipynb")), jobs=2, timeout=240)
    assert {n.notebook for n in report.notebooks} == {p.name for p in SOLUTIONS}
    assert not any(n.problem for n in report.notebooks), [n.problem for n in report.notebooks]
    outcomes = {q.outcome for q in report.questions()}
    assert outcomes <= {Outcome.UNANSWERED, Outcome.ERROR}, outcomes
    assert report.score("exercises") == 0
