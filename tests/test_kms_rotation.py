"""Simulated KMS key rotation: automatic on the KMS clock, on demand, imported material."""

from __future__ import annotations

import pytest

from labsupport import aws
from labsupport.kms import advance_clock, rotation
from labsupport.workspace import Workspace


@pytest.fixture
def kms(workspace: Workspace):
    return aws.client("kms", workspace=workspace)


def test_on_demand_rotation_keeps_old_ciphertexts_readable(workspace: Workspace, kms) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    before = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"].endswith(key_id)
    after = kms.encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=before)["Plaintext"] == b"before"
    assert kms.decrypt(CiphertextBlob=after)["Plaintext"] == b"after"
    # new material, kept by the lab next to the key's original material
    entry = workspace.state(rotation.STATE_NAME).read()[key_id]
    assert entry["older"] == [] and len(bytes.fromhex(entry["current"])) == 32
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_automatic_rotation_on_the_kms_clock(kms) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.ClientError, match="less than or equal to 2560"):
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=3000)  # botocore checks >= 90
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    old = kms.encrypt(KeyId=key_id, Plaintext=b"year one")["CiphertextBlob"]
    advance_clock(days=200)  # two periods
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["AUTOMATIC", "AUTOMATIC"]
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"year one"
    page = kms.list_key_rotations(KeyId=key_id, Limit=1)
    assert page["Truncated"] is True and len(page["Rotations"]) == 1
    rest = kms.list_key_rotations(KeyId=key_id, Limit=1, Marker=page["NextMarker"])
    assert rest["Truncated"] is False and rest["Rotations"] == rotations[1:]
    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_imported_material_cannot_rotate_automatically(kms) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="imported"):
        kms.enable_key_rotation(KeyId=key_id)
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="imported"):
        kms.rotate_key_on_demand(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_disabled_key_cannot_rotate(kms) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key_id)
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.rotate_key_on_demand(KeyId=key_id)
