"""Client SDK fidelity: the cluster session reports what a PKCS#11 token would."""

from __future__ import annotations

import hashlib

import pytest
from client_fixtures import lab
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

_FIXTURES = (lab,)  # pytest fixtures used as test arguments


def _partner_public_key(private: ec.EllipticCurvePrivateKey) -> dict[Attribute, object]:
    """Template of a partner's EC P-256 public key (made outside the HSMs)."""
    numbers = private.public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    return {
        Attribute.CLASS: ObjectClass.PUBLIC_KEY,
        Attribute.KEY_TYPE: KeyType.EC,
        Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
        Attribute.EC_POINT: b"\x04\x41" + point,
        Attribute.VERIFY: True,
        Attribute.LABEL: "partner",
    }


@pytest.mark.parametrize("store", [False, True])
def test_import_public_key(lab, store):
    """A partner's public key imports on a cluster session (no CKA_EXTRACTABLE added)."""
    partner = ec.generate_private_key(ec.SECP256R1())
    session = lab.login("alice")
    key = session.create_object({**_partner_public_key(partner), Attribute.TOKEN: store})
    assert key[Attribute.CLASS] == ObjectClass.PUBLIC_KEY
    assert key.label == "partner"
    assert key.is_token_key is store
    assert len(key.hsms) == (2 if store else 1)
    der = partner.sign(b"order 66", ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    digest = hashlib.sha256(b"order 66").digest()
    assert key.verify(digest, raw, mechanism=Mechanism.ECDSA)
    assert not key.verify(hashlib.sha256(b"order 67").digest(), raw, mechanism=Mechanism.ECDSA)
    session.close()
