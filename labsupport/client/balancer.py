"""Load balancing bookkeeping: which HSM served each request, and a plot of it.

The client spreads operations over the HSMs that hold the key, in turn (round robin),
skipping HSMs that are not ACTIVE. Every routed operation is recorded here, so a lesson
can show the requests moving to the remaining HSMs when one is removed.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    """One routed operation: its number, the HSM that served it, and what it was."""

    number: int
    hsm_id: str
    operation: str


class RequestLog:
    """The most recent routed operations (by default the last 100,000)."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._items: deque[tuple[int, str, str]] = deque(maxlen=maxlen)
        self.total = 0
        self.events: list[tuple[int, str]] = []

    def record(self, hsm_id: str, operation: str) -> None:
        """Note that ``hsm_id`` served ``operation``."""
        self.total += 1
        self._items.append((self.total, hsm_id, operation))

    def mark(self, label: str) -> None:
        """Mark an event (e.g. "hsm-… deleted") at the current request number."""
        self.events.append((self.total, label))

    def clear(self) -> None:
        """Forget all requests and events."""
        self._items.clear()
        self.events.clear()
        self.total = 0

    def __len__(self) -> int:
        return len(self._items)

    def requests(self, last: int | None = None) -> list[Request]:
        """The recorded requests, oldest first (only the ``last`` N if given)."""
        items = list(self._items)[-last:] if last else list(self._items)
        return [Request(*item) for item in items]

    def counts(self) -> dict[str, int]:
        """How many requests each HSM served."""
        return dict(Counter(h for _, h, _ in self._items))

    def plot(self, ax: Any = None, title: str = "Which HSM served each request") -> Any:
        """Scatter plot: request number → HSM, with marked events as vertical lines."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 2.8))
        items = list(self._items)
        hsms = list(dict.fromkeys(h for _, h, _ in items))
        rows = {h: i for i, h in enumerate(hsms)}
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        ax.scatter(
            [n for n, _, _ in items],
            [rows[h] for _, h, _ in items],
            s=90,
            marker="|",
            linewidths=2,
            c=[colors[rows[h] % len(colors)] for _, h, _ in items],
        )
        ax.set_yticks(range(len(hsms)), hsms)
        ax.set_xlabel("request number")
        ax.set_title(title)
        for n, label in self.events:
            ax.axvline(n + 0.5, color="red", linestyle="--", linewidth=1)
            ax.annotate(
                label,
                (n + 0.5, len(hsms) - 0.5),
                color="red",
                fontsize=8,
                xytext=(3, 0),
                textcoords="offset points",
                va="top",
            )
        ax.set_ylim(-0.5, max(len(hsms), 1) - 0.5)
        return ax
