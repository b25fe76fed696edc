"""``reset [LESSON]``: reset one lesson's state, or the whole workspace."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from labsupport import simulators
from labsupport.authoring.course import lesson_ids
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

NAME = "reset"
HELP = "reset one lesson (e.g. 02) or, with no argument, the whole workspace"
_SCOPE = re.compile(r"^(\d\d)(-lesson|-ex)?$")


class UnknownLesson(LabError):
    """``reset`` was given something that is not one of the course's lessons."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """LESSON is optional."""
    parser.add_argument(
        "lesson",
        nargs="?",
        help="two-digit lesson id such as 02 (or 02-lesson / 02-ex for one scope); "
        "omit to reset everything",
    )


def validate_lesson(lesson: str) -> str:
    """Return ``lesson`` if it names one of the course's lessons (or one of its scopes).

    Raises :class:`UnknownLesson` naming the lessons that exist otherwise.
    """
    known = lesson_ids()
    match = _SCOPE.match(lesson.strip())
    listed = ", ".join(known) if known else "00, 01, …"
    if not match:
        raise UnknownLesson(
            f"{lesson!r} is not a lesson id.",
            f"Give a two-digit lesson id ({listed}), or no argument to reset everything.",
        )
    if known and match.group(1) not in known:
        raise UnknownLesson(
            f"There is no lesson {match.group(1)} in this course.",
            f"The lessons are {listed}.",
        )
    return lesson.strip()


def workspace_owner(root: Path) -> tuple[int, int]:
    """(uid, gid) the workspace belongs to: its folder's owner, or its parent's when
    root just created the folder inside someone else's home."""
    st = root.stat()
    if st.st_uid == 0 and root.parent.exists():
        parent = root.parent.stat()
        if parent.st_uid != 0:
            return parent.st_uid, parent.st_gid
    return st.st_uid, st.st_gid


def give_back(root: Path, owner: tuple[int, int]) -> int:
    """chown everything under ``root`` that is not ``owner``'s back to it (run as root).

    Returns how many paths changed owner. Symbolic links are changed themselves,
    never followed, so a link in a learner's workspace cannot redirect the chown.
    """
    uid, gid = owner
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name != "." else dirpath
            st = os.lstat(path)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.chown(path, uid, gid, follow_symlinks=False)
                changed += 1
    return changed


def run(args: argparse.Namespace) -> int:
    """Reset and say what was reset (exit 1 with the valid ids for a bad lesson)."""
    lesson = validate_lesson(args.lesson) if args.lesson is not None else None
    ws = Workspace.open()
    owner = workspace_owner(ws.root)
    simulators.reset(ws, lesson)
    what = f"lesson {lesson}" if lesson else "the whole workspace"
    if os.geteuid() == 0 and owner[0] != 0:
        # Run as root (sudo, a hub admin): files the reset recreated (state/, tokens/,
        # softhsm2.conf) must stay the learner's, or their next kernel cannot open them.
        give_back(ws.root, owner)
        what += f" (files left owned by uid {owner[0]})"
    print(f"Reset {what} in {ws.root}")
    return 0
