"""The response structures of the CloudHSMv2 API (``Cluster``, ``Hsm``, ``Backup``), built
from the records in ``state/cloudhsmv2.json``."""

from __future__ import annotations

from typing import Any, cast

from labsupport.controlplane import ids
from labsupport.controlplane.records import BackupRecord, ClusterRecord, HsmRecord
from labsupport.controlplane.states import ClusterState, HsmState


def hsm_to_api(hsm: HsmRecord, cluster_id: str) -> dict[str, Any]:
    """The ``Hsm`` structure of the API."""
    return {
        "AvailabilityZone": hsm["az"],
        "ClusterId": cluster_id,
        "SubnetId": hsm["subnet"],
        "EniId": hsm["eni_id"],
        "EniIp": hsm["eni_ip"],
        "HsmId": hsm["id"],
        "HsmType": hsm["hsm_type"],
        "State": hsm["state"],
        "StateMessage": hsm.get("state_message", ""),
    }


def certificates_to_api(cluster: ClusterRecord) -> dict[str, str]:
    """``Certificates`` as AWS shows them: CSR and HSM chain while UNINITIALIZED (and the
    HSM that made the CSR is ACTIVE), the cluster certificate once initialization began."""
    pki_rec = cluster.get("pki", {})
    state = cluster["state"]
    out: dict[str, str] = {}
    csr = pki_rec.get("csr")
    if state == ClusterState.UNINITIALIZED and csr:
        holder = cluster["hsms"].get(pki_rec.get("csr_hsm", ""))
        if holder and holder["state"] == HsmState.ACTIVE:
            out["ClusterCsr"] = csr
            out["HsmCertificate"] = pki_rec.get("hsm_cert") or ""
            out["AwsHardwareCertificate"] = pki_rec["aws_hw_cert"]
            out["ManufacturerHardwareCertificate"] = pki_rec["mfr_hw_cert"]
    elif pki_rec.get("cluster_cert"):
        out["ClusterCertificate"] = pki_rec["cluster_cert"]
    return out


def cluster_to_api(cluster: ClusterRecord) -> dict[str, Any]:
    """The ``Cluster`` structure of the API."""
    hsms = sorted(cluster["hsms"].values(), key=lambda h: h["created"])
    out: dict[str, Any] = {
        "BackupPolicy": "DEFAULT",
        "BackupRetentionPolicy": dict(cluster["retention"]),
        "ClusterId": cluster["id"],
        "CreateTimestamp": cluster["created"],
        "Hsms": [hsm_to_api(h, cluster["id"]) for h in hsms],
        "HsmType": cluster["hsm_type"],
        "SecurityGroup": cluster["security_group"],
        "State": cluster["state"],
        "StateMessage": cluster.get("state_message", ""),
        "SubnetMapping": dict(cluster["subnets"]),
        "VpcId": cluster["vpc_id"],
        "NetworkType": "IPV4",
        "Certificates": certificates_to_api(cluster),
        "TagList": [dict(t) for t in cluster.get("tags", [])],
        "Mode": cluster["mode"],
    }
    if cluster.get("source_backup"):
        out["SourceBackupId"] = cluster["source_backup"]
    if cluster.get("rollback_expiration"):
        out["HsmTypeRollbackExpiration"] = cluster["rollback_expiration"]
    return out


def backup_to_api(backup: BackupRecord) -> dict[str, Any]:
    """The ``Backup`` structure of the API."""
    out: dict[str, Any] = {
        "BackupId": backup["id"],
        "BackupArn": ids.arn(backup["region"], "backup", backup["id"]),
        "BackupState": backup["state"],
        "ClusterId": backup["cluster_id"],
        "CreateTimestamp": backup["created"],
        "NeverExpires": backup.get("never_expires", False),
        "TagList": [dict(t) for t in backup.get("tags", [])],
        "HsmType": backup["hsm_type"],
        "Mode": backup["mode"],
    }
    for key, api in (
        ("copied", "CopyTimestamp"),
        ("source_region", "SourceRegion"),
        ("source_backup", "SourceBackup"),
        ("source_cluster", "SourceCluster"),
        ("deleted_at", "DeleteTimestamp"),
    ):
        value = cast("dict[str, Any]", backup).get(key)
        if value is not None:
            out[api] = value
    return out
