"""Encryption inside the HSM: AES-GCM with an HSM-generated IV, and RSA-OAEP.

AES-GCM and the IV. GCM breaks badly if one key ever encrypts two messages with the same
IV (nonce): an attacker can recover the authentication key and forge messages. CloudHSM
therefore does not trust the application with the IV: on ``C_Encrypt`` with CKM_AES_GCM the
HSM *ignores* the IV in the request, generates a fresh 12-byte IV itself and writes it
back into the ``pIv`` buffer of the ``CK_GCM_PARAMS`` you passed; you store it with the
ciphertext and pass it back to decrypt. SoftHSM (like most HSMs) instead uses whatever IV
the caller passes — the same IV twice gives the same ciphertext. :func:`aes_gcm_encrypt`
works the CloudHSM way on any token: it passes a writable IV buffer filled from the token's
RNG (``C_GenerateRandom``); SoftHSM encrypts with that IV, while CloudHSM — and the lab's
cluster, see :mod:`labsupport.client.gcmiv` — overwrites the buffer with the IV the HSM
generated. Either way the IV in the buffer after the call is returned *with* the ciphertext
(:class:`GcmCiphertext`); the caller cannot choose it.

RSA-OAEP. :func:`rsa_oaep_encrypt` / :func:`rsa_oaep_decrypt` use SHA-256 when the token
has it and SHA-1 otherwise; :mod:`labsupport.crypto.oaep` asks the token which (SoftHSM
2.6.1 accepts SHA-1 only) and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    DataLenRange,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    GeneralError,
)
from pkcs11.mechanisms import GCMParams

from labsupport.crypto.checks import (
    DecryptionFailed,
    GcmAuthenticationFailed,
    key_label,
    require_capability,
    require_key_type,
)
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.oaep import OaepScheme, oaep_hashes, oaep_scheme

__all__ = [
    "GcmCiphertext",
    "OaepScheme",
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "hsm_random",
    "oaep_hashes",
    "oaep_scheme",
    "rsa_oaep_decrypt",
    "rsa_oaep_encrypt",
]

GCM_IV_BYTES = 12
GCM_TAG_BITS = 128


@dataclass(frozen=True)
class GcmCiphertext:
    """What AES-GCM encryption returns: the HSM-chosen IV, ciphertext+tag, and the AAD.

    The AAD (additional authenticated data) is not secret and not encrypted, but
    decryption fails if it changes — bind context such as a record id to it.
    """

    iv: bytes
    ciphertext: bytes
    aad: bytes = b""
    tag_bits: int = GCM_TAG_BITS

    @property
    def tag(self) -> bytes:
        """The authentication tag (the last ``tag_bits/8`` bytes of ``ciphertext``)."""
        return self.ciphertext[-self.tag_bits // 8 :]

    def to_bytes(self) -> bytes:
        """One blob to store or send: ``iv || ciphertext || tag`` (the AAD travels apart)."""
        return self.iv + self.ciphertext

    @classmethod
    def from_bytes(cls, blob: bytes, aad: bytes = b"") -> GcmCiphertext:
        """Split a blob made by :meth:`to_bytes` back into IV and ciphertext."""
        if len(blob) < GCM_IV_BYTES + GCM_TAG_BITS // 8:
            raise ValueError("too short to be iv || ciphertext || tag")
        return cls(blob[:GCM_IV_BYTES], blob[GCM_IV_BYTES:], aad)


def hsm_random(session: pkcs11.Session, nbytes: int) -> bytes:
    """``nbytes`` random bytes from the HSM's RNG (``C_GenerateRandom``)."""
    return session.generate_random(nbytes * 8)


def aes_gcm_encrypt(key: pkcs11.SecretKey, plaintext: bytes, aad: bytes = b"") -> GcmCiphertext:
    """Encrypt with AES-GCM in the HSM; the IV is generated HSM-side, as on CloudHSM.

    There is deliberately no ``iv`` argument: the HSM picks a fresh random 96-bit IV for
    every call and returns it in the result.
    """
    require_key_type(key, [KeyType.AES], "AES-GCM", ObjectClass.SECRET_KEY)
    require_capability(key, Attribute.ENCRYPT, "encrypt")
    # A writable buffer: CloudHSM (and the lab's cluster) write the HSM's IV into it; a
    # token that takes the caller's IV (SoftHSM) uses these random bytes from its RNG.
    iv = bytearray(hsm_random(key.session, GCM_IV_BYTES))
    params = GCMParams(iv, aad or None, GCM_TAG_BITS)
    ciphertext = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    return GcmCiphertext(bytes(iv), ciphertext, aad, GCM_TAG_BITS)


