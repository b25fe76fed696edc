"""Shared fixtures: every test gets its own workspace directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsupport.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_lesson_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    # start_lesson() exports CLOUDHSM_LAB_LESSON; never let one test's scope leak into
    # the ownership of what the next test creates.
    monkeypatch.delenv("CLOUDHSM_LAB_LESSON", raising=False)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A fresh, empty workspace, also set as CLOUDHSM_LAB_HOME for the test."""
    home = tmp_path / "lab"
    monkeypatch.setenv("CLOUDHSM_LAB_HOME", str(home))
    return Workspace.open(home)
