"""Test-run set-up for every item pytest collects here: tests/, notebooks/ and solutions/.

At the repository root (not in tests/) so it also applies when only notebooks are collected
(``pytest --nbval notebooks/02_cluster_creation.ipynb``): a conftest.py in tests/ is hidden
from items collected elsewhere, and a notebook run without it would use the learner's real
``~/.cloudhsm-lab``. Fixtures for the Python tests live in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

from labsupport.controlplane.clock import ENV_CLOCK

NOTEBOOK_CLOCK = "20"  # how much faster the lab clock runs for notebooks nbval tests


def _set_env(name: str, value: str | None) -> None:
    """Set ``name`` to ``value``, or remove it if ``value`` is None."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _scratch(config: pytest.Config) -> Path:
    """This process's scratch folder (made in :func:`pytest_configure`)."""
    return config._lab_scratch_home  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    """Point every test, and every notebook kernel nbval starts, at a scratch workspace.

    This runs at configure time, in each xdist worker too: nbval starts a notebook's kernel
    when the notebook's collector is set up, before any fixture, so a session fixture would
    be too late and the kernel would use the learner's real ``~/.cloudhsm-lab``.
    """
    home = Path(tempfile.mkdtemp(prefix="cloudhsm-lab-tests-")) / "lab-home"
    config._lab_scratch_home = home.parent  # type: ignore[attr-defined]
    os.environ["CLOUDHSM_LAB_HOME"] = str(home)
    # What the Python tests start from: each test sets the lab clock's speed it needs.
    config._lab_clock = os.environ.get(ENV_CLOCK)  # type: ignore[attr-defined]
    # Kernels nbval starts inherit this: debugpy's "frozen modules" warning otherwise lands,
    # now and then, as a stderr output of a notebook's first cell and fails its comparison.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this process's scratch workspaces."""
    scratch = getattr(config, "_lab_scratch_home", None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give each notebook a fresh workspace of its own, and tests the worker's.

    Runs before pytest sets up the item's parents, i.e. before nbval starts the notebook's
    kernel, so the kernel inherits the variable. A notebook must run alone, from the top,
    in an empty workspace (as a learner's first run does), not on what an earlier notebook
    or a fault-injection test left in the same xdist worker.
    """
    notebook = item.parent if type(item.parent).__name__ == "IPyNbFile" else None
    if notebook is None:
        os.environ["CLOUDHSM_LAB_HOME"] = str(_scratch(item.config) / "lab-home")
        _set_env(ENV_CLOCK, item.config._lab_clock)  # type: ignore[attr-defined]
        return
    # The simulated waits of lessons 02, 03 and 06 (seconds per cluster or HSM) run 20 times
    # faster: every poll loop still sees CREATE_IN_PROGRESS once, and the outputs are the
    # same. CLOUDHSM_LAB_CLOCK=normal ./lab test runs them at a learner's speed.
    _set_env(ENV_CLOCK, item.config._lab_clock or NOTEBOOK_CLOCK)  # type: ignore[attr-defined]
    home = getattr(notebook, "_lab_home", None)
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="notebook-", dir=_scratch(item.config))) / "lab-home"
        notebook._lab_home = home  # type: ignore[attr-defined]
    os.environ["CLOUDHSM_LAB_HOME"] = str(home)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show what a notebook cell really printed when nbval fails it.

    nbval's message for an extra or missing output names only its kind ("Unexpected
    output fields from running code: {'stderr'}"), never its text; without the text a
    flaky output cannot be traced. The cell's actual outputs go into the report.
    """
    report: pytest.TestReport = yield
    outputs = getattr(item, "test_outputs", None)
    if report.failed and call.when == "call" and outputs:
        shown = []
        for out in outputs:
            kind = out.get("name") or out.get("output_type", "?")
            data = out.get("data", {}).get("text/plain")
            body = out.get("text") or data or out.get("evalue") or dict(out)
            shown.append(f"--- {kind}\n{body}")
        report.sections.append(("actual cell outputs (nbval)", "\n".join(shown)))
    return report


@pytest.fixture
def notebook_clock(monkeypatch: pytest.MonkeyPatch) -> str:
    """The lab clock's speed for kernels a test starts itself, as nbval's get (see above)."""
    speed = os.environ.get(ENV_CLOCK) or NOTEBOOK_CLOCK
    monkeypatch.setenv(ENV_CLOCK, speed)
    return speed
