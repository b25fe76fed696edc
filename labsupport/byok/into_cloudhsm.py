"""Bring your own key into CloudHSM: wrap it outside, unwrap it inside (C_UnwrapKey).

The HSM makes an RSA key pair, the **import key**, whose private half may only *unwrap*
and never leaves the HSM (:func:`create_import_key`). You hand its public key to whoever
holds the key material. They encrypt ("wrap") the material to it (:func:`wrap_for_import`,
plain ``cryptography``), and the wrapped blob can travel by any channel: only the HSM can
open it. ``C_UnwrapKey`` decrypts it *inside* the HSM and creates a key object from it
(:func:`unwrap_into_hsm`). Which wrapping scheme depends on the key:

``rsa-oaep`` (``CKM_RSA_PKCS_OAEP``) — for symmetric keys
    RSA-OAEP encrypts at most ``k - 2·hLen - 2`` bytes (214 bytes with RSA-2048 and
    SHA-1, 190 with SHA-256): plenty for a 32-byte AES key.
``rsa-aes`` (``CKM_RSA_AES_KEY_WRAP``) — for RSA and EC private keys
    A PKCS#8 private key (~1.2 KB for RSA-2048) is too long for RSA-OAEP. A fresh
    ephemeral AES-256 key is wrapped with RSA-OAEP, the private key is wrapped with that
    AES key using AES key wrap with padding (RFC 5649, ``CKM_AES_KEY_WRAP_PAD``), and the
    blob is ``RSA-OAEP(ephemeral key) || AES-KWP(PKCS#8 key)`` — the same layout KMS's
    ``RSA_AES_KEY_WRAP_*`` algorithms use.

CloudHSM CLI names these ``key unwrap rsa-oaep`` and ``key unwrap rsa-aes``; its PKCS#11
library has ``CKM_RSA_AES_KEY_WRAP`` as one mechanism. **Lab difference:** SoftHSM 2.6.1
lacks ``CKM_RSA_AES_KEY_WRAP`` (added in 2.7), so :func:`unwrap_into_hsm` composes it
from its two halves — ``C_UnwrapKey`` with RSA-OAEP gives a temporary AES session key
that may only unwrap, ``C_UnwrapKey`` with AES-KWP gives the private key, and the
temporary key is destroyed. SoftHSM 2.6.1 also accepts RSA-OAEP with SHA-1 only (SHA-256
answers ``CKR_ARGUMENTS_BAD``); CloudHSM's documentation uses SHA-256. Pass the hash the
token accepts (:func:`labsupport.byok.oaep_hashes` asks it) to both sides.

A key that arrived this way is not *local*: ``CKA_LOCAL`` is false forever, which tells
an auditor it was born outside this HSM. :func:`round_trip` proves the HSM now holds the
very key you sent: check values, a signature checked with the original public key, a
decryption of data encrypted outside.

:func:`import_plaintext` is the weaker path — the key's values go into ``C_CreateObject``
as they are — shown so the lesson can say why it is weaker and when it is acceptable.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.byok.material import (
    ByokInputError,
    Material,
    NotKeyMaterial,
    choice,
    describe,
    pkcs8_der,
    read_pem_file,
)
from labsupport.crypto.checks import CryptoLabError, GcmAuthenticationFailed, require_capability
from labsupport.crypto.ciphers import (
    GcmCiphertext,
    OaepScheme,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    oaep_scheme,
    rsa_oaep_decrypt,
)
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.interop import encrypt_outside, to_cryptography, verify_outside
from labsupport.crypto.kcv import KcvUnavailable, hsm_kcv, kcv
from labsupport.crypto.keygen import KeyPair, KeySpec, Usage, generate_key_pair, key_template
from labsupport.crypto.oaep import require_oaep_hash
from labsupport.crypto.signatures import SignatureScheme, sign
from labsupport.crypto.wrapping import (
    WrapMechanism,
    rsa_aes_unwrap_in_hsm,
    rsa_aes_wrap,
    unwrap_key,
)


class UnwrapFailed(CryptoLabError):
    """A wrapped key could not be imported (wrong blob, import key or parameters)."""


class ImportScheme(enum.Enum):
    """How key material is wrapped for import into CloudHSM (CloudHSM CLI's names)."""

    RSA_OAEP = "rsa-oaep"
    RSA_AES = "rsa-aes"

    @property
    def mechanism(self) -> str:
        """The PKCS#11 mechanism(s) behind the scheme."""
        if self is ImportScheme.RSA_OAEP:
            return "CKM_RSA_PKCS_OAEP"
        return "CKM_RSA_AES_KEY_WRAP (= CKM_RSA_PKCS_OAEP + CKM_AES_KEY_WRAP_PAD)"


def scheme_for(material: Material) -> ImportScheme:
    """The scheme to use: ``rsa-oaep`` for AES keys, ``rsa-aes`` for RSA/EC private keys."""
    if isinstance(material, bytes | bytearray):
        return ImportScheme.RSA_OAEP
    describe(material)  # raises NotKeyMaterial (a TypeError) for anything else
    return ImportScheme.RSA_AES


@dataclass(frozen=True)
class WrappedKey:
    """Key material wrapped for one import key: safe to store or send; only the HSM opens it.

    ``blob`` is what travels; the rest says how to unwrap it (the receiving side must
    use the same scheme and OAEP hash) and what key it will become.
    """

    blob: bytes = field(repr=False)
    scheme: ImportScheme
    hash: HashAlg
    object_class: ObjectClass
    key_type: KeyType
    description: str

    def __str__(self) -> str:
        return (
            f"{self.description} wrapped with {self.scheme.value} "
            f"(OAEP {self.hash.name.replace('SHA', 'SHA-')}): {len(self.blob)} bytes"
        )


@dataclass(frozen=True)
class Imported:
    """What :func:`unwrap_into_hsm` did: the new key object and the PKCS#11 calls made."""

    key: pkcs11.Key
    wrapped: WrappedKey
    steps: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(f"{n}. {step}" for n, step in enumerate(self.steps, 1))


# -- the HSM side: an import key ------------------------------------------------------------


def create_import_key(
    session: pkcs11.Session, label: str = "byok-import-key", bits: int = 2048, token: bool = True
) -> KeyPair:
    """Generate the RSA key pair that receives wrapped keys (``Usage.WRAP``, non-extractable).

    The public half may only wrap (hand it to the key owner); the private half may only
    unwrap and can never leave the HSM — so nothing wrapped to it can be opened elsewhere.
    """
    spec = {2048: KeySpec.RSA_2048, 3072: KeySpec.RSA_3072}.get(bits)
    if spec is None:
        raise ByokInputError(
            f"The import key is RSA-2048 or RSA-3072, not {bits!r} bits.", "Use bits=2048."
        )
    return generate_key_pair(session, spec, label, usage=Usage.WRAP, extractable=False, token=token)


# -- the key owner's side: wrap outside the HSM ---------------------------------------------


_PUBLIC_KEY_FIX = (
    "Pass the import key's public half: import_key.public (the token object), a "
    "cryptography RSA public key, or its PEM/DER bytes."
)


def _rsa_public(public_key: Any) -> rsa.RSAPublicKey:
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key
    if isinstance(public_key, pkcs11.PublicKey):
        key = to_cryptography(public_key)
    elif isinstance(public_key, bytes | bytearray):
        loader = (
            serialization.load_pem_public_key
            if bytes(public_key).lstrip().startswith(b"-----")
            else serialization.load_der_public_key
        )
        try:
            key = loader(bytes(public_key))
        except ValueError:
            raise ByokInputError(
                f"These {len(public_key)} bytes are not a PEM or DER public key.", _PUBLIC_KEY_FIX
            ) from None
    else:
        raise ByokInputError(
            f"The import key is an RSA public key, not {type(public_key).__name__}.",
            _PUBLIC_KEY_FIX,
        )
    if not isinstance(key, rsa.RSAPublicKey):
        raise ByokInputError(
            f"The import key must be an RSA public key, not {type(key).__name__}.",
            _PUBLIC_KEY_FIX,
        )
    return key


def _target(material: Material) -> tuple[ObjectClass, KeyType, bytes]:
    describe(material)  # refuses what is not key material, and AES keys of a wrong length
    if isinstance(material, bytes | bytearray):
        return ObjectClass.SECRET_KEY, KeyType.AES, bytes(material)
    key_type = KeyType.RSA if isinstance(material, rsa.RSAPrivateKey) else KeyType.EC
    return ObjectClass.PRIVATE_KEY, key_type, pkcs8_der(material)


def wrap_for_import(
    public_key: rsa.RSAPublicKey | pkcs11.PublicKey | bytes,
    material: Material,
    *,
    hash: HashAlg,
    scheme: ImportScheme | None = None,
) -> WrappedKey:
    """Wrap ``material`` to the HSM's import key, outside the HSM (``cryptography`` only).

    ``public_key`` is the import key's public half (PEM or DER bytes, a ``cryptography``
    key, or the token object). ``hash`` is the OAEP hash the HSM will use — ask the token
    (``oaep_hashes(pair.private)[0]``): SHA-1 in this lab, SHA-256 on CloudHSM.
    ``scheme`` defaults to :func:`scheme_for` (``rsa-oaep`` for AES, ``rsa-aes`` for
    private keys).
    """
    rsa_key = _rsa_public(public_key)
    hash = choice(HashAlg, hash, "hash (ask the token: oaep_hashes_for(import_key.private)[0])")
    scheme = scheme_for(material) if scheme is None else choice(ImportScheme, scheme, "scheme")
    object_class, key_type, data = _target(material)
    oaep = OaepScheme(hash)
    if scheme is ImportScheme.RSA_OAEP:
        limit = oaep.max_plaintext(rsa_key.key_size)
        if len(data) > limit:
            raise ByokInputError(
                f"{describe(material)} is {len(data)} bytes; RSA-OAEP with a "
                f"{rsa_key.key_size}-bit key and {hash.name} carries at most {limit}.",
                "Use scheme=ImportScheme.RSA_AES (the default for private keys).",
            )
        blob = rsa_key.encrypt(data, oaep.padding())
    else:
        blob = rsa_aes_wrap(rsa_key, data, hash)
    return WrappedKey(blob, scheme, hash, object_class, key_type, describe(material))


# -- the HSM side: unwrap ---------------------------------------------------------------------


def _default_usage(object_class: ObjectClass) -> Usage:
    return Usage.ENCRYPT if object_class is ObjectClass.SECRET_KEY else Usage.SIGN


def unwrap_into_hsm(
    import_key: pkcs11.PrivateKey,
    wrapped: WrappedKey,
    label: str,
    *,
    usage: Usage | None = None,
    token: bool = True,
    extractable: bool = False,
) -> Imported:
    """Import a :class:`WrappedKey` with ``C_UnwrapKey``; the material is never visible here.

    ``import_key`` is the private half from :func:`create_import_key`. The new key gets
    a full CloudHSM-like template: sensitive, ``extractable`` (default False: an imported
    key usually should not leave again), token key unless ``token=False``, and ``usage``
    (default: encrypt for AES, sign for private keys). Returns an :class:`Imported` with
    the key and the list of PKCS#11 calls, in order.
    """
    require_capability(import_key, Attribute.UNWRAP, "unwrap keys")
    require_oaep_hash(
        import_key,
        wrapped.hash,
        "Wrap the key again with a hash the token accepts (oaep_hashes(import_key)).",
    )
    usage = _default_usage(wrapped.object_class) if usage is None else usage
    oaep_name = f"CKM_RSA_PKCS_OAEP, {wrapped.hash.name.replace('SHA', 'SHA-')}"
    what = f"{wrapped.description} {label!r} ({'token' if token else 'session'} key)"
    common = dict(label=label, usage=usage, token=token, extractable=extractable)
    try:
        if wrapped.scheme is ImportScheme.RSA_OAEP:
            key = unwrap_key(
                import_key,
                wrapped.blob,
                object_class=wrapped.object_class,
                key_type=wrapped.key_type,
                how=WrapMechanism.RSA_OAEP,
                hash=wrapped.hash,
                key_id=b"",
                **common,
            )
            return Imported(key, wrapped, (f"C_UnwrapKey({oaep_name}) → {what}",))
        size = len(import_key[Attribute.MODULUS])
        try:
            key = rsa_aes_unwrap_in_hsm(
                import_key,
                wrapped.blob,
                wrapped.hash,
                wrapped.object_class,
                wrapped.key_type,
                key_id=b"",
                **common,
            )
        except ValueError as exc:
            raise UnwrapFailed(
                f"An rsa-aes blob is RSA-OAEP({size} bytes) || AES-KWP(key); this one has "
                f"only {len(wrapped.blob)} bytes.",
                "Wrap private keys with ImportScheme.RSA_AES (wrap_for_import does by default).",
            ) from exc
    except (pkcs11.exceptions.EncryptedDataInvalid, pkcs11.exceptions.WrappedKeyInvalid) as exc:
        raise _unwrap_failed(wrapped, exc) from exc
    except pkcs11.exceptions.GeneralError as exc:  # SoftHSM's answer to a failed integrity check
        raise _unwrap_failed(wrapped, exc) from exc
    steps = (
        f"split the blob: first {size} bytes = RSA-OAEP(ephemeral AES key), "
        f"last {len(wrapped.blob) - size} bytes = AES-KWP(PKCS#8 key)",
        f"C_UnwrapKey({oaep_name}) → ephemeral AES-256 session key (may only unwrap)",
        f"C_UnwrapKey(CKM_AES_KEY_WRAP_PAD, ephemeral key) → {what}",
        "C_DestroyObject(ephemeral key)",
    )
    return Imported(key, wrapped, steps)


def _unwrap_failed(wrapped: WrappedKey, exc: Exception) -> UnwrapFailed:
    return UnwrapFailed(
        f"The HSM could not unwrap this {wrapped.scheme.value} blob ({type(exc).__name__}): "
        "it was wrapped to another import key, with another OAEP hash, or it was changed "
        "on the way.",
        "Wrap again with this HSM's import public key and the hash the token accepts.",
    )


# -- the weaker path: plaintext import -----------------------------------------------------------


def _plaintext_attributes(material: Material) -> tuple[ObjectClass, KeyType, dict]:
    describe(material)  # refuses what is not key material, and AES keys of a wrong length
    if isinstance(material, bytes | bytearray):
        object_class, key_type, data = _target(material)
        return object_class, key_type, {Attribute.VALUE: data}
    if isinstance(material, rsa.RSAPrivateKey):
        numbers = material.private_numbers()

        def big(n: int) -> bytes:
            return n.to_bytes((n.bit_length() + 7) // 8, "big")

        values = {
            Attribute.MODULUS: big(numbers.public_numbers.n),
            Attribute.PUBLIC_EXPONENT: big(numbers.public_numbers.e),
            Attribute.PRIVATE_EXPONENT: big(numbers.d),
            Attribute.PRIME_1: big(numbers.p),
            Attribute.PRIME_2: big(numbers.q),
            Attribute.EXPONENT_1: big(numbers.dmp1),
            Attribute.EXPONENT_2: big(numbers.dmq1),
            Attribute.COEFFICIENT: big(numbers.iqmp),
        }
        return ObjectClass.PRIVATE_KEY, KeyType.RSA, values
    if isinstance(material, ec.EllipticCurvePrivateKey):
        size = (material.curve.key_size + 7) // 8
        values = {
            Attribute.EC_PARAMS: encode_named_curve_parameters(material.curve.name),
            Attribute.VALUE: material.private_numbers().private_value.to_bytes(size, "big"),
        }
        return ObjectClass.PRIVATE_KEY, KeyType.EC, values
    raise NotKeyMaterial(f"{type(material).__name__} is not key material.")


def import_plaintext(
    session: pkcs11.Session,
    material: Material,
    label: str,
    *,
    usage: Usage | None = None,
    token: bool = True,
    extractable: bool = False,
) -> pkcs11.Key:
    """Import key material *in plaintext* with ``C_CreateObject`` — the weaker path.

    The secret values are in the template, so they exist in the memory of the process
    that calls this, on the host that runs it, and in whatever file they came from.
    CloudHSM's own tools that import a plaintext key file do the equivalent on the
    client host. The resulting key looks just like a wrapped import (``CKA_LOCAL``
    false): the HSM cannot tell how exposed the material was before it arrived.
    """
    object_class, key_type, values = _plaintext_attributes(material)
    usage = _default_usage(object_class) if usage is None else usage
    template = key_template(
        object_class, label=label, usage=usage, token=token, extractable=extractable
    )
    template.pop(Attribute.ID, None)
    template.update({Attribute.KEY_TYPE: key_type, **values})
    return session.create_object(template)


def import_pem_file(session: pkcs11.Session, path: Path, label: str, **options: Any) -> pkcs11.Key:
    """Import an unencrypted PEM private key file in plaintext (like ``key import pem``).

    Options as :func:`import_plaintext`. The file still exists afterwards: delete it.
    """
    return import_plaintext(session, read_pem_file(path), label, **options)


# -- proof: the HSM holds the very key you sent ---------------------------------------------------


@dataclass(frozen=True)
class RoundTrip:
    """Checks that an imported key matches the original material (see :func:`round_trip`)."""

    checks: tuple[tuple[str, bool], ...]

    @property
    def ok(self) -> bool:
        """True if at least one check ran and every check passed."""
        return bool(self.checks) and all(passed for _, passed in self.checks)

    def __str__(self) -> str:
        return "\n".join(f"{'✔' if passed else '✘'} {name}" for name, passed in self.checks)


_PROBE = b"BYOK round trip: the same key on both sides"


def round_trip(key: pkcs11.Key, original: Material) -> RoundTrip:
    """Prove that ``key`` (in the HSM) is ``original`` (the material you imported).

    AES: equal KCVs (CloudHSM's AES-ECB method), HSM-encrypted data decrypted outside
    with the original bytes, and the other way round. RSA: a signature made in the HSM
    verifies with the original public key; with CKA_DECRYPT, data encrypted outside to
    the original public key decrypts in the HSM. EC: the signature check. Checks the
    key's usage does not allow are skipped.
    """
    checks: list[tuple[str, bool]] = []
    if isinstance(original, bytes | bytearray):
        return RoundTrip(tuple(_aes_checks(key, bytes(original))))
    public = original.public_key()
    if isinstance(original, rsa.RSAPrivateKey):
        scheme = SignatureScheme.RSA_PSS_SHA256
    elif original.curve.key_size > 256:
        scheme = SignatureScheme.ECDSA_SHA384
    else:
        scheme = SignatureScheme.ECDSA_SHA256
    if key[Attribute.SIGN]:
        signature = sign(key, _PROBE, scheme)
        checks.append(
            (
                f"{scheme.value}: signed in the HSM, verified with the original public key",
                verify_outside(public, _PROBE, signature, scheme),
            )
        )
    if isinstance(original, rsa.RSAPrivateKey) and key[Attribute.DECRYPT]:
        oaep = oaep_scheme(key)
        ciphertext = encrypt_outside(public, _PROBE, oaep)
        checks.append(
            (
                f"{oaep}: encrypted to the original public key, decrypted in the HSM",
                rsa_oaep_decrypt(key, ciphertext) == _PROBE,
            )
        )
    return RoundTrip(tuple(checks))


def _aes_checks(key: pkcs11.Key, material: bytes) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    try:
        same = hsm_kcv(key) == kcv(material)
        checks.append(
            ("KCV (AES-ECB, CloudHSM's check-value) in the HSM = KCV of the original", same)
        )
    except KcvUnavailable:
        pass
    if key[Attribute.ENCRYPT]:
        sealed = aes_gcm_encrypt(key, _PROBE, aad=b"byok")
        try:
            opened = AESGCM(material).decrypt(sealed.iv, sealed.ciphertext, b"byok")
        except InvalidTag:
            opened = b""
        checks.append(
            ("AES-GCM: encrypted in the HSM, decrypted with the original", opened == _PROBE)
        )
    if key[Attribute.DECRYPT]:
        iv = os.urandom(12)
        outside = GcmCiphertext(iv, AESGCM(material).encrypt(iv, _PROBE, b"byok"), b"byok")
        try:
            opened = aes_gcm_decrypt(key, outside)
        except GcmAuthenticationFailed:
            opened = b""
        checks.append(
            ("AES-GCM: encrypted with the original, decrypted in the HSM", opened == _PROBE)
        )
    return checks
