"""A learner's copy of the course: everything but ``solutions/`` (and, for an exam, the answers).

``python -m labsupport handout DEST`` copies the course from its clone, leaving out what
``.dockerignore`` leaves out of an image (``solutions/``, ``.venv``, caches) — the same
rules, so the folder you hand out and the image you build contain the same files.
``--assessment`` also leaves out the answer hashes (``labsupport/pedagogy/questions/*.json``)
and marks the copy, so ``check()`` says "answer recorded" instead of judging: nothing in
the copy can be brute-forced, and only ``python -m labsupport grade`` on the instructor's
machine (which has the hashes) scores the answers.

``python -m labsupport handout --notebooks-only DEST`` copies just ``notebooks/`` and
``exercises/`` and never overwrites a file that is already there — what ``binder/start``
runs at every container start to put the course in the learner's home.
"""

from __future__ import annotations

import fnmatch
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from labsupport.authoring.course import COURSE_ROOT
from labsupport.pedagogy.grading import ASSESSMENT_MARKER

#: Used when the clone has no .dockerignore (a wheel install has no course around it).
DEFAULT_IGNORE = (
    ".git",
    ".venv",
    "solutions",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "**/.ipynb_checkpoints",
    "build",
    "dist",
    "artifacts",
    "*.egg-info",
)
LEARNER_FOLDERS = ("notebooks", "exercises")


@dataclass
class Handout:
    """What a handout wrote and what it left alone."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def ignore_patterns(root: Path = COURSE_ROOT) -> list[str]:
    """The patterns of ``root/.dockerignore`` (comments and ``!`` exceptions dropped)."""
    path = root / ".dockerignore"
    if not path.exists():
        return list(DEFAULT_IGNORE)
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln.rstrip("/") for ln in lines if ln and not ln.startswith(("#", "!"))]


def ignored(rel: str, patterns: list[str]) -> bool:
    """True if the relative path ``rel`` (or one of its parent folders) matches a pattern."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pat in patterns:
            bare = pat[3:] if pat.startswith("**/") else None
            if fnmatch.fnmatchcase(prefix, pat) or (
                bare and fnmatch.fnmatchcase(parts[i - 1], bare)
            ):
                return True
    return False


def handout(
    dest: Path,
    source: Path = COURSE_ROOT,
    assessment: bool = False,
    notebooks_only: bool = False,
) -> Handout:
    """Copy the course at ``source`` to ``dest`` for learners (see the module docstring).

    Existing files in ``dest`` are never overwritten (a learner's work survives a restart).
    """
    patterns = ignore_patterns(source)
    done = Handout()
    roots = [source / f for f in LEARNER_FOLDERS] if notebooks_only else [source]
    for root in roots:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if not path.is_file() or ignored(rel, patterns):
                continue
            if (
                assessment
                and rel.startswith("labsupport/pedagogy/questions/")
                and rel.endswith(".json")
            ):
                continue
            target = dest / rel
            if target.exists():
                done.kept.append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            done.written.append(target)
    if assessment and not notebooks_only:
        marker = dest / "labsupport" / "pedagogy" / "questions" / ASSESSMENT_MARKER
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            "Assessment copy: no answers are shipped; check() records, the instructor grades.\n"
        )
        done.written.append(marker)
    return done
