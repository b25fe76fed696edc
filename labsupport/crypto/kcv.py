"""Key check values (KCV): three bytes that tell two copies of a key apart without revealing it.

After an import you want proof that the HSM now holds *the* key you sent, not some other
key. Both sides compute a short checksum from the key and compare. A KCV is computed by
encrypting a block of zeros under the key and keeping the first 3 bytes; 3 bytes can't
be used to recover the key, but two different keys almost never share them.

Two methods are in use, and they give different answers for the same key — always say
which one you mean:

``KcvMethod.AES_ECB``
    First 3 bytes of AES-ECB(key, 16 zero bytes). **This is what AWS CloudHSM uses** for
    the ``check-value`` attribute of symmetric keys (``key list --verbose`` in CloudHSM
    CLI; CKA_CHECK_VALUE in PKCS#11), and what SoftHSM stores for keys it generates. (For
    asymmetric key pairs CloudHSM uses the first 3 bytes of a SHA-1 hash of the public
    key; HMAC keys have no KCV.)
``KcvMethod.AES_CMAC``
    First 3 bytes of AES-CMAC(key, 16 zero bytes): the method of ANSI X9.24-1 and TR-31
    key blocks, used for AES keys by payment HSMs and AWS Payment Cryptography.

:func:`kcv` computes a KCV outside the HSM from the key material you hold;
:func:`hsm_kcv` asks the HSM for the same value for a key that lives inside it.
"""

from __future__ import annotations

import enum

import pkcs11
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from pkcs11 import Attribute, KeyType, Mechanism

from labsupport.crypto.checks import CryptoLabError, key_label

#: A KCV is this many bytes long (CloudHSM's ``check-value``, and most HSMs').
KCV_BYTES = 3
_ZERO_BLOCK = bytes(16)


class KcvMethod(enum.Enum):
    """How a KCV is computed from an AES key (see the module docstring)."""

    AES_ECB = "AES-ECB of a zero block (CloudHSM check-value)"
    AES_CMAC = "AES-CMAC of a zero block (X9.24-1 / TR-31)"


class KcvUnavailable(CryptoLabError):
    """The HSM cannot compute this key's KCV (wrong key type, or usage not allowed)."""


def kcv(material: bytes, method: KcvMethod = KcvMethod.AES_ECB) -> bytes:
    """The 3-byte KCV of AES key ``material`` (16, 24 or 32 bytes), computed in Python."""
    if len(material) not in (16, 24, 32):
        raise ValueError("a KCV here is computed for AES keys of 16, 24 or 32 bytes")
    if method is KcvMethod.AES_ECB:
        encryptor = Cipher(algorithms.AES(material), modes.ECB()).encryptor()
        return (encryptor.update(_ZERO_BLOCK) + encryptor.finalize())[:KCV_BYTES]
    mac = CMAC(algorithms.AES(material))
    mac.update(_ZERO_BLOCK)
    return mac.finalize()[:KCV_BYTES]


def hsm_kcv(key: pkcs11.SecretKey, method: KcvMethod = KcvMethod.AES_ECB) -> bytes:
    """The 3-byte KCV of an AES key inside the HSM; the key never leaves it.

    ``AES_ECB``: the stored CKA_CHECK_VALUE when the token kept one, otherwise the HSM
    encrypts a zero block with CKM_AES_ECB (needs CKA_ENCRYPT). ``AES_CMAC``: the HSM
    signs a zero block with CKM_AES_CMAC (needs CKA_SIGN). Raises :class:`KcvUnavailable`
    when the key may do neither.

    Lab note: SoftHSM 2.6 leaves CKA_CHECK_VALUE empty on imported (unwrapped) keys;
    CloudHSM computes the check value on import too.
    """
    if key[Attribute.KEY_TYPE] is not KeyType.AES:
        raise KcvUnavailable(
            f"Key {key_label(key)} is not an AES key; this helper computes AES KCVs.",
            "For key pairs compare the public keys (or make a signature and verify it); "
            "CloudHSM's check value of a key pair is derived from its public key.",
        )
    if method is KcvMethod.AES_ECB:
        try:
            stored = bytes(key[Attribute.CHECK_VALUE] or b"")
        except pkcs11.PKCS11Error:
            stored = b""
        if len(stored) == KCV_BYTES:
            return stored
        if key[Attribute.ENCRYPT]:
            return bytes(key.encrypt(_ZERO_BLOCK, mechanism=Mechanism.AES_ECB))[:KCV_BYTES]
        needed = "CKA_ENCRYPT"
    else:
        if key[Attribute.SIGN]:
            return bytes(key.sign(_ZERO_BLOCK, mechanism=Mechanism.AES_CMAC))[:KCV_BYTES]
        needed = "CKA_SIGN"
    raise KcvUnavailable(
        f"The HSM cannot compute the {method.value} of {key_label(key)}: the token stored "
        f"no check value and the key's {needed} is false.",
        "Compare keys by a test encryption instead, or give the key that usage when you "
        "create or import it.",
    )


def format_kcv(value: bytes) -> str:
    """A KCV as CloudHSM CLI prints ``check-value``: ``0x`` and 6 hex digits."""
    return "0x" + bytes(value).hex()
