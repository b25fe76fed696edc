"""Lab-only failure drills: make an HSM fail so you can practise replacing it.

**Not an AWS API.** On AWS an HSM fails on its own (hardware, an Availability Zone
outage); AWS then replaces it or reports it unhealthy, and the cluster shows
``DEGRADED``. There is no call to cause that, so the lab offers one, clearly named:

    from labsupport.controlplane.drills import lab_fail_hsm
    lab_fail_hsm(ws, cluster_id, hsm_id)       # the HSM becomes DEGRADED, so does the cluster

What follows is the real runbook, through boto3: clients stop sending requests to the
DEGRADED HSM (the Client SDK fails over), you ``delete_hsm`` it, ``create_hsm`` a
replacement (in another Availability Zone if the AZ is the problem), the new HSM
receives every key (the client synchronizes it), and AWS takes a backup when the HSM is
removed and when the new one joins. The cluster is ACTIVE again once no HSM is DEGRADED.
"""

from __future__ import annotations

from labsupport.controlplane.cluster import Cluster, ControlPlane, cluster_view
from labsupport.controlplane.records import ClusterRecord
from labsupport.controlplane.states import ClusterState, HsmState
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

DRILL_MESSAGE = "Lab drill: the HSM failed its health checks (lab_fail_hsm, not an AWS API)."


def lab_fail_hsm(workspace: Workspace | None, cluster_id: str, hsm_id: str) -> Cluster:
    """LAB ONLY: mark ``hsm_id`` DEGRADED (failed) and its cluster DEGRADED.

    The HSM keeps its token (its data is not lost, as when AWS replaces hardware); no
    client routes to it any more. Returns the cluster as it is now.
    """
    ws = workspace or Workspace.open()
    plane = ControlPlane(ws)
    with plane.change() as data:
        rec = data["clusters"].get(cluster_id)
        if rec is None or hsm_id not in rec["hsms"]:
            raise LabError(
                f"Cluster {cluster_id} has no HSM {hsm_id}.",
                "Pick an HsmId from describe_clusters()['Clusters'][0]['Hsms'].",
            )
        hsm = rec["hsms"][hsm_id]
        if hsm["state"] != HsmState.ACTIVE:
            raise LabError(
                f"HSM {hsm_id} is {hsm['state']}; only an ACTIVE HSM can fail in a drill.",
                "Wait until it is ACTIVE.",
            )
        hsm["state"] = HsmState.DEGRADED.value
        hsm["state_message"] = DRILL_MESSAGE
        hsm["next"] = []
        if rec["state"] == ClusterState.ACTIVE:
            rec["state"] = ClusterState.DEGRADED.value
            rec["state_message"] = (
                f"HSM {hsm_id} is degraded. Replace it: delete it, create another."
            )
            rec["next"] = []
        return cluster_view(rec)


def recover_if_healthy(
    rec: ClusterRecord, leaving: str, at_state: str = ClusterState.ACTIVE.value
) -> bool:
    """After HSM ``leaving`` is deleted: True (and the cluster set ACTIVE) if no HSM is
    DEGRADED any more. Called by DeleteHsm."""
    if rec["state"] != ClusterState.DEGRADED:
        return False
    others = [h for h_id, h in rec["hsms"].items() if h_id != leaving]
    if any(h["state"] == HsmState.DEGRADED for h in others):
        return False
    rec["state"] = at_state
    rec["state_message"] = "Cluster is active."
    return True
