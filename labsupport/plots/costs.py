"""The cost cross-over plot of lesson 01: KMS per key and request vs CloudHSM per HSM-hour.

The figures come from :mod:`labsupport.costs` (dated, approximate prices); this module
only draws them.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labsupport.costs import (
    PRICES,
    PriceSheet,
    break_even_requests,
    cloudhsm_monthly_cost,
    kms_monthly_cost,
    requests_per_second,
)

if TYPE_CHECKING:  # matplotlib is imported only when a plot is drawn
    from matplotlib.axes import Axes


def plot_monthly_costs(
    keys: int = 10,
    hsms: Sequence[int] | int = (2,),
    prices: PriceSheet = PRICES,
    requests: tuple[float, float] = (1e4, 1e10),
    ax: Axes | None = None,
) -> Axes:
    """Plot monthly cost against requests per month: KMS vs CloudHSM clusters.

    One line for KMS with ``keys`` keys, one flat line per cluster size in ``hsms``, and
    each cross-over marked with a dot and its request volume. Both axes are logarithmic.
    Returns the matplotlib ``Axes`` (draws on ``ax`` if given).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    sizes = [hsms] if isinstance(hsms, int) else list(hsms)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    volume = np.logspace(math.log10(requests[0]), math.log10(requests[1]), 400)
    kms = [kms_monthly_cost(keys, r, prices) for r in volume]
    ax.plot(volume, kms, color="tab:blue", linewidth=2, label=f"KMS, {keys} keys")
    colors = ["tab:red", "tab:orange", "tab:purple", "tab:brown"]
    for i, n in enumerate(sizes):
        cost = cloudhsm_monthly_cost(n, prices)
        color = colors[i % len(colors)]
        ax.axhline(cost, color=color, linewidth=2, label=f"CloudHSM, {n} HSMs (${cost:,.0f})")
        cross = break_even_requests(keys, n, prices)
        if requests[0] <= cross <= requests[1]:
            ax.plot([cross], [cost], "o", color=color, markersize=8)
            below = i % 2 == 0  # alternate sides so labels of nearby lines do not overlap
            ax.annotate(
                f"break-even ≈ {cross / 1e6:,.0f} M requests/month\n"
                f"(≈ {requests_per_second(cross, prices):,.0f} requests/s on average)",
                xy=(cross, cost),
                xytext=(-12, -14 if below else 10),
                textcoords="offset points",
                ha="right",
                va="top" if below else "bottom",
                fontsize=9,
                color=color,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per month")
    ax.set_ylabel("cost per month (USD, approximate)")
    ax.set_title("Monthly cost: KMS (per key and request) vs CloudHSM (per HSM-hour)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    ax.text(
        0.99,
        0.02,
        textwrap.fill(prices.label(), 60),
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=7,
        color="gray",
    )
    return ax
