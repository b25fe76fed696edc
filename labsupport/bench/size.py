"""How big a benchmark run is: the figures to report, a quicker look, or a smoke test."""

from __future__ import annotations

from labsupport.strenum import StrEnum


class BenchSize(StrEnum):
    """``python -m labsupport bench`` (full), ``--quick`` or ``--smoke``."""

    #: The counts behind the figures the project reports (a few minutes).
    FULL = "full"
    #: Smaller counts: the same figures, noisier (about half a minute).
    QUICK = "quick"
    #: Every section once with the smallest counts: proves the bench runs and prints every
    #: figure (the test suite uses it); the figures themselves mean nothing.
    SMOKE = "smoke"


__all__ = ["BenchSize"]
