"""Key generation with CloudHSM-like templates, token vs session keys, find and delete."""

from __future__ import annotations

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from crypto_fixtures import TOKEN
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import ObjectHandleInvalid

from labsupport.crypto import (
    Curve,
    KeyNotFound,
    KeySpec,
    Usage,
    delete_key,
    find_key,
    find_key_pair,
    find_keys,
    generate_aes,
    generate_ec,
    generate_hmac_key,
    generate_key_pair,
    generate_rsa,
    generate_secret_key,
)
from labsupport.crypto.keygen import key_template


@pytest.mark.parametrize(
    ("spec", "key_type", "length"),
    [
        (KeySpec.AES_128, KeyType.AES, 16),
        (KeySpec.AES_256, KeyType.AES, 32),
        (KeySpec.HMAC_256, KeyType.GENERIC_SECRET, 32),
    ],
)
def test_secret_keys_have_cloudhsm_like_attributes(
    session: pkcs11.Session, spec: KeySpec, key_type: KeyType, length: int
) -> None:
    key = generate_secret_key(session, spec, f"k-{spec.name}", token=False)
    attrs = key.get_attributes(
        [
            Attribute.KEY_TYPE,
            Attribute.VALUE_LEN,
            Attribute.SENSITIVE,
            Attribute.EXTRACTABLE,
            Attribute.PRIVATE,
            Attribute.LOCAL,
            Attribute.TOKEN,
            Attribute.KEY_GEN_MECHANISM,
        ]
    )
    assert attrs[Attribute.KEY_TYPE] is key_type
    assert attrs[Attribute.VALUE_LEN] == length
    assert attrs[Attribute.SENSITIVE] is True
    assert attrs[Attribute.EXTRACTABLE] is True  # CloudHSM's default, set explicitly
    assert attrs[Attribute.PRIVATE] is True
    assert attrs[Attribute.LOCAL] is True
    assert attrs[Attribute.TOKEN] is False
    assert attrs[Attribute.KEY_GEN_MECHANISM] is spec.mechanism
    assert len(key.id) == 8


def test_default_usage_is_one_purpose(session: pkcs11.Session) -> None:
    aes = generate_aes(session, "aes-default", token=False)
    assert (aes[Attribute.ENCRYPT], aes[Attribute.DECRYPT]) == (True, True)
    assert (aes[Attribute.SIGN], aes[Attribute.WRAP], aes[Attribute.UNWRAP]) == (False,) * 3
    mac = generate_hmac_key(session, "hmac-default", token=False)
    assert (mac[Attribute.SIGN], mac[Attribute.VERIFY], mac[Attribute.ENCRYPT]) == (
        True,
        True,
        False,
    )


def test_usage_flags_map_to_attributes(session: pkcs11.Session) -> None:
    kek = generate_aes(session, "kek", usage=Usage.WRAP, token=False)
    assert (kek[Attribute.WRAP], kek[Attribute.UNWRAP], kek[Attribute.ENCRYPT]) == (
        True,
        True,
        False,
    )


@pytest.mark.parametrize(("spec", "bits"), [(KeySpec.RSA_2048, 2048), (KeySpec.RSA_3072, 3072)])
def test_rsa_pairs(session: pkcs11.Session, spec: KeySpec, bits: int) -> None:
    pair = generate_key_pair(session, spec, f"rsa-{bits}", token=False)
    assert pair.public[Attribute.MODULUS_BITS] == bits
    assert pair.public[Attribute.PUBLIC_EXPONENT] == b"\x01\x00\x01"
    assert pair.public.id == pair.private.id == pair.id
    assert pair.label == f"rsa-{bits}"
    assert pair.private[Attribute.SIGN] is True
    assert pair.private[Attribute.DECRYPT] is False  # default usage: signing only
    assert pair.public[Attribute.PRIVATE] is False
    assert pair.private[Attribute.SENSITIVE] is True


