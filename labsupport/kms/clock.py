"""The simulated KMS's clock: real time plus an offset you can move forward.

Import tokens last 24 hours and imported key material expires at ``ValidTo``; nobody
wants to wait that long in a notebook. The simulator reads the time from here, and
:func:`advance_clock` moves it forward for this workspace (the offset is stored in
``state/kms.json``, so every client and kernel of the workspace sees the same time).
Expiry is evaluated lazily: the next call after the clock passes ``ValidTo`` finds the
key ``PendingImport``. The clock never goes backwards; :func:`reset_clock` returns it
to real time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from labsupport.workspace.home import Workspace

STATE_NAME = "kms"
_OFFSET = "clock_offset_seconds"


def _workspace(workspace: Workspace | None) -> Workspace:
    return workspace or Workspace.open()


def epoch_in(data: dict) -> float:
    """The simulated time (epoch seconds) for an already-loaded ``state/kms.json`` document."""
    return time.time() + float(data.get(_OFFSET, 0.0))


def clear_offset(data: dict) -> None:
    """Remove the clock offset from a loaded ``state/kms.json`` document (back to real time)."""
    data.pop(_OFFSET, None)


def offset(workspace: Workspace | None = None) -> float:
    """How many seconds the simulated KMS clock is ahead of real time."""
    return float(_workspace(workspace).state(STATE_NAME).read().get(_OFFSET, 0.0))


def now_epoch(workspace: Workspace | None = None) -> float:
    """The simulated KMS time as seconds since the epoch."""
    return time.time() + offset(workspace)


def now(workspace: Workspace | None = None) -> datetime:
    """The simulated KMS time (timezone-aware UTC)."""
    return datetime.fromtimestamp(now_epoch(workspace), tz=timezone.utc)


def advance_clock(
    delta: timedelta | float | None = None,
    *,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    workspace: Workspace | None = None,
) -> datetime:
    """Move the simulated KMS clock forward and return the new simulated time.

    ``advance_clock(hours=25)`` makes every import token issued so far expire;
    ``advance_clock(timedelta(days=2))`` or ``advance_clock(3600)`` (seconds) work too.
    """
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta or 0)
    seconds += days * 86400 + hours * 3600 + minutes * 60
    if seconds < 0:
        raise ValueError("the simulated clock only moves forward; use reset_clock() to go back")
    ws = _workspace(workspace)
    with ws.state(STATE_NAME).update() as data:
        data[_OFFSET] = float(data.get(_OFFSET, 0.0)) + seconds
    return now(ws)


def reset_clock(workspace: Workspace | None = None) -> None:
    """Set the simulated KMS clock back to real time."""
    with _workspace(workspace).state(STATE_NAME).update() as data:
        data.pop(_OFFSET, None)
