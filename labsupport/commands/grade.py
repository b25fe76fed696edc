"""``grade PATH… [--csv F] [--csv-questions F] [--feedback DIR] [--plot F] [--jobs N]
[--timeout S]``: grade a class's exercise notebooks, each run isolated, judged by the
grader against the instructor's solutions."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from labsupport.authoring.grade import (
    DEFAULT_TIMEOUT_S,
    NotebookResult,
    grade,
    plot_outcomes,
    to_csv,
    to_csv_questions,
    to_question_table,
    to_table,
    write_feedback,
)
from labsupport.errors import LabError

NAME = "grade"
HELP = (
    "grade learners' exercise notebooks (files, folders of learner folders, zip/tar); "
    "table, CSV, feedback, chart"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH…, outputs, limits and the solutions folder."""
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks, folders or archives")
    parser.add_argument("--csv", type=Path, help="one row per learner: score, max_score, …")
    parser.add_argument(
        "--csv-questions", type=Path, help="one row per learner and question (long form)"
    )
    parser.add_argument(
        "--feedback", type=Path, metavar="DIR", help="write one feedback report per learner"
    )
    parser.add_argument("--feedback-format", choices=["md", "html"], default="md")
    parser.add_argument(
        "--plot", type=Path, help="PNG chart: correct / wrong / unanswered / could not run"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds one notebook may run (default {DEFAULT_TIMEOUT_S})",
    )
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default 1)")
    parser.add_argument(
        "--run-as",
        metavar="USER",
        help="when grading as root: run the notebooks as this user (e.g. nobody)",
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        help="the instructor's solutions folder (default: the one beside the installed package)",
    )


def run(args: argparse.Namespace) -> int:
    """Grade, print the class tables, write the files asked for; exit 0 even when learners
    fail (1 only when grading itself could not start)."""
    if args.timeout < 1 or args.jobs < 1:
        raise LabError(
            "--timeout and --jobs must be at least 1.", "For example: --jobs 2 --timeout 120"
        )
    if args.run_as and os.geteuid() != 0:
        raise LabError("--run-as needs root.", "Run the grader with sudo, or drop --run-as.")

    def progress(nb: NotebookResult) -> None:
        state = nb.problem or f"{nb.score:g}/{nb.max_score:g}"
        mem = f", kernel peak {nb.peak_mib:.0f} MiB" if nb.peak_mib else ""
        print(f"  {nb.learner} · {nb.notebook}: {state} ({nb.seconds:.0f} s{mem})", file=sys.stderr)

    try:
        report = grade(
            args.paths,
            args.solutions,
            timeout=args.timeout,
            jobs=args.jobs,
            run_as=args.run_as,
            progress=progress,
        )
    except FileNotFoundError as exc:
        raise LabError(str(exc), "Pass --solutions DIR (the course's solutions/ folder).") from None
    except PermissionError as exc:
        raise LabError(
            f"--run-as: {exc}.",
            "Install Python and the course where that user can read them (not under /root), "
            "or grade in a container (docs/instructors.md).",
        ) from None
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(to_table(report))
    if report.notebooks:
        print("\nQuestions (ok, wrong, error, - unanswered, not-run):")
        print(to_question_table(report))
    print(
        f"\nGraded {len(report.notebooks)} notebooks of {len(report.learners)} learners "
        f"in {report.seconds:.0f} s."
    )
    if args.csv:
        args.csv.write_text(to_csv(report), encoding="utf-8")
        print(f"CSV written to {args.csv}")
    if args.csv_questions:
        args.csv_questions.write_text(to_csv_questions(report), encoding="utf-8")
        print(f"Per-question CSV written to {args.csv_questions}")
    if args.feedback:
        files = write_feedback(report, args.feedback, args.feedback_format)
        print(f"{len(files)} feedback reports written to {args.feedback}")
    if args.plot:
        plot_outcomes(report, args.plot)
        print(f"Chart written to {args.plot}")
    return 0
