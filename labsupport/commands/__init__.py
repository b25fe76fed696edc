"""The ``python -m labsupport`` command line.

Each module in this package is one sub-command: it defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. New commands need no
registration beyond adding the module.

Only the command that runs is imported: ``NAME`` and ``HELP`` are string literals read from
each module's source, so ``python -m labsupport env`` does not pay for ``grade``'s nbformat
and jsonschema (about a second) or ``bench``'s imports.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from labsupport.errors import LabError


@dataclass(frozen=True)
class CommandInfo:
    """One sub-command, known from its module's source without importing it."""

    name: str
    help: str
    module: str  # dotted module name, imported only to run the command

    def load(self) -> ModuleType:
        """Import the command's module."""
        return importlib.import_module(self.module)


def _literals(source: str) -> dict[str, str]:
    """Top-level ``NAME = "…"`` / ``HELP = "…"`` string assignments of a module's source."""
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("NAME", "HELP"):
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[target.id] = value.value
    return found


def commands() -> dict[str, CommandInfo]:
    """Every sub-command by name, sorted; a module whose NAME/HELP are not literals is imported."""
    found: dict[str, CommandInfo] = {}
    for info in pkgutil.iter_modules(__path__):
        dotted = f"{__name__}.{info.name}"
        source = Path(__path__[0], f"{info.name}.py")
        literals = _literals(source.read_text(encoding="utf-8")) if source.is_file() else {}
        if "NAME" not in literals or "HELP" not in literals:
            module = importlib.import_module(dotted)
            if not hasattr(module, "NAME"):
                continue
            literals = {"NAME": module.NAME, "HELP": module.HELP}
        found[literals["NAME"]] = CommandInfo(literals["NAME"], literals["HELP"], dotted)
    return dict(sorted(found.items()))


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m labsupport", description="CloudHSM Lab command line."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    known = commands()
    # Only the named command's arguments are needed; the others show in --help by HELP alone.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    loaded: dict[str, ModuleType] = {}
    for name, command in known.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if name == chosen:
            loaded[name] = command.load()
            loaded[name].add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(loaded[args.command].run(args) or 0)
    except LabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
