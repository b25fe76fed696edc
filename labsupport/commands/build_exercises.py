"""``build-exercises [--check]``: generate exercises/ from solutions/."""

from __future__ import annotations

import argparse
from pathlib import Path

from labsupport.authoring.build import build_exercises

NAME = "build-exercises"
HELP = "generate exercises/ from solutions/ (--check: exit 1 if exercises/ is stale)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--check, --solutions, --exercises."""
    parser.add_argument("--check", action="store_true", help="only report; exit 1 when stale")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--exercises", type=Path, default=Path("exercises"))


def run(args: argparse.Namespace) -> int:
    """Build (or check) and list what changed."""
    result = build_exercises(args.solutions, args.exercises, check=args.check)
    verb = "stale" if args.check else "written"
    for p in result.changed:
        print(f"{verb}: {p}")
    for p in result.removed:
        print(f"{'orphan' if args.check else 'removed'}: {p}")
    if args.check and result.stale:
        print("exercises/ is out of date: run `python -m labsupport build-exercises`.")
        return 1
    print("exercises/ is up to date." if not result.stale or not args.check else "")
    return 0
