"""What a crash repair did: the one report type of every layer that reconciles its state.

The token store (:meth:`labsupport.hsm.tokens.TokenStore.reconcile`) and the control plane
(:func:`labsupport.controlplane.reconcile.reconcile`) each repair what a killed process left
half-done, and each tells the learner in one line what it repaired. A report is a dataclass
whose fields are declared with :func:`repaired` (a list of what was repaired) or
:func:`counted` (how many), each with the words the summary uses for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def repaired(words: str) -> Any:
    """A report field listing repaired items (ids, labels); the summary says ``words`` + items."""
    return field(default_factory=list, metadata={"words": words})


def counted(words: str) -> Any:
    """A report field counting repairs; ``words`` holds ``{count}``."""
    return field(default=0, metadata={"words": words})


@dataclass
class RepairReport:
    """Base of the repair reports: true when anything was repaired, one-line summary."""

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def summary(self) -> str:
        """One line naming every repair, in field order (empty when nothing was repaired)."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not value:
                continue
            words = f.metadata["words"]
            if isinstance(value, list):
                parts.append(f"{words} {', '.join(sorted(value))}")
            else:
                parts.append(words.format(count=value))
        return "; ".join(parts)


__all__ = ["RepairReport", "counted", "repaired"]
