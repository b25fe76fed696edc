"""A whole class graded in one run: honest, blank and cheating learners, hostile notebooks.

The run grades against a throw-away copy of the course (so the learner who edits the
installed grader edits the copy), with AWS settings in the instructor's environment.

``./lab test`` grades the twelve learners below, one per behaviour, with a 20-s cell limit;
the endless loop sleeps, so the minute it waits costs no CPU. ``CLOUDHSM_LAB_GRADE_CLASS=full``
grades a class of 30 (18 more honest learners) with the grader's 60-s limit and a CPU-bound
endless loop, as an instructor's real run would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grade_fixtures as fx
import pytest

from labsupport.authoring.sandbox import processes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Sleep durations only this run of this test uses (1799.<pid>1, …2, …3): a test suite running
# at the same time on the machine (another checkout) must not count as this run's leftovers.
SLEEP_TAG = f"1799.{os.getpid() % 10000:04d}"
FULL = os.environ.get("CLOUDHSM_LAB_GRADE_CLASS") == "full"
# Per cell, and per notebook plus a grace period; a graded lesson 00 took ~8 s at load 14.
TIMEOUT_S = 60 if FULL else 20
EXTRA = [f"s{n:02d}" for n in range(1, 19)] if FULL else []  # more honest learners
# "abe" loops forever; named to be graded first, so its wait overlaps the other runs.
LEARNERS = ["abe", "ana", "ben", "cho", "dev", "eve", "fay", "gus", "hal", "ivy", "kim", "zoe"]


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("grade-class")
    course = fx.copy_course(tmp / "course")
    grading_py = course / "labsupport" / "pedagogy" / "grading.py"
    before = grading_py.read_bytes()
    env_report = tmp / "env.json"
    cls = tmp / "class"
    fx.write(fx.solution(), cls / "ana")  # honest
    fx.write(fx.nbformat.read(fx.EXERCISE, as_version=4), cls / "ben")  # blank
    fx.write(fx.printer(), cls / "cho")  # prints "✅ … correct"
    fx.write(fx.redefines_check(), cls / "dev")  # redefines check, junk answers
    fx.write(fx.kills_parent(), cls / "eve")  # SIGKILLs its parent
    fx.write(fx.ids_in_comment(), cls / "fay")
    fx.write(fx.patches_compare_digest(), cls / "gus")
    fx.write(fx.edits_installed_grader(grading_py), cls / "hal")
    fx.write(fx.spawns_sleepers(SLEEP_TAG), cls / "ivy")
    fx.write(fx.loops_forever(busy=FULL), cls / "abe")
    fx.write(fx.reports_environment(env_report), cls / "kim")
    fx.write(fx.solution(), cls / "zoe")  # honest, graded after hal's tampering
    for name in EXTRA:
        fx.write(fx.solution(), cls / name)
    out = {k: tmp / f"out.{k}" for k in ("csv", "qcsv", "png")}
    env = {
        **os.environ,
        "PYTHONPATH": str(course),
        "AWS_SECRET_ACCESS_KEY": "instructor-secret",
        "AWS_ACCESS_KEY_ID": "AKIAINSTRUCTOR",
        "CLOUDHSM_LAB_USE_AWS": "1",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "labsupport",
            "grade",
            str(cls),
            "--jobs",
            "2",
            "--timeout",
            str(TIMEOUT_S),
            "--csv",
            str(out["csv"]),
            "--csv-questions",
            str(out["qcsv"]),
            "--plot",
            str(out["png"]),
            "--feedback",
            str(tmp / "feedback"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=900,
    )
    return {
        "proc": proc,
        "out": out,
        "tmp": tmp,
        "seconds": time.monotonic() - started,
        "grading_py": grading_py,
        "before": before,
        "env_report": env_report,
        "rows": {r["learner"]: r for r in csv.DictReader(io.StringIO(out["csv"].read_text()))}
        if out["csv"].exists()
        else {},
    }


def test_the_run_finishes_with_a_row_per_learner(graded_class: dict) -> None:
    proc = graded_class["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(graded_class["rows"]) == sorted(LEARNERS + EXTRA)
    print(f"class of {len(LEARNERS + EXTRA)} graded in {graded_class['seconds']:.0f} s")


@pytest.mark.parametrize(
    ("learner", "full"),
    [
        ("ana", True),
        ("ben", False),
        ("cho", False),
        ("dev", False),
        ("fay", False),
        ("gus", False),
        ("hal", False),
        ("ivy", True),
        ("kim", True),
        ("zoe", True),
        *((name, True) for name in EXTRA),
    ],
)
def test_scores(graded_class: dict, learner: str, full: bool) -> None:
    total = fx.points([q for ids in fx.qids() for q in ids])
    row = graded_class["rows"][learner]
    assert (row["score"], row["max_score"]) == (str(total if full else 0), str(total)), row


def test_sigkill_of_the_parent_is_a_could_not_run_row(graded_class: dict) -> None:
    row = graded_class["rows"]["eve"]
    assert row["score"] == "0" and row["00_setup_check"] == "could not run"
    assert row["status"].startswith("00: could not run:") and "SIGKILL" in row["status"]


def test_endless_loop_times_out_keeping_earlier_answers(graded_class: dict) -> None:
    first, *rest = fx.qids()
    row = graded_class["rows"]["abe"]
    assert row["score"] == str(fx.points(first)) and "timed out" in row["status"], row
    q = list(csv.DictReader(io.StringIO(graded_class["out"]["qcsv"].read_text())))
    abe = {r["question"]: r["outcome"] for r in q if r["learner"] == "abe"}
    assert abe == {
        **dict.fromkeys(first, "pass"),
        **{qid: "could not run" for ids in rest for qid in ids},
    }


def test_no_process_outlives_grading(graded_class: dict) -> None:
    left = []
    for pid in processes():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if SLEEP_TAG.encode() in cmd:
            left.append(cmd)
    assert not left


def test_installed_grader_edit_is_undone_and_changes_nothing(graded_class: dict) -> None:
    assert graded_class["grading_py"].read_bytes() == graded_class["before"]
    # with --jobs 2 the change is noticed while whichever notebook runs then, not always hal's
    assert "course package changed while " in graded_class["proc"].stderr


def test_notebook_sees_a_clean_scratch_environment(graded_class: dict) -> None:
    seen = json.loads(graded_class["env_report"].read_text())
    env = seen["env"]
    assert not [k for k in env if k.startswith("AWS_")]
    assert "CLOUDHSM_LAB_USE_AWS" not in env
    scratch = Path(env["CLOUDHSM_LAB_HOME"]).parent
    assert Path(seen["home"]).parent == scratch and seen["home"] != os.path.expanduser("~")
    assert Path(seen["package"]).is_relative_to(scratch)
    assert not scratch.exists(), "scratch folders are removed"


def test_outputs_csv_long_form_feedback_and_chart(graded_class: dict) -> None:
    out, tmp = graded_class["out"], graded_class["tmp"]
    header = out["csv"].read_text().splitlines()[0]
    assert header == "learner,score,max_score,status,00_setup_check,notes"
    assert all("\n" not in r["notes"] for r in graded_class["rows"].values())
    q = list(csv.DictReader(io.StringIO(out["qcsv"].read_text())))
    assert len(q) == len(LEARNERS + EXTRA) * sum(len(ids) for ids in fx.qids())
    assert out["png"].read_bytes().startswith(PNG_MAGIC)
    dev = (tmp / "feedback" / "dev.md").read_text()
    assert fx.qids()[0][0] in dev and "Hint:" in dev
    fay = (tmp / "feedback" / "fay.md").read_text()
    assert "missing from the submission" in fay
