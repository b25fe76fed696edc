"""The HSM operations: CreateHsm (ENI address, a SoftHSM token per HSM, the cluster CSR from
the first HSM, restore of a backup into a restored cluster's first HSM) and DeleteHsm."""

from __future__ import annotations

import contextlib
from typing import Any

from labsupport.controlplane import backups, drills, hardware, ids
from labsupport.controlplane.api.base import INITIALIZED_STATES, CloudHsmV2Base
from labsupport.controlplane.api.inputs import MAX_HSMS_PER_CLUSTER, invalid, not_found
from labsupport.controlplane.api.shapes import hsm_to_api
from labsupport.controlplane.clock import Step
from labsupport.controlplane.cluster import record_backup, record_owner, schedule
from labsupport.controlplane.records import ClusterRecord, ControlPlaneDocument, HsmRecord
from labsupport.controlplane.states import BackupState, ClusterState, HsmState
from labsupport.controlplane.vpc import default_vpc


class HsmOperations(CloudHsmV2Base):
    """CreateHsm and DeleteHsm."""

    def CreateHsm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add an HSM to the cluster in one of its Availability Zones."""
        az = params["AvailabilityZone"]
        now = self._now()
        vpc = default_vpc(self.workspace, self.region)
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            cid = rec["id"]
            if az not in rec["subnets"]:
                raise invalid(
                    f"Cluster {cid} has no subnet in Availability Zone {az}. Its subnets are in "
                    f"{', '.join(sorted(rec['subnets']))}; create the HSM in one of those."
                )
            state = ClusterState(rec["state"])
            if state in (
                ClusterState.CREATE_IN_PROGRESS,
                ClusterState.INITIALIZE_IN_PROGRESS,
                ClusterState.MODIFY_IN_PROGRESS,
                ClusterState.UPDATE_IN_PROGRESS,
            ):
                raise invalid(
                    f"Cluster {cid} is {state.value}. Wait until the operation finishes, then "
                    "create the HSM."
                )
            if state in (ClusterState.DELETE_IN_PROGRESS, ClusterState.DELETED):
                raise invalid(f"Cluster {cid} is {state.value}; you cannot add HSMs to it.")
            if state is ClusterState.UNINITIALIZED and rec["hsms"]:
                raise invalid(
                    f"Cluster {cid} is UNINITIALIZED and already has an HSM "
                    f"({', '.join(sorted(rec['hsms']))}). Initialize the cluster before you "
                    "add more HSMs."
                )
            if len(rec["hsms"]) >= MAX_HSMS_PER_CLUSTER:
                raise invalid(
                    f"Cluster {cid} already has the maximum of {MAX_HSMS_PER_CLUSTER} HSMs."
                )
            subnet = vpc.subnet(rec["subnets"][az])
            assert subnet is not None
            used = {h["eni_ip"] for c in data["clusters"].values() for h in c["hsms"].values()}
            ip = params.get("IpAddress")
            if ip is not None:
                if not all(0 <= int(part) <= 255 for part in ip.split(".")):
                    raise invalid(f"IpAddress {ip} is not a valid IPv4 address.")
                if not subnet.contains(ip):
                    raise invalid(
                        f"IP address {ip} is not available in subnet {subnet.subnet_id} "
                        f"({subnet.cidr_block}, {az}); AWS reserves the first four addresses "
                        "and the last one."
                    )
                if ip in used:
                    raise invalid(
                        f"IP address {ip} is already in use in subnet {subnet.subnet_id}."
                    )
            else:
                ip = subnet.allocate_ip(used)

            hsm_id = ids.hsm_id()
            first = state is ClusterState.UNINITIALIZED
            hsm: HsmRecord = {
                "id": hsm_id,
                "az": az,
                "subnet": subnet.subnet_id,
                "eni_id": ids.ec2_id("eni"),
                "eni_ip": ip,
                "hsm_type": rec["hsm_type"],
                "state": HsmState.CREATE_IN_PROGRESS.value,
                "state_message": "The HSM is being created.",
                "created": now,
                "token": hsm_id,
                "intent": "create",
                "next": [],
            }
            restore_from = self._backup_to_restore(data, rec)
            rec["hsms"][hsm_id] = hsm
            self.plane.commit(data)  # the intent is durable before SoftHSM changes
            try:
                identity = hardware.provision_hsm(
                    self.workspace,
                    hsm_id,
                    owner=record_owner(rec),
                    mode=rec["mode"],
                    now=now,
                    with_cluster_key=first,
                )
                if restore_from is not None:
                    self._restore_first_hsm(data, rec, hsm, self._now(), restore_from)
            except BaseException:
                # Roll back at once (a KeyboardInterrupt too); a SIGKILL is rolled back
                # by the next reconcile instead.
                with contextlib.suppress(Exception):
                    hardware.decommission_hsm(self.workspace, hsm_id)
                del rec["hsms"][hsm_id]
                self.plane.commit(data)
                raise
            del hsm["intent"]
            hsm["serial"] = identity.serial
            hsm["holds_cluster_key"] = first
            hsm["aws_hw_cert"] = identity.aws_hardware_certificate
            hsm["mfr_hw_cert"] = identity.manufacturer_hardware_certificate
            # The lab-clock wait starts when the token exists (provisioning takes real time).
            schedule(hsm, self._now(), (HsmState.ACTIVE.value, Step.HSM_CREATE, "HSM created."))
            if first:
                rec["pki"] = {
                    "csr": identity.cluster_csr,
                    "csr_hsm": hsm_id,
                    "hsm_cert": identity.hsm_certificate,
                    "aws_hw_cert": identity.aws_hardware_certificate,
                    "mfr_hw_cert": identity.manufacturer_hardware_certificate,
                }
            if state in INITIALIZED_STATES and restore_from is None:
                record_backup(data, rec, now, self.workspace)
            return {"Hsm": hsm_to_api(hsm, cid)}

    @staticmethod
    def _backup_to_restore(data: ControlPlaneDocument, rec: ClusterRecord) -> str | None:
        """The backup a new HSM starts from, or None (the cluster's other HSMs sync it).

        An HSM added to a cluster with no HSMs starts from the cluster's most recent backup:
        "When you add an HSM to a cluster that previously contained one or more active HSMs,
        the service restores the latest backup onto the new HSM" (AWS CloudHSM User Guide,
        Managing backups) — the backup DeleteHsm took of the last HSM, for one. A cluster
        made from a backup that has not had an HSM yet starts from its source backup.
        """
        if rec["hsms"]:
            return None
        usable = (BackupState.READY.value, BackupState.CREATE_IN_PROGRESS.value)
        own = [
            b
            for b in data["backups"].values()
            if b["cluster_id"] == rec["id"] and b["state"] in usable
        ]
        if own:
            return max(own, key=lambda b: b["created"])["id"]
        return rec.get("source_backup") or None

    def _restore_first_hsm(
        self,
        data: ControlPlaneDocument,
        rec: ClusterRecord,
        hsm: HsmRecord,
        now: float,
        backup_id: str,
    ) -> None:
        """Load backup ``backup_id`` into the only HSM of the cluster; an INITIALIZED
        cluster (made from a backup) becomes ACTIVE when that HSM does."""
        source = data["backups"].get(backup_id)
        try:
            count = backups.restore_into_token(self.workspace, backup_id, hsm["token"])
        except backups.BackupUnreadable as exc:
            hardware.decommission_hsm(self.workspace, hsm["token"])
            raise invalid(f"{exc.problem} {exc.fix}") from None
        hsm["restored_objects"] = count
        if source is not None:
            hsm["restored_from"] = source["id"]
        if rec["state"] == ClusterState.INITIALIZED:
            schedule(
                rec,
                now,
                (ClusterState.ACTIVE.value, Step.HSM_CREATE, "Cluster is active."),
            )

    def DeleteHsm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete one HSM, named by HsmId, EniId or EniIp."""
        keys = [k for k in ("HsmId", "EniId", "EniIp") if params.get(k)]
        if not keys:
            raise invalid("Specify the HSM to delete with HsmId, EniId or EniIp.")
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            field_of = {"HsmId": "id", "EniId": "eni_id", "EniIp": "eni_ip"}
            matches = [
                h
                for h in rec["hsms"].values()
                if all(h[field_of[k]] == params[k] for k in keys)  # type: ignore[literal-required]
            ]
            if not matches:
                what = " / ".join(f"{k} {params[k]}" for k in keys)
                raise not_found(f"HSM with {what} not found in cluster {rec['id']}.")
            hsm = matches[0]
            if hsm["state"] == HsmState.DELETE_IN_PROGRESS:
                raise invalid(f"HSM {hsm['id']} is already being deleted.")
            if rec["state"] in INITIALIZED_STATES:  # AWS backs up when an HSM is removed
                record_backup(data, rec, now, self.workspace, last_resort=hsm["id"])
            hsm["state"] = HsmState.DELETE_IN_PROGRESS.value
            hsm["state_message"] = "The HSM is being deleted."
            hsm["intent"] = "delete"
            hsm["next"] = []
            self.plane.commit(data)  # the intent is durable before the token goes
            hardware.decommission_hsm(self.workspace, hsm["token"])
            del hsm["intent"]
            drills.recover_if_healthy(rec, hsm["id"])  # a DEGRADED cluster's bad HSM left
            # The lab-clock wait starts once the token is gone.
            schedule(hsm, self._now(), (HsmState.DELETED.value, Step.HSM_DELETE, "HSM deleted."))
            if (
                rec["pki"].get("csr_hsm") == hsm["id"]
                and rec["state"] == ClusterState.UNINITIALIZED
            ):
                # Its CSR died with it; the next HSM will make a new one.
                rec["pki"] = {}
            return {"HsmId": hsm["id"]}
