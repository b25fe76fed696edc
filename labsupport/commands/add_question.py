"""``add-question ID ANSWER --kind K --hint H``: store a review question's hashed answer."""

from __future__ import annotations

import argparse
import ast

from labsupport.pedagogy.grading import AnswerKind, register_answer

NAME = "add-question"
HELP = "course authors: store the salted hash of a review question's answer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ID, ANSWER (a Python literal for non-text kinds), --kind, --hint, --digits, --points."""
    parser.add_argument("qid", help="e.g. 02.trust_anchor")
    parser.add_argument("answer", help="the answer; a Python literal for set/mapping/number/bool")
    parser.add_argument("--kind", choices=[k.value for k in AnswerKind], default="choice")
    parser.add_argument("--hint", required=True)
    parser.add_argument("--digits", type=int, default=0)
    parser.add_argument(
        "--points", type=float, default=1.0, help="what the question is worth when graded"
    )


def run(args: argparse.Namespace) -> int:
    """Parse the answer and store its hash."""
    answer = args.answer
    if args.kind in {"set", "mapping", "number", "bool"}:
        answer = ast.literal_eval(answer)
    register_answer(args.qid, answer, args.kind, args.hint, args.digits, args.points)
    print(f"stored {args.qid} ({args.kind})")
    return 0
