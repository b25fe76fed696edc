"""Simulated KMS: key lifecycle (create, describe, list, enable/disable, delete), wire format."""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

from labsupport import aws, simulators
from labsupport.kms import ACCOUNT_ID, advance_clock
from labsupport.workspace import Workspace

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def kms(workspace: Workspace):
    return aws.client("kms", workspace=workspace)


def test_create_key_defaults_to_a_symmetric_aws_kms_key(kms) -> None:
    meta = kms.create_key(Description="lesson key")["KeyMetadata"]
    assert re.fullmatch(UUID, meta["KeyId"])
    assert meta["Arn"] == f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{meta['KeyId']}"
    assert meta["AWSAccountId"] == "111122223333"
    assert (meta["KeyState"], meta["Enabled"], meta["Origin"]) == ("Enabled", True, "AWS_KMS")
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["KeyManager"] == "CUSTOMER" and meta["Description"] == "lesson key"
    assert "ExpirationModel" not in meta and "DeletionDate" not in meta


def test_external_key_starts_pending_import(kms) -> None:
    meta = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"], meta["Origin"]) == (
        "PendingImport",
        False,
        "EXTERNAL",
    )
    assert "CurrentKeyMaterialId" not in meta


def test_describe_by_id_and_by_arn(kms) -> None:
    meta = kms.create_key()["KeyMetadata"]
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Arn"] == meta["Arn"]
    assert kms.describe_key(KeyId=meta["Arn"])["KeyMetadata"]["KeyId"] == meta["KeyId"]


def test_unknown_keys_are_not_found(kms) -> None:
    missing = "1234abcd-12ab-34cd-56ef-1234567890ab"
    with pytest.raises(kms.exceptions.NotFoundException, match=f"Key '.*{missing}' does not exist"):
        kms.describe_key(KeyId=missing)
    with pytest.raises(kms.exceptions.NotFoundException, match="Invalid keyId 'my-key'"):
        kms.describe_key(KeyId="my-key")
    with pytest.raises(kms.exceptions.NotFoundException, match=r"Alias .*alias/lesson"):
        kms.describe_key(KeyId="alias/lesson")
    with pytest.raises(kms.exceptions.InvalidArnException):
        kms.describe_key(KeyId="arn:aws:kms:us-east-1:key")


def test_keys_are_regional(kms, workspace: Workspace) -> None:
    meta = kms.create_key()["KeyMetadata"]
    other = aws.client("kms", region_name="eu-west-1", workspace=workspace)
    with pytest.raises(other.exceptions.NotFoundException):
        other.describe_key(KeyId=meta["KeyId"])
    with pytest.raises(other.exceptions.NotFoundException):
        other.describe_key(KeyId=meta["Arn"])  # an ARN of another region
    assert other.list_keys()["Keys"] == []


def test_list_keys_pages_in_creation_order(kms) -> None:
    ids = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)]
    first = kms.list_keys(Limit=2)
    assert first["Truncated"] is True and len(first["Keys"]) == 2
    assert first["Keys"][0] == {
        "KeyId": ids[0],
        "KeyArn": kms.describe_key(KeyId=ids[0])["KeyMetadata"]["Arn"],
    }
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    assert [k["KeyId"] for p in pages for k in p["Keys"]] == ids
    assert pages[-1]["Truncated"] is False and "NextMarker" not in pages[-1]
    assert len(kms.list_keys()["Keys"]) == 5  # default limit 100


def test_list_keys_rejects_bad_marker_and_limit(kms) -> None:
    with pytest.raises(kms.exceptions.InvalidMarkerException):
        kms.list_keys(Marker="not-a-marker")
    with pytest.raises(ClientError, match="ValidationException"):
        kms.list_keys(Limit=1001)


def test_disable_and_enable(kms) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    with pytest.raises(kms.exceptions.DisabledException, match="is disabled"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    kms.enable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_enable_refused_while_pending_import(kms) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="is pending import"):
        kms.enable_key(KeyId=key_id)
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="is pending import"):
        kms.disable_key(KeyId=key_id)


def test_schedule_deletion_waits_then_deletes(kms, workspace: Workspace) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    out = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert (out["KeyState"], out["PendingWindowInDays"]) == ("PendingDeletion", 7)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["PendingDeletionWindowInDays"] == 7
    assert meta["DeletionDate"] == out["DeletionDate"]
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending deletion"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending deletion"):
        kms.schedule_key_deletion(KeyId=key_id)
    advance_clock(days=6, workspace=workspace)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    advance_clock(days=1, hours=1, workspace=workspace)
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=key_id)
    assert kms.list_keys()["Keys"] == []


def test_cancel_deletion_leaves_the_key_disabled(kms) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="not pending deletion"):
        kms.cancel_key_deletion(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id)
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


@pytest.mark.parametrize("days", [6, 31])
def test_pending_window_must_be_7_to_30_days(kms, days: int) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError, match=r"ValidationException.*pendingWindowInDays") as info:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_unsupported_key_types_say_so(kms) -> None:
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="SYMMETRIC_DEFAULT"):
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="custom key store"):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId="cks-1234567890abcdef0")
    with pytest.raises(ClientError, match="UnsupportedOperation"):
        kms.create_alias(AliasName="alias/x", TargetKeyId="1234abcd-12ab-34cd-56ef-1234567890ab")


def test_wire_format_is_json_1_1_trentservice(kms) -> None:
    seen: list[tuple[str, str]] = []

    def spy(request, **_):
        seen.append(
            (request.headers["X-Amz-Target"].decode(), request.headers["Content-Type"].decode())
        )

    kms.meta.events.register_first("before-send.kms", spy)
    kms.list_keys()
    assert seen == [("TrentService.ListKeys", "application/x-amz-json-1.1")]


def test_state_is_shared_between_clients_and_kept_private(kms, workspace: Workspace) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    again = aws.client("kms", workspace=workspace)
    assert again.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    path = workspace.state("kms").path
    assert path.stat().st_mode & 0o077 == 0
    assert key_id in json.loads(path.read_text())["keys"]


def test_reset_of_a_lesson_removes_only_its_keys(
    kms, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDHSM_LAB_LESSON", "01")
    mine = kms.create_key()["KeyMetadata"]["KeyId"]
    monkeypatch.delenv("CLOUDHSM_LAB_LESSON")
    tagged = kms.create_key(Tags=[{"TagKey": "cloudhsm-lab:lesson", "TagValue": "01-ex"}])
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    advance_clock(days=1, workspace=workspace)
    simulators.reset(workspace, "01")
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [other]
    for gone in (mine, tagged["KeyMetadata"]["KeyId"]):
        with pytest.raises(kms.exceptions.NotFoundException):
            kms.describe_key(KeyId=gone)
    simulators.reset(workspace)
    assert kms.list_keys()["Keys"] == []
    assert "clock_offset_seconds" not in workspace.state("kms").read()


def test_kms_errors_are_explained_for_learners(kms) -> None:
    from labsupport import explain

    with pytest.raises(ClientError) as info:
        kms.describe_key(KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
    text = explain(info.value)
    assert "NotFoundException" in text and "list_keys" in text
