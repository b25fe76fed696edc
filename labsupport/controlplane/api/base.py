"""What every CloudHSMv2 operation shares: the workspace's control plane, its lab clock, and
finding a cluster or backup by id (with AWS's not-found errors)."""

from __future__ import annotations

import contextlib
from typing import Any

from labsupport.aws.inprocess import JsonService
from labsupport.controlplane import ids
from labsupport.controlplane.api.inputs import INVALID, invalid, not_found
from labsupport.controlplane.cluster import ControlPlane
from labsupport.controlplane.reconcile import reconcile
from labsupport.controlplane.records import BackupRecord, ClusterRecord, ControlPlaneDocument
from labsupport.controlplane.states import ClusterState
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

#: The states in which a cluster is initialized (AWS backs it up on HSM changes).
INITIALIZED_STATES = (ClusterState.INITIALIZED, ClusterState.ACTIVE, ClusterState.DEGRADED)


class CloudHsmV2Base(JsonService):
    """The CloudHSMv2 service of one workspace and region, without its operations."""

    service_name = "cloudhsmv2"
    # CloudHSMv2 models no UnsupportedOperationException: an operation the lab does not
    # simulate is an invalid request; anything else that fails is an internal failure.
    unsupported_error = INVALID
    internal_error = "CloudHsmInternalFailureException"

    def __init__(self, workspace: Workspace, region: str) -> None:
        super().__init__(workspace, region)
        self.plane = ControlPlane(workspace)
        # Finish or roll back whatever a killed process left half-done (cheap when
        # nothing is: no lock, no PKCS#11). A damaged workspace is reported by the first
        # call instead, as a modeled error.
        with contextlib.suppress(LabError):
            reconcile(workspace)

    # -- helpers -----------------------------------------------------------------------

    def _now(self) -> float:
        """Now on the lab clock (seconds since the epoch)."""
        return self.plane.clock.now()

    def _cluster(self, data: ControlPlaneDocument, cluster_id: Any) -> ClusterRecord:
        rec = data["clusters"].get(cluster_id) if isinstance(cluster_id, str) else None
        if rec is None or rec["region"] != self.region:
            raise not_found(f"Cluster {cluster_id} not found in region {self.region}.")
        return rec

    def _backup(self, data: ControlPlaneDocument, backup_id: Any) -> BackupRecord:
        match = ids.BACKUP_ARN.match(backup_id) if isinstance(backup_id, str) else None
        if not match:
            raise invalid(f"Invalid backup id {backup_id!r}: it must look like backup-ro5c4er4aac.")
        rec = data["backups"].get(match.group("id"))
        if rec is None or rec["region"] != self.region:
            raise not_found(f"Backup {match.group('id')} not found in region {self.region}.")
        return rec

    def _resource(
        self, data: ControlPlaneDocument, resource_id: Any
    ) -> ClusterRecord | BackupRecord:
        if str(resource_id).startswith("cluster-"):
            return self._cluster(data, resource_id)
        return self._backup(data, resource_id)
