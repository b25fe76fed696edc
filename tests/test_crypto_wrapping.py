"""Key wrapping: AES key wrap (RFC 3394), KWP (RFC 5649), RSA-OAEP; interop with `cryptography`."""

from __future__ import annotations

import os

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import KeyUnextractable

from labsupport.crypto import (
    KeyCapabilityMissing,
    SignatureScheme,
    Usage,
    WrapMechanism,
    WrongKeyType,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    check_value,
    generate_aes,
    generate_ec,
    sign,
    unwrap_key,
    verify,
    wrap_key,
)
from labsupport.crypto.keygen import KeySpec, generate_key_pair


@pytest.fixture(scope="module")
def kek(session: pkcs11.Session) -> pkcs11.SecretKey:
    return generate_aes(session, "kek", usage=Usage.WRAP, token=False)


def _known_kek(session: pkcs11.Session, value: bytes) -> pkcs11.SecretKey:
    return session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: value,
            Attribute.TOKEN: False,
            Attribute.WRAP: True,
            Attribute.UNWRAP: True,
        }
    )


def _kcv_outside(value: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(value), modes.ECB()).encryptor()
    return (encryptor.update(bytes(16)) + encryptor.finalize())[:3]


@pytest.mark.parametrize(
    ("how", "extra"), [(WrapMechanism.AES_KEY_WRAP, 8), (WrapMechanism.AES_KEY_WRAP_PAD, 8)]
)
def test_wrap_and_unwrap_aes_key(session, kek, how: WrapMechanism, extra: int) -> None:
    key = generate_aes(session, "data-key", token=False)
    blob = wrap_key(kek, key, how)
    assert len(blob) == 32 + extra
    copy = unwrap_key(
        kek,
        blob,
        object_class=ObjectClass.SECRET_KEY,
        key_type=KeyType.AES,
        label="data-key-copy",
        usage=Usage.ENCRYPT,
        how=how,
        token=False,
    )
    assert check_value(copy) == check_value(key)
    assert copy[Attribute.LOCAL] is False  # imported, not generated in this HSM
    assert key[Attribute.LOCAL] is True
    assert copy[Attribute.SENSITIVE] is True
    assert aes_gcm_decrypt(copy, aes_gcm_encrypt(key, b"same key")) == b"same key"


def test_kcv_is_the_classic_zero_block_check_value(session: pkcs11.Session) -> None:
    key = generate_aes(session, "kcv", token=False)
    assert check_value(key) == key[Attribute.CHECK_VALUE]  # SoftHSM stores the same 3 bytes
    value = os.urandom(32)
    known = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: value,
            Attribute.TOKEN: False,
            Attribute.ENCRYPT: True,
        }
    )
    assert check_value(known) == _kcv_outside(value)


def test_hsm_wrap_unwrapped_outside_with_cryptography(session: pkcs11.Session) -> None:
    kek_value = os.urandom(32)
    known = _known_kek(session, kek_value)
    key = generate_aes(session, "export-me", token=False)
    for how, unwrap in [
        (WrapMechanism.AES_KEY_WRAP, keywrap.aes_key_unwrap),
        (WrapMechanism.AES_KEY_WRAP_PAD, keywrap.aes_key_unwrap_with_padding),
    ]:
        value = unwrap(kek_value, wrap_key(known, key, how))
        assert len(value) == 32
        assert _kcv_outside(value) == check_value(key)


def test_key_wrapped_outside_imports_into_hsm(session: pkcs11.Session) -> None:
    kek_value, key_value = os.urandom(32), os.urandom(32)
    known = _known_kek(session, kek_value)
    blob = keywrap.aes_key_wrap_with_padding(kek_value, key_value)
    imported = unwrap_key(
        known,
        blob,
        object_class=ObjectClass.SECRET_KEY,
        key_type=KeyType.AES,
        label="byok",
        usage=Usage.ENCRYPT,
        token=False,
        extractable=False,
    )
    assert check_value(imported) == _kcv_outside(key_value)
    assert imported[Attribute.LOCAL] is False
    assert imported[Attribute.EXTRACTABLE] is False


def test_wrap_private_key_with_kwp(session, kek) -> None:
    pair = generate_ec(session, "movable-ec", token=False)
    blob = wrap_key(kek, pair.private, WrapMechanism.AES_KEY_WRAP_PAD)
    copy = unwrap_key(
        kek,
        blob,
        object_class=ObjectClass.PRIVATE_KEY,
        key_type=KeyType.EC,
        label="movable-ec-copy",
        usage=Usage.SIGN,
        token=False,
    )
    signature = sign(copy, b"signed by the copy", SignatureScheme.ECDSA_SHA256)
    assert verify(pair.public, b"signed by the copy", signature, SignatureScheme.ECDSA_SHA256)
    locked = generate_ec(session, "locked-ec", extractable=False, token=False)
    with pytest.raises(KeyUnextractable):
        wrap_key(kek, locked.private, WrapMechanism.AES_KEY_WRAP_PAD)


def test_non_extractable_key_cannot_be_wrapped(session, kek) -> None:
    locked = generate_aes(session, "never-leaves", extractable=False, token=False)
    with pytest.raises(KeyUnextractable):
        wrap_key(kek, locked)


def test_rsa_oaep_wraps_an_aes_key(session: pkcs11.Session) -> None:
    pair = generate_key_pair(session, KeySpec.RSA_2048, "rsa-wrap", usage=Usage.WRAP, token=False)
    key = generate_aes(session, "to-transport", token=False)
    blob = wrap_key(pair.public, key, WrapMechanism.RSA_OAEP)
    assert len(blob) == 256
    copy = unwrap_key(
        pair.private,
        blob,
        object_class=ObjectClass.SECRET_KEY,
        key_type=KeyType.AES,
        label="transported",
        usage=Usage.ENCRYPT,
        how=WrapMechanism.RSA_OAEP,
        token=False,
    )
    assert check_value(copy) == check_value(key)


def test_wrapping_key_checks(session, kek) -> None:
    plain = generate_aes(session, "encrypt-only", token=False)
    with pytest.raises(KeyCapabilityMissing, match="CKA_WRAP"):
        wrap_key(plain, kek)
    with pytest.raises(KeyCapabilityMissing, match="CKA_UNWRAP"):
        unwrap_key(
            plain,
            b"\0" * 40,
            object_class=ObjectClass.SECRET_KEY,
            key_type=KeyType.AES,
            label="x",
            usage=Usage.ENCRYPT,
        )
    with pytest.raises(WrongKeyType, match="RSA_OAEP wraps with RSA keys"):
        wrap_key(kek, plain, WrapMechanism.RSA_OAEP)
