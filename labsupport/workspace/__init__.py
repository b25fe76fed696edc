"""Layer 1 — the learner's workspace: one directory, mode 0700, holding every piece of lab state."""

from labsupport.workspace.home import Workspace, belongs_to, default_home
from labsupport.workspace.statefile import StateFile

__all__ = ["StateFile", "Workspace", "belongs_to", "default_home"]
