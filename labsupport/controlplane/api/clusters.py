"""The cluster operations: CreateCluster (also from a backup), DescribeClusters,
InitializeCluster (checks the CSR signature and trust anchor), ModifyCluster (retention,
hsm1 → hsm2m migration), DeleteCluster."""

from __future__ import annotations

import warnings
from typing import Any

from labsupport.controlplane import backups, ids, pki
from labsupport.controlplane.api.base import CloudHsmV2Base
from labsupport.controlplane.api.inputs import (
    CLUSTER_FILTERS,
    check_tags,
    invalid,
    page_of,
    parse_filters,
    parse_hsm_type,
    retention_policy,
)
from labsupport.controlplane.api.shapes import cluster_to_api
from labsupport.controlplane.clock import Step
from labsupport.controlplane.cluster import owner_from, record_backup, schedule
from labsupport.controlplane.records import ClusterRecord, PkiRecord
from labsupport.controlplane.states import (
    BackupState,
    ClusterMode,
    ClusterState,
    HsmState,
    HsmType,
)
from labsupport.controlplane.vpc import default_vpc

#: Why the lab warns about new ``hsm1.medium`` clusters (dated: AWS's FIPS compliance page).
HSM1_FIPS_NOTE = (
    "hsm1.medium is validated under FIPS 140-2 (certificate #4218), which AWS's FIPS page dates "
    "to move to the CMVP historical list on 2026-01-04; for a new cluster choose hsm2m.medium "
    "(FIPS 140-3 Level 3, certificate #4703)."
)


class Hsm1MediumWarning(UserWarning):
    """A cluster of the older hsm1.medium type was created (see :data:`HSM1_FIPS_NOTE`)."""


