"""How long the control plane's transitional states last on the lab clock.

On AWS, creating a cluster or an HSM takes minutes. The lab compresses those waits to a
few seconds of wall time so learners still see ``CREATE_IN_PROGRESS`` and write the
poll loop they would write against AWS, without waiting for real.

Each transitional state records *when* it ends on the lab clock
(:class:`labsupport.workspace.clock.LabClock`, the one clock of the lab, judged in the
scope that owns the cluster); describe calls compare that with the clock's time (reads
never write). Ways to move faster:

* ``CLOUDHSM_LAB_CLOCK=fast`` in the environment (tests, CI, benchmarks, notebook
  kernels started by them): every transition is due at once, so the response of
  ``create_cluster`` still says ``CREATE_IN_PROGRESS`` and the next describe says
  ``UNINITIALIZED``. ``CLOUDHSM_LAB_CLOCK=<number>`` runs the clock that many times faster.
* ``with clock.fast_forward():`` the same, for a block of code in this process.
* ``LabClock(ws).advance(seconds)``: move this scope's lab clock forward (all processes
  see it), completing whatever is due by then; ``LabClock(ws).frozen()`` stops it (tests).
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterator

ENV_CLOCK = "CLOUDHSM_LAB_CLOCK"


class Step(enum.Enum):
    """A piece of control-plane work that takes time: how long it lasts on the lab clock at
    normal speed (:attr:`seconds`) and what it takes on AWS (:attr:`on_aws`)."""

    CLUSTER_CREATE = ("cluster.create", 2.0, "a few minutes")
    CLUSTER_INITIALIZE = ("cluster.initialize", 1.5, "a minute or two")
    CLUSTER_MODIFY = ("cluster.modify", 2.0, "several minutes")
    CLUSTER_DELETE = ("cluster.delete", 1.5, "a few minutes")
    HSM_CREATE = ("hsm.create", 3.0, "5 to 15 minutes")
    HSM_DELETE = ("hsm.delete", 1.5, "a few minutes")
    BACKUP_CREATE = ("backup.create", 1.5, "a few minutes")
    # A deleted backup stays restorable for 7 days; that one is not compressed.
    BACKUP_EXPIRE = ("backup.expire", 7 * 24 * 3600.0, "7 days")

    @property
    def seconds(self) -> float:
        """Seconds the step lasts on the lab clock at normal speed."""
        return self.value[1]

    @property
    def on_aws(self) -> str:
        """How long the step takes on AWS, in words."""
        return self.value[2]


_override_speed: float | None = None


def speed() -> float:
    """How many times faster than normal the lab clock runs (``inf`` = instant)."""
    if _override_speed is not None:
        return _override_speed
    raw = os.environ.get(ENV_CLOCK, "").strip().lower()
    if raw in ("", "normal", "realtime"):
        return 1.0
    if raw in ("fast", "instant", "inf"):
        return float("inf")
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


@contextlib.contextmanager
def fast_forward() -> Iterator[None]:
    """Make every transition in this process complete at once while the block runs."""
    global _override_speed
    previous = _override_speed
    _override_speed = float("inf")
    try:
        yield
    finally:
        _override_speed = previous


def duration(step: Step) -> float:
    """Seconds ``step`` lasts on the lab clock at the current speed."""
    if step is Step.BACKUP_EXPIRE:
        return step.seconds
    return 0.0 if speed() == float("inf") else step.seconds / speed()
