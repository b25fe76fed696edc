"""Key material wrapped *inside a PKCS#11 token* imports into the simulated KMS.

This is the "keep a copy of your KMS key material in your own HSM" flow of lesson 05, with
real SoftHSM wrapping: CKM_RSA_PKCS_OAEP for RSAES_OAEP_*, and CKM_RSA_PKCS_OAEP +
CKM_AES_KEY_WRAP_PAD composed for RSA_AES_KEY_WRAP_* (SoftHSM 2.6 has no
CKM_RSA_AES_KEY_WRAP). The proof that KMS holds the very key in the token: the token
decrypts a KMS ciphertext with its own AES key.
"""

from __future__ import annotations

import pkcs11
import pkcs11.exceptions
import pytest
from cryptography.hazmat.primitives import serialization
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from labsupport import aws
from labsupport.hsm import token_store
from labsupport.kms import ciphertext
from labsupport.workspace import Workspace

NEVER = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


@pytest.fixture
def session(workspace: Workspace):
    store = token_store(workspace)
    store.create("kms-byok", owner="test")
    with store.open_session("kms-byok") as sess:
        yield sess


def _token_public_key(session: pkcs11.Session, der: bytes) -> pkcs11.PublicKey:
    numbers = serialization.load_der_public_key(der).public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    return session.create_object(
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.RSA,
            Attribute.TOKEN: False,
            Attribute.WRAP: True,
            Attribute.ENCRYPT: True,
            Attribute.MODULUS: numbers.n.to_bytes(size, "big"),
            Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes(3, "big"),
        }
    )


def _wrap_oaep(wrapping_key: pkcs11.PublicKey, key: pkcs11.SecretKey, algorithm: str) -> bytes:
    try:
        return wrapping_key.wrap_key(
            key, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=_oaep(algorithm)
        )
    except (pkcs11.exceptions.ArgumentsBad, pkcs11.exceptions.MechanismParamInvalid):
        # Measured: SoftHSM 2.6.1 accepts RSA-OAEP with SHA-1 only (C_Encrypt and C_WrapKey).
        pytest.skip("this PKCS#11 module supports RSA-OAEP with SHA-1 only")


def _oaep(algorithm: str) -> tuple:
    if algorithm.endswith("SHA_256"):
        return (Mechanism.SHA256, MGF.SHA256, None)
    return (Mechanism.SHA_1, MGF.SHA1, None)


@pytest.mark.parametrize(
    "algorithm",
    [
        "RSAES_OAEP_SHA_1",
        "RSAES_OAEP_SHA_256",
        "RSA_AES_KEY_WRAP_SHA_1",
        "RSA_AES_KEY_WRAP_SHA_256",
    ],
)
def test_key_wrapped_in_the_token_is_imported(
    session: pkcs11.Session, workspace: Workspace, algorithm: str
) -> None:
    mechanisms = session.token.slot.get_mechanisms()
    if Mechanism.RSA_PKCS_OAEP not in mechanisms or Mechanism.AES_KEY_WRAP_PAD not in mechanisms:
        pytest.skip("this PKCS#11 module lacks RSA-OAEP or AES key wrap with padding")
    kms = aws.client("kms", workspace=workspace)
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
    )
    wrapping_key = _token_public_key(session, params["PublicKey"])
    # The key to bring to KMS: generated in the token, extractable only so it can be wrapped.
    aes = session.generate_key(
        KeyType.AES, 256, store=False, template={Attribute.EXTRACTABLE: True}
    )
    if algorithm.startswith("RSAES"):
        wrapped = _wrap_oaep(wrapping_key, aes, algorithm)
    else:  # CKM_RSA_AES_KEY_WRAP composed from its two halves
        ephemeral = session.generate_key(
            KeyType.AES, 256, store=False, template={Attribute.EXTRACTABLE: True}
        )
        wrapped = _wrap_oaep(wrapping_key, ephemeral, algorithm) + ephemeral.wrap_key(
            aes, mechanism=Mechanism.AES_KEY_WRAP_PAD
        )
    kms.import_key_material(
        KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **NEVER
    )

    blob = kms.encrypt(KeyId=key_id, Plaintext=b"made by KMS", EncryptionContext={"a": "b"})
    parsed = ciphertext.parse(blob["CiphertextBlob"])
    aad = ciphertext.AAD_DOMAIN + parsed.header + ciphertext.canonical_context({"a": "b"})
    opened = aes.decrypt(
        parsed.sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(parsed.nonce, aad)
    )
    assert opened == b"made by KMS"
