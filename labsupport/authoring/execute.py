"""Run notebooks top to bottom in a fresh kernel (for storing outputs and for grading)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from labsupport.authoring.course import COURSE_ROOT

KERNEL = "python3"


@contextmanager
def scratch_workspace() -> Iterator[Path]:
    """A throw-away CLOUDHSM_LAB_HOME for one run, so runs never share lab state."""
    with tempfile.TemporaryDirectory(prefix="cloudhsm-lab-run-") as tmp:
        old = os.environ.get("CLOUDHSM_LAB_HOME")
        os.environ["CLOUDHSM_LAB_HOME"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("CLOUDHSM_LAB_HOME", None)
            else:
                os.environ["CLOUDHSM_LAB_HOME"] = old


def run_notebook(
    nb: nbformat.NotebookNode, cwd: Path, allow_errors: bool = False, timeout: int = 300
) -> nbformat.NotebookNode:
    """Execute ``nb`` in a fresh kernel of this Python, in its own scratch workspace."""
    with scratch_workspace():
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=KERNEL,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute()
    return nb


def strip_course_root(nb: nbformat.NotebookNode, root: Path = COURSE_ROOT) -> None:
    """Make the file paths in ``nb``'s tracebacks and printed text relative to ``root``.

    A stored traceback names the files of the checkout that ran it (``/home/…/labsupport/
    client/client.py``); learners see ``labsupport/client/client.py`` and
    ``.venv/lib/…/botocore/client.py`` instead of an author's folders.
    """
    prefix = f"{root}{os.sep}"
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "traceback" in output:
                output["traceback"] = [line.replace(prefix, "") for line in output["traceback"]]
            if isinstance(output.get("text"), str):
                output["text"] = output["text"].replace(prefix, "")


def execute_in_place(path: Path) -> None:
    """Re-run notebook ``path`` and store its outputs (authors: after editing a lesson)."""
    nb = nbformat.read(path, as_version=4)
    run_notebook(nb, path.parent)
    strip_course_root(nb)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
