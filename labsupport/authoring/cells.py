"""What the course tooling needs to know about notebook cells: tags, markers, graded ids."""

from __future__ import annotations

import re
from typing import Any

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
GRADED_TAG = "graded"
CODE_PLACEHOLDER = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_PLACEHOLDER = ["YOUR ANSWER HERE"]
_CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.[A-Za-z0-9_]+)["']""")


def tags(cell: Any) -> list[str]:
    """The cell's tags (empty list if none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def is_graded(cell: Any) -> bool:
    """True for a graded review-question cell (tag ``graded``)."""
    return cell.get("cell_type") == "code" and GRADED_TAG in tags(cell)


def question_ids(cell: Any) -> list[str]:
    """Ids of the questions a cell checks, from its ``check("NN.name", …)`` calls."""
    return _CHECK_CALL.findall(cell.get("source", ""))


def has_solution(cell: Any) -> bool:
    """True if the cell contains a ``### BEGIN SOLUTION`` block."""
    return BEGIN in cell.get("source", "")


def strip_solutions(source: str, markdown: bool = False) -> str:
    """Replace every BEGIN/END SOLUTION block with the learner placeholder (nbgrader style)."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError("nested ### BEGIN SOLUTION")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            placeholder = MARKDOWN_PLACEHOLDER if markdown else CODE_PLACEHOLDER
            out.extend(indent + p for p in placeholder)
        elif stripped.startswith(END):
            if not inside:
                raise ValueError("### END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("### BEGIN SOLUTION without END")
    return "\n".join(out)
