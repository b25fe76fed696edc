"""The package's shape, measured: no import cycles, imports only go down, modules stay small.

The import graph is read with ``ast`` from the source, *including imports inside
functions* (a lazy import hides a cycle; it does not remove it). See docs/architecture.md
for the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labsupport"
MAX_LINES = 800

#: Cycles that exist today and the issue that removes them (the client split). Each
#: entry must still be a cycle: when it is gone, delete it here.
KNOWN_CYCLES: dict[frozenset[str], str] = {}
#: Modules over MAX_LINES today and the issue that splits them; same rule as above.
KNOWN_LARGE: dict[str, str] = {}

#: Layer of each package, lowest first (docs/architecture.md). A module may import its
#: own layer and the ones below, never above. The composition root
#: (``labsupport.simulators``) wires every layer together and sits outside the order, as
#: do the tools (``commands``, ``authoring``) that run the whole lab.
LAYERS: dict[str, int] = {
    "labsupport.errors": 0,
    "labsupport.explanations": 0,
    "labsupport.strenum": 0,
    "labsupport.workspace": 1,
    "labsupport.hsm": 2,
    "labsupport.crypto": 2,
    "labsupport.aws": 3,
    "labsupport.controlplane": 3,
    "labsupport.client": 4,
    "labsupport.kms": 5,
    "labsupport.logs": 5,
    "labsupport.costs": 5,
    "labsupport.openssl": 5,
    "labsupport.byok": 6,
    "labsupport.pedagogy": 6,
    "labsupport.plots": 6,
}


def _modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in (root / "labsupport").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the labsupport modules it imports anywhere in its source."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                targets = [str(node.args[0].value)]
            for target in targets:
                if target.startswith("labsupport"):
                    resolved = _resolve(target, modules)
                    if resolved and resolved != name:
                        graph[name].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int | None:
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def test_the_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "labsupport"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from .base import thing\n")
    (package / "low" / "base.py").write_text(
        "def thing():\n    from labsupport.high import helper\n    return helper\n"
    )
    (package / "high.py").write_text(
        "import importlib\nfrom labsupport.low import base\n"
        "def helper():\n    return importlib.import_module('labsupport.low')\n"
    )
    graph = import_graph(tmp_path)
    assert graph["labsupport.low"] == {"labsupport.low.base"}
    assert graph["labsupport.low.base"] == {"labsupport.high"}
    assert graph["labsupport.high"] == {"labsupport.low.base", "labsupport.low"}
    assert cycles(graph) == [
        frozenset({"labsupport.low", "labsupport.low.base", "labsupport.high"})
    ]


def test_no_import_cycles() -> None:
    found = set(cycles(import_graph()))
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles (counting imports inside functions): {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"fixed — remove them from KNOWN_CYCLES: {gone}"


def test_imports_only_go_down() -> None:
    upward = []
    for module, targets in import_graph().items():
        here = _layer(module)
        for target in targets:
            there = _layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} (layer {here}) → {target} (layer {there})")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_module_size(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    lines = len(path.read_text().splitlines())
    if rel in KNOWN_LARGE:
        assert lines > MAX_LINES, f"{rel} is {lines} lines now: remove it from KNOWN_LARGE"
    else:
        assert lines <= MAX_LINES, f"{rel} has {lines} lines (at most {MAX_LINES})"


# -- docs/architecture.md stays true to the tree -----------------------------------------

DOC = ROOT / "docs" / "architecture.md"
#: Modules the doc covers by their folder's description instead of by name.
COVERED_BY_FOLDER = ("labsupport/commands/", "labsupport/client/cli/families/")


def _doc_names() -> set[str]:
    import re

    return set(re.findall(r"[\w/]+\.py", DOC.read_text()))


def test_architecture_doc_names_every_module() -> None:
    """A new contributor finds every module in docs/architecture.md (its file name suffices
    when the row says which package it is in)."""
    names = _doc_names()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in ("__init__.py", "__main__.py") or rel.startswith(COVERED_BY_FOLDER):
            continue
        inside = path.relative_to(PACKAGE).as_posix()
        if not any(n == path.name or n.endswith(inside) for n in names):
            missing.append(rel)
    assert not missing, "docs/architecture.md does not mention: " + ", ".join(missing)


def test_architecture_doc_names_no_module_that_is_gone() -> None:
    gone = []
    for name in sorted(_doc_names()):
        if "/" not in name:
            continue  # a bare file name: checked against the tree above
        if not any(p.as_posix().endswith("/" + name) for p in ROOT.glob("*/**/*.py")):
            gone.append(name)
    assert not gone, "docs/architecture.md names files that do not exist: " + ", ".join(gone)
