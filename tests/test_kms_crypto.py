"""Simulated KMS: Encrypt, Decrypt and GenerateDataKey with real AES-256-GCM."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from labsupport import aws
from labsupport.kms import ciphertext
from labsupport.workspace import Workspace


@pytest.fixture
def kms(workspace: Workspace):
    return aws.client("kms", workspace=workspace)


@pytest.fixture
def key_id(kms) -> str:
    return kms.create_key()["KeyMetadata"]["KeyId"]


def test_encrypt_decrypt_round_trip(kms, key_id: str) -> None:
    out = kms.encrypt(KeyId=key_id, Plaintext=b"card 4111 1111 1111 1111")
    assert out["KeyId"].endswith(key_id) and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = out["CiphertextBlob"]
    assert b"4111" not in blob
    back = kms.decrypt(CiphertextBlob=blob)  # no KeyId: the blob names its key
    assert back["Plaintext"] == b"card 4111 1111 1111 1111"
    assert back["KeyId"] == out["KeyId"]


def test_ciphertext_is_randomised_and_names_its_key(kms, key_id: str) -> None:
    a = kms.encrypt(KeyId=key_id, Plaintext=b"same")["CiphertextBlob"]
    b = kms.encrypt(KeyId=key_id, Plaintext=b"same")["CiphertextBlob"]
    assert a != b
    assert ciphertext.parse(a).key_id == key_id
    # version + key id + 12-byte nonce + ciphertext + 16-byte tag
    assert len(a) == 1 + 16 + 12 + len(b"same") + 16


def test_encryption_context_is_authenticated(kms, key_id: str) -> None:
    context = {"tenant": "bank-a", "purpose": "lesson-01"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=context)["CiphertextBlob"]
    reordered = dict(reversed(list(context.items())))
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"x"
    for wrong in (None, {"tenant": "bank-b", "purpose": "lesson-01"}, {"tenant": "bank-a"}):
        kwargs = {"EncryptionContext": wrong} if wrong is not None else {}
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=blob, **kwargs)


def test_tampered_or_foreign_blobs_are_invalid_ciphertext(kms, key_id: str) -> None:
    blob = bytearray(kms.encrypt(KeyId=key_id, Plaintext=b"data")["CiphertextBlob"])
    blob[-1] ^= 1
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=bytes(blob))
    with pytest.raises(kms.exceptions.InvalidCiphertextException, match="not a KMS ciphertext"):
        kms.decrypt(CiphertextBlob=b"\x00" * 64)
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=b"short")


def test_decrypt_with_the_wrong_key_id_is_incorrect_key(kms, key_id: str) -> None:
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"data")["CiphertextBlob"]
    with pytest.raises(kms.exceptions.IncorrectKeyException):
        kms.decrypt(CiphertextBlob=blob, KeyId=other)
    assert kms.decrypt(CiphertextBlob=blob, KeyId=key_id)["Plaintext"] == b"data"


def test_deleted_key_cannot_decrypt(kms, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"data")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending deletion"):
        kms.decrypt(CiphertextBlob=blob)


def test_pending_import_key_cannot_encrypt(kms) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending import"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    with pytest.raises(kms.exceptions.KMSInvalidStateException, match="pending import"):
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")


def test_plaintext_limit_is_4096_bytes(kms, key_id: str) -> None:
    kms.encrypt(KeyId=key_id, Plaintext=os.urandom(4096))
    with pytest.raises(ClientError, match=r"ValidationException.*4096"):
        kms.encrypt(KeyId=key_id, Plaintext=os.urandom(4097))


def test_asymmetric_algorithms_are_invalid_for_a_symmetric_key(kms, key_id: str) -> None:
    with pytest.raises(kms.exceptions.InvalidKeyUsageException):
        kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")


def test_generate_data_key_is_envelope_encryption(kms, key_id: str) -> None:
    context = {"file": "report.pdf"}
    out = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    data_key, wrapped = out["Plaintext"], out["CiphertextBlob"]
    assert len(data_key) == 32 and out["KeyId"].endswith(key_id)
    # encrypt locally with the data key, keep only the wrapped copy
    nonce = os.urandom(12)
    sealed = AESGCM(data_key).encrypt(nonce, b"a large document", None)
    # later: KMS unwraps the data key, the data is decrypted locally
    again = kms.decrypt(CiphertextBlob=wrapped, EncryptionContext=context)["Plaintext"]
    assert again == data_key
    assert AESGCM(again).decrypt(nonce, sealed, None) == b"a large document"


def test_generate_data_key_sizes(kms, key_id: str) -> None:
    assert len(kms.generate_data_key(KeyId=key_id, KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key_id, NumberOfBytes=64)["Plaintext"]) == 64
    keys = {kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["Plaintext"] for _ in range(3)}
    assert len(keys) == 3


@pytest.mark.parametrize(
    "kwargs", [{}, {"KeySpec": "AES_256", "NumberOfBytes": 32}, {"NumberOfBytes": 1025}]
)
def test_generate_data_key_needs_exactly_one_size(kms, key_id: str, kwargs: dict) -> None:
    with pytest.raises(ClientError) as info:
        kms.generate_data_key(KeyId=key_id, **kwargs)
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_generate_data_key_without_plaintext(kms, key_id: str) -> None:
    out = kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256")
    assert "Plaintext" not in out
    assert len(kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"]) == 32


def test_key_material_never_leaves_in_a_response(kms, key_id: str, workspace: Workspace) -> None:
    secret = workspace.state("kms").read()["keys"][key_id]["material_hex"]
    responses = [
        kms.describe_key(KeyId=key_id),
        kms.list_keys(),
        kms.encrypt(KeyId=key_id, Plaintext=b"x"),
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
    ]
    for response in responses:
        text = repr(response)
        assert secret not in text and bytes.fromhex(secret) not in repr(response).encode()
        for value in response.values():
            assert value != bytes.fromhex(secret)
