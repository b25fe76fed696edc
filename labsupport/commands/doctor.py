"""``doctor``: check Python, SoftHSM, the workspace and the Jupyter kernel; say how to fix each."""

from __future__ import annotations

import argparse

from labsupport.pedagogy.setup_check import findings

NAME = "doctor"
HELP = "check Python, SoftHSM, the workspace and the Jupyter kernel"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 1 if anything needs fixing."""
    bad = 0
    for f in findings():
        mark = "ok " if f.ok else "FIX"
        print(f"[{mark}] {f.what}: {f.detail}")
        if not f.ok:
            bad += 1
            print(f"      → {f.fix}")
    print("All good — open the lab with ./lab start." if not bad else f"{bad} problem(s) to fix.")
    return 1 if bad else 0
