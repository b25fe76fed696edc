"""The mechanisms of AWS CloudHSM's PKCS#11 library (Client SDK 5), as the lab offers them.

Source: AWS CloudHSM user guide, "Supported mechanisms for the PKCS #11 library for AWS
CloudHSM Client SDK 5" (pkcs11-mechanisms.html). The cluster slot advertises the
mechanisms on that page that the HSMs (SoftHSM 2.6) can run, and the cluster session
refuses every other mechanism with ``MechanismInvalid`` (CKR_MECHANISM_INVALID), as the
CloudHSM library does — even where SoftHSM could (DSA, DH, MD5, single DES, …).

On the page but not offered by the lab (SoftHSM 2.6 has no implementation; CloudHSM has):
``CKM_RSA_X9_31_KEY_PAIR_GEN``, ``CKM_ECDSA_SHA1`` … ``CKM_ECDSA_SHA512`` (hash in Python
and sign with ``CKM_ECDSA``), ``CKM_SP800_108_COUNTER_KDF``, ``CKM_RSA_AES_KEY_WRAP``
(lesson 05 composes it from RSA-OAEP and AES key wrap with padding) and the
vendor-defined ``CKM_CLOUDHSM_*`` wrap and GCM mechanisms.
"""

from __future__ import annotations

from typing import Any

from pkcs11 import Mechanism
from pkcs11 import exceptions as ckr
from pkcs11.defaults import DEFAULT_DERIVE_MECHANISMS

from labsupport.errors import LabError

_M = Mechanism
#: PKCS#11 3.0 values python-pkcs11 0.10 has no name for.
CKM_SP800_108_COUNTER_KDF = 0x3AC
CKM_RSA_AES_KEY_WRAP = 0x1054

#: Generate Key and Key Pair.
GENERATE = frozenset(
    {
        _M.RSA_PKCS_KEY_PAIR_GEN,
        _M.RSA_X9_31_KEY_PAIR_GEN,
        _M.EC_KEY_PAIR_GEN,
        _M.GENERIC_SECRET_KEY_GEN,
        _M.AES_KEY_GEN,
        _M.DES3_KEY_GEN,
    }
)
#: Sign and Verify (RSA, ECDSA, HMAC, CMAC).
SIGN = frozenset(
    {
        _M.RSA_X_509,
        _M.RSA_PKCS,
        _M.RSA_PKCS_PSS,
        _M.SHA1_RSA_PKCS,
        _M.SHA224_RSA_PKCS,
        _M.SHA256_RSA_PKCS,
        _M.SHA384_RSA_PKCS,
        _M.SHA512_RSA_PKCS,
        _M.SHA1_RSA_PKCS_PSS,
        _M.SHA224_RSA_PKCS_PSS,
        _M.SHA256_RSA_PKCS_PSS,
        _M.SHA384_RSA_PKCS_PSS,
        _M.SHA512_RSA_PKCS_PSS,
        _M.ECDSA,
        _M.ECDSA_SHA1,
        _M.ECDSA_SHA224,
        _M.ECDSA_SHA256,
        _M.ECDSA_SHA384,
        _M.ECDSA_SHA512,
        _M.SHA_1_HMAC,
        _M.SHA224_HMAC,
        _M.SHA256_HMAC,
        _M.SHA384_HMAC,
        _M.SHA512_HMAC,
        _M.AES_CMAC,
    }
)
#: Digest.
DIGEST = frozenset({_M.SHA_1, _M.SHA224, _M.SHA256, _M.SHA384, _M.SHA512})
#: Encrypt and Decrypt.
ENCRYPT = frozenset(
    {
        _M.RSA_X_509,
        _M.RSA_PKCS,
        _M.RSA_PKCS_OAEP,
        _M.AES_ECB,
        _M.AES_CTR,
        _M.AES_CBC,
        _M.AES_CBC_PAD,
        _M.AES_GCM,
        _M.DES3_CBC,
        _M.DES3_ECB,
        _M.DES3_CBC_PAD,
    }
)
#: Derive Key (ECDH with a KDF; SP800-108 counter KDF).
DERIVE = frozenset({_M.ECDH1_DERIVE, CKM_SP800_108_COUNTER_KDF})
#: Wrap and Unwrap.
WRAP = frozenset(
    {
        _M.RSA_PKCS,
        _M.RSA_PKCS_OAEP,
        CKM_RSA_AES_KEY_WRAP,
        _M.AES_KEY_WRAP,
        _M.AES_KEY_WRAP_PAD,
        _M.AES_GCM,
    }
)
#: Every mechanism of the Client SDK 5 page.
CLOUDHSM_MECHANISMS = GENERATE | SIGN | DIGEST | ENCRYPT | DERIVE | WRAP


class MechanismNotSupported(LabError, ckr.MechanismInvalid):
    """CloudHSM's PKCS#11 library does not offer this mechanism (CKR_MECHANISM_INVALID)."""


def require(mechanism: Any, allowed: frozenset, operation: str) -> None:
    """Raise :class:`MechanismNotSupported` unless ``mechanism`` (None: the default) is allowed."""
    if mechanism is None or mechanism in allowed:
        return
    try:
        name = f"CKM_{Mechanism(mechanism).name}"
    except ValueError:
        name = hex(int(mechanism))
    raise MechanismNotSupported(
        f"{name} is not a {operation} mechanism of AWS CloudHSM's PKCS#11 library "
        "(CKR_MECHANISM_INVALID).",
        "Use a mechanism listed by client.token.slot.get_mechanisms() — see AWS's "
        '"Supported mechanisms for the PKCS #11 library" page.',
    )


def derive_mechanism(mechanism: Any, key_type: Any) -> Any:
    """The mechanism python-pkcs11 uses to derive from a ``key_type`` key (its default)."""
    return mechanism if mechanism is not None else DEFAULT_DERIVE_MECHANISMS.get(key_type)


__all__ = [
    "CLOUDHSM_MECHANISMS",
    "DERIVE",
    "DIGEST",
    "ENCRYPT",
    "GENERATE",
    "SIGN",
    "WRAP",
    "MechanismNotSupported",
    "derive_mechanism",
    "require",
]
