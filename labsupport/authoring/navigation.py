"""Previous / contents / next links in every lesson, and the contents notebook.

Written by a tool, not by hand, so adding lesson 06 updates every neighbour's links:
``python -m labsupport navigation`` (``--check`` only reports). Each notebook in
``notebooks/`` and ``solutions/`` ends with one markdown cell tagged ``navigation``;
``notebooks/index.ipynb`` lists every lesson with its exercise and solution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

NAV_TAG = "navigation"
INDEX = "index.ipynb"
_HEADING = re.compile(r"^#\s+(\d\d)\s*·\s*(.+?)\s*$", re.MULTILINE)
_TIME = re.compile(r"\*\*Time:\*\*\s*(?:about\s+)?([^.]+?)\.")
_PREREQS = re.compile(r"\*\*Prerequisites:\*\*\s*(.+?)(?:\n\n|$)", re.DOTALL)
_HAND_NEXT = re.compile(r"^\*\*Next:\*\*")


@dataclass(frozen=True)
class LessonRef:
    """One lesson: number, title, file name (the same in all three folders), time, prerequisites."""

    number: str
    title: str
    filename: str
    time: str = "—"
    prerequisites: str = "—"


def lessons(root: Path) -> list[LessonRef]:
    """The lessons in ``notebooks/``, in order, titled from their first heading."""
    found = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0].source if nb.cells else ""
        match = _HEADING.search(first)
        title = match.group(2) if match else path.stem
        time, prereqs = _TIME.search(first), _PREREQS.search(first)
        found.append(
            LessonRef(
                path.name[:2],
                title,
                path.name,
                time.group(1).strip() if time else "—",
                " ".join(prereqs.group(1).split()).rstrip(".") if prereqs else "—",
            )
        )
    return found


def _link(ref: LessonRef, prefix: str = "") -> str:
    return f"[{ref.number} · {ref.title}]({prefix}{ref.filename})"


def nav_text(all_lessons: list[LessonRef], index: int, folder: str) -> str:
    """The navigation cell for lesson ``index`` in ``folder`` (notebooks or solutions)."""
    ref = all_lessons[index]
    prev = _link(all_lessons[index - 1]) if index > 0 else "—"
    nxt = _link(all_lessons[index + 1]) if index + 1 < len(all_lessons) else "—"
    up = "" if folder == "notebooks" else "../notebooks/"
    parts = [f"⬅ Previous: {prev}", f"[Contents]({up}{INDEX})", f"Next: {nxt} ➡"]
    if folder == "notebooks":
        extra = f"Your turn: [exercise {ref.number}](../exercises/{ref.filename})."
    else:
        extra = f"The guided lesson: [{ref.number} · {ref.title}](../notebooks/{ref.filename})."
    return "---\n" + " | ".join(parts) + "\n\n" + extra


def _with_nav(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    cells = [
        c
        for c in nb.cells
        if NAV_TAG not in c.metadata.get("tags", [])
        and not (c.cell_type == "markdown" and _HAND_NEXT.match(c.source))
    ]
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [NAV_TAG]
    if nb.nbformat_minor >= 5:  # nbformat 4.5 requires a cell id; a stable one keeps diffs small
        cell.id = NAV_TAG
    else:  # 4.4 forbids ids
        cell.pop("id", None)
    nb.cells = [*cells, cell]
    return nb


def index_notebook(all_lessons: list[LessonRef]) -> nbformat.NotebookNode:
    """The contents notebook: lessons with time and prerequisites, exercises, a progress view.

    Solutions are deliberately not linked next to the exercises: the table points at the
    exercise, and one sentence below says where the worked solutions are.
    """
    rows = "\n".join(
        f"| {r.number} | [{r.title}]({r.filename}) | {r.time} | {r.prerequisites} "
        f"| [exercise {r.number}](../exercises/{r.filename}) |"
        for r in all_lessons
    )
    text = (
        "# CloudHSM Lab — contents\n\n"
        "Run the lessons in order the first time; each one also runs on its own (its first "
        "cell prepares what it needs). Lessons ask you to *predict, then reveal*; after each "
        "lesson, do its exercise: its review questions grade themselves as you run them.\n\n"
        "| # | lesson | time | prerequisites | your turn |\n|---|---|---|---|---|\n"
        + rows
        + "\n\nOptional, and billed by AWS: [run it on AWS](appendix_run_on_aws.ipynb) — the "
        "same steps with the AWS CLI and the Client SDK 5, and the teardown."
        "\n\nStuck after a real attempt? Worked solutions are in the `solutions/` folder "
        "(same file names). Open one only after you have tried — the exercise is where you learn."
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    cells = [
        nbformat.v4.new_markdown_cell(text),
        nbformat.v4.new_markdown_cell(
            "## Your progress\n"
            "Run the cell below: it reads the results of the graded cells you have run "
            "(kept in your lab workspace, `state/progress.json`; answers are never stored)."
        ),
        nbformat.v4.new_code_cell(
            "from labsupport.pedagogy.progress import progress_table\n\nprint(progress_table())"
        ),
    ]
    cells[-1].metadata["tags"] = ["nbval-ignore-output"]
    for cell in cells:
        cell.pop("id", None)
    nb.cells = cells
    nb.nbformat_minor = 4
    return nb


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def write_navigation(root: Path, check: bool = False) -> list[Path]:
    """Update the navigation cells and the contents notebook; return the stale files.

    With ``check`` nothing is written.
    """
    all_lessons = lessons(root)
    stale: list[Path] = []
    targets: dict[Path, str] = {root / "notebooks" / INDEX: _dumps(index_notebook(all_lessons))}
    for i, ref in enumerate(all_lessons):
        for folder in ("notebooks", "solutions"):
            path = root / folder / ref.filename
            if path.exists():
                nb = nbformat.read(path, as_version=4)
                targets[path] = _dumps(_with_nav(nb, nav_text(all_lessons, i, folder)))
    for path, text in targets.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale
