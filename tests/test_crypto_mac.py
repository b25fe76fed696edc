"""HMAC-SHA256 in the HSM, checked against Python's hmac module."""

from __future__ import annotations

import hashlib
import hmac
import os

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport.crypto import (
    HashAlg,
    KeyCapabilityMissing,
    Usage,
    WrongKeyType,
    generate_aes,
    generate_hmac_key,
    hmac_sign,
    hmac_verify,
)


def test_hmac_round_trip(session: pkcs11.Session) -> None:
    key = generate_hmac_key(session, "mac", token=False)
    tag = hmac_sign(key, b"message")
    assert len(tag) == 32
    assert hmac_verify(key, b"message", tag)
    assert not hmac_verify(key, b"messagE", tag)
    assert not hmac_verify(key, b"message", tag[:-1] + bytes([tag[-1] ^ 1]))


@pytest.mark.parametrize("alg", [HashAlg.SHA256, HashAlg.SHA384])
def test_hmac_matches_python(session: pkcs11.Session, alg: HashAlg) -> None:
    value = os.urandom(64)  # SoftHSM wants an HMAC key at least as long as the digest
    key = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.VALUE: value,
            Attribute.TOKEN: False,
            Attribute.SIGN: True,
            Attribute.VERIFY: True,
        }
    )
    data = b"x" * 1000
    assert hmac_sign(key, data, alg) == hmac.new(value, data, hashlib.new(alg.value).name).digest()


def test_hmac_needs_a_generic_secret_that_may_sign(session: pkcs11.Session) -> None:
    with pytest.raises(WrongKeyType, match="GENERIC_SECRET"):
        hmac_sign(generate_aes(session, "aes-not-mac", token=False), b"x")
    verify_only = generate_hmac_key(session, "no-sign", usage=Usage.NONE, token=False)
    with pytest.raises(KeyCapabilityMissing, match="CKA_SIGN"):
        hmac_sign(verify_only, b"x")
    with pytest.raises(KeyCapabilityMissing, match="CKA_VERIFY"):
        hmac_verify(verify_only, b"x", bytes(32))


def test_short_key_for_hmac_sha384(session: pkcs11.Session) -> None:
    # SoftHSM refuses HMAC keys shorter than the digest (CKR_KEY_SIZE_RANGE).
    if not session.token.manufacturer_id.startswith("SoftHSM"):
        pytest.skip("SoftHSM-specific key-size rule")
    key = generate_hmac_key(session, "short", token=False)
    with pytest.raises(pkcs11.exceptions.KeySizeRange):
        hmac_sign(key, b"x", HashAlg.SHA384)
