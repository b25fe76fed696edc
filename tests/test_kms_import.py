"""Simulated KMS: importing your own key material (BYOK), its errors and its expiry."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from labsupport import aws
from labsupport.kms import advance_clock, now, reset_clock, wrap_key_material
from labsupport.workspace import Workspace

NEVER = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


@pytest.fixture
def kms(workspace: Workspace):
    return aws.client("kms", workspace=workspace)


@pytest.fixture
def external(kms) -> str:
    return kms.create_key(Origin="EXTERNAL", Description="BYOK")["KeyMetadata"]["KeyId"]


def _params(kms, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256", spec: str = "RSA_2048"):
    return kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )


def _import(
    kms,
    key_id: str,
    material: bytes,
    algorithm: str = "RSAES_OAEP_SHA_256",
    spec: str = "RSA_2048",
    **kwargs,
):
    params = _params(kms, key_id, algorithm, spec)
    wrapped = wrap_key_material(params["PublicKey"], material, algorithm)
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrapped,
        **(kwargs or NEVER),
    )


@pytest.mark.parametrize(
    ("algorithm", "spec"),
    [
        ("RSAES_OAEP_SHA_256", "RSA_2048"),
        ("RSAES_OAEP_SHA_1", "RSA_3072"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"),
        ("RSA_AES_KEY_WRAP_SHA_1", "RSA_2048"),
    ],
)
def test_import_paths(kms, external: str, algorithm: str, spec: str) -> None:
    params = _params(kms, external, algorithm, spec)
    public = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == int(spec.split("_")[1])
    assert params["KeyId"].endswith(external)
    valid = params["ParametersValidTo"] - now()
    assert timedelta(hours=23, minutes=59) < valid <= timedelta(hours=24)

    material = os.urandom(32)
    wrapped = wrap_key_material(params["PublicKey"], material, algorithm)
    if algorithm.startswith("RSA_AES"):
        # RSA-OAEP(ephemeral AES-256 key) || AES-KWP(32 bytes) = modulus bytes + 40
        assert len(wrapped) == public.key_size // 8 + 40
    out = kms.import_key_material(
        KeyId=external, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **NEVER
    )
    assert len(out["KeyMaterialId"]) == 64
    meta = kms.describe_key(KeyId=external)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in meta
    assert meta["CurrentKeyMaterialId"] == out["KeyMaterialId"]
    blob = kms.encrypt(KeyId=external, Plaintext=b"mine")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"mine"


def test_the_imported_material_is_really_used(kms, external: str, workspace: Workspace) -> None:
    # Decrypt a blob with our own copy of the material: KMS used exactly what we imported.
    from labsupport.kms import ciphertext

    material = os.urandom(32)
    _import(kms, external, material)
    blob = kms.encrypt(KeyId=external, Plaintext=b"proof", EncryptionContext={"k": "v"})
    parsed = ciphertext.parse(blob["CiphertextBlob"])
    assert ciphertext.open_blob(parsed, material, {"k": "v"}) == b"proof"


def test_pkcs1_v1_5_wrapping_is_refused(kms, external: str) -> None:
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="RSAES_PKCS1_V1_5"):
        _params(kms, external, "RSAES_PKCS1_V1_5")
    with pytest.raises(ValueError, match="RSAES_PKCS1_V1_5"):
        wrap_key_material(
            rsa.generate_private_key(65537, 2048).public_key(), b"k" * 32, "RSAES_PKCS1_V1_5"
        )


def test_bad_wrapping_parameters(kms, external: str) -> None:
    with pytest.raises(ClientError, match="ValidationException"):
        _params(kms, external, "RSAES_OAEP_SHA_512")
    with pytest.raises(ClientError, match="ValidationException"):
        _params(kms, external, spec="RSA_1024")


def test_aws_kms_keys_take_no_imported_material(kms) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="origin is AWS_KMS"):
        _params(kms, key_id)
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.delete_imported_key_material(KeyId=key_id)


def test_import_token_expires_after_24_hours(kms, external: str, workspace: Workspace) -> None:
    params = _params(kms, external)
    wrapped = wrap_key_material(params["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    advance_clock(hours=24, minutes=1, workspace=workspace)
    with pytest.raises(kms.exceptions.ExpiredImportTokenException, match="GetParametersForImport"):
        kms.import_key_material(
            KeyId=external, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **NEVER
        )
    assert kms.describe_key(KeyId=external)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_invalid_import_tokens(kms, external: str) -> None:
    params = _params(kms, external)
    wrapped = wrap_key_material(params["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    forged = bytearray(params["ImportToken"])
    forged[-1] ^= 1
    for token in (b"garbage", bytes(forged)):
        with pytest.raises(kms.exceptions.InvalidImportTokenException):
            kms.import_key_material(
                KeyId=external, ImportToken=token, EncryptedKeyMaterial=wrapped, **NEVER
            )
    other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.InvalidImportTokenException, match="different KMS key"):
        kms.import_key_material(
            KeyId=other, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **NEVER
        )


def test_material_wrapped_for_another_token_is_invalid_ciphertext(kms, external: str) -> None:
    first, second = _params(kms, external), _params(kms, external)
    wrapped = wrap_key_material(first["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.import_key_material(
            KeyId=external, ImportToken=second["ImportToken"], EncryptedKeyMaterial=wrapped, **NEVER
        )
    # right key, wrong algorithm (SHA-1 instead of the SHA-256 the token was issued for)
    wrong = wrap_key_material(second["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_1")
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.import_key_material(
            KeyId=external, ImportToken=second["ImportToken"], EncryptedKeyMaterial=wrong, **NEVER
        )


def test_symmetric_material_must_be_256_bits(kms, external: str) -> None:
    with pytest.raises(kms.exceptions.IncorrectKeyMaterialException, match="32 bytes"):
        _import(kms, external, os.urandom(16))


def test_reimport_must_be_the_same_material(kms, external: str) -> None:
    material = os.urandom(32)
    first = _import(kms, external, material)
    blob = kms.encrypt(KeyId=external, Plaintext=b"old data")["CiphertextBlob"]
    with pytest.raises(kms.exceptions.IncorrectKeyMaterialException, match="not the same"):
        _import(kms, external, os.urandom(32))
    kms.delete_imported_key_material(KeyId=external)
    with pytest.raises(kms.exceptions.IncorrectKeyMaterialException):
        _import(kms, external, os.urandom(32))  # also after the material was deleted
    again = _import(kms, external, material)
    assert again["KeyMaterialId"] == first["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"old data"


def test_delete_imported_material_makes_the_key_pending_import(kms, external: str) -> None:
    _import(kms, external, os.urandom(32))
    blob = kms.encrypt(KeyId=external, Plaintext=b"x")["CiphertextBlob"]
    out = kms.delete_imported_key_material(KeyId=external)
    assert out["KeyId"].endswith(external) and len(out["KeyMaterialId"]) == 64
    meta = kms.describe_key(KeyId=external)["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport" and "ExpirationModel" not in meta
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending import"):
        kms.decrypt(CiphertextBlob=blob)


def test_material_expires_at_valid_to(kms, external: str, workspace: Workspace) -> None:
    material = os.urandom(32)
    valid_to = now(workspace) + timedelta(hours=1)
    _import(kms, external, material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    meta = kms.describe_key(KeyId=external)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs((meta["ValidTo"] - valid_to).total_seconds()) < 1
    blob = kms.encrypt(KeyId=external, Plaintext=b"before expiry")["CiphertextBlob"]

    advance_clock(minutes=61, workspace=workspace)  # lazily evaluated: no background job
    meta = kms.describe_key(KeyId=external)["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport" and "ValidTo" not in meta
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending import"):
        kms.decrypt(CiphertextBlob=blob)

    # Reimport the same material (a fresh token: the clock moved on) and the data is back.
    _import(kms, external, material)
    assert kms.describe_key(KeyId=external)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before expiry"


def test_expiry_while_disabled_then_reimport_keeps_it_disabled(
    kms, external: str, workspace: Workspace
) -> None:
    material = os.urandom(32)
    _import(
        kms,
        external,
        material,
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=now(workspace) + timedelta(hours=1),
    )
    kms.disable_key(KeyId=external)
    advance_clock(hours=2, workspace=workspace)
    assert kms.describe_key(KeyId=external)["KeyMetadata"]["KeyState"] == "PendingImport"
    _import(kms, external, material)
    assert kms.describe_key(KeyId=external)["KeyMetadata"]["KeyState"] == "Disabled"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "ValidTo is required"),
        ({"ExpirationModel": "KEY_MATERIAL_EXPIRES"}, "ValidTo is required"),
        ({"ValidTo": datetime(2000, 1, 1, tzinfo=timezone.utc)}, "future"),
        (
            {
                "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
                "ValidTo": datetime(2100, 1, 1, tzinfo=timezone.utc),
            },
            "omitted",
        ),
    ],
)
def test_expiration_parameters_are_validated(kms, external: str, kwargs: dict, match: str) -> None:
    params = _params(kms, external)
    wrapped = wrap_key_material(params["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    with pytest.raises(ClientError, match=match) as info:
        kms.import_key_material(
            KeyId=external,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrapped,
            **kwargs,
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_valid_to_at_most_365_days(kms, external: str, workspace: Workspace) -> None:
    with pytest.raises(ClientError, match="365 days"):
        _import(
            kms,
            external,
            os.urandom(32),
            ExpirationModel="KEY_MATERIAL_EXPIRES",
            ValidTo=now(workspace) + timedelta(days=366),
        )
    _import(
        kms,
        external,
        os.urandom(32),
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=now(workspace) + timedelta(days=364),
    )


def test_import_refused_while_pending_deletion(kms, external: str) -> None:
    params = _params(kms, external)
    kms.schedule_key_deletion(KeyId=external, PendingWindowInDays=7)
    wrapped = wrap_key_material(params["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending deletion"):
        kms.import_key_material(
            KeyId=external, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **NEVER
        )
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending deletion"):
        _params(kms, external)


def test_clock_only_moves_forward_and_resets(workspace: Workspace) -> None:
    start = now(workspace)
    later = advance_clock(days=2, workspace=workspace)
    assert timedelta(days=2) <= later - start < timedelta(days=2, minutes=1)
    with pytest.raises(ValueError, match="forward"):
        advance_clock(-1, workspace=workspace)
    reset_clock(workspace)
    assert now(workspace) - start < timedelta(minutes=1)
