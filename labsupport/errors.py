"""Errors a learner can cause, each carrying the next step to take.

Every error labsupport raises on purpose derives from :class:`LabError`; its
message says what went wrong *and* what to do next, and never contains a secret.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class for lab errors: ``str(err)`` is the problem, ``err.fix`` the next step."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\n→ {fix}" if fix else problem)


class WorkspaceError(LabError):
    """The workspace directory cannot be created, written or read."""


class CorruptStateError(WorkspaceError):
    """A state file is damaged and no good backup of it exists."""


class SoftHSMNotFound(LabError):
    """No PKCS#11 module (SoftHSMv2) could be found on this machine."""


class TokenNotFound(LabError):
    """A lab token (simulated HSM) does not exist in this workspace."""


class LessonOrderError(LabError):
    """A step was run before the step it depends on."""


class LockTimeout(WorkspaceError):
    """Another process held a workspace lock for too long (the message names it)."""
