"""`python -m labsupport reset`: bad lesson ids are refused; a root reset keeps ownership."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labsupport.authoring.course import lesson_ids

ROOT = Path(__file__).resolve().parent.parent


def _reset(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOUDHSM_LAB_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "labsupport", "reset", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_course_lessons_are_found_from_the_package() -> None:
    ids = lesson_ids()
    assert ids[:6] == ["00", "01", "02", "03", "04", "05"]


@pytest.mark.parametrize(
    ("arg", "says"),
    [
        ("3", "not a lesson id"),
        ("foo", "not a lesson id"),
        ("99", "no lesson 99"),
        ("02-exam", "not a lesson id"),
    ],
)
def test_bad_lesson_is_refused(tmp_path: Path, arg: str, says: str) -> None:
    proc = _reset(tmp_path / "lab", arg)
    assert proc.returncode == 1
    assert "Reset" not in proc.stdout
    assert says in proc.stderr and "00" in proc.stderr  # names the valid ids


@pytest.mark.parametrize("arg", ["02", "02-ex", "02-lesson"])
def test_good_lesson_resets(tmp_path: Path, arg: str) -> None:
    proc = _reset(tmp_path / "lab", arg)
    assert proc.returncode == 0, proc.stderr
    assert f"Reset lesson {arg}" in proc.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
@pytest.mark.parametrize("arg", [[], ["00"]])
def test_root_reset_leaves_files_to_the_learner(tmp_path: Path, arg: list[str]) -> None:
    learner = (65534, 65534)  # nobody:nogroup
    home = tmp_path / "lab"
    home.mkdir()
    os.chown(home, *learner)
    proc = _reset(home, *arg)
    assert proc.returncode == 0, proc.stderr
    for sub in ("state", "tokens", "softhsm2.conf"):
        assert (home / sub).exists()
    for path in [home, *home.rglob("*")]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == learner, path
