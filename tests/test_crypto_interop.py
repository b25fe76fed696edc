"""Public keys out of the HSM; private keys that cannot leave, and the errors that say so."""

from __future__ import annotations

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute
from pkcs11.exceptions import AttributeReadOnly, AttributeSensitive

from labsupport.crypto import (
    Curve,
    SignatureScheme,
    exportability,
    generate_aes,
    generate_ec,
    public_key_pem,
    sign,
    to_cryptography,
    verify_outside,
)
from labsupport.crypto.interop import export_private_key
from labsupport.crypto.keygen import KeySpec, Usage, generate_key_pair, key_template


def test_rsa_public_key_matches_token_attributes(rsa_pair) -> None:
    public = to_cryptography(rsa_pair.public)
    assert isinstance(public, rsa.RSAPublicKey)
    numbers = public.public_numbers()
    assert numbers.n == int.from_bytes(rsa_pair.public[Attribute.MODULUS], "big")
    assert numbers.e == 65537
    pem = public_key_pem(rsa_pair.public)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert serialization.load_pem_public_key(pem).public_numbers() == numbers
    assert public_key_pem(public) == pem  # a cryptography key works too


@pytest.mark.parametrize("curve", list(Curve))
def test_ec_public_key_curve(session: pkcs11.Session, curve: Curve) -> None:
    pair = generate_ec(session, "ec-out", curve, token=False)
    public = to_cryptography(pair.public)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == curve.value


def test_exported_public_key_verifies_without_the_hsm(rsa_pair) -> None:
    signature = sign(rsa_pair.private, b"doc", SignatureScheme.RSA_PKCS1V15_SHA256)
    pem = public_key_pem(rsa_pair.public)
    outside = serialization.load_pem_public_key(pem)  # e.g. on another machine
    assert verify_outside(outside, b"doc", signature, SignatureScheme.RSA_PKCS1V15_SHA256)
    assert not verify_outside(outside, b"doc", signature, SignatureScheme.RSA_PSS_SHA256)
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not verify_outside(ec_key, b"doc", signature, SignatureScheme.RSA_PKCS1V15_SHA256)


def test_exportability_verdicts(session: pkcs11.Session) -> None:
    wrapped_only = exportability(generate_aes(session, "backup-able", token=False))
    assert wrapped_only.wrappable and not wrapped_only.readable_in_plaintext
    assert "CAN leave the HSM wrapped" in str(wrapped_only)
    locked = exportability(generate_aes(session, "locked", extractable=False, token=False))
    assert not locked.wrappable and locked.never_extractable
    assert "never leaves this HSM" in str(locked)


@pytest.mark.parametrize("spec", [KeySpec.RSA_2048, KeySpec.EC_P256])
def test_private_key_export_fails_with_attribute_sensitive(
    session: pkcs11.Session, spec: KeySpec
) -> None:
    pair = generate_key_pair(session, spec, "no-export", extractable=False, token=False)
    with pytest.raises(AttributeSensitive):
        export_private_key(pair.private)


def test_extractable_cannot_be_switched_back_on(session: pkcs11.Session) -> None:
    key = generate_aes(session, "one-way", extractable=False, token=False)
    with pytest.raises(AttributeReadOnly):
        key[Attribute.EXTRACTABLE] = True


def test_a_non_sensitive_key_really_is_readable(session: pkcs11.Session) -> None:
    # The contrast that shows the check above can fail: CKA_SENSITIVE false = exportable.
    template = key_template(
        pkcs11.ObjectClass.PRIVATE_KEY, label="weak", usage=Usage.SIGN, token=False
    )
    template[Attribute.SENSITIVE] = False
    params = session.create_domain_parameters(
        pkcs11.KeyType.EC,
        {Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters("secp256r1")},
        local=True,
    )
    public, private = params.generate_keypair(private_template=template)
    assert not exportability(private).sensitive
    exported = export_private_key(private)
    assert isinstance(exported, ec.EllipticCurvePrivateKey)
    assert exported.public_key().public_numbers() == to_cryptography(public).public_numbers()
