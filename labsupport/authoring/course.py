"""Where the course's own files are: resolved from the installed package, never the cwd.

The grader trusts only the instructor's copy of the course (``solutions/`` and the
question files next to :mod:`labsupport.pedagogy.grading`), so it must find them the
same way wherever the command is run from.
"""

from __future__ import annotations

import re
from pathlib import Path

import labsupport

#: The folder holding ``labsupport/``, ``notebooks/``, ``solutions/`` and ``exercises/``
#: in a clone (``pip install -e .``); a wheel install has only the package.
COURSE_ROOT = Path(labsupport.__file__).resolve().parent.parent
PACKAGE_DIR = Path(labsupport.__file__).resolve().parent
QUESTIONS_DIR = PACKAGE_DIR / "pedagogy" / "questions"
_LESSON_FILE = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")


def solutions_dir() -> Path:
    """The instructor's ``solutions/`` folder beside the installed package."""
    return COURSE_ROOT / "solutions"


def lesson_ids() -> list[str]:
    """Two-digit ids of the lessons this course ships (from its notebooks and question files)."""
    ids: set[str] = set()
    for folder in ("notebooks", "solutions", "exercises"):
        for path in (COURSE_ROOT / folder).glob("[0-9][0-9]_*.ipynb"):
            if _LESSON_FILE.match(path.name):
                ids.add(path.name[:2])
    ids |= {p.stem for p in QUESTIONS_DIR.glob("[0-9][0-9].json")}
    return sorted(ids)
