"""Submissions for the grading tests: honest, blank and cheating learners of lesson 00."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from labsupport.authoring.submission import graded_questions, segments
from labsupport.pedagogy import grading

ROOT = Path(__file__).resolve().parent.parent
LESSON = "00_setup_check.ipynb"
SOLUTION = ROOT / "solutions" / LESSON
EXERCISE = ROOT / "exercises" / LESSON
JUNK = '"zz-not-an-answer"'  # wrong for every kind of question (a wrong value or type)


def _graded(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if "graded" in c.metadata.get("tags", [])]


def qids(nb: nbformat.NotebookNode | None = None) -> list[list[str]]:
    """Question ids of each graded cell of the lesson-00 solution, in order."""
    nb = nb or solution()
    return [[q.qid for q in graded_questions(c.source)] for c in _graded(nb)]


def points(ids: list[str]) -> int:
    """What the questions ``ids`` are worth together."""
    return int(sum(grading.question(q).points for q in ids))


def solution() -> nbformat.NotebookNode:
    """The solution notebook (all answers right)."""
    return nbformat.read(SOLUTION, as_version=4)


def junk_answers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The solution with every graded answer block replaced by a wrong value."""
    for cell in _graded(nb):
        names = [q.expression for q in graded_questions(cell.source) if q.expression.isidentifier()]
        out: list[str] = []
        for seg in segments(cell.source):
            if seg.answer < 0:
                out.extend(seg.lines)
            else:
                out.extend(f"{seg.indent}{n} = {JUNK}" for n in names)
        cell.source = "\n".join(out)
    return nb


def with_first_code(nb: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    """Insert ``code`` as a new cell right after the setup cell."""
    setup = next(i for i, c in enumerate(nb.cells) if "start_lesson" in c.source)
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(code))
    return nb


def write(nb: nbformat.NotebookNode, folder: Path, name: str = LESSON) -> Path:
    """Save ``nb`` as ``folder/name`` (folder created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in nb.cells:
        c.pop("id", None)
    nb.nbformat_minor = 4
    nbformat.write(nb, folder / name)
    return folder / name


def printer() -> nbformat.NotebookNode:
    """The blank exercise whose graded cells print the success line themselves."""
    nb = nbformat.read(EXERCISE, as_version=4)
    for cell, ids in zip(_graded(nb), qids(), strict=True):
        cell.source = "\n".join(f'print("✅ {q}: correct")' for q in ids)
    return nb


def ids_in_comment() -> nbformat.NotebookNode:
    """One 'passing' cell naming every question id in a comment; the rest left blank."""
    nb = nbformat.read(EXERCISE, as_version=4)
    g = _graded(nb)
    every = [q for ids in qids() for q in ids]
    g[0].source = " ".join(f'# check("{q}", x)' for q in every) + '\nprint("✅ correct")'
    nb.cells.remove(g[1])
    return nb


def redefines_check() -> nbformat.NotebookNode:
    """Junk answers, and check() replaced by one that always prints success."""
    nb = junk_answers(solution())
    return with_first_code(nb, 'def check(qid, answer):\n    print(f"✅ {qid}: correct")')


def patches_compare_digest() -> nbformat.NotebookNode:
    """Junk answers, and secrets.compare_digest patched to always say equal."""
    nb = junk_answers(solution())
    return with_first_code(
        nb, "import hmac, secrets\nsecrets.compare_digest = hmac.compare_digest = lambda a, b: True"
    )


def kills_parent() -> nbformat.NotebookNode:
    """Right answers, but the notebook SIGKILLs the process that runs its kernel."""
    return with_first_code(solution(), "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")


def edits_installed_grader(grading_py: Path) -> nbformat.NotebookNode:
    """Junk answers, and the instructor's grading.py rewritten to accept anything."""
    code = (
        f"from pathlib import Path\np = Path({str(grading_py)!r})\n"
        "p.write_text(p.read_text() + '\\n\\ndef evaluate(qid, answer):\\n"
        '    return Evaluation(qid, Verdict.RIGHT, "ok")\\n\')'
    )
    return with_first_code(junk_answers(solution()), code)


def spawns_sleepers(tag: str) -> nbformat.NotebookNode:
    """Right answers, leaving behind a child, a setsid'd grandchild and a double fork."""
    code = (
        "import subprocess, os\n"
        f"subprocess.Popen(['sleep', '{tag}1'])\n"
        f"subprocess.Popen(['setsid', 'sleep', '{tag}2'], env={{}})\n"
        f"subprocess.Popen(['sh', '-c', '(sleep {tag}3 &) &'], env={{'PATH': os.environ['PATH']}})"
    )
    return with_first_code(solution(), code)


def loops_forever(busy: bool = True) -> nbformat.NotebookNode:
    """Right answers in the first graded cell, then an endless loop in the second.

    ``busy``: the loop spins on the CPU (``while True: pass``); otherwise it sleeps in
    short steps, which the grader must stop the same way (a cell over the time limit).
    """
    nb = solution()
    g = _graded(nb)
    loop = "while True:\n    pass\n" if busy else "import time\nwhile True:\n    time.sleep(0.05)\n"
    g[1].source = loop + g[1].source
    return nb


def reports_environment(out: Path) -> nbformat.NotebookNode:
    """Right answers; writes what the kernel sees (env, HOME, package path) to ``out``."""
    code = (
        "import json, os, labsupport\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'env': dict(os.environ), "
        "'package': labsupport.__file__, 'home': os.path.expanduser('~')}))\n"
        "open(os.path.expanduser('~/.bashrc'), 'a').write('echo pwned\\n')"
    )
    return with_first_code(solution(), code)


def copy_course(dest: Path) -> Path:
    """A throw-away copy of the course (package, solutions, notebooks) to grade against."""
    for sub in ("labsupport", "solutions", "notebooks", "exercises"):
        shutil.copytree(ROOT / sub, dest / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return dest
