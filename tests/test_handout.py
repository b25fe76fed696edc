"""Learner copies of the course: no solutions, no answers in an assessment copy, and the
container start script that copies the course into a learner's home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labsupport.authoring.handout import handout, ignore_patterns, ignored

ROOT = Path(__file__).resolve().parent.parent


def test_dockerignore_leaves_out_solutions_and_local_environments() -> None:
    patterns = ignore_patterns(ROOT)
    for rel in (
        "solutions/00_setup_check.ipynb",
        ".venv/bin/python",
        ".git/HEAD",
        "labsupport/__pycache__/x.pyc",
        "notebooks/.ipynb_checkpoints/a.ipynb",
    ):
        assert ignored(rel, patterns), rel
    for rel in (
        "notebooks/00_setup_check.ipynb",
        "exercises/00_setup_check.ipynb",
        "labsupport/pedagogy/grading.py",
        "pyproject.toml",
        "binder/start",
    ):
        assert not ignored(rel, patterns), rel


def test_learner_copy_has_no_solutions(tmp_path: Path) -> None:
    dest = tmp_path / "course"
    handout(dest, ROOT)
    assert (dest / "exercises" / "00_setup_check.ipynb").exists()
    assert (dest / "labsupport" / "pedagogy" / "questions" / "00.json").exists()
    assert not (dest / "solutions").exists() and not (dest / ".venv").exists()
    assert not list(dest.rglob("__pycache__"))


def test_assessment_copy_has_no_answers_and_check_records(tmp_path: Path) -> None:
    dest = tmp_path / "exam"
    proc = subprocess.run(
        [sys.executable, "-m", "labsupport", "handout", "--assessment", str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not list((dest / "labsupport" / "pedagogy" / "questions").glob("*.json"))
    run = subprocess.run(
        [sys.executable, "-c", "from labsupport import check; check('00.real_hsm', 'a')"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(dest)},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "answer recorded" in run.stdout


def test_container_start_copies_the_course_into_home_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "REPO_DIR": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    start = [str(ROOT / "binder" / "start"), "echo", "started"]
    proc = subprocess.run(start, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "started", proc.stderr
    mine = home / "cloudhsm-lab" / "exercises" / "00_setup_check.ipynb"
    assert mine.exists() and not (home / "cloudhsm-lab" / "solutions").exists()
    mine.write_text("my work")
    subprocess.run(start, capture_output=True, text=True, env=env, timeout=120, check=True)
    assert mine.read_text() == "my work"  # a restart never overwrites the learner's files
