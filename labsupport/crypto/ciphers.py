"""Encryption inside the HSM: AES-GCM with an HSM-generated IV, and RSA-OAEP.

AES-GCM and the IV. GCM breaks badly if one key ever encrypts two messages with the same
IV (nonce): an attacker can recover the authentication key and forge messages. CloudHSM
therefore does not trust the application with the IV: on ``C_Encrypt`` with CKM_AES_GCM the
HSM *ignores* the IV in the request, generates a fresh 12-byte IV itself and writes it
back into the ``pIv`` buffer of the ``CK_GCM_PARAMS`` you passed; you store it with the
ciphertext and pass it back to decrypt. SoftHSM (like most HSMs) instead uses whatever IV
the caller passes — the same IV twice gives the same ciphertext. :func:`aes_gcm_encrypt`
emulates CloudHSM on any token: it asks the token's RNG (``C_GenerateRandom``) for the IV,
encrypts with it, and returns it *with* the ciphertext (:class:`GcmCiphertext`); the caller
cannot choose it.

RSA-OAEP. OAEP takes a hash (and an MGF1 hash). SHA-256 is the modern choice and what
CloudHSM and KMS use for key import; SoftHSM 2.6.1 accepts only SHA-1 with OAEP and
answers CKR_ARGUMENTS_BAD to SHA-256. :func:`oaep_hashes` asks the token at run time, and
:func:`rsa_oaep_encrypt` / :func:`rsa_oaep_decrypt` use SHA-256 when the token has it and
SHA-1 otherwise (OAEP with SHA-1 is still considered secure: OAEP does not rely on
collision resistance — but say which one you used, the other side must use the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pkcs11
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    ArgumentsBad,
    DataLenRange,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    GeneralError,
    MechanismParamInvalid,
)
from pkcs11.mechanisms import GCMParams

from labsupport.crypto.checks import (
    DecryptionFailed,
    GcmAuthenticationFailed,
    OaepHashUnsupported,
    key_label,
    require_capability,
    require_key_type,
)
from labsupport.crypto.hashes import HashAlg

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
    iv = hsm_random(key.session, GCM_IV_BYTES)
    params = GCMParams(iv, aad or None, GCM_TAG_BITS)
    ciphertext = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    return GcmCiphertext(iv, ciphertext, aad, GCM_TAG_BITS)


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


@dataclass(frozen=True)
class OaepScheme:
    """RSA-OAEP with one hash for both the label hash and MGF1 (the usual choice)."""

    hash: HashAlg

    @property
    def mechanism_param(self) -> tuple[Mechanism, pkcs11.MGF, None]:
        """python-pkcs11 ``mechanism_param`` for CKM_RSA_PKCS_OAEP."""
        return (self.hash.mechanism, self.hash.mgf, None)

    def padding(self) -> padding.OAEP:
        """The same scheme for ``cryptography`` (to encrypt/decrypt outside the HSM)."""
        algorithm = self.hash.cryptography()
        return padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)

    def max_plaintext(self, modulus_bits: int) -> int:
        """Longest message OAEP can encrypt with this modulus: k - 2*hLen - 2 bytes."""
        return modulus_bits // 8 - 2 * self.hash.digest_size - 2

    def __str__(self) -> str:
        name = self.hash.name.replace("SHA", "SHA-")
        return f"RSA-OAEP with {name} and MGF1-{name}"


@lru_cache(maxsize=1)
def _probe_public_numbers() -> rsa.RSAPublicNumbers:
    # Any valid RSA public key will do to ask the token which OAEP hashes it accepts.
    return rsa.generate_private_key(65537, 2048).public_key().public_numbers()


_OAEP_SUPPORT: dict[tuple[str, str], tuple[HashAlg, ...]] = {}
_OAEP_ORDER = (HashAlg.SHA256, HashAlg.SHA384, HashAlg.SHA512, HashAlg.SHA1)
_PARAM_REFUSED = (ArgumentsBad, MechanismParamInvalid)


def _session_of(target: pkcs11.Session | pkcs11.Key) -> pkcs11.Session:
    return target.session if isinstance(target, pkcs11.types.Key) else target


def _accepts(probe: pkcs11.Key, alg: HashAlg) -> bool:
    """Does the token start an OAEP operation with ``alg`` on ``probe`` (RSA key)?"""
    param = OaepScheme(alg).mechanism_param
    try:
        if probe[Attribute.CLASS] is ObjectClass.PUBLIC_KEY:
            probe.encrypt(b"probe", mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=param)
        else:  # a private key: decrypting zeros fails *after* the parameters were accepted
            size = len(probe[Attribute.MODULUS])
            probe.decrypt(bytes(size), mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=param)
    except _PARAM_REFUSED:
        return False
    except pkcs11.PKCS11Error:
        return True
    return True


def _session_probe_key(session: pkcs11.Session) -> pkcs11.PublicKey:
    numbers = _probe_public_numbers()
    return session.create_object(
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.RSA,
            Attribute.TOKEN: False,
            Attribute.ENCRYPT: True,
            Attribute.MODULUS: numbers.n.to_bytes(256, "big"),
            Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes(3, "big"),
        }
    )


def oaep_hashes(target: pkcs11.Session | pkcs11.Key) -> tuple[HashAlg, ...]:
    """The hashes the token accepts for RSA-OAEP, best first (asked once per token model).

    ``target`` is an RSA key that may encrypt or decrypt (it is used as the probe) or a
    session (a throw-away public key object is imported as the probe). A token that does
    not support a hash refuses when the operation starts (CKR_ARGUMENTS_BAD or
    CKR_MECHANISM_PARAM_INVALID); SoftHSM 2.6.1 accepts only SHA-1.
    """
    token = _session_of(target).token
    cache_key = (token.manufacturer_id, token.model)
    if cache_key in _OAEP_SUPPORT:
        return _OAEP_SUPPORT[cache_key]
    # A key can be the probe only if it may encrypt (public) or decrypt (private): a
    # wrap-only key has neither method, so probe with a throw-away key instead.
    if isinstance(target, pkcs11.types.Key) and (
        hasattr(target, "encrypt") or hasattr(target, "decrypt")
    ):
        probe, owned = target, False
    else:
        probe, owned = _session_probe_key(_session_of(target)), True
    try:
        supported = tuple(alg for alg in _OAEP_ORDER if _accepts(probe, alg))
    finally:
        if owned:
            probe.destroy()
    _OAEP_SUPPORT[cache_key] = supported
    return supported


def oaep_scheme(target: pkcs11.Session | pkcs11.Key, hash: HashAlg | None = None) -> OaepScheme:
    """The OAEP scheme to use on this token: ``hash`` if given (checked), else the best.

    ``target`` as for :func:`oaep_hashes`. Raises :class:`OaepHashUnsupported` if the
    token refuses ``hash``.
    """
    supported = oaep_hashes(target)
    if hash is None:
        if not supported:
            raise OaepHashUnsupported(
                "This token supports RSA-OAEP with none of SHA-1/256/384/512.",
                "Check its mechanism list (CKM_RSA_PKCS_OAEP) or use another module.",
            )
        return OaepScheme(supported[0])
    if hash not in supported:
        names = ", ".join(h.name for h in supported) or "none"
        raise OaepHashUnsupported(
            f"This token refuses RSA-OAEP with {hash.name} (it accepts: {names}). "
            "SoftHSM 2.6.1 implements OAEP with SHA-1 only; CloudHSM accepts SHA-1 to SHA-512.",
            "Leave hash=None to use the best hash the token has, and tell the other side "
            "which one (OaepScheme.padding() gives the matching cryptography padding).",
        )
    return OaepScheme(hash)


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
