"""``reset [LESSON]``: reset one lesson's state, or the whole workspace."""

from __future__ import annotations

import argparse

from labsupport.layers import load_layers
from labsupport.workspace.home import Workspace

NAME = "reset"
HELP = "reset one lesson (e.g. 02) or, with no argument, the whole workspace"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """LESSON is optional."""
    parser.add_argument("lesson", nargs="?", help="two-digit lesson id; omit to reset everything")


def run(args: argparse.Namespace) -> int:
    """Reset and say what was reset."""
    load_layers()  # so every layer's reset hook is registered
    ws = Workspace.open()
    ws.reset(args.lesson)
    print(f"Reset {'lesson ' + args.lesson if args.lesson else 'the whole workspace'} in {ws.root}")
    return 0
