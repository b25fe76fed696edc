"""AES-GCM encryption the CloudHSM way: the HSM generates the IV, not the caller.

AWS CloudHSM's PKCS#11 library, for ``C_Encrypt`` with ``CKM_AES_GCM``: the HSM ignores
the IV in the request, generates a 12-byte IV itself and writes it into the buffer that the
``pIv`` of your ``CK_GCM_PARAMS`` points to; you store that IV with the ciphertext and pass
it to decrypt (AWS CloudHSM user guide, "Supported mechanisms for the PKCS #11 library",
AES-GCM annotation). A reused IV is GCM's worst mistake, so CloudHSM does not let the
application choose it.

SoftHSM uses whatever IV it is given, so the cluster layer — which plays the HSMs'
firmware here — makes the IV (from the operating system's CSPRNG, ``os.urandom``; a real
HSM uses its own RNG) and runs SoftHSM with it. With python-pkcs11, ``GCMParams.nonce`` is
that buffer: the library writes into the object you passed. Python ``bytes`` are immutable
(and may be shared by other code), so the lab refuses them with CKR_MECHANISM_PARAM_INVALID
and asks for a writable 12-byte ``bytearray`` — ``GCMParams(bytearray(12), aad)`` — which
holds the HSM's IV after the call. Decryption takes the IV as usual.
"""

from __future__ import annotations

import os
from typing import Any

from pkcs11 import Mechanism
from pkcs11 import exceptions as ckr
from pkcs11.mechanisms import GCMParams

from labsupport.errors import LabError

#: The IV length CloudHSM generates for AES-GCM (96 bits, GCM's standard IV size).
GCM_IV_BYTES = 12
AES_GCM = Mechanism.AES_GCM


class GcmIvRefused(LabError, ckr.MechanismParamInvalid):
    """AES-GCM encryption with an IV CloudHSM cannot write into (CKR_MECHANISM_PARAM_INVALID)."""


def write_hsm_iv(param: Any) -> GCMParams:
    """Write a fresh HSM-generated IV into ``param.nonce`` and return ``param`` to run with.

    As CloudHSM writes into ``pIv``: the 12 bytes come from the operating system's CSPRNG
    and replace whatever the caller put there, and python-pkcs11 passes the same
    ``bytearray`` to SoftHSM as the IV (it takes a writable buffer as well as ``bytes``), so
    the caller's parameters — AAD and tag length included — run unchanged.
    Raises :class:`GcmIvRefused` when ``param`` has no writable 12-byte buffer.
    """
    nonce = getattr(param, "nonce", None)
    if (
        type(nonce) is not bytearray
        or len(nonce) != GCM_IV_BYTES
        or not isinstance(param, GCMParams)
    ):
        raise _refused(param, nonce)
    nonce[:] = os.urandom(GCM_IV_BYTES)
    return param


def _refused(param: Any, nonce: Any) -> GcmIvRefused:
    if not isinstance(param, GCMParams):
        what = "no GCMParams" if param is None else f"a {type(param).__name__}, not GCMParams"
    elif isinstance(nonce, bytearray):
        what = f"an IV buffer of {len(nonce)} bytes, not {GCM_IV_BYTES}"
    else:
        what = f"an IV of type {type(nonce).__name__}, which the HSM cannot write into"
    return GcmIvRefused(
        f"AES-GCM encryption got {what} (CKR_MECHANISM_PARAM_INVALID). On AWS CloudHSM the "
        f"HSM generates the {GCM_IV_BYTES}-byte IV itself — it ignores an IV you choose — "
        "and writes it into the IV buffer of your CK_GCM_PARAMS.",
        "Pass a writable, zeroed buffer and read the IV from it afterwards: "
        "params = GCMParams(bytearray(12), aad); ciphertext = key.encrypt(data, "
        "mechanism=Mechanism.AES_GCM, mechanism_param=params); iv = bytes(params.nonce). "
        "Or use labsupport.crypto.aes_gcm_encrypt(key, data, aad), which returns the IV.",
    )


__all__ = ["AES_GCM", "GCM_IV_BYTES", "GcmIvRefused", "write_hsm_iv"]
