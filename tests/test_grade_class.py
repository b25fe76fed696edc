"""The instructor's class view of `grade`: learner by question matrix, pass rates, chart."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from labsupport.authoring.grade import (
    Outcome,
    Row,
    class_matrix,
    plot_pass_rates,
    to_class_table,
)

ROOT = Path(__file__).resolve().parent.parent
LESSON = "00_setup_check.ipynb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ROWS = [
    Row("ana", "00.ipynb", "00.a", Outcome.PASS),
    Row("ana", "00.ipynb", "00.b", Outcome.PASS),
    Row("ben", "00.ipynb", "00.a", Outcome.WRONG, "hint"),
    Row("ben", "00.ipynb", "00.b", Outcome.PASS),
    Row("cho", "00.ipynb", "*", Outcome.MALFORMED, "not JSON"),
]


def test_matrix_spreads_a_broken_notebook_over_its_questions() -> None:
    m = class_matrix(ROWS)
    assert m.learners == ["ana", "ben", "cho"]
    assert m.questions == ["00.a", "00.b"]
    assert m.cells[("cho", "00.a")] is Outcome.MALFORMED
    assert m.cells[("cho", "00.b")] is Outcome.MALFORMED
    assert m.pass_rate("00.a") == 1 / 3
    assert m.pass_rate("00.b") == 2 / 3
    assert m.score("ben") == (1, 2)


def test_unanswered_question_of_another_notebook_counts_as_missing() -> None:
    rows = [*ROWS, Row("ana", "01.ipynb", "01.x", Outcome.PASS)]
    m = class_matrix(rows)
    assert m.cells[("ben", "01.x")] is Outcome.MISSING
    assert m.score("ana") == (3, 3)


def test_class_table_shows_every_learner_and_pass_rates() -> None:
    lines = to_class_table(ROWS).splitlines()
    assert lines[0].split() == ["learner", "00.a", "00.b", "score"]
    assert lines[2].split() == ["ana", "ok", "ok", "2/2"]
    assert lines[3].split() == ["ben", "wrong", "ok", "1/2"]
    assert lines[4].split() == ["cho", "malformed", "malformed", "0/2"]
    assert lines[-1].split() == ["pass", "rate", "33%", "67%"]
    assert to_class_table([]) == "No notebooks found."


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = plot_pass_rates(ROWS, tmp_path / "charts" / "pass.png")
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_grade_cli_class_table_and_plot(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    (subs / "fay").mkdir(parents=True)
    (subs / "gus").mkdir()
    shutil.copy(ROOT / "solutions" / LESSON, subs / "fay" / LESSON)
    (subs / "gus" / LESSON).write_text('{"cells": 42}')  # malformed: reported, run goes on
    chart = tmp_path / "pass.png"
    proc = subprocess.run(
        [sys.executable, "-m", "labsupport", "grade", str(subs), "--plot", str(chart)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Class (learner by question):" in proc.stdout
    table = proc.stdout.split("Class (learner by question):")[1].split("\n\n")[0].strip()
    fay = next(line for line in table.splitlines() if line.startswith("fay"))
    gus = next(line for line in table.splitlines() if line.startswith("gus"))
    assert "wrong" not in fay and fay.split()[-1].split("/")[0] == fay.split()[-1].split("/")[1]
    assert "malformed" in gus and gus.split()[-1].startswith("0/")
    rates = next(line for line in table.splitlines() if line.startswith("pass rate"))
    assert set(rates.split()[2:]) == {"50%"}
    assert chart.read_bytes().startswith(PNG_MAGIC)
