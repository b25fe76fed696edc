"""scripts/load_test.py: two learners at once stay apart, and cross-talk would be caught."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "load_test.py"


def _load():
    spec = importlib.util.spec_from_file_location("load_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["load_test"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_cross_talk_detector_finds_another_learners_marker(tmp_path: Path) -> None:
    mod = _load()
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "state.json").write_text('{"who-learner01": 1}')
    assert mod.mentions_other_learner(tmp_path, "learner00", ["learner00", "learner01"])
    assert not mod.mentions_other_learner(tmp_path, "learner01", ["learner00", "learner01"])


@pytest.mark.slow
def test_two_learners_run_lesson_00_without_cross_talk() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "-n", "2", "--notebooks", "notebooks/00_setup_check.ipynb"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cross-talk: none" in proc.stdout
    assert proc.stdout.count(" ok ") == 2
