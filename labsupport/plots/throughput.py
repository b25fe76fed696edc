"""The throughput bar chart of lesson 04: ops/s measured live, with CloudHSM's published figures.

The measurements come from :mod:`labsupport.crypto.throughput`; this module only draws them.
"""

from __future__ import annotations

from typing import Any

from labsupport.crypto.throughput import CLOUDHSM_PUBLISHED, Throughput


def plot_throughput(
    results: list[Throughput],
    *,
    published: dict[str, float] | None = None,
    title: str = "Operations per second, measured live (log scale)",
) -> Any:
    """Horizontal bar chart of ``results`` (log scale), fastest at the top.

    ``published`` (default :data:`CLOUDHSM_PUBLISHED`) adds CloudHSM's published figure
    for an operation of the same name as a marker. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    published = CLOUDHSM_PUBLISHED if published is None else published
    ordered = sorted(results, key=lambda r: r.ops_per_second)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(ordered) + 1.2))
    names = [r.operation for r in ordered]
    values = [r.ops_per_second for r in ordered]
    bars = ax.barh(names, values, color="#4C72B0", label="measured here (SoftHSM)")
    ax.set_xscale("log")
    for bar, value in zip(bars, values, strict=True):
        ax.text(
            value * 1.08,
            bar.get_y() + bar.get_height() / 2,
            f"{value:,.0f}",
            va="center",
            fontsize=8,
        )
    marked = False
    for i, name in enumerate(names):
        if name in published:
            ax.plot(
                published[name],
                i,
                marker="D",
                color="#DD8452",
                linestyle="none",
                label=None if marked else "CloudHSM published, 2 HSMs",
            )
            marked = True
    ax.set_xlabel("operations per second")
    ax.set_title(title)
    ax.set_xlim(left=max(min(values) / 2, 0.1), right=max(values) * 8)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
