"""Stored notebook outputs: no secrets, no leftover execution errors outside tagged cells."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    [
        *ROOT.glob("notebooks/*.ipynb"),
        *ROOT.glob("solutions/*.ipynb"),
        *ROOT.glob("exercises/*.ipynb"),
    ]
)


def _notebook_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


#: The notebooks that ship with stored outputs (exercises/ are generated without them).
WITH_STORED_OUTPUTS = pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.parent.name != "exercises"], ids=_notebook_id
)

PRIVATE_KEY = re.compile(r"BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY")
# `user:password`-shaped text (a word, a colon, then a token containing a digit).
USER_PASSWORD = re.compile(r"\b[a-z_]+:(?!//)[^\s:'\"]*\d[^\s:'\"]*\b(?=['\"]|\s|$)")
PIN_LITERAL = re.compile(r"""(?:PIN|PASSWORD|password|pin)\w*\s*=\s*["']([^"']{4,})["']""")


def _text(output: nbformat.NotebookNode) -> str:
    data = output.get("data", {})
    return (
        "".join(output.get("text", ""))
        + "".join(data.get("text/plain", ""))
        + "".join(data.get("text/html", ""))
        + output.get("evalue", "")
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_id)
def test_no_secret_in_stored_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    secrets = {m for c in nb.cells if c.cell_type == "code" for m in PIN_LITERAL.findall(c.source)}
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = _text(out)
            assert not PRIVATE_KEY.search(text), f"cell {i} shows a private key"
            assert not USER_PASSWORD.search(text), f"cell {i} shows a user:password string"
            for secret in secrets:
                assert secret not in text, f"cell {i} prints a PIN/password used in the notebook"


@WITH_STORED_OUTPUTS
def test_errors_only_in_cells_tagged_raises_exception(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            assert "raises-exception" in cell.metadata.get("tags", []), (
                f"cell {i} stored an error ({errors[0].ename}) but is not tagged raises-exception"
            )


ANSI = re.compile(r"\x1b\[[0-9;]*m")
# An absolute path into a checkout or virtualenv: /…/labsupport/, /…/.venv/, /…/site-packages/.
CHECKOUT_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/\"':]+/)+?(?:labsupport|\.venv|site-packages)/")


def _traceback_and_text(output: nbformat.NotebookNode) -> str:
    return ANSI.sub("", "\n".join(output.get("traceback", [])) + "".join(output.get("text", "")))


@WITH_STORED_OUTPUTS
def test_no_checkout_path_in_stored_outputs(path: Path) -> None:
    """Stored tracebacks name course-relative files, not the folders of whoever ran them."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            found = CHECKOUT_PATH.search(_traceback_and_text(out))
            assert found is None, f"cell {i} names {found.group()}: re-run `labsupport execute`"


def test_execute_strips_the_course_root(tmp_path: Path) -> None:
    from labsupport.authoring.execute import strip_course_root

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("boom()")
    where = f"{tmp_path}/labsupport/client/client.py:138"
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=f"warning at {where}\n"),
        nbformat.v4.new_output(
            "error", ename="E", evalue="e", traceback=[f"File \x1b[0;32m{where}\x1b[0m, in f"]
        ),
    ]
    nb.cells.append(cell)
    assert CHECKOUT_PATH.search(_traceback_and_text(cell.outputs[1]))
    strip_course_root(nb, tmp_path)
    assert cell.outputs[0]["text"] == "warning at labsupport/client/client.py:138\n"
    assert cell.outputs[1]["traceback"] == [
        "File \x1b[0;32mlabsupport/client/client.py:138\x1b[0m, in f"
    ]
    assert not any(CHECKOUT_PATH.search(_traceback_and_text(o)) for o in cell.outputs)
