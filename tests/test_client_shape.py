"""The client layer's shape: no import cycle, no module over 800 lines, and no class reading
another object's private fields (the CLI, moving to its own package, is left out)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parent.parent / "labsupport" / "client"
ALL = {p.stem: p for p in CLIENT.glob("*.py") if p.stem != "__init__"}
MODULES = {name: path for name, path in ALL.items() if name != "cli"}


def _client_imports(path: Path) -> set[str]:
    """Client modules ``path`` imports anywhere (top level, in functions, TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("labsupport.client."):
                found.add(node.module.split(".")[2])
            elif node.module == "labsupport.client":
                found.update(alias.name for alias in node.names)
    return found & set(ALL)


def test_no_import_cycle_among_client_modules():
    graph = {name: _client_imports(path) for name, path in ALL.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in graph[name]:
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, name, dep]))
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    assert len(MODULES[name].read_text().splitlines()) <= 800


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_reads_of_other_objects_private_fields(name):
    """``other._field`` only on ``self``/``cls`` (a module's own private names are fine)."""
    tree = ast.parse(MODULES[name].read_text())
    own_names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.startswith("_")}
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or attr.startswith("__"):
            continue
        base = node.value
        if isinstance(base, ast.Name) and (base.id in ("self", "cls") or base.id in own_names):
            continue
        bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not bad, "\n".join(bad)
