"""HMAC inside the HSM (CKM_SHA256_HMAC with a generic-secret key).

An HMAC key is a shared secret: whoever verifies needs the same key, so both sides must
be HSM users (or the key must be exported wrapped). CloudHSM limits the data size of an
HMAC call (the client does not hash HMAC input locally as it does for signatures); keep
messages small or MAC a digest you computed. SoftHSM refuses an HMAC key shorter than the
digest (``KeySizeRange``): the lab's 256-bit HMAC keys do HMAC-SHA256, not SHA-384.
"""

from __future__ import annotations

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import SignatureInvalid, SignatureLenRange

from labsupport.crypto.checks import require_capability, require_key_type
from labsupport.crypto.hashes import HashAlg

HMAC_KEY_TYPES = (KeyType.GENERIC_SECRET,)


def hmac_sign(key: pkcs11.SecretKey, data: bytes, hash: HashAlg = HashAlg.SHA256) -> bytes:
    """Compute HMAC-``hash`` of ``data`` in the HSM (the tag is ``hash.digest_size`` bytes)."""
    require_key_type(key, HMAC_KEY_TYPES, "HMAC", ObjectClass.SECRET_KEY)
    require_capability(key, Attribute.SIGN, "compute an HMAC (sign)")
    return key.sign(data, mechanism=hash.hmac_mechanism)


def hmac_verify(
    key: pkcs11.SecretKey, data: bytes, tag: bytes, hash: HashAlg = HashAlg.SHA256
) -> bool:
    """Check an HMAC tag in the HSM (constant-time inside the token); True if it matches."""
    require_key_type(key, HMAC_KEY_TYPES, "HMAC", ObjectClass.SECRET_KEY)
    require_capability(key, Attribute.VERIFY, "verify an HMAC")
    try:
        return key.verify(data, tag, mechanism=hash.hmac_mechanism)
    except (SignatureInvalid, SignatureLenRange):
        return False
