"""``navigation [--check]``: write the previous/contents/next links and the contents page."""

from __future__ import annotations

import argparse
from pathlib import Path

from labsupport.authoring.navigation import write_navigation

NAME = "navigation"
HELP = "course authors: update lesson navigation links and notebooks/index.ipynb"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--check, --root."""
    parser.add_argument("--check", action="store_true", help="only report; exit 1 when stale")
    parser.add_argument("--root", type=Path, default=Path("."))


def run(args: argparse.Namespace) -> int:
    """Write (or check) and list what changed."""
    stale = write_navigation(args.root, check=args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'written'}: {path}")
    if args.check and stale:
        print("Navigation is out of date: run `python -m labsupport navigation`.")
        return 1
    if not stale:
        print("Navigation is up to date.")
    return 0
