"""Keep a copy of your KMS key material in your own HSM: generate in the HSM, wrap there, import.

Real SoftHSM wrapping (through the lab cluster's Client SDK layer, and on a bare token),
real boto3 calls to the simulated KMS, its real errors and its simulated clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pkcs11
import pytest
from botocore.exceptions import ClientError
from byok_fixtures import *  # noqa: F403
from pkcs11 import Attribute

from labsupport import byok
from labsupport.client import KeyNotExtractable, KeyPermissionError
from labsupport.crypto import OaepHashUnsupported, generate_aes
from labsupport.crypto.hashes import HashAlg
from labsupport.kms import WrappingAlgorithm, advance_clock, now
from labsupport.workspace import Workspace


@pytest.fixture
def alice(cluster: Any) -> Any:
    opened = cluster.login("alice")
    yield opened
    opened.close()


@pytest.fixture
def external(kms: Any) -> str:
    return kms.create_key(Origin="EXTERNAL", Description="copy of an HSM key")["KeyMetadata"][
        "KeyId"
    ]


def _state(kms: Any, key_id: str) -> str:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def _wrapping_keys(session: Any) -> list[Any]:
    return list(session.get_objects({Attribute.LABEL: "kms-wrapping-key"}))


@pytest.mark.parametrize(
    ("algorithm", "spec"),
    [
        ("RSAES_OAEP_SHA_1", "RSA_2048"),
        ("RSAES_OAEP_SHA_1", "RSA_4096"),
        ("RSA_AES_KEY_WRAP_SHA_1", "RSA_3072"),
    ],
)
def test_hsm_key_is_copied_into_kms(
    alice: Any, kms: Any, external: str, algorithm: str, spec: str
) -> None:
    key = generate_aes(alice, f"kms-copy-{algorithm}-{spec}")
    copy = byok.copy_to_kms(kms, external, key, algorithm=algorithm, key_spec=spec)
    assert copy.algorithm is WrappingAlgorithm(algorithm) and copy.valid_to is None
    assert copy.key_arn.endswith(external) and len(copy.key_material_id) == 64
    assert _state(kms, external) == "Enabled"
    assert not _wrapping_keys(alice), "KMS's wrapping key object is deleted after use"
    # The HSM opens what KMS sealed: both hold the same 256-bit key.
    context = {"purpose": "byok-test"}
    blob = kms.encrypt(KeyId=external, Plaintext=b"sealed by KMS", EncryptionContext=context)
    assert byok.decrypt_in_hsm(key, blob["CiphertextBlob"], context) == b"sealed by KMS"
    data_key = kms.generate_data_key(KeyId=external, KeySpec="AES_256")
    assert byok.decrypt_in_hsm(key, data_key["CiphertextBlob"]) == data_key["Plaintext"]


def test_the_lab_token_picks_sha_1(alice: Any) -> None:
    if HashAlg.SHA256 in byok.oaep_hashes_for(alice):
        assert byok.kms_algorithm_for(alice) is WrappingAlgorithm.RSAES_OAEP_SHA_256
        return
    assert byok.kms_algorithm_for(alice) is WrappingAlgorithm.RSAES_OAEP_SHA_1
    large = byok.kms_algorithm_for(alice, large_material=True)
    assert large is WrappingAlgorithm.RSA_AES_KEY_WRAP_SHA_1


def test_default_algorithm_and_a_bare_token(
    token_session: Any, kms: Any, external: str, module_workspace: Workspace
) -> None:
    key = generate_aes(token_session, "token-kms-copy")
    copy = byok.copy_to_kms(kms, external, key)
    assert copy.algorithm is byok.kms_algorithm_for(token_session)
    blob = kms.encrypt(KeyId=external, Plaintext=b"x")["CiphertextBlob"]
    assert byok.decrypt_in_hsm(key, blob) == b"x"


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"])
def test_sha_256_on_a_sha_1_token_is_explained(
    alice: Any, kms: Any, external: str, algorithm: str
) -> None:
    if HashAlg.SHA256 in byok.oaep_hashes_for(alice):
        pytest.skip("this token wraps with RSA-OAEP SHA-256")
    key = generate_aes(alice, "sha256-try")
    with pytest.raises(OaepHashUnsupported, match="SHA-1 variant"):
        byok.copy_to_kms(kms, external, key, algorithm=algorithm)
    assert not _wrapping_keys(alice)
    assert _state(kms, external) == "PendingImport"


def test_expiry_and_reimport_from_the_hsm_copy(
    alice: Any, kms: Any, external: str, module_workspace: Workspace
) -> None:
    key = generate_aes(alice, "expiring-copy")
    valid_to = now(module_workspace) + timedelta(hours=1)
    copy = byok.copy_to_kms(kms, external, key, valid_to=valid_to)
    assert copy.valid_to == valid_to and "expires" in str(copy)
    meta = kms.describe_key(KeyId=external)["KeyMetadata"]
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    blob = kms.encrypt(KeyId=external, Plaintext=b"before expiry")["CiphertextBlob"]

    advance_clock(hours=2, workspace=module_workspace)  # ValidTo passes: KMS deletes the material
    assert _state(kms, external) == "PendingImport"
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(exc) == "KMSInvalidStateException"
    # The HSM copy still works, and still opens the old ciphertext.
    assert byok.decrypt_in_hsm(key, blob) == b"before expiry"

    byok.copy_to_kms(kms, external, key)  # the same material again, now without expiry
    assert _state(kms, external) == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before expiry"


def test_an_expired_import_token_needs_new_parameters(
    alice: Any, kms: Any, external: str, module_workspace: Workspace
) -> None:
    key = generate_aes(alice, "late-copy")
    parameters = byok.get_import_parameters(kms, external, "RSAES_OAEP_SHA_1")
    assert "valid to" in str(parameters) and "import_token" not in str(parameters)
    assert parameters.valid_to - now(module_workspace) <= timedelta(hours=24)
    wrapping = byok.load_wrapping_key(alice, parameters)
    blob = byok.wrap_in_hsm(wrapping, key, parameters.algorithm)
    wrapping.destroy()
    advance_clock(hours=25, workspace=module_workspace)
    with pytest.raises(ClientError) as exc:
        kms.import_key_material(
            KeyId=external,
            ImportToken=parameters.import_token,
            EncryptedKeyMaterial=blob,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    assert _code(exc) == "ExpiredImportTokenException"
    byok.copy_to_kms(kms, external, key)  # copy_to_kms always asks for fresh parameters
    assert _state(kms, external) == "Enabled"


def test_only_the_same_material_comes_back(alice: Any, kms: Any, external: str) -> None:
    original, other = generate_aes(alice, "kms-original"), generate_aes(alice, "kms-other")
    byok.copy_to_kms(kms, external, original)
    kms.delete_imported_key_material(KeyId=external)
    assert _state(kms, external) == "PendingImport"
    with pytest.raises(ClientError) as exc:
        byok.copy_to_kms(kms, external, other)
    assert _code(exc) == "IncorrectKeyMaterialException"
    assert not _wrapping_keys(alice)
    byok.copy_to_kms(kms, external, original)  # the proof that KMS holds *this* key, on AWS too
    assert _state(kms, external) == "Enabled"


def test_wrapped_for_another_algorithm_is_refused(alice: Any, kms: Any, external: str) -> None:
    key = generate_aes(alice, "wrong-algorithm")
    parameters = byok.get_import_parameters(kms, external, "RSAES_OAEP_SHA_1")
    wrapping = byok.load_wrapping_key(alice, parameters)
    try:
        blob = byok.wrap_in_hsm(wrapping, key, "RSA_AES_KEY_WRAP_SHA_1")
    finally:
        wrapping.destroy()
    with pytest.raises(ClientError) as exc:
        kms.import_key_material(
            KeyId=external,
            ImportToken=parameters.import_token,
            EncryptedKeyMaterial=blob,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    assert _code(exc) == "InvalidCiphertextException"
    with pytest.raises(ValueError, match="PKCS1_V1_5"):
        byok.wrap_in_hsm(wrapping, key, "RSAES_PKCS1_V1_5")


def test_kms_takes_256_bit_material_only(alice: Any, kms: Any, external: str) -> None:
    key = generate_aes(alice, "aes-128-for-kms", bits=128)
    with pytest.raises(ClientError) as exc:
        byok.copy_to_kms(kms, external, key)
    assert _code(exc) == "IncorrectKeyMaterialException"


def test_a_non_extractable_key_cannot_be_copied(
    alice: Any, token_session: Any, kms: Any, external: str
) -> None:
    locked = generate_aes(alice, "locked", extractable=False)
    with pytest.raises(KeyNotExtractable):
        byok.copy_to_kms(kms, external, locked)
    assert not _wrapping_keys(alice)
    bare = generate_aes(token_session, "locked-bare", extractable=False)
    with pytest.raises(pkcs11.exceptions.KeyUnextractable):
        byok.copy_to_kms(kms, external, bare)


def test_only_the_owner_may_copy_a_shared_key(cluster: Any, kms: Any, external: str) -> None:
    alice, bob = cluster.login("alice"), cluster.login("bob")
    try:
        key = generate_aes(alice, "shared-with-bob")
        key.share("bob")
        bobs_view = bob.key_by_reference(key.reference)
        with pytest.raises(KeyPermissionError):
            byok.copy_to_kms(kms, external, bobs_view)
        assert not _wrapping_keys(bob)
    finally:
        bob.close()
        alice.close()
