"""Backups that hold the cluster: contents, encryption at rest, restore into a new cluster."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from cp_fixtures import cloudhsm, describe, ec2, fast, subnet_ids
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport import aws
from labsupport.client.errors import LoginFailed
from labsupport.client.quickstart import connected_cluster
from labsupport.controlplane import backups
from labsupport.controlplane.cluster import ControlPlane
from labsupport.workspace.clock import LabClock

__all__ = ["cloudhsm", "ec2", "fast"]


def _latest_backup(cloudhsm: Any, cluster_id: str) -> dict[str, Any]:
    return cloudhsm.describe_backups(Filters={"clusterIds": [cluster_id]})["Backups"][0]


def _make_keys(ready: Any) -> tuple[bytes, bytes]:
    """An AES key (ciphertext under it) and an RSA pair, as alice; returns (iv+ct, sig)."""
    session = ready.login("alice")
    aes = session.generate_key(KeyType.AES, 256, label="dr-aes", store=True)
    iv = session.generate_random(128)
    ciphertext = iv + aes.encrypt(b"sixteen byte msg" * 2, mechanism_param=iv)
    _, private = session.generate_keypair(KeyType.RSA, 2048, label="dr-rsa", store=True)
    signature = private.sign(b"signed before the disaster")
    session.close()
    return ciphertext, signature


def _assert_keys_back(alice: Any, ciphertext: bytes, signature: bytes) -> None:
    """The keys of :func:`_make_keys` decrypt and verify what they made before."""
    key = alice.get_key(label="dr-aes")
    assert key.decrypt(ciphertext[16:], mechanism_param=ciphertext[:16]) == b"sixteen byte msg" * 2
    public = alice.get_key(ObjectClass.PUBLIC_KEY, KeyType.RSA, label="dr-rsa")
    assert public.verify(b"signed before the disaster", signature)


def test_initialize_takes_a_backup(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    from cp_fixtures import initialized

    cid, _, _ = initialized(cloudhsm, ec2)
    backup = _latest_backup(cloudhsm, cid)
    assert backup["BackupState"] == "READY"
    contents = backups.load(workspace, backup["BackupId"])
    # nobody connected yet: only the HSM's built-in users, which a client creates on connect
    assert contents.document == {} and contents.objects == [] and contents.sync_key is None


def test_backups_read_the_client_document_file() -> None:
    from labsupport.client.clusterdata import STATE_PREFIX

    assert backups.CLUSTER_DOCUMENT_PREFIX == STATE_PREFIX


def test_backup_is_encrypted_at_rest_and_tamper_evident(workspace: Any, fast: None) -> None:
    ready = connected_cluster(workspace, owner="t", users=("alice",))
    _make_keys(ready)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    az = sorted(describe(cloudhsm, ready.cluster_id)["SubnetMapping"])[0]
    cloudhsm.create_hsm(ClusterId=ready.cluster_id, AvailabilityZone=az)  # → a backup
    backup_id = _latest_backup(cloudhsm, ready.cluster_id)["BackupId"]
    path = backups.payload_path(workspace, backup_id)
    raw = path.read_text()
    assert "alice" not in raw and "dr-aes" not in raw and "scrypt" not in raw
    contents = backups.load(workspace, backup_id)
    assert "alice" in contents.users and len(contents.key_references) == 3
    assert {o["label"] for o in contents.objects} == {"dr-aes", "dr-rsa"}
    assert contents.document["users"]["alice"]["kdf"] == "scrypt"  # the hash travels
    box = json.loads(raw)
    tail = "A" * 8 if box["ciphertext"][-12] != "A" else "B" * 8
    box["ciphertext"] = box["ciphertext"][:-12] + tail + box["ciphertext"][-4:]
    path.write_text(json.dumps(box))
    with pytest.raises(backups.BackupUnreadable, match="does not decrypt"):
        backups.load(workspace, backup_id)
    ready.client.close()


def test_disaster_recovery_through_boto3(workspace: Any, fast: None) -> None:
    """Acceptance: delete the cluster, create one from its backup, the keys are back."""
    from labsupport import client as chsm

    ready = connected_cluster(workspace, owner="t", users=("alice", "bob"))
    ciphertext, signature = _make_keys(ready)
    session = ready.login("alice")
    session.get_key(label="dr-aes").share("bob")
    session.close()
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    old = ready.cluster_id
    az = sorted(describe(cloudhsm, old)["SubnetMapping"])
    hsms = describe(cloudhsm, old)["Hsms"]
    for hsm in hsms:
        cloudhsm.delete_hsm(ClusterId=old, HsmId=hsm["HsmId"])
    backup = _latest_backup(cloudhsm, old)
    assert backup["BackupState"] == "READY"
    ready.client.close()
    cloudhsm.delete_cluster(ClusterId=old)
    assert describe(cloudhsm, old)["State"] == "DELETED"

    ec2 = aws.client("ec2", workspace=workspace)
    new = cloudhsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=subnet_ids(ec2), SourceBackupId=backup["BackupId"]
    )["Cluster"]["ClusterId"]
    cluster = describe(cloudhsm, new)
    assert cluster["State"] == "INITIALIZED" and cluster["SourceBackupId"] == backup["BackupId"]
    assert (
        cluster["Certificates"]["ClusterCertificate"]
        == describe(cloudhsm, old)["Certificates"]["ClusterCertificate"]
    )
    cloudhsm.create_hsm(ClusterId=new, AvailabilityZone=az[0])
    assert describe(cloudhsm, new)["State"] == "ACTIVE"
    cloudhsm.create_hsm(ClusterId=new, AvailabilityZone=az[1])

    chsm.configure(cluster_id=new, workspace=workspace)
    client = chsm.connect(workspace)
    users = {u["username"]: u["role"] for u in client.cli.run("user list").data["users"]}
    assert users["alice"] == "crypto-user" and users["bob"] == "crypto-user"
    alice = client.login(f"alice:{ready._passwords['alice']}")
    _assert_keys_back(alice, ciphertext, signature)
    hsm_ids = [h["HsmId"] for h in describe(cloudhsm, new)["Hsms"]]
    assert all("dr-aes" in client.token_labels(h) for h in hsm_ids)  # synced to HSM 2
    bob = client.login(f"bob:{ready._passwords['bob']}")
    assert bob.get_key(label="dr-aes")[Attribute.LABEL] == "dr-aes"  # sharing survived
    with pytest.raises(LoginFailed):
        client.login("alice:wrong-password")
    client.close()


def test_daily_backups_and_retention_on_the_lab_clock(
    workspace: Any, cloudhsm: Any, ec2: Any
) -> None:
    from cp_fixtures import initialized

    from labsupport.controlplane import activate_cluster

    cid, _, _ = initialized(cloudhsm, ec2)
    activate_cluster(workspace, cid)
    cloudhsm.modify_cluster(ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "7"})
    first = _latest_backup(cloudhsm, cid)["BackupId"]
    cloudhsm.modify_backup_attributes(BackupId=first, NeverExpires=True)
    LabClock(workspace).advance(10 * 24 * 3600 + 60)
    listed = cloudhsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"]
    ready = [b for b in listed if b["BackupState"] == "READY"]
    deleted = [b for b in listed if b["BackupState"] == "DELETED"]
    # initialize, activate, and the daily backups of the last 7 days (days 1-3 are past the
    # retention period: AWS would already have deleted them, the catch-up skips them)
    assert len(listed) == 2 + 7
    assert first in {b["BackupId"] for b in ready}  # NeverExpires keeps it
    assert len(deleted) == 1 and deleted[0]["BackupId"] != first  # the initialize backup
    days = sorted(b["CreateTimestamp"] for b in ready if b["BackupId"] != first)
    assert [round((b - a).total_seconds() / 86400) for a, b in itertools.pairwise(days)] == [1] * 6
    for b in deleted:
        assert not backups.payload_path(workspace, b["BackupId"]).exists()
    LabClock(workspace).advance(30 * 24 * 3600)
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=describe(cloudhsm, cid)["Hsms"][0]["HsmId"])
    listed = cloudhsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"]
    assert listed[0]["BackupState"] in ("READY", "CREATE_IN_PROGRESS")


def test_replacement_drill_fails_over_and_recovers(workspace: Any, fast: None) -> None:
    from labsupport.controlplane.drills import lab_fail_hsm

    ready = connected_cluster(workspace, owner="t", hsm_count=3, users=("alice",))
    session = ready.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="drill", store=True)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid = ready.cluster_id
    hsms = describe(cloudhsm, cid)["Hsms"]
    bad = hsms[0]
    lab_fail_hsm(workspace, cid, bad["HsmId"])
    cluster = describe(cloudhsm, cid)
    assert cluster["State"] == "DEGRADED"
    assert {h["HsmId"]: h["State"] for h in cluster["Hsms"]}[bad["HsmId"]] == "DEGRADED"
    ready.client.poll(force=True)
    ready.client.requests.clear()
    iv = bytes(16)
    for _ in range(10):
        key.encrypt(b"x" * 16, mechanism_param=iv)
    served = set(ready.client.requests.counts())
    assert bad["HsmId"] not in served and len(served) == 2
    before = len(cloudhsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"])
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=bad["HsmId"])
    assert describe(cloudhsm, cid)["State"] == "ACTIVE"
    other_az = hsms[1]["AvailabilityZone"]
    new = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=other_az)["Hsm"]
    assert len(cloudhsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"]) == before + 2
    ready.client.poll(force=True)
    assert "drill" in ready.client.token_labels(new["HsmId"])  # synced
    session.close()
    ready.client.close()


def test_restore_a_copy_in_another_region(workspace: Any, fast: None) -> None:
    """CopyBackupToRegion re-encrypts the payload; the copy restores the same keys there."""
    from labsupport import client as chsm

    ready = connected_cluster(workspace, owner="t", users=("alice",))
    ciphertext, _ = _make_keys(ready)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    az = sorted(describe(cloudhsm, ready.cluster_id)["SubnetMapping"])[0]
    cloudhsm.create_hsm(ClusterId=ready.cluster_id, AvailabilityZone=az)  # a backup with keys
    source = _latest_backup(cloudhsm, ready.cluster_id)["BackupId"]
    cloudhsm.copy_backup_to_region(DestinationRegion="eu-west-1", BackupId=source)
    eu = aws.client("cloudhsmv2", region_name="eu-west-1", workspace=workspace)
    eu_ec2 = aws.client("ec2", region_name="eu-west-1", workspace=workspace)
    copy = eu.describe_backups()["Backups"][0]
    assert copy["SourceBackup"] == source
    raw = backups.payload_path(workspace, copy["BackupId"]).read_text()
    assert raw != backups.payload_path(workspace, source).read_text()  # its own EBK
    subnets = sorted(eu_ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])[:2]
    cid = eu.create_cluster(
        HsmType="hsm2m.medium",
        SubnetIds=[s["SubnetId"] for s in subnets],
        SourceBackupId=copy["BackupId"],
    )["Cluster"]["ClusterId"]
    for subnet in subnets:
        eu.create_hsm(ClusterId=cid, AvailabilityZone=subnet["AvailabilityZone"])
    assert describe(eu, cid)["State"] == "ACTIVE"
    ready.client.close()
    chsm.configure(cluster_id=cid, region="eu-west-1", workspace=workspace)
    client = chsm.connect(workspace)
    alice = ready.login("alice", client=client)
    key = alice.get_key(label="dr-aes")
    assert key.decrypt(ciphertext[16:], mechanism_param=ciphertext[:16]) == b"sixteen byte msg" * 2
    client.close()


def test_an_hsm_added_to_an_emptied_cluster_starts_from_its_latest_backup(
    workspace: Any, fast: None
) -> None:
    """AWS: "When you add an HSM to a cluster that previously contained one or more active
    HSMs, the service restores the latest backup onto the new HSM" — delete every HSM (the
    last DeleteHsm takes that backup), add one, and the keys are there again."""
    from labsupport import client as chsm

    ready = connected_cluster(workspace, owner="t", users=("alice",))
    ciphertext, signature = _make_keys(ready)
    ready.client.close()
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid = ready.cluster_id
    zones = sorted(describe(cloudhsm, cid)["SubnetMapping"])
    for hsm in describe(cloudhsm, cid)["Hsms"]:
        cloudhsm.delete_hsm(ClusterId=cid, HsmId=hsm["HsmId"])
    assert describe(cloudhsm, cid)["Hsms"] == []
    latest = _latest_backup(cloudhsm, cid)["BackupId"]

    first = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[0])["Hsm"]["HsmId"]
    cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])  # synced by the client
    assert describe(cloudhsm, cid)["State"] == "ACTIVE"
    stored = ControlPlane(workspace).view()["clusters"][cid]["hsms"][first]
    assert stored["restored_from"] == latest and stored["restored_objects"] >= 3

    client = chsm.connect(workspace)
    alice = client.login(f"alice:{ready._passwords['alice']}")
    _assert_keys_back(alice, ciphertext, signature)
    hsm_ids = [h["HsmId"] for h in describe(cloudhsm, cid)["Hsms"]]
    assert all("dr-aes" in client.token_labels(h) for h in hsm_ids)
    client.close()