@pytest.mark.parametrize("curve", [Curve.P256, Curve.P384, "secp384r1"])
def test_ec_pairs(session: pkcs11.Session, curve: Curve | str) -> None:
    pair = generate_ec(session, "ec", curve, token=False)
    expected = Curve(curve) if isinstance(curve, str) else curve
    assert pair.private[Attribute.KEY_TYPE] is KeyType.EC
    point = pair.public[Attribute.EC_POINT]
    # DER OCTET STRING around an uncompressed point 04 || X || Y
    assert len(point) == 2 + 1 + 2 * expected.bits // 8
    public, private = pair  # unpacks like python-pkcs11's tuple
    assert public == pair.public and private == pair.private


def test_helpers_reject_wrong_sizes_and_kinds(session: pkcs11.Session) -> None:
    with pytest.raises(ValueError, match="128 or 256"):
        generate_aes(session, "x", 192)
    with pytest.raises(ValueError, match="2048 or 3072"):
        generate_rsa(session, "x", 1024)
    with pytest.raises(ValueError, match="generate_key_pair"):
        generate_secret_key(session, KeySpec.RSA_2048, "x")
    with pytest.raises(ValueError, match="generate_secret_key"):
        generate_key_pair(session, KeySpec.AES_256, "x")


def test_non_extractable_key_is_never_extractable(session: pkcs11.Session) -> None:
    key = generate_aes(session, "locked", extractable=False, token=False)
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.NEVER_EXTRACTABLE] is True
    assert key[Attribute.ALWAYS_SENSITIVE] is True


def test_template_sets_every_security_attribute() -> None:
    secret = key_template(ObjectClass.SECRET_KEY, label="t", usage=Usage.ENCRYPT)
    for attr in (Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.EXTRACTABLE):
        assert attr in secret
    for attr in (Attribute.SIGN, Attribute.VERIFY, Attribute.WRAP, Attribute.UNWRAP):
        assert secret[attr] is False
    public = key_template(ObjectClass.PUBLIC_KEY, label="t", usage=Usage.SIGN)
    assert public[Attribute.VERIFY] is True and public[Attribute.PRIVATE] is False
    assert Attribute.SENSITIVE not in public and Attribute.SIGN not in public


def test_session_key_vanishes_with_its_session(store, session: pkcs11.Session) -> None:
    other = store.open_session(TOKEN)  # shares the login; closing it does not log out
    generate_aes(other, "short-lived", token=False)
    generate_aes(other, "long-lived", token=True)
    assert find_key(session, label="short-lived")  # visible across this app's sessions
    other.close()
    with pytest.raises(KeyNotFound, match="session key"):
        find_key(session, label="short-lived")
    assert find_key(session, label="long-lived")[Attribute.TOKEN] is True


def test_find_by_label_and_id(session: pkcs11.Session) -> None:
    key = generate_aes(session, "findme", token=False, key_id=b"\x04\x04")
    assert find_key(session, key_id=b"\x04\x04") == key
    assert find_key(session, label="findme", key_type=KeyType.AES) == key
    assert find_keys(session, label="nothing-here") == []
    with pytest.raises(KeyNotFound, match="No key with label='nothing-here'"):
        find_key(session, label="nothing-here")
    with pytest.raises(ValueError):
        find_key(session)


def test_pairs_share_label_so_find_needs_a_class(session: pkcs11.Session, rsa_pair) -> None:
    with pytest.raises(KeyNotFound, match="2 keys match") as info:
        find_key(session, label="test-rsa")
    assert "object_class" in info.value.fix
    found = find_key_pair(session, "test-rsa")
    assert found.private == rsa_pair.private and found.public == rsa_pair.public
    assert find_key(session, label="test-rsa", object_class=ObjectClass.PUBLIC_KEY) == (
        rsa_pair.public
    )


def test_deleted_key_handle_is_invalid(session: pkcs11.Session) -> None:
    key = generate_aes(session, "doomed", token=False)
    delete_key(key)
    with pytest.raises(ObjectHandleInvalid):
        key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB)
    assert find_keys(session, label="doomed") == []


def test_delete_pair_removes_both_halves(session: pkcs11.Session) -> None:
    pair = generate_ec(session, "ec-doomed", token=False)
    delete_key(pair)
    assert find_keys(session, label="ec-doomed") == []
