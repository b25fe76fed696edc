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
    ``CKM_RSA_AES_KEY_WRAP``; the one implementation of both directions is in
    :mod:`labsupport.crypto.wrapping` (lesson 05 uses the same, in and outside the HSM).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.oaep import OaepScheme
from labsupport.crypto.wrapping import rsa_aes_unwrap, rsa_aes_wrap
from labsupport.kms.model import WrappingAlgorithm


class UnwrapError(ValueError):
    """The wrapped key material could not be decrypted with this wrapping key and algorithm."""


def _hash(algorithm: WrappingAlgorithm) -> HashAlg:
    return HashAlg.SHA256 if algorithm.hash_name == "SHA256" else HashAlg.SHA1


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
    if algorithm.is_rsa_aes:
        return rsa_aes_wrap(rsa_key, material, _hash(algorithm))
    return rsa_key.encrypt(material, OaepScheme(_hash(algorithm)).padding())


def unwrap_key_material(
    private_key: rsa.RSAPrivateKey, wrapped: bytes, algorithm: WrappingAlgorithm | str
) -> bytes:
    """Recover the key material from ``wrapped`` (what KMS does on ImportKeyMaterial).

    Raises :class:`UnwrapError` when the blob was made with another public key or
    algorithm, or is damaged.
    """
    algorithm = _algorithm(algorithm)
    try:
        if algorithm.is_rsa_aes:
            return rsa_aes_unwrap(private_key, wrapped, _hash(algorithm))
        return private_key.decrypt(wrapped, OaepScheme(_hash(algorithm)).padding())
    except ValueError as exc:
        raise UnwrapError(str(exc) or type(exc).__name__) from None
