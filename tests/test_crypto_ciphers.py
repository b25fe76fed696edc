"""AES-GCM with an HSM-generated IV, and RSA-OAEP — in the HSM and against `cryptography`."""

from __future__ import annotations

import os

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport.crypto import (
    DecryptionFailed,
    GcmAuthenticationFailed,
    GcmCiphertext,
    HashAlg,
    KeyCapabilityMissing,
    OaepHashUnsupported,
    OaepScheme,
    Usage,
    WrongKeyType,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    encrypt_outside,
    generate_aes,
    generate_hmac_key,
    oaep_hashes,
    oaep_scheme,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
)
from labsupport.crypto.interop import import_public_key


@pytest.fixture(scope="module")
def aes(session: pkcs11.Session) -> pkcs11.SecretKey:
    return generate_aes(session, "gcm-key", token=False)


def _known_aes_key(session: pkcs11.Session, value: bytes) -> pkcs11.SecretKey:
    """An AES key with a value we know, so `cryptography` can check the HSM's output."""
    return session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: value,
            Attribute.TOKEN: False,
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.LABEL: "known-aes",
        }
    )


# -- AES-GCM -----------------------------------------------------------------------------


def test_gcm_round_trip_with_aad(aes: pkcs11.SecretKey) -> None:
    sealed = aes_gcm_encrypt(aes, b"card number 4111", aad=b"record-42")
    assert len(sealed.iv) == 12
    assert len(sealed.ciphertext) == len(b"card number 4111") + 16
    assert sealed.tag == sealed.ciphertext[-16:]
    assert aes_gcm_decrypt(aes, sealed) == b"card number 4111"


def test_hsm_picks_a_fresh_iv_every_time(aes: pkcs11.SecretKey) -> None:
    first = aes_gcm_encrypt(aes, b"same message")
    second = aes_gcm_encrypt(aes, b"same message")
    assert first.iv != second.iv
    assert first.ciphertext != second.ciphertext


def test_blob_form_round_trips(aes: pkcs11.SecretKey) -> None:
    sealed = aes_gcm_encrypt(aes, b"blob", aad=b"ctx")
    blob = sealed.to_bytes()
    assert blob[:12] == sealed.iv
    assert aes_gcm_decrypt(aes, blob, aad=b"ctx") == b"blob"
    assert GcmCiphertext.from_bytes(blob, b"ctx") == sealed
    with pytest.raises(ValueError):
        GcmCiphertext.from_bytes(b"short")


@pytest.mark.parametrize("damage", ["ciphertext", "tag", "iv", "aad"])
def test_gcm_detects_tampering(aes: pkcs11.SecretKey, damage: str) -> None:
    sealed = aes_gcm_encrypt(aes, b"pay 10 EUR to Alice", aad=b"tx-1")
    flip = bytearray
    if damage == "ciphertext":
        ct = flip(sealed.ciphertext)
        ct[0] ^= 1
        sealed = GcmCiphertext(sealed.iv, bytes(ct), sealed.aad)
    elif damage == "tag":
        ct = flip(sealed.ciphertext)
        ct[-1] ^= 1
        sealed = GcmCiphertext(sealed.iv, bytes(ct), sealed.aad)
    elif damage == "iv":
        iv = flip(sealed.iv)
        iv[0] ^= 1
        sealed = GcmCiphertext(bytes(iv), sealed.ciphertext, sealed.aad)
    else:
        sealed = GcmCiphertext(sealed.iv, sealed.ciphertext, b"tx-2")
    with pytest.raises(GcmAuthenticationFailed, match="authentication tag") as info:
        aes_gcm_decrypt(aes, sealed)
    assert isinstance(info.value.__cause__, pkcs11.PKCS11Error)


def test_gcm_with_the_wrong_key_fails(session: pkcs11.Session, aes: pkcs11.SecretKey) -> None:
    other = generate_aes(session, "other-gcm", token=False)
    with pytest.raises(GcmAuthenticationFailed):
        aes_gcm_decrypt(other, aes_gcm_encrypt(aes, b"secret"))


def test_gcm_interoperates_with_cryptography(session: pkcs11.Session) -> None:
    value = os.urandom(32)
    key = _known_aes_key(session, value)
    sealed = aes_gcm_encrypt(key, b"made in the HSM", aad=b"hdr")
    assert AESGCM(value).decrypt(sealed.iv, sealed.ciphertext, b"hdr") == b"made in the HSM"
    nonce = os.urandom(12)
    outside = GcmCiphertext(nonce, AESGCM(value).encrypt(nonce, b"made outside", None))
    assert aes_gcm_decrypt(key, outside) == b"made outside"


