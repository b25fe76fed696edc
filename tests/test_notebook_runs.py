"""A lesson run twice in one workspace, and two kernels on one workspace at the same time."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from labsupport.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def _run(path: Path, home: Path) -> nbformat.NotebookNode:
    """Execute a notebook in a fresh kernel whose CLOUDHSM_LAB_HOME is ``home``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=dict(os.environ, CLOUDHSM_LAB_HOME=str(home)))
    return nb


def _lines(nb: nbformat.NotebookNode, graded: bool) -> list[str]:
    """Stdout of the graded cells (``graded``) or of every compared, non-graded cell."""
    # A print may arrive as several stream messages; join them before splitting lines.
    lines = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or ("graded" in tags) != graded:
            continue
        if "nbval-ignore-output" in tags:
            continue
        text = "".join(o.text for o in cell.outputs if o.get("name") == "stdout")
        lines += [line for line in text.splitlines() if line.strip()]
    return lines


def test_lesson_runs_twice_in_one_workspace(workspace: Workspace) -> None:
    first = _run(ROOT / "notebooks" / "00_setup_check.ipynb", workspace.root)
    second = _run(ROOT / "notebooks" / "00_setup_check.ipynb", workspace.root)
    assert _lines(first, graded=False) == _lines(second, graded=False)
    assert "round trip ok: True" in _lines(second, graded=False)


def test_two_kernels_share_a_workspace(workspace: Workspace) -> None:
    results: dict[str, nbformat.NotebookNode] = {}
    errors: list[BaseException] = []

    def work(folder: str) -> None:
        try:
            results[folder] = _run(ROOT / folder / "00_setup_check.ipynb", workspace.root)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in ("notebooks", "solutions")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert "round trip ok: True" in _lines(results["notebooks"], graded=False)
    assert _lines(results["solutions"], graded=True) == [
        "✅ 00.ex_moving: correct",
        "✅ 00.cbc_length: correct",
        "✅ 00.ex_tamper: correct",
    ]
    # Both lessons' state files are still valid JSON afterwards.
    for path in workspace.state_dir.glob("*.json"):
        workspace.state(path.stem).read()
