"""The simulated KMS's ciphertext blob: real AES-256-GCM that names its key.

Like a real KMS ciphertext blob, ours carries the id of the key that made it, so
Decrypt needs no ``KeyId``; the encryption context is bound to it as additional
authenticated data (AAD), so decrypting with a different context fails. AWS's own
blob format is not public; this one is::

    0x01 | key id (16 bytes, the UUID) | nonce (12 bytes) | AES-GCM ciphertext | tag (16 bytes)

with AAD = ``b"cloudhsm-lab-kms/1"`` + the first 17 bytes + the canonical encryption
context (JSON, keys sorted, UTF-8). A blob made by the lab cannot be decrypted by
AWS, nor the other way round.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
#: Prefix of the additional authenticated data of every blob (domain separation).
AAD_DOMAIN = b"cloudhsm-lab-kms/1"
_HEADER = 1 + 16
_NONCE = 12
_TAG = 16
MIN_BLOB_BYTES = _HEADER + _NONCE + _TAG


class CiphertextError(ValueError):
    """The blob is not a lab KMS ciphertext, or it fails authentication."""


@dataclass(frozen=True)
class ParsedBlob:
    """A ciphertext blob split into its parts."""

    key_id: str
    header: bytes
    nonce: bytes
    sealed: bytes


def canonical_context(context: dict[str, str] | None) -> bytes:
    """The encryption context as the exact bytes bound into the ciphertext."""
    if not context:
        return b""
    return json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(key_id: str, key: bytes, plaintext: bytes, context: dict[str, str] | None) -> bytes:
    """Encrypt ``plaintext`` under ``key`` (32 bytes) into a blob naming ``key_id``."""
    header = bytes([VERSION]) + uuid.UUID(key_id).bytes
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, plaintext, AAD_DOMAIN + header + canonical_context(context))
    return header + nonce + sealed


def parse(blob: bytes) -> ParsedBlob:
    """Split ``blob``; raises :class:`CiphertextError` if it cannot be a lab KMS blob."""
    if len(blob) < MIN_BLOB_BYTES or blob[0] != VERSION:
        raise CiphertextError("not a ciphertext produced by the simulated KMS")
    return ParsedBlob(
        key_id=str(uuid.UUID(bytes=blob[1:_HEADER])),
        header=blob[:_HEADER],
        nonce=blob[_HEADER : _HEADER + _NONCE],
        sealed=blob[_HEADER + _NONCE :],
    )


def open_blob(parsed: ParsedBlob, key: bytes, context: dict[str, str] | None) -> bytes:
    """Decrypt a parsed blob; raises :class:`CiphertextError` on any mismatch."""
    aad = AAD_DOMAIN + parsed.header + canonical_context(context)
    try:
        return AESGCM(key).decrypt(parsed.nonce, parsed.sealed, aad)
    except InvalidTag:
        raise CiphertextError(
            "authentication failed (wrong key, context or damaged blob)"
        ) from None