def test_gcm_needs_an_aes_key_that_may_encrypt(session: pkcs11.Session, rsa_pair) -> None:
    with pytest.raises(WrongKeyType, match="AES-GCM needs an AES secret key"):
        aes_gcm_encrypt(rsa_pair.private, b"x")
    mac = generate_hmac_key(session, "not-aes", token=False)
    with pytest.raises(WrongKeyType):
        aes_gcm_encrypt(mac, b"x")
    kek = generate_aes(session, "wrap-only", usage=Usage.WRAP, token=False)
    with pytest.raises(KeyCapabilityMissing, match="CKA_ENCRYPT"):
        aes_gcm_encrypt(kek, b"x")
    with pytest.raises(KeyCapabilityMissing, match="CKA_DECRYPT"):
        aes_gcm_decrypt(kek, GcmCiphertext(bytes(12), bytes(20)))


# -- RSA-OAEP ----------------------------------------------------------------------------


def test_token_reports_its_oaep_hashes(session: pkcs11.Session) -> None:
    supported = oaep_hashes(session)
    assert supported, "SoftHSM supports OAEP with at least SHA-1"
    assert oaep_hashes(session) == supported  # cached, same answer
    assert oaep_scheme(session) == OaepScheme(supported[0])
    if session.token.manufacturer_id.startswith("SoftHSM"):
        # SoftHSM 2.6.1: OAEP with SHA-1 only (CKR_ARGUMENTS_BAD for SHA-256)
        assert HashAlg.SHA1 in supported


def test_unsupported_oaep_hash_is_explained(session: pkcs11.Session) -> None:
    missing = [h for h in HashAlg if h not in oaep_hashes(session)]
    if not missing:
        pytest.skip("this token supports every OAEP hash")
    with pytest.raises(OaepHashUnsupported, match="refuses RSA-OAEP") as info:
        oaep_scheme(session, missing[0])
    assert "hash=None" in info.value.fix


def test_oaep_round_trip_in_the_hsm(rsa_pair) -> None:
    secret = os.urandom(32)
    ciphertext = rsa_oaep_encrypt(rsa_pair.public, secret)
    assert len(ciphertext) == 256
    assert rsa_oaep_decrypt(rsa_pair.private, ciphertext) == secret


def test_encrypt_outside_decrypt_inside(session: pkcs11.Session, rsa_pair) -> None:
    scheme = oaep_scheme(session)
    ciphertext = encrypt_outside(rsa_pair.public, b"for the HSM only", scheme)
    assert rsa_oaep_decrypt(rsa_pair.private, ciphertext) == b"for the HSM only"


def test_hsm_encrypts_to_an_outside_party(session: pkcs11.Session) -> None:
    partner = rsa.generate_private_key(65537, 2048)
    their_key = import_public_key(session, partner.public_key(), "partner")
    assert their_key[Attribute.LOCAL] is False  # imported, not generated here
    scheme = oaep_scheme(session)
    ciphertext = rsa_oaep_encrypt(their_key, b"hello partner")
    assert partner.decrypt(ciphertext, scheme.padding()) == b"hello partner"


def test_oaep_limits_and_wrong_keys(session: pkcs11.Session, rsa_pair) -> None:
    scheme = oaep_scheme(session)
    limit = scheme.max_plaintext(2048)
    assert limit == 256 - 2 * scheme.hash.digest_size - 2
    rsa_oaep_encrypt(rsa_pair.public, bytes(limit))
    with pytest.raises(ValueError, match="envelope"):
        rsa_oaep_encrypt(rsa_pair.public, bytes(limit + 1))
    with pytest.raises(WrongKeyType, match="public key"):
        rsa_oaep_encrypt(rsa_pair.private, b"x")
    ciphertext = bytearray(rsa_oaep_encrypt(rsa_pair.public, b"x"))
    ciphertext[5] ^= 0xFF
    with pytest.raises(DecryptionFailed):
        rsa_oaep_decrypt(rsa_pair.private, bytes(ciphertext))


def test_oaep_scheme_text() -> None:
    assert str(OaepScheme(HashAlg.SHA256)) == "RSA-OAEP with SHA-256 and MGF1-SHA-256"
    assert str(OaepScheme(HashAlg.SHA1)) == "RSA-OAEP with SHA-1 and MGF1-SHA-1"
