"""RSA-PSS, RSA PKCS#1 v1.5 and ECDSA signatures: in the HSM, verified by `cryptography`."""

from __future__ import annotations

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pkcs11 import Mechanism

from labsupport.crypto import (
    Curve,
    KeyCapabilityMissing,
    KeyPair,
    SignatureScheme,
    Usage,
    WrongKeyType,
    generate_ec,
    sign,
    signing_plan,
    to_cryptography,
    verify,
    verify_outside,
)
from labsupport.crypto.signatures import Family, ecdsa_der_to_raw, ecdsa_raw_to_der

MESSAGE = b"release-1.0.tar.gz: the bytes we sign"


@pytest.fixture(scope="module")
def ec_pairs(session: pkcs11.Session) -> dict[Curve, KeyPair]:
    return {curve: generate_ec(session, f"ec-{curve.name}", curve, token=False) for curve in Curve}


def _pair_for(scheme: SignatureScheme, rsa_pair: KeyPair, ec_pairs: dict[Curve, KeyPair]):
    if scheme.family is not Family.ECDSA:
        return rsa_pair
    return ec_pairs[Curve.P384 if scheme is SignatureScheme.ECDSA_SHA384 else Curve.P256]


@pytest.mark.parametrize("client_hash", [None, True, False])
@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_sign_in_hsm_verify_in_hsm_and_outside(
    session: pkcs11.Session, rsa_pair, ec_pairs, scheme: SignatureScheme, client_hash
) -> None:
    mechanisms = set(session.token.slot.get_mechanisms())
    if client_hash is False and scheme.combined_mechanism not in mechanisms:
        pytest.skip(f"token lacks CKM_{scheme.combined_mechanism.name}")
    pair = _pair_for(scheme, rsa_pair, ec_pairs)
    signature = sign(pair.private, MESSAGE, scheme, client_hash=client_hash)
    assert verify(pair.public, MESSAGE, signature, scheme)
    assert verify_outside(pair.public, MESSAGE, signature, scheme)
    # any change to the message breaks both checks
    assert not verify(pair.public, MESSAGE + b"!", signature, scheme)
    assert not verify_outside(pair.public, MESSAGE + b"!", signature, scheme)


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_hash_path_does_not_change_validity(session, rsa_pair, ec_pairs, scheme) -> None:
    # A signature made with the client-side-hash path verifies with the default path.
    pair = _pair_for(scheme, rsa_pair, ec_pairs)
    signature = sign(pair.private, MESSAGE, scheme, client_hash=True)
    assert verify(pair.public, MESSAGE, signature, scheme, client_hash=None)


def test_pkcs1v15_is_deterministic_pss_is_not(rsa_pair) -> None:
    one = sign(rsa_pair.private, MESSAGE, SignatureScheme.RSA_PKCS1V15_SHA256)
    two = sign(rsa_pair.private, MESSAGE, SignatureScheme.RSA_PKCS1V15_SHA256)
    assert one == two
    three = sign(rsa_pair.private, MESSAGE, SignatureScheme.RSA_PSS_SHA256)
    four = sign(rsa_pair.private, MESSAGE, SignatureScheme.RSA_PSS_SHA256)
    assert three != four  # random salt
    assert len(one) == len(three) == 256


def test_ecdsa_plan_follows_the_mechanism_list(session: pkcs11.Session) -> None:
    plan = signing_plan(session, SignatureScheme.ECDSA_SHA256)
    has_combined = Mechanism.ECDSA_SHA256 in set(session.token.slot.get_mechanisms())
    assert plan.client_hashes is (not has_combined)
    if not has_combined:  # SoftHSM 2.6.1
        assert plan.mechanism is Mechanism.ECDSA
        assert "lacks CKM_ECDSA_SHA256" in str(plan)
    rsa_plan = signing_plan(session, SignatureScheme.RSA_PSS_SHA256)
    assert rsa_plan.mechanism is Mechanism.SHA256_RSA_PKCS_PSS and not rsa_plan.client_hashes


def test_ecdsa_signature_is_der_and_converts(ec_pairs) -> None:
    pair = ec_pairs[Curve.P256]
    der = sign(pair.private, MESSAGE, SignatureScheme.ECDSA_SHA256)
    r, s = decode_dss_signature(der)  # parses as DER SEQUENCE {r, s}
    assert s > 0
    raw = ecdsa_der_to_raw(der, 32)
    assert len(raw) == 64 and int.from_bytes(raw[:32], "big") == r
    assert ecdsa_raw_to_der(raw) == der
    with pytest.raises(ValueError):
        ecdsa_raw_to_der(b"odd")
    public = to_cryptography(pair.public)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert not verify(pair.public, MESSAGE, b"\x30\x00", SignatureScheme.ECDSA_SHA256)


def test_wrong_key_for_scheme(rsa_pair, ec_pairs) -> None:
    with pytest.raises(WrongKeyType, match="needs an RSA private key"):
        sign(ec_pairs[Curve.P256].private, MESSAGE, SignatureScheme.RSA_PSS_SHA256)
    with pytest.raises(WrongKeyType, match="needs an EC private key"):
        sign(rsa_pair.private, MESSAGE, SignatureScheme.ECDSA_SHA256)
    with pytest.raises(WrongKeyType, match="public key"):
        verify(rsa_pair.private, MESSAGE, b"", SignatureScheme.RSA_PSS_SHA256)


def test_key_without_sign_usage(session: pkcs11.Session) -> None:
    pair = generate_ec(session, "derive-only", usage=Usage.DERIVE, token=False)
    with pytest.raises(KeyCapabilityMissing, match="CKA_SIGN attribute is false") as info:
        sign(pair.private, MESSAGE, SignatureScheme.ECDSA_SHA256)
    assert "usage=" in info.value.fix
    with pytest.raises(KeyCapabilityMissing, match="CKA_VERIFY"):
        verify(pair.public, MESSAGE, b"", SignatureScheme.ECDSA_SHA256)


def test_scheme_metadata() -> None:
    assert SignatureScheme.RSA_PSS_SHA384.pss_params == (
        Mechanism.SHA384,
        pkcs11.MGF.SHA384,
        48,
    )
    assert SignatureScheme.ECDSA_SHA256.pss_params is None
    assert SignatureScheme.ECDSA_SHA256.cryptography_padding() is None
    assert "rsa_padding_mode:pss" in SignatureScheme.RSA_PSS_SHA256.openssl_options()
    assert SignatureScheme.RSA_PKCS1V15_SHA256.openssl_options() == []
