"""Where the client learns about clusters: the one module that calls the control plane.

The client core works on :class:`~labsupport.client.endpoints.ClusterView` objects.
This module produces them from

* the simulated CloudHSMv2 control plane (``labsupport.controlplane``), as a real
  client learns the HSM addresses from its configuration and from the HSM it reaches; or
* a *local definition* stored in the workspace (``state/client-local-clusters.json``):
  a list of tokens declared to be a cluster's HSMs. Tests use it to build a cluster
  from bare tokens, add and remove HSMs, or mark one DEGRADED, without the control plane.

Local definitions win over control-plane clusters with the same id. They are a test
double that stays in the package on purpose: ``python -m labsupport bench`` builds its
cluster from bare tokens with :mod:`~labsupport.client.localcluster` too, and lesson 03
takes its throwaway CA (``make_ca``) from there.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from labsupport.client.endpoints import ClusterView, HsmEndpoint, HsmState
from labsupport.client.errors import HsmUnreachable
from labsupport.controlplane import cluster as controlplane
from labsupport.controlplane.cluster import ClusterNotFound
from labsupport.workspace.home import Workspace, belongs_to

LOCAL_STATE = "client-local-clusters"

# -- the control plane ---------------------------------------------------------------------


def _from_controlplane(cluster: Any) -> ClusterView:
    hsms = tuple(
        HsmEndpoint(
            hsm_id=h.hsm_id,
            eni_ip=h.eni_ip,
            availability_zone=h.availability_zone,
            token_label=h.token_label,
            state=HsmState(str(getattr(h.state, "value", h.state))),
            subnet_id=getattr(h, "subnet_id", ""),
        )
        for h in cluster.hsms
    )
    return ClusterView(
        cluster_id=cluster.cluster_id,
        state=str(getattr(cluster.state, "value", cluster.state)),
        hsms=hsms,
        hsm_certificate_pem=getattr(cluster, "cluster_certificate", None),
        owner=getattr(cluster, "owner", "") or "",
        region=getattr(cluster, "region", "") or "",
    )


# -- local definitions -------------------------------------------------------------------


def _local(ws: Workspace):
    return ws.state(LOCAL_STATE, {"clusters": {}})


def _view_from_local(rec: dict[str, Any]) -> ClusterView:
    return ClusterView(
        cluster_id=rec["cluster_id"],
        state=rec["state"],
        hsms=tuple(
            HsmEndpoint(**{**h, "state": HsmState(h["state"])}) for h in rec.get("hsms", [])
        ),
        hsm_certificate_pem=rec.get("hsm_certificate_pem"),
        owner=rec.get("owner", ""),
        region=rec.get("region", ""),
    )


def define_local_cluster(workspace: Workspace, view: ClusterView) -> ClusterView:
    """Declare (or replace) a cluster made of existing tokens, without the control plane."""
    rec = {
        "cluster_id": view.cluster_id,
        "state": view.state,
        "hsms": [{**asdict(h), "state": h.state.value} for h in view.hsms],
        "hsm_certificate_pem": view.hsm_certificate_pem,
        "owner": view.owner,
        "region": view.region,
    }
    with _local(workspace).update() as data:
        data.setdefault("clusters", {})[view.cluster_id] = rec
    return view


def update_local_cluster(
    workspace: Workspace,
    cluster_id: str,
    *,
    add: HsmEndpoint | None = None,
    remove: str | None = None,
    hsm_state: tuple[str, HsmState] | None = None,
    state: str | None = None,
) -> ClusterView:
    """Change a local cluster: add an HSM, remove one, set an HSM's or the cluster's state."""
    with _local(workspace).update() as data:
        rec = data.get("clusters", {}).get(cluster_id)
        if rec is None:
            raise ClusterNotFound(f"No local cluster {cluster_id}.", "define_local_cluster first.")
        if add is not None:
            rec["hsms"].append({**asdict(add), "state": add.state.value})
        if remove is not None:
            rec["hsms"] = [h for h in rec["hsms"] if h["hsm_id"] != remove]
        if hsm_state is not None:
            for h in rec["hsms"]:
                if h["hsm_id"] == hsm_state[0]:
                    h["state"] = HsmState(hsm_state[1]).value
        if state is not None:
            rec["state"] = state
    return _view_from_local(rec)


# -- what the client calls ---------------------------------------------------------------------


def describe(workspace: Workspace, cluster_id: str) -> ClusterView:
    """The current view of ``cluster_id``: HSMs, their states, the HSM certificate."""
    rec = _local(workspace).read().get("clusters", {}).get(cluster_id)
    if rec is not None:
        return _view_from_local(rec)
    return _from_controlplane(controlplane.describe_cluster(workspace, cluster_id))


def find_by_ip(workspace: Workspace, eni_ip: str) -> ClusterView | None:
    """The cluster that has an HSM at ``eni_ip``, or None."""
    for rec in _local(workspace).read().get("clusters", {}).values():
        if any(h["eni_ip"] == eni_ip for h in rec.get("hsms", [])):
            return _view_from_local(rec)
    try:
        return _from_controlplane(controlplane.cluster_for_ip(workspace, eni_ip))
    except ClusterNotFound:
        return None


def resolve(workspace: Workspace, cluster_id: str | None, ips: list[str]) -> ClusterView:
    """The cluster a configuration points at: by id if known, else by any server IP.

    Raises :class:`~labsupport.client.errors.HsmUnreachable` when no HSM answers at any
    configured address (as the real client fails to connect).
    """
    if cluster_id:
        try:
            view = describe(workspace, cluster_id)
        except ClusterNotFound:
            view = None
        if view is not None:
            return view
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
    if cluster_id in _local(workspace).read().get("clusters", {}):
        update_local_cluster(workspace, cluster_id, state="ACTIVE")
        return
    controlplane.activate_cluster(workspace, cluster_id)


def reset_local_clusters(workspace: Workspace, lesson: str | None) -> None:
    sf = _local(workspace)
    if not sf.read().get("clusters"):
        return
    with sf.update() as data:
        for cid, rec in list(data.get("clusters", {}).items()):
            if belongs_to(rec.get("owner") or "", lesson) or lesson is None:
                del data["clusters"][cid]
