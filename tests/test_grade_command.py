"""`python -m labsupport grade`: a class folder with right, wrong, blank and broken notebooks."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from labsupport.authoring.grade import Outcome, grade

ROOT = Path(__file__).resolve().parent.parent
LESSON = "00_setup_check.ipynb"


def _class_folder(tmp_path: Path) -> Path:
    subs = tmp_path / "submissions"
    for learner in ("ana", "ben", "cho", "dev"):
        (subs / learner).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / LESSON, subs / "ana" / LESSON)  # all right
    shutil.copy(ROOT / "exercises" / LESSON, subs / "ben" / LESSON)  # untouched
    nb = nbformat.read(ROOT / "solutions" / LESSON, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace('answer_q1 = "b, c, d, e"', 'answer_q1 = "a"')
    nbformat.write(nb, subs / "cho" / LESSON)  # one wrong answer
    (subs / "dev" / LESSON).write_text("{ this is not a notebook")  # malformed
    return subs


def test_grade_reports_every_learner(tmp_path: Path) -> None:
    rows = grade([_class_folder(tmp_path)], ROOT / "solutions")
    by = {(r.learner, r.question): r.outcome for r in rows}
    assert by[("ana", "00.ex_moving")] is Outcome.PASS
    assert by[("ana", "00.cbc_length")] is Outcome.PASS
    assert by[("ben", "00.ex_moving")] is Outcome.UNANSWERED
    assert by[("cho", "00.ex_moving")] is Outcome.WRONG
    assert by[("cho", "00.cbc_length")] is Outcome.PASS
    assert by[("dev", "*")] is Outcome.MALFORMED


def test_grade_cli_writes_table_and_csv(tmp_path: Path) -> None:
    subs = tmp_path / "submissions" / "eve"
    subs.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / LESSON, subs / LESSON)
    out = tmp_path / "grades.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "labsupport", "grade", str(subs.parent), "--csv", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "eve: 3/3 passed" in proc.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["question"] for r in rows} == {"00.ex_moving", "00.cbc_length", "00.ex_tamper"}
    assert all(r["outcome"] == "pass" for r in rows)
