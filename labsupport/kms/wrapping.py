"""Wrapping key material for import into KMS — both ends of it, with ``cryptography``.

:func:`wrap_key_material` is what *you* do (on your side, or inside your HSM) with the
public key GetParametersForImport returns; :func:`unwrap_key_material` is what KMS
does with the private half when ImportKeyMaterial arrives.

``RSAES_OAEP_SHA_1`` / ``RSAES_OAEP_SHA_256``
    the material itself is encrypted with RSA-OAEP (MGF1 with the same hash, no label).
``RSA_AES_KEY_WRAP_SHA_1`` / ``RSA_AES_KEY_WRAP_SHA_256``
    a fresh 256-bit AES key is encrypted with RSA-OAEP, the material is wrapped with that
    AES key using AES key wrap with padding (RFC 5649, ``CKM_AES_KEY_WRAP_PAD``); the
    result is ``RSA-OAEP(aes key) || AES-KWP(material)``. This is PKCS#11's
    ``CKM_RSA_AES_KEY_WRAP`` — which SoftHSM 2.6 lacks, so lesson 05 composes it from
    ``CKM_RSA_PKCS_OAEP`` and ``CKM_AES_KEY_WRAP_PAD``.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from labsupport.kms.model import WrappingAlgorithm

_EPHEMERAL_AES_BYTES = 32


class UnwrapError(ValueError):
    """The wrapped key material could not be decrypted with this wrapping key and algorithm."""


def _oaep(algorithm: WrappingAlgorithm) -> padding.OAEP:
    digest = hashes.SHA256() if algorithm.hash_name == "SHA256" else hashes.SHA1()
    return padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)


def _algorithm(algorithm: WrappingAlgorithm | str) -> WrappingAlgorithm:
    algorithm = WrappingAlgorithm(algorithm)
    if algorithm is WrappingAlgorithm.RSAES_PKCS1_V1_5:
        raise ValueError("RSAES_PKCS1_V1_5 is not accepted by KMS (since 10 October 2023)")
    return algorithm


def load_wrapping_public_key(public_key: bytes | rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    """The RSA public key from GetParametersForImport's ``PublicKey`` (DER SubjectPublicKeyInfo)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key
    key = serialization.load_der_public_key(public_key)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the wrapping public key is not an RSA key")
    return key


def wrap_key_material(
    public_key: bytes | rsa.RSAPublicKey,
    material: bytes,
    algorithm: WrappingAlgorithm | str,
) -> bytes:
    """Encrypt ``material`` for ImportKeyMaterial's ``EncryptedKeyMaterial``.

    ``public_key`` is the ``PublicKey`` bytes from GetParametersForImport and
    ``algorithm`` the ``WrappingAlgorithm`` you asked for there.
    """
    algorithm = _algorithm(algorithm)
    rsa_key = load_wrapping_public_key(public_key)
    if not algorithm.is_rsa_aes:
        return rsa_key.encrypt(material, _oaep(algorithm))
    aes_key = os.urandom(_EPHEMERAL_AES_BYTES)
    return rsa_key.encrypt(aes_key, _oaep(algorithm)) + aes_key_wrap_with_padding(aes_key, material)


def unwrap_key_material(
    private_key: rsa.RSAPrivateKey, wrapped: bytes, algorithm: WrappingAlgorithm | str
) -> bytes:
    """Recover the key material from ``wrapped`` (what KMS does on ImportKeyMaterial).

    Raises :class:`UnwrapError` when the blob was made with another public key or
    algorithm, or is damaged.
    """
    algorithm = _algorithm(algorithm)
    try:
        if not algorithm.is_rsa_aes:
            return private_key.decrypt(wrapped, _oaep(algorithm))
        size = private_key.key_size // 8
        if len(wrapped) <= size:
            raise UnwrapError("too short for RSA-OAEP(AES key) || AES-KWP(material)")
        aes_key = private_key.decrypt(wrapped[:size], _oaep(algorithm))
        if len(aes_key) not in (16, 24, 32):
            raise UnwrapError("the RSA-wrapped part is not an AES key")
        return aes_key_unwrap_with_padding(aes_key, wrapped[size:])
    except (ValueError, InvalidUnwrap) as exc:
        if isinstance(exc, UnwrapError):
            raise
        raise UnwrapError(str(exc) or type(exc).__name__) from None
