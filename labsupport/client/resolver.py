"""Where the client learns about clusters: the one module that calls the control plane.

The client core works on :class:`~labsupport.client.endpoints.ClusterView` objects. This
module produces them from the simulated CloudHSMv2 control plane
(:mod:`labsupport.controlplane.cluster`), as a real client learns the HSM addresses from
its configuration and from the HSM it reaches. It is the only way: the tests' fast
cluster double (``tests/localcluster.py``) writes its clusters into the control plane's
own state too.

A workspace from an older version may still hold ``state/client-local-clusters.json``
(clusters the tests and the benchmark declared from bare tokens): nothing reads it any
more, the control plane's reconcile deletes the tokens it named (HSM tokens of no known
HSM), and a whole-workspace reset removes the file with ``state/``.
"""

from __future__ import annotations

import contextlib

from labsupport.client.endpoints import ClusterView, HsmEndpoint
from labsupport.client.errors import HsmUnreachable
from labsupport.controlplane import cluster as controlplane
from labsupport.controlplane.cluster import Cluster, ClusterNotFound
from labsupport.workspace.home import Workspace


def _view(cluster: Cluster) -> ClusterView:
    hsms = tuple(
        HsmEndpoint(
            hsm_id=h.hsm_id,
            eni_ip=h.eni_ip,
            availability_zone=h.availability_zone,
            token_label=h.token_label,
            state=h.state,
            subnet_id=h.subnet_id,
        )
        for h in cluster.hsms
    )
    return ClusterView(
        cluster_id=cluster.cluster_id,
        state=cluster.state.value,
        hsms=hsms,
        hsm_certificate_pem=cluster.cluster_certificate,
        owner=cluster.owner,
        region=cluster.region,
    )


def describe(workspace: Workspace, cluster_id: str) -> ClusterView:
    """The current view of ``cluster_id``: HSMs, their states, the HSM certificate.

    Raises :class:`~labsupport.controlplane.cluster.ClusterNotFound` for an unknown id.
    """
    return _view(controlplane.describe_cluster(workspace, cluster_id))


def find_by_ip(workspace: Workspace, eni_ip: str) -> ClusterView | None:
    """The cluster that has an HSM at ``eni_ip``, or None."""
    try:
        return _view(controlplane.cluster_for_ip(workspace, eni_ip))
    except ClusterNotFound:
        return None


def resolve(workspace: Workspace, cluster_id: str | None, ips: list[str]) -> ClusterView:
    """The cluster a configuration points at: by id if known, else by any server IP.

    Raises :class:`~labsupport.client.errors.HsmUnreachable` when no HSM answers at any
    configured address (as the real client fails to connect).
    """
    if cluster_id:
        with contextlib.suppress(ClusterNotFound):
            return describe(workspace, cluster_id)
    for ip in ips:
        view = find_by_ip(workspace, ip)
        if view is not None:
            return view
    where = ", ".join(ips) or "(no address)"
    raise HsmUnreachable(
        f"No HSM answers at {where}: the HSM behind that ENI was deleted, or the address is wrong.",
        "Look up a current EniIp with describe_clusters() and run "
        "labsupport.client.configure(hsm_ip=...) again (or configure(cluster_id=...)).",
    )


def mark_active(workspace: Workspace, cluster_id: str) -> None:
    """Tell the control plane the cluster was activated (INITIALIZED → ACTIVE)."""
    controlplane.activate_cluster(workspace, cluster_id)
