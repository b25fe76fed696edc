"""The recipes other layers share: one RSA-AES wrap, one OAEP probe, one KCV, one curve table.

Each test crosses the places that used to hold their own copy: what one side makes, the
other side must open.
"""

from __future__ import annotations

import os

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport.crypto import KeyNotExtractable, Usage, check_value, generate_aes
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.interop import import_public_key
from labsupport.crypto.kcv import hsm_kcv, kcv
from labsupport.crypto.keygen import Curve, KeySpec, curve_name, generate_key_pair
from labsupport.crypto.oaep import oaep_hashes
from labsupport.crypto.signatures import ecdsa_der_to_raw, ecdsa_raw_to_der
from labsupport.crypto.wrapping import (
    rsa_aes_unwrap,
    rsa_aes_unwrap_in_hsm,
    rsa_aes_wrap,
    rsa_aes_wrap_in_hsm,
)
from labsupport.crypto.x509 import token_private_key
from labsupport.errors import LabError
from labsupport.kms.wrapping import UnwrapError, unwrap_key_material


def test_rsa_aes_outside_round_trip_and_damage() -> None:
    private = rsa.generate_private_key(65537, 2048)
    material = os.urandom(1200)
    blob = rsa_aes_wrap(private.public_key(), material, HashAlg.SHA256)
    assert len(blob) > 256 and rsa_aes_unwrap(private, blob, HashAlg.SHA256) == material
    with pytest.raises(ValueError, match="only 256 bytes"):
        rsa_aes_unwrap(private, blob[:256], HashAlg.SHA256)
    damaged = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ValueError):
        rsa_aes_unwrap(private, damaged, HashAlg.SHA256)
    with pytest.raises(UnwrapError):  # the KMS simulator reports the same as its own error
        unwrap_key_material(private, damaged, "RSA_AES_KEY_WRAP_SHA_256")


def test_rsa_aes_in_hsm_opens_outside_and_back(session: pkcs11.Session) -> None:
    accepted = oaep_hashes(session)
    assert accepted, "the token accepts RSA-OAEP with some hash"
    alg = accepted[0]
    outside = rsa.generate_private_key(65537, 2048)
    wrapping = import_public_key(session, outside.public_key(), "kms-like", usage=Usage.WRAP)
    target = generate_aes(session, "to-export", token=False)
    try:
        blob = rsa_aes_wrap_in_hsm(wrapping, target, alg)
        material = rsa_aes_unwrap(outside, blob, alg)
        assert kcv(material) == hsm_kcv(target)
        pair = generate_key_pair(
            session, KeySpec.RSA_2048, "rsa-aes-in", usage=Usage.WRAP, token=False
        )
        back = rsa_aes_unwrap_in_hsm(
            pair.private,
            rsa_aes_wrap(_public(pair.public), material, alg),
            alg,
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            label="came-back",
            usage=Usage.ENCRYPT,
            token=False,
            extractable=False,
        )
        assert check_value(back) == check_value(target) == kcv(material)
        assert not back[Attribute.LOCAL] and not back[Attribute.EXTRACTABLE]
        with pytest.raises(ValueError):
            rsa_aes_unwrap_in_hsm(
                pair.private,
                blob[:10],
                alg,
                ObjectClass.SECRET_KEY,
                KeyType.AES,
                label="x",
                usage=Usage.ENCRYPT,
                token=False,
                extractable=False,
            )
    finally:
        wrapping.destroy()


def _public(key: pkcs11.PublicKey) -> rsa.RSAPublicKey:
    from labsupport.crypto.interop import to_cryptography

    public = to_cryptography(key)
    assert isinstance(public, rsa.RSAPublicKey)
    return public


def test_one_oaep_answer_for_every_operation(session: pkcs11.Session) -> None:
    both = generate_key_pair(
        session, KeySpec.RSA_2048, "oaep-all", usage=Usage.ENCRYPT | Usage.WRAP, token=False
    )
    wrap_only = generate_key_pair(
        session, KeySpec.RSA_2048, "oaep-wrap", usage=Usage.WRAP, token=False
    )
    answers = {
        oaep_hashes(session),
        oaep_hashes(both.public),
        oaep_hashes(both.private),
        oaep_hashes(wrap_only.public),
        oaep_hashes(wrap_only.private),
    }
    assert len(answers) == 1 and HashAlg.SHA1 in answers.pop()
    signer = generate_key_pair(session, KeySpec.EC_P256, "not-for-oaep", token=False)
    with pytest.raises(ValueError, match="encrypt, decrypt, wrap or unwrap"):
        oaep_hashes(signer.public)


def test_check_value_without_encrypt_uses_the_stored_value(session: pkcs11.Session) -> None:
    wrap_only = generate_aes(session, "kcv-wrap-only", usage=Usage.WRAP, token=False)
    stored = bytes(wrap_only[Attribute.CHECK_VALUE] or b"")
    assert check_value(wrap_only) == (stored or None)
    hmac_key = generate_key_pair(session, KeySpec.EC_P256, "no-kcv", token=False).private
    assert check_value(hmac_key) is None


@pytest.mark.parametrize("curve", list(Curve))
def test_curve_table(curve: Curve) -> None:
    assert Curve.from_ec_params(curve.ec_params) is curve
    assert curve_name(curve.ec_params) == curve.value == curve.cryptography().name
    assert curve.field_bytes * 8 >= curve.bits


def test_ecdsa_encoding_keeps_field_length_for_short_r_and_s() -> None:
    raw = bytes(2) + os.urandom(30) + bytes(1) + b"\x01" + os.urandom(30)
    der = ecdsa_raw_to_der(raw)
    assert ecdsa_der_to_raw(der, 32) == raw
    with pytest.raises(ValueError):
        ecdsa_der_to_raw(der, 16)


def test_token_adapter_signs_with_every_table_hash(session: pkcs11.Session) -> None:
    pair = generate_key_pair(session, KeySpec.EC_P256, "adapter-ec", token=False)
    signer = token_private_key(pair.private)
    for algorithm in (hashes.SHA224(), hashes.SHA256(), hashes.SHA512()):
        signature = signer.sign(b"data", ec.ECDSA(algorithm))
        signer.public_key().verify(signature, b"data", ec.ECDSA(algorithm))
    with pytest.raises(KeyNotExtractable) as info:
        signer.private_numbers()
    assert isinstance(info.value, LabError)
    assert isinstance(info.value, pkcs11.exceptions.KeyUnextractable)
    rsa_signer = token_private_key(
        generate_key_pair(session, KeySpec.RSA_2048, "adapter-rsa", token=False).private
    )
    for algorithm in (hashes.SHA224(), hashes.SHA384()):
        signature = rsa_signer.sign(b"data", padding.PKCS1v15(), algorithm)
        rsa_signer.public_key().verify(signature, b"data", padding.PKCS1v15(), algorithm)
    with pytest.raises(ValueError, match="not supported"):
        rsa_signer.sign(b"data", padding.PKCS1v15(), hashes.SHA3_256())
