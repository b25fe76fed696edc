"""``grade PATH… [--csv FILE] [--plot FILE]``: per-learner, per-question results, a class
table (learner by question) and a pass-rate chart for submitted notebooks."""

from __future__ import annotations

import argparse
from pathlib import Path

from labsupport.authoring.grade import grade, plot_pass_rates, to_class_table, to_csv, to_table

NAME = "grade"
HELP = "grade learner notebooks (files or folders of learner folders); table, CSV, chart"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH…, --csv, --plot, --solutions."""
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks or folders")
    parser.add_argument("--csv", type=Path, help="also write the results as CSV to this file")
    parser.add_argument(
        "--plot", type=Path, help="also write a PNG bar chart of the pass rate per question"
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        default=Path("solutions"),
        help="solutions folder, to report graded cells a learner removed",
    )


def run(args: argparse.Namespace) -> int:
    """Grade, print the tables, write CSV and chart; exit 0 even when learners fail."""
    rows = grade(args.paths, args.solutions if args.solutions.is_dir() else None)
    print(to_table(rows))
    if rows:
        print("\nClass (learner by question):")
        print(to_class_table(rows))
    if args.csv:
        args.csv.write_text(to_csv(rows), encoding="utf-8")
        print(f"\nCSV written to {args.csv}")
    if args.plot:
        plot_pass_rates(rows, args.plot)
        print(f"Chart written to {args.plot}")
    return 0
