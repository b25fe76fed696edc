"""Shared fixtures: every test gets its own workspace directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from labsupport.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Point every test, and every notebook kernel nbval starts, at a scratch workspace.

    This runs at configure time, in each xdist worker too: nbval starts a notebook's kernel
    when the notebook's collector is set up, before any fixture, so a session fixture would
    be too late and the kernel would use the learner's real ``~/.cloudhsm-lab``.
    """
    home = Path(tempfile.mkdtemp(prefix="cloudhsm-lab-tests-")) / "lab-home"
    config._lab_scratch_home = home.parent  # type: ignore[attr-defined]
    os.environ["CLOUDHSM_LAB_HOME"] = str(home)
    # Kernels nbval starts inherit this: debugpy's "frozen modules" warning otherwise lands,
    # now and then, as a stderr output of a notebook's first cell and fails its comparison.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give each notebook a fresh workspace of its own, and tests the worker's.

    Runs before pytest sets up the item's parents, i.e. before nbval starts the notebook's
    kernel, so the kernel inherits the variable. A notebook must run alone, from the top, in
    an empty workspace (as a learner's first run does), not on what an earlier notebook or a
    fault-injection test left in the same xdist worker.
    """
    config = item.config
    scratch: Path = config._lab_scratch_home  # type: ignore[attr-defined]
    notebook = item.parent if type(item.parent).__name__ == "IPyNbFile" else None
    if notebook is None:
        os.environ["CLOUDHSM_LAB_HOME"] = str(scratch / "lab-home")
        return
    home = getattr(notebook, "_lab_home", None)
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="notebook-", dir=scratch)) / "lab-home"
        notebook._lab_home = home  # type: ignore[attr-defined]
    os.environ["CLOUDHSM_LAB_HOME"] = str(home)


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = getattr(config, "_lab_scratch_home", None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


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
