"""The exercise pipeline: exercises/ is generated, up to date, and fails until filled in."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labsupport.authoring.build import build_exercises, exercise_from_solution
from labsupport.authoring.cells import is_graded, question_ids, strip_solutions
from labsupport.authoring.execute import run_notebook

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_strip_solutions_keeps_indent_and_rest() -> None:
    src = "a = 1\nif a:\n    ### BEGIN SOLUTION\n    b = 2\n    ### END SOLUTION\nprint(b)"
    assert strip_solutions(src) == (
        "a = 1\nif a:\n    # YOUR CODE HERE\n    raise NotImplementedError()\nprint(b)"
    )
    assert strip_solutions("### BEGIN SOLUTION\nx\n### END SOLUTION", markdown=True) == (
        "YOUR ANSWER HERE"
    )


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx", "x\n### END SOLUTION"])
def test_unbalanced_markers_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        strip_solutions(bad)


def test_exercises_are_up_to_date() -> None:
    result = build_exercises(ROOT / "solutions", ROOT / "exercises", check=True)
    assert not result.stale, f"run `python -m labsupport build-exercises`: {result}"


def test_build_detects_staleness(tmp_path: Path) -> None:
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx=1\n### END SOLUTION")]
    )
    nbformat.write(nb, sol / "99_demo.ipynb")
    assert build_exercises(sol, ex, check=True).stale
    build_exercises(sol, ex)
    assert not build_exercises(sol, ex, check=True).stale
    (ex / "98_orphan.ipynb").write_text("{}")
    assert build_exercises(sol, ex, check=True).removed


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_exercise_has_no_solution_code(solution: Path) -> None:
    exercise = exercise_from_solution(nbformat.read(solution, as_version=4))
    text = nbformat.writes(exercise)
    assert "BEGIN SOLUTION" not in text
    graded = [c for c in exercise.cells if is_graded(c)]
    assert graded, "every lesson has graded review questions"
    for cell in exercise.cells:
        if cell.cell_type == "code" and not is_graded(cell):
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_unfilled_exercise_fails_every_graded_cell(solution: Path) -> None:
    exercise = nbformat.read(ROOT / "exercises" / solution.name, as_version=4)
    run_notebook(exercise, ROOT / "exercises", allow_errors=True)
    graded = [c for c in exercise.cells if is_graded(c)]
    for cell in graded:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"graded cell {question_ids(cell)} passed without an answer"
        assert not any("correct" in o.get("text", "") for o in cell.outputs)


def test_navigation_links_are_up_to_date() -> None:
    from labsupport.authoring.navigation import write_navigation

    assert write_navigation(ROOT, check=True) == [], "run `python -m labsupport navigation`"


def test_navigation_links_point_at_existing_notebooks() -> None:
    import re

    for path in [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]:
        nb = nbformat.read(path, as_version=4)
        for target in re.findall(r"\]\(([^)#]+\.ipynb)\)", nb.cells[-1].source):
            assert (path.parent / target).resolve().exists(), f"{path.name}: broken link {target}"
