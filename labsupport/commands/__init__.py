"""The ``python -m labsupport`` command line.

Each module in this package is one sub-command: it defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. New commands need no
registration beyond adding the module.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from labsupport.errors import LabError


def _commands() -> dict[str, object]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m labsupport", description="CloudHSM Lab command line."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _commands()
    for name, module in commands.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(commands[args.command].run(args) or 0)
    except LabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
