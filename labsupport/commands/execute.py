"""``execute NOTEBOOK…``: re-run notebooks in place and store their outputs (course authors)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from labsupport.authoring.execute import execute_in_place

NAME = "execute"
HELP = "re-run notebooks top to bottom in a scratch workspace and store the outputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """NOTEBOOK…"""
    parser.add_argument("notebooks", nargs="+", type=Path)


def run(args: argparse.Namespace) -> int:
    """Execute each notebook and print its wall time."""
    for path in args.notebooks:
        start = time.perf_counter()
        execute_in_place(path)
        print(f"{path}: {time.perf_counter() - start:.1f} s")
    return 0
