"""Draw a cluster as AWS describes it: VPC, Availability Zones, subnets, HSMs and their ENIs.

``draw_cluster(cluster)`` takes the ``Cluster`` dict of ``describe_clusters`` (so it draws
real AWS clusters too) and returns a matplotlib figure::

    cluster = cloudhsm.describe_clusters()["Clusters"][0]
    draw_cluster(cluster, subnets=ec2.describe_subnets()["Subnets"])
    plt.show()

HSM boxes are coloured by state; the cluster's security group (TCP 2223-2225, the ports
the Client SDK uses) is drawn around the HSMs.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle

#: Fill colour per HSM state.
STATE_COLOURS = {
    "ACTIVE": "#6cc070",
    "CREATE_IN_PROGRESS": "#f5b041",
    "DEGRADED": "#e74c3c",
    "DELETE_IN_PROGRESS": "#b2babb",
    "DELETED": "#e5e7e9",
}

_COL_W = 3.2  # width of one AZ column (data units = inches at scale 1)
_GAP = 0.35


def _box(ax: Axes, x: float, y: float, w: float, h: float, **style: Any) -> None:
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", **style)
    )


def draw_cluster(
    cluster: dict[str, Any],
    subnets: list[dict[str, Any]] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw ``cluster`` (a ``describe_clusters`` entry); ``subnets`` (from EC2) add CIDRs.

    One column per Availability Zone of the cluster, each with its subnet and the HSMs in
    it (id, ENI IP, state). Returns the figure; call ``plt.show()`` to display it.
    """
    cidrs = {s["SubnetId"]: s.get("CidrBlock", "") for s in subnets or []}
    zones = sorted(cluster.get("SubnetMapping", {}))
    hsms_by_az: dict[str, list[dict[str, Any]]] = {az: [] for az in zones}
    for hsm in cluster.get("Hsms", []):
        hsms_by_az.setdefault(hsm["AvailabilityZone"], []).append(hsm)
    zones = sorted(hsms_by_az)
    rows = max([len(v) for v in hsms_by_az.values()] + [1])
    width = len(zones) * (_COL_W + _GAP) + _GAP
    height = 3.0 + rows * 1.25
    if ax is None:
        fig, ax = plt.subplots(figsize=(width, height + 0.45))
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)
    else:
        fig = ax.figure  # type: ignore[assignment]
    ax.set_xlim(0, width)
    ax.set_ylim(-0.45, height)
    ax.axis("off")

    # VPC and cluster frames
    ax.add_patch(
        Rectangle((0.05, 0.05), width - 0.1, height - 0.1, fill=False, lw=1.5, ec="#5d6d7e")
    )
    ax.text(
        0.2,
        height - 0.35,
        f"VPC {cluster.get('VpcId', '?')}",
        fontsize=10,
        color="#5d6d7e",
        va="center",
    )
    title = (
        f"{cluster.get('ClusterId', '?')}  ·  {cluster.get('State', '?')}  ·  "
        f"{cluster.get('HsmType', '')} {cluster.get('Mode', '')}"
    )
    ax.text(
        width / 2, height - 0.8, title, ha="center", va="center", fontsize=11, fontweight="bold"
    )

    for i, az in enumerate(zones):
        x = _GAP + i * (_COL_W + _GAP)
        col_h = height - 1.5
        _box(ax, x, 0.3, _COL_W, col_h, fc="#f4f6f7", ec="#aab7b8", lw=1)
        ax.text(
            x + _COL_W / 2,
            0.3 + col_h - 0.25,
            f"Availability Zone {az}",
            ha="center",
            va="center",
            fontsize=9,
            fontweight="bold",
        )
        subnet_id = cluster.get("SubnetMapping", {}).get(az, "")
        label = f"subnet {subnet_id}" + (f"\n{cidrs[subnet_id]}" if cidrs.get(subnet_id) else "")
        sub_h = col_h - 0.7
        ax.add_patch(
            Rectangle(
                (x + 0.12, 0.42), _COL_W - 0.24, sub_h, fill=False, ls="--", ec="#7f8c8d", lw=1
            )
        )
        ax.text(
            x + _COL_W / 2,
            0.42 + sub_h - 0.3,
            label,
            ha="center",
            va="center",
            fontsize=7.5,
            color="#566573",
        )
        for j, hsm in enumerate(hsms_by_az.get(az, [])):
            y = 0.42 + sub_h - 1.75 - j * 1.25
            colour = STATE_COLOURS.get(hsm.get("State", ""), "#d5dbdb")
            _box(ax, x + 0.3, y, _COL_W - 0.6, 1.0, fc=colour, ec="#34495e", lw=1.2)
            ax.text(
                x + _COL_W / 2,
                y + 0.72,
                hsm["HsmId"],
                ha="center",
                va="center",
                fontsize=9,
                fontweight="bold",
            )
            ax.text(
                x + _COL_W / 2,
                y + 0.45,
                f"ENI {hsm.get('EniIp', '?')}",
                ha="center",
                va="center",
                fontsize=8.5,
            )
            ax.text(
                x + _COL_W / 2, y + 0.18, hsm.get("State", ""), ha="center", va="center", fontsize=8
            )
        if not hsms_by_az.get(az):
            ax.text(
                x + _COL_W / 2,
                0.42 + sub_h / 2 - 0.2,
                "no HSM",
                ha="center",
                va="center",
                fontsize=8.5,
                color="#99a3a4",
                style="italic",
            )

    if cluster.get("SecurityGroup"):
        ax.text(
            0.1,
            -0.22,
            f"security group {cluster['SecurityGroup']}: TCP 2223-2225",
            va="center",
            fontsize=8,
            color="#5d6d7e",
        )
    states = sorted({h.get("State", "") for h in cluster.get("Hsms", [])})
    if states:
        ax.legend(
            handles=[
                Patch(fc=STATE_COLOURS.get(s, "#d5dbdb"), ec="#34495e", label=s) for s in states
            ],
            loc="lower right",
            bbox_to_anchor=(1.0, -0.01),
            fontsize=7,
            frameon=False,
            ncol=len(states),
        )
    return fig
