"""Generate ``exercises/`` from ``solutions/`` (the single source).

For every solution notebook: solution blocks become ``# YOUR CODE HERE`` /
``raise NotImplementedError()``; outputs and execution counts are cleared, except
in graded cells, which keep the expected success line so nbval can compare it
once the learner has answered.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labsupport.authoring.cells import has_solution, is_graded, strip_solutions


@dataclass(frozen=True)
class BuildResult:
    """Which exercise notebooks were (or, with ``check``, would be) written or removed."""

    changed: list[Path]
    removed: list[Path]

    @property
    def stale(self) -> bool:
        """True when exercises/ did not match solutions/."""
        return bool(self.changed or self.removed)


#: The title of a solution notebook (``# 04 · Solution — …``) and of its exercise.
SOLUTION_TITLE, EXERCISE_TITLE = "· Solution —", "· Exercise —"


def exercise_from_solution(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the exercise version of a solution notebook (retitled ``· Exercise —``)."""
    nb = copy.deepcopy(solution)
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = nb.cells[0].source.replace(SOLUTION_TITLE, EXERCISE_TITLE, 1)
    for cell in nb.cells:
        if has_solution(cell):
            cell.source = strip_solutions(cell.source, markdown=cell.cell_type == "markdown")
        if cell.cell_type != "code":
            continue
        if is_graded(cell):
            cell.outputs = [o for o in cell.outputs if o.get("output_type") == "stream"]
        else:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def build_exercises(solutions: Path, exercises: Path, check: bool = False) -> BuildResult:
    """Write ``exercises/*.ipynb`` from ``solutions/*.ipynb``; with ``check`` write nothing."""
    changed: list[Path] = []
    expected: set[str] = set()
    for src in sorted(Path(solutions).glob("*.ipynb")):
        target = Path(exercises) / src.name
        expected.add(src.name)
        text = _dumps(exercise_from_solution(nbformat.read(src, as_version=4)))
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            changed.append(target)
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    removed = [p for p in Path(exercises).glob("*.ipynb") if p.name not in expected]
    if not check:
        for p in removed:
            p.unlink()
    return BuildResult(changed, removed)
