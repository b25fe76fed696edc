"""Backups, restore, cross-region copy, HSM-type migration and resource policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cp_fixtures import (
    cloudhsm,
    describe,
    ec2,
    fast,
    initialized,
    new_cluster,
    sign_cluster_csr,
)

from labsupport import aws
from labsupport.controlplane import activate_cluster, pki
from labsupport.errors import LessonOrderError
from labsupport.workspace.clock import LabClock

__all__ = ["cloudhsm", "ec2", "fast"]


@pytest.fixture
def active(workspace: Any, cloudhsm: Any, ec2: Any) -> str:
    """An ACTIVE cluster with one HSM (and its initialize and activation backups)."""
    cid, _, _ = initialized(cloudhsm, ec2)
    activate_cluster(workspace, cid)
    return cid


def test_activation_needs_initialization(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2)
    with pytest.raises(LessonOrderError, match="UNINITIALIZED"):
        activate_cluster(workspace, cid)


def test_backups_on_activation_and_hsm_changes(cloudhsm: Any, active: str) -> None:
    backups = cloudhsm.describe_backups()["Backups"]  # initialize and activate
    assert len(backups) == 2 and {b["ClusterId"] for b in backups} == {active}
    assert {b["BackupState"] for b in backups} == {"READY"}
    assert backups[0]["BackupArn"].endswith(":backup/" + backups[0]["BackupId"])
    az = sorted(describe(cloudhsm, active)["SubnetMapping"])[1]
    hsm = cloudhsm.create_hsm(ClusterId=active, AvailabilityZone=az)["Hsm"]
    cloudhsm.delete_hsm(ClusterId=active, HsmId=hsm["HsmId"])
    assert len(cloudhsm.describe_backups(Filters={"clusterIds": [active]})["Backups"]) == 4
    newest_first = cloudhsm.describe_backups()["Backups"]
    oldest_first = cloudhsm.describe_backups(SortAscending=True)["Backups"]
    assert newest_first == oldest_first[::-1]
    pages = list(
        cloudhsm.get_paginator("describe_backups").paginate(PaginationConfig={"PageSize": 2})
    )
    assert [len(p["Backups"]) for p in pages] == [2, 2]
    assert cloudhsm.describe_backups(Shared=True)["Backups"] == []
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="filter"):
        cloudhsm.describe_backups(Filters={"hsmIds": ["x"]})


def test_delete_restore_and_expire_backup(workspace: Any, cloudhsm: Any, active: str) -> None:
    backup_id = cloudhsm.describe_backups()["Backups"][0]["BackupId"]
    deleted = cloudhsm.delete_backup(BackupId=backup_id)["Backup"]
    assert deleted["BackupState"] == "PENDING_DELETION" and "DeleteTimestamp" in deleted
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="READY"):
        cloudhsm.delete_backup(BackupId=backup_id)
    restored = cloudhsm.restore_backup(BackupId=backup_id)["Backup"]
    assert restored["BackupState"] == "READY" and "DeleteTimestamp" not in restored
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="PENDING"):
        cloudhsm.restore_backup(BackupId=backup_id)
    cloudhsm.delete_backup(BackupId=backup_id)
    LabClock(workspace).advance(8 * 24 * 3600)  # past the 7-day restore window
    gone = cloudhsm.describe_backups(Filters={"backupIds": [backup_id]})["Backups"][0]
    assert gone["BackupState"] == "DELETED"
    assert len(cloudhsm.describe_backups(Filters={"states": ["READY"]})["Backups"]) == 1 + 8
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="DELETED"):
        cloudhsm.restore_backup(BackupId=backup_id)
    with pytest.raises(cloudhsm.exceptions.CloudHsmResourceNotFoundException):
        cloudhsm.delete_backup(BackupId="backup-aaaaaaaaaaa")


def test_never_expires_and_tags_on_backups(cloudhsm: Any, active: str) -> None:
    backup_id = cloudhsm.describe_backups()["Backups"][0]["BackupId"]
    out = cloudhsm.modify_backup_attributes(BackupId=backup_id, NeverExpires=True)
    assert out["Backup"]["NeverExpires"] is True
    assert len(cloudhsm.describe_backups(Filters={"neverExpires": ["true"]})["Backups"]) == 1
    others = cloudhsm.describe_backups(Filters={"neverExpires": ["false"]})["Backups"]
    assert len(others) == 1 and others[0]["BackupId"] != backup_id
    cloudhsm.tag_resource(ResourceId=backup_id, TagList=[{"Key": "keep", "Value": "yes"}])
    assert cloudhsm.list_tags(ResourceId=backup_id)["TagList"] == [{"Key": "keep", "Value": "yes"}]


def test_copy_backup_to_region_and_restore_cluster(
    workspace: Any, cloudhsm: Any, ec2: Any, active: str
) -> None:
    backup_id = cloudhsm.describe_backups()["Backups"][0]["BackupId"]
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="already in"):
        cloudhsm.copy_backup_to_region(DestinationRegion="us-east-1", BackupId=backup_id)
    out = cloudhsm.copy_backup_to_region(DestinationRegion="eu-west-1", BackupId=backup_id)
    assert out["DestinationBackup"]["SourceBackup"] == backup_id
    assert out["DestinationBackup"]["SourceRegion"] == "us-east-1"
    eu = aws.client("cloudhsmv2", region_name="eu-west-1", workspace=workspace)
    eu_ec2 = aws.client("ec2", region_name="eu-west-1", workspace=workspace)
    copy = eu.describe_backups()["Backups"][0]
    assert copy["SourceBackup"] == backup_id and copy["SourceCluster"] == active
    assert copy["BackupState"] == "READY" and "CopyTimestamp" in copy
    subnets = [s["SubnetId"] for s in eu_ec2.describe_subnets()["Subnets"][:2]]
    with pytest.raises(eu.exceptions.CloudHsmInvalidRequestException, match="FIPS cluster"):
        eu.create_cluster(
            HsmType="hsm2m.medium",
            SubnetIds=subnets,
            Mode="NON_FIPS",
            SourceBackupId=copy["BackupId"],
        )
    arn = copy["BackupArn"]
    clone = eu.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets, SourceBackupId=arn)
    cid = clone["Cluster"]["ClusterId"]
    cluster = describe(eu, cid)
    assert cluster["SourceBackupId"] == copy["BackupId"]
    assert cluster["State"] == "INITIALIZED"  # ACTIVE once its first HSM is
    assert "ClusterCertificate" in cluster["Certificates"]


def test_hsm_type_migration(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2, HsmType="hsm1.medium")
    az = sorted(describe(cloudhsm, cid)["SubnetMapping"])[0]
    cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)
    ca, cert = sign_cluster_csr(cloudhsm, cid)
    cloudhsm.initialize_cluster(
        ClusterId=cid, SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(ca.certificate)
    )
    activate_cluster(workspace, cid)
    out = cloudhsm.modify_cluster(ClusterId=cid, HsmType="hsm2m.medium")["Cluster"]
    assert out["State"] == "MODIFY_IN_PROGRESS" and "HsmTypeRollbackExpiration" in out
    cluster = describe(cloudhsm, cid)
    assert cluster["State"] == "ACTIVE" and cluster["HsmType"] == "hsm2m.medium"
    assert {h["HsmType"] for h in cluster["Hsms"]} == {"hsm2m.medium"}
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="only hsm1"):
        cloudhsm.modify_cluster(ClusterId=cid, HsmType="hsm1.medium")


def test_resource_policies(cloudhsm: Any, active: str) -> None:
    backup = cloudhsm.describe_backups()["Backups"][0]
    arn = backup["BackupArn"]
    assert "Policy" not in cloudhsm.get_resource_policy(ResourceArn=arn)
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    assert cloudhsm.put_resource_policy(ResourceArn=arn, Policy=policy)["Policy"] == policy
    assert cloudhsm.get_resource_policy(ResourceArn=arn)["Policy"] == policy
    assert cloudhsm.delete_resource_policy(ResourceArn=arn)["Policy"] == policy
    errors = cloudhsm.exceptions
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="JSON"):
        cloudhsm.put_resource_policy(ResourceArn=arn, Policy="{not json")
    cluster_arn = arn.replace("backup/" + backup["BackupId"], "cluster/" + active)
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="backups only"):
        cloudhsm.get_resource_policy(ResourceArn=cluster_arn)
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="resourceArn"):
        cloudhsm.get_resource_policy(ResourceArn="arn:aws:s3:::bucket")