class ClusterOperations(CloudHsmV2Base):
    """CreateCluster, DescribeClusters, InitializeCluster, ModifyCluster, DeleteCluster."""

    def CreateCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Create a cluster in the given subnets (one per AZ, all in one VPC)."""
        hsm_type = parse_hsm_type(params["HsmType"])
        try:
            mode = ClusterMode(params.get("Mode") or "FIPS")
        except ValueError:
            raise invalid(
                f"Invalid Mode {params['Mode']!r}. Valid modes: FIPS, NON_FIPS."
            ) from None
        if hsm_type is HsmType.HSM1_MEDIUM and mode is ClusterMode.NON_FIPS:
            raise invalid(
                "hsm1.medium supports FIPS mode only. Use HsmType hsm2m.medium for a "
                "NON_FIPS cluster."
            )
        if hsm_type is HsmType.HSM1_MEDIUM:
            # Real AWS accepts it silently; the lab says what a learner should know first.
            warnings.warn(HSM1_FIPS_NOTE, Hsm1MediumWarning, stacklevel=2)
        if params.get("NetworkType", "IPV4") not in ("IPV4", "DUALSTACK"):
            raise invalid(f"Invalid NetworkType {params['NetworkType']!r}: use IPV4 or DUALSTACK.")
        if params.get("NetworkType") == "DUALSTACK":
            raise invalid(
                "NetworkType DUALSTACK needs subnets with IPv6 ranges; the default "
                "VPC has none. Use IPV4."
            )
        retention = retention_policy(params.get("BackupRetentionPolicy"))
        tags = params.get("TagList") or []
        check_tags(tags)

        vpc = default_vpc(self.workspace, self.region)
        subnet_ids: list[str] = params["SubnetIds"]
        mapping: dict[str, str] = {}
        for subnet_id in subnet_ids:
            subnet = vpc.subnet(subnet_id)
            if subnet is None:
                raise invalid(
                    f"Subnet {subnet_id} does not exist in region {self.region}. "
                    "Find your subnets with ec2.describe_subnets()."
                )
            if subnet.availability_zone in mapping:
                raise invalid(
                    "You can specify only one subnet per Availability Zone: "
                    f"{mapping[subnet.availability_zone]} and {subnet_id} are both in "
                    f"{subnet.availability_zone}."
                )
            mapping[subnet.availability_zone] = subnet_id

        now = self._now()
        with self.plane.change() as data:
            source = None
            if params.get("SourceBackupId"):
                source = self._backup(data, params["SourceBackupId"])
                if source["state"] != BackupState.READY:
                    raise invalid(
                        f"Backup {source['id']} is {source['state']}; only a READY backup can "
                        "be restored into a new cluster."
                    )
                if source["mode"] != mode.value:
                    raise invalid(
                        f"Backup {source['id']} was taken from a {source['mode']} cluster; it "
                        f"can only be restored into a {source['mode']} cluster, not {mode.value}."
                    )
            cluster_id = ids.cluster_id()
            rec: ClusterRecord = {
                "id": cluster_id,
                "region": self.region,
                "owner": owner_from(tags),
                "hsm_type": hsm_type.value,
                "mode": mode.value,
                "state": ClusterState.CREATE_IN_PROGRESS.value,
                "state_message": "The cluster is being created.",
                "created": now,
                "vpc_id": vpc.vpc_id,
                "security_group": ids.ec2_id("sg"),
                "subnets": mapping,
                "retention": retention,
                "tags": [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags],
                "hsms": {},
                "pki": {},
            }
            if source is None:
                schedule(
                    rec,
                    now,
                    (
                        ClusterState.UNINITIALIZED.value,
                        Step.CLUSTER_CREATE,
                        "The cluster is ready. Create an HSM, then sign the cluster CSR and "
                        "initialize the cluster.",
                    ),
                )
            else:
                rec["source_backup"] = source["id"]
                rec["pki"] = PkiRecord(**source.get("pki", PkiRecord()))
                try:
                    backups.restore_cluster_document(
                        self.workspace, source["id"], cluster_id, rec["owner"]
                    )
                except backups.BackupUnreadable as exc:
                    raise invalid(f"{exc.problem} {exc.fix}") from None
                schedule(
                    rec,
                    now,
                    (
                        ClusterState.INITIALIZED.value,
                        Step.CLUSTER_CREATE,
                        f"The cluster was restored from {source['id']}. Create an HSM: the "
                        "cluster becomes ACTIVE when its first HSM is.",
                    ),
                )
            data["clusters"][cluster_id] = rec
            return {"Cluster": cluster_to_api(rec)}

    def DescribeClusters(self, params: dict[str, Any]) -> dict[str, Any]:
        """List the clusters of this region (filters: clusterIds, vpcIds, states)."""
        filters = parse_filters(params, CLUSTER_FILTERS, ClusterState)
        clusters = [c for c in self.plane.view()["clusters"].values() if c["region"] == self.region]
        if "clusterIds" in filters:
            clusters = [c for c in clusters if c["id"] in filters["clusterIds"]]
        if "vpcIds" in filters:
            clusters = [c for c in clusters if c["vpc_id"] in filters["vpcIds"]]
        if "states" in filters:
            clusters = [c for c in clusters if c["state"] in filters["states"]]
        clusters.sort(key=lambda c: c["created"])
        return page_of(
            "DescribeClusters", [cluster_to_api(c) for c in clusters], params, 25, "Clusters"
        )

    def InitializeCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Claim the cluster with the CSR signed by your CA and that CA's root certificate."""
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            cid = rec["id"]
            state = ClusterState(rec["state"])
            if state is ClusterState.CREATE_IN_PROGRESS:
                raise invalid(
                    f"Cluster {cid} is still being created (state CREATE_IN_PROGRESS). Wait "
                    "until it is UNINITIALIZED, create an HSM, then initialize the cluster."
                )
            if state in (
                ClusterState.INITIALIZE_IN_PROGRESS,
                ClusterState.INITIALIZED,
                ClusterState.ACTIVE,
                ClusterState.DEGRADED,
            ):
                raise invalid(f"Cluster {cid} is already initialized (state {state.value}).")
            if state is not ClusterState.UNINITIALIZED:
                raise invalid(f"Cluster {cid} cannot be initialized in state {state.value}.")
            holder = rec["hsms"].get(rec["pki"].get("csr_hsm", ""))
            if holder is None:
                raise invalid(
                    f"Cluster {cid} has no HSM yet, so there is no cluster CSR to sign. Create "
                    "an HSM with CreateHsm, wait until it is ACTIVE, then sign "
                    "Certificates.ClusterCsr from DescribeClusters."
                )
            if holder["state"] != HsmState.ACTIVE:
                raise invalid(
                    f"HSM {holder['id']} of cluster {cid} is {holder['state']}. Wait until it is "
                    "ACTIVE, then sign Certificates.ClusterCsr from DescribeClusters."
                )
            try:
                pki.verify_cluster_certificate(
                    rec["pki"].get("csr") or "", params["SignedCert"], params["TrustAnchor"], now
                )
            except pki.CertificateRejected as exc:
                raise invalid(f"InitializeCluster for {cid} rejected: {exc}") from None
            rec["pki"]["cluster_cert"] = params["SignedCert"].strip() + "\n"
            rec["pki"]["trust_anchor"] = params["TrustAnchor"].strip() + "\n"
            rec["state"] = ClusterState.INITIALIZE_IN_PROGRESS.value
            rec["state_message"] = "The cluster is being initialized."
            record_backup(data, rec, now, self.workspace)  # AWS backs up on initialize
            schedule(
                rec,
                now,
                (
                    ClusterState.INITIALIZED.value,
                    Step.CLUSTER_INITIALIZE,
                    "The cluster is initialized. Activate it with CloudHSM CLI "
                    "(cluster activate) to set the admin password.",
                ),
            )
            return {"State": rec["state"], "StateMessage": rec["state_message"]}

    def ModifyCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Change the backup retention policy, or migrate hsm1.medium → hsm2m.medium."""
        if "HsmType" not in params and "BackupRetentionPolicy" not in params:
            raise invalid("Specify BackupRetentionPolicy or HsmType to modify the cluster.")
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            if rec["state"] in (ClusterState.DELETE_IN_PROGRESS, ClusterState.DELETED):
                raise invalid(f"Cluster {rec['id']} is {rec['state']}; it cannot be modified.")
            if "BackupRetentionPolicy" in params:
                rec["retention"] = retention_policy(params["BackupRetentionPolicy"])
            if "HsmType" in params:
                target = parse_hsm_type(params["HsmType"])
                if target.value != rec["hsm_type"]:
                    if not (
                        rec["hsm_type"] == HsmType.HSM1_MEDIUM and target is HsmType.HSM2M_MEDIUM
                    ):
                        raise invalid(
                            f"Cluster {rec['id']} cannot change from {rec['hsm_type']} to "
                            f"{target.value}: only hsm1.medium → hsm2m.medium is supported."
                        )
                    if rec["state"] != ClusterState.ACTIVE:
                        raise invalid(
                            f"Cluster {rec['id']} is {rec['state']}; migrate the HSM type of an "
                            "ACTIVE cluster only."
                        )
                    rec["state"] = ClusterState.MODIFY_IN_PROGRESS.value
                    rec["state_message"] = f"Migrating the cluster to {target.value}."
                    rec["hsm_type"] = target.value
                    for hsm in rec["hsms"].values():
                        hsm["hsm_type"] = target.value
                    rec["rollback_expiration"] = now + 24 * 3600
                    schedule(
                        rec,
                        now,
                        (
                            ClusterState.ACTIVE.value,
                            Step.CLUSTER_MODIFY,
                            f"The cluster now runs {target.value} HSMs.",
                        ),
                    )
            return {"Cluster": cluster_to_api(rec)}

    def DeleteCluster(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete a cluster that has no HSMs left."""
        now = self._now()
        with self.plane.change() as data:
            rec = self._cluster(data, params["ClusterId"])
            cid = rec["id"]
            if rec["state"] in (ClusterState.DELETE_IN_PROGRESS, ClusterState.DELETED):
                raise invalid(f"Cluster {cid} is already {rec['state']}.")
            if rec["state"] == ClusterState.CREATE_IN_PROGRESS:
                raise invalid(
                    f"Cluster {cid} is still being created (state CREATE_IN_PROGRESS). Wait "
                    "until creation finishes, then delete it."
                )
            if rec["hsms"]:
                listed = ", ".join(sorted(rec["hsms"]))
                raise invalid(
                    f"Cluster {cid} still contains {len(rec['hsms'])} HSM(s) ({listed}). "
                    "Delete every HSM with DeleteHsm before deleting the cluster."
                )
            rec["state"] = ClusterState.DELETE_IN_PROGRESS.value
            rec["state_message"] = "The cluster is being deleted."
            schedule(
                rec,
                now,
                (ClusterState.DELETED.value, Step.CLUSTER_DELETE, "The cluster was deleted."),
            )
            return {"Cluster": cluster_to_api(rec)}
