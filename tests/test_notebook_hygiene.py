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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
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


@pytest.mark.parametrize(
    "path",
    [p for p in NOTEBOOKS if p.parent.name != "exercises"],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_errors_only_in_cells_tagged_raises_exception(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            assert "raises-exception" in cell.metadata.get("tags", []), (
                f"cell {i} stored an error ({errors[0].ename}) but is not tagged raises-exception"
            )