def aes_gcm_decrypt(
    key: pkcs11.SecretKey, sealed: GcmCiphertext | bytes, aad: bytes | None = None
) -> bytes:
    """Decrypt and authenticate an AES-GCM ciphertext in the HSM.

    ``sealed`` is a :class:`GcmCiphertext` or the blob from its ``to_bytes()``; ``aad``
    overrides the AAD it carries. Any change to IV, ciphertext, tag or AAD — or the wrong
    key — raises :class:`GcmAuthenticationFailed` and returns no plaintext at all.
    """
    require_key_type(key, [KeyType.AES], "AES-GCM", ObjectClass.SECRET_KEY)
    require_capability(key, Attribute.DECRYPT, "decrypt")
    if isinstance(sealed, bytes | bytearray):
        sealed = GcmCiphertext.from_bytes(bytes(sealed), aad or b"")
    use_aad = sealed.aad if aad is None else aad
    params = GCMParams(sealed.iv, use_aad or None, sealed.tag_bits)
    try:
        return key.decrypt(sealed.ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    except (GeneralError, EncryptedDataInvalid) as exc:
        # SoftHSM reports a failed tag check as CKR_GENERAL_ERROR; CloudHSM and the
        # PKCS#11 spec use CKR_ENCRYPTED_DATA_INVALID.
        raise GcmAuthenticationFailed(
            f"AES-GCM refused to decrypt with key {key_label(key)}: the authentication tag "
            f"does not match ({type(exc).__name__} from the token). The ciphertext, tag, IV "
            f"or AAD was changed, or this is not the key that encrypted it.",
            "Use the IV returned by aes_gcm_encrypt, the same AAD and the same key. If all "
            "are right, the data was tampered with: do not use it.",
        ) from exc


# -- RSA-OAEP ------------------------------------------------------------------------------


def rsa_oaep_encrypt(
    public_key: pkcs11.PublicKey, plaintext: bytes, hash: HashAlg | None = None
) -> bytes:
    """Encrypt a short message (e.g. a key) to an RSA public key with OAEP, in the HSM.

    Anyone with the public key can do the same outside the HSM (see ``interop``); only
    the HSM can decrypt. RSA encrypts at most a few hundred bytes: encrypt an AES key
    and the data with AES (envelope encryption).
    """
    require_key_type(public_key, [KeyType.RSA], "RSA-OAEP encryption", ObjectClass.PUBLIC_KEY)
    require_capability(public_key, Attribute.ENCRYPT, "encrypt")
    scheme = oaep_scheme(public_key, hash)
    modulus_bits = len(public_key[Attribute.MODULUS]) * 8
    limit = scheme.max_plaintext(modulus_bits)
    if len(plaintext) > limit:
        raise ValueError(
            f"{scheme} with this {modulus_bits}-bit key encrypts at most "
            f"{limit} bytes, not {len(plaintext)}: encrypt an AES key instead (envelope)."
        )
    return public_key.encrypt(
        plaintext, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=scheme.mechanism_param
    )


def rsa_oaep_decrypt(
    private_key: pkcs11.PrivateKey, ciphertext: bytes, hash: HashAlg | None = None
) -> bytes:
    """Decrypt an RSA-OAEP ciphertext with a private key that stays in the HSM."""
    require_key_type(private_key, [KeyType.RSA], "RSA-OAEP decryption", ObjectClass.PRIVATE_KEY)
    require_capability(private_key, Attribute.DECRYPT, "decrypt")
    scheme = oaep_scheme(private_key, hash)
    try:
        return private_key.decrypt(
            ciphertext, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=scheme.mechanism_param
        )
    except (GeneralError, EncryptedDataInvalid, DataLenRange, EncryptedDataLenRange) as exc:
        raise DecryptionFailed(
            f"RSA-OAEP decryption failed with key {key_label(private_key)} "
            f"({type(exc).__name__}): the ciphertext was not made for this key with "
            f"{scheme}, or it was changed.",
            "Encrypt with the public half of this key pair and the same OAEP hash.",
        ) from exc
