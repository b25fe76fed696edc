"""The lab clock: one simulated time for the whole lab, per lesson scope, with a frozen mode.

Everything in the lab that waits reads its time here: the control plane's transitional
states (``CREATE_IN_PROGRESS`` ends at a lab time), KMS import tokens (valid 24 hours)
and imported key material (expires at ``ValidTo``). Nobody wants to wait a day in a
notebook, so the clock can be moved forward — per **lesson scope**: ``advance_clock``
in lesson 05 (scope ``"05-lesson"``) moves that scope's time only, so exercise 05
(``"05-ex"``), running in another kernel at the same time, keeps its own; resetting a
scope (``start_lesson``, ``python -m labsupport reset 05``) drops its offset, so a new
run starts at real time again. A resource is judged by the clock of the scope it
belongs to.

The clock never goes backwards. State: ``state/clock.json``::

    {"offsets": {"05-lesson": 2678400.0}, "frozen_at": null}

**Frozen mode** (tests): :meth:`LabClock.freeze` stops the base time at one instant for
every process of the workspace, so "the HSM is still CREATE_IN_PROGRESS right after
create_hsm" holds however slow the machine is; only :meth:`LabClock.advance` moves it.
``with LabClock(ws).frozen():`` freezes for a block.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from labsupport.workspace.home import Workspace, belongs_to, current_scope

STATE_NAME = "clock"


@dataclass(frozen=True)
class ClockReading:
    """The clock read once: the base time (wall or frozen) and every scope's offset."""

    base: float
    offsets: dict[str, float] = field(default_factory=dict)

    def now(self, scope: str | None = None) -> float:
        """Lab time (epoch seconds) of ``scope`` (default: this process's lesson scope)."""
        return self.base + self.offsets.get(scope or current_scope(), 0.0)


class LabClock:
    """The lab clock of one workspace (all kernels of the workspace share it)."""

    def __init__(self, workspace: Workspace) -> None:
        self._state = workspace.state(STATE_NAME)

    def reading(self) -> ClockReading:
        """Read the clock once (no lock; cached while ``state/clock.json`` is unchanged)."""
        data = self._state.read()
        frozen = data.get("frozen_at")
        base = float(frozen) if frozen is not None else time.time()
        return ClockReading(base, {k: float(v) for k, v in data.get("offsets", {}).items()})

    def now(self, scope: str | None = None) -> float:
        """The lab time of ``scope`` (default: this process's scope), epoch seconds."""
        return self.reading().now(scope)

    def offset(self, scope: str | None = None) -> float:
        """Seconds ``scope``'s clock was advanced in total."""
        return self.reading().offsets.get(scope or current_scope(), 0.0)

    def advance(self, seconds: float, scope: str | None = None) -> float:
        """Move ``scope``'s clock forward by ``seconds``; returns its new lab time."""
        if seconds < 0:
            raise ValueError("the lab clock only moves forward; reset_clock() goes back")
        scope = scope or current_scope()
        with self._state.update() as data:
            offsets = data.setdefault("offsets", {})
            offsets[scope] = float(offsets.get(scope, 0.0)) + seconds
        return self.now(scope)

    def reset(self, lesson: str | None = None) -> None:
        """Drop the offsets of the scopes ``reset(lesson)`` covers (all, and unfreeze, if None)."""
        if not self._state.path.exists():
            return
        with self._state.update() as data:
            if lesson is None:
                data.clear()
                return
            offsets = data.get("offsets", {})
            for scope in [s for s in offsets if belongs_to(s, lesson)]:
                del offsets[scope]

    def freeze(self) -> None:
        """Stop the base time where it is now (every process of the workspace sees it)."""
        with self._state.update() as data:
            if data.get("frozen_at") is None:
                data["frozen_at"] = time.time()

    def unfreeze(self) -> None:
        """Let the base time run with the wall clock again (it jumps forward, never back)."""
        with self._state.update() as data:
            data.pop("frozen_at", None)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[LabClock]:
        """Freeze the clock while the block runs."""
        self.freeze()
        try:
            yield self
        finally:
            self.unfreeze()


def _workspace(workspace: Workspace | None) -> Workspace:
    return workspace or Workspace.open()


def now(workspace: Workspace | None = None) -> datetime:
    """The lab time of this process's lesson scope (timezone-aware UTC)."""
    return datetime.fromtimestamp(LabClock(_workspace(workspace)).now(), tz=timezone.utc)


def advance_clock(
    delta: timedelta | float | None = None,
    *,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    workspace: Workspace | None = None,
) -> datetime:
    """Move this lesson scope's lab clock forward and return the new lab time.

    ``advance_clock(hours=25)`` makes every KMS import token issued so far expire;
    ``advance_clock(timedelta(days=2))`` or ``advance_clock(3600)`` (seconds) work too.
    """
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta or 0)
    seconds += days * 86400 + hours * 3600 + minutes * 60
    ws = _workspace(workspace)
    LabClock(ws).advance(seconds)
    return now(ws)


def reset_clock(workspace: Workspace | None = None) -> None:
    """Set this lesson scope's lab clock back to real time."""
    LabClock(_workspace(workspace)).reset(current_scope())
