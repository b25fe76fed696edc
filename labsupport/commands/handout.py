"""``handout DEST [--assessment] [--notebooks-only]``: a learner's copy of the course."""

from __future__ import annotations

import argparse
from pathlib import Path

from labsupport.authoring.course import COURSE_ROOT
from labsupport.authoring.handout import handout
from labsupport.errors import LabError

NAME = "handout"
HELP = "copy the course for learners without solutions/ (--assessment: without answers either)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """DEST, --assessment, --notebooks-only, --source."""
    parser.add_argument("dest", type=Path, help="folder to create or fill")
    parser.add_argument(
        "--assessment",
        action="store_true",
        help="leave out the answer hashes too: check() records answers, only `grade` scores them",
    )
    parser.add_argument(
        "--notebooks-only",
        action="store_true",
        help="copy only notebooks/ and exercises/ (e.g. into a learner's home at start-up)",
    )
    parser.add_argument(
        "--source", type=Path, default=COURSE_ROOT, help="the course clone (default: this one)"
    )


def run(args: argparse.Namespace) -> int:
    """Copy, never overwriting a learner's file; say what was written."""
    if not (args.source / "notebooks").is_dir():
        raise LabError(
            f"{args.source} has no notebooks/ folder.",
            "Pass --source with the course clone (the folder holding notebooks/ and labsupport/).",
        )
    if args.source.resolve() in [args.dest.resolve(), *args.dest.resolve().parents]:
        raise LabError("DEST is inside the course itself.", "Choose a folder outside the clone.")
    done = handout(args.dest, args.source, args.assessment, args.notebooks_only)
    kind = "assessment copy" if args.assessment else "learner copy"
    print(
        f"{kind}: {len(done.written)} files written to {args.dest}"
        + (f", {len(done.kept)} existing files kept" if done.kept else "")
    )
    return 0
