"""Start (and restart) a lesson: a clean slate for that lesson, explanations switched on.

Every notebook begins with ``lab = start_lesson("02")``. It resets only that lesson's
part of the workspace (its tokens, clusters, keys, files), so any lesson runs alone,
in any order, and twice in a row with the same results.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11

from labsupport.hsm.tokens import TokenStore
from labsupport.pedagogy.explain import install_exception_hook
from labsupport.workspace.home import ENV_LESSON, Workspace


@dataclass(frozen=True)
class Lesson:
    """A running lesson: its id, the learner's workspace and the lesson's own folder."""

    lesson_id: str
    workspace: Workspace
    exercise: bool = False

    @property
    def scope(self) -> str:
        """Owner tag of everything this run creates: ``"02-lesson"`` or ``"02-ex"``.

        Starting the guided lesson resets only ``"02-lesson"``, so it and its exercise
        can run side by side; ``python -m labsupport reset 02`` resets both.
        """
        return f"{self.lesson_id}-{'ex' if self.exercise else 'lesson'}"

    @property
    def tokens(self) -> TokenStore:
        """The workspace's SoftHSM tokens."""
        return TokenStore(self.workspace)

    @property
    def dir(self) -> Path:
        """Folder for files this lesson writes (certificates, CSRs, exported keys)."""
        return self.workspace.lesson_dir(self.scope)

    def inspect_hsm(self, hsm_id: str) -> list:
        """A read-only list of what HSM ``hsm_id`` stores (labels, classes, public attributes).

        On AWS you can never look inside an HSM; the lab shows what is safe to show and
        never hands out a session on an HSM (see :mod:`labsupport.client.inspector`).
        """
        from labsupport.client.inspector import inspect_hsm

        return inspect_hsm(hsm_id, self.workspace)

    def create_token(self, label: str, user_pin: str) -> pkcs11.Token:
        """Create a fresh SoftHSM token ``label`` for this lesson with the learner's user PIN.

        Used by the lessons that work with a bare PKCS#11 token (lesson 00, 01). The
        token is deleted when the lesson is reset.
        """
        self.tokens.create(label, owner=self.scope, user_pin=user_pin)
        return self.tokens.token(label)

    def reset(self) -> None:
        """Delete everything this lesson created, as if it had never been run."""
        from labsupport import simulators  # the composition root knows every layer's reset

        simulators.reset(self.workspace, self.scope)


def start_lesson(
    lesson_id: str, workspace: Workspace | None = None, exercise: bool = False
) -> Lesson:
    """Prepare lesson ``lesson_id`` (e.g. ``"00"``) from a clean state and return it.

    Exercise and solution notebooks pass ``exercise=True`` so they get their own
    scope and never disturb the guided lesson running in another kernel.

    Opens (or creates) the workspace, resets this lesson's part of it, turns on
    plain-language explanations of PKCS#11 and AWS errors, and registers the
    ``%cloudhsm_cli`` / ``%%cloudhsm_cli`` magic (the CloudHSM CLI in a notebook).
    """
    if not re.fullmatch(r"\d\d", lesson_id):
        raise ValueError(f"lesson ids are two digits such as '00', not {lesson_id!r}")
    lesson = Lesson(lesson_id, workspace or Workspace.open(), exercise)
    lesson.reset()
    # Resources created from now on in this kernel (clusters, KMS keys) belong to this
    # lesson scope even when the learner's code does not tag them.
    os.environ[ENV_LESSON] = lesson.scope
    from labsupport.client.cli import magic

    magic.reset()  # the lesson's client machine was just reset
    shell = _ipython()
    if shell is not None:  # in a notebook (or IPython), not in plain Python
        install_exception_hook(shell)
        magic.register(shell)  # %cloudhsm_cli / %%cloudhsm_cli, as on an EC2 client
    kind = "Exercise" if exercise else "Lesson"
    print(f"{kind} {lesson_id} ready: its part of the workspace is fresh.")
    return lesson


def _ipython() -> Any:
    """The running IPython shell (a notebook's kernel), or None in plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
