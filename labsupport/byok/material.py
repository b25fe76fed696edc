"""Key material made *outside* the HSM, with ``cryptography`` — where bring-your-own-key starts.

BYOK means the key was not born in the HSM that will use it: your own key-management
system, another HSM, or (as here, for practice) a Python process made it. While it is
outside an HSM it is only as safe as the machine that holds it, so the lab keeps it in
memory, never prints it, and only writes it to disk to show why that is a bad idea
(:func:`write_pem_file`, lesson 05's plaintext-import section).

What the HSM import steps expect:

* an AES key is its raw bytes (16, 24 or 32);
* an RSA or EC private key travels as a PKCS#8 ``PrivateKeyInfo`` (DER) — the format
  PKCS#11's ``C_UnwrapKey`` takes for private keys, and what CloudHSM's ``key unwrap``
  and KMS's asymmetric import expect.
"""

from __future__ import annotations

import enum
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from labsupport.crypto.keygen import Curve
from labsupport.errors import LabError

#: A private key made outside the HSM (what :func:`new_rsa_key` / :func:`new_ec_key` return).
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
#: Key material the BYOK helpers accept: raw AES key bytes or a private key object.
Material = bytes | PrivateKey

_MATERIAL_FIX = (
    "Pass AES key bytes (new_aes_key()) or a private key object (new_rsa_key(), "
    "new_ec_key(), read_pem_file(path))."
)


class ByokInputError(LabError, ValueError):
    """A BYOK helper got a value it cannot use; the message says what to pass instead.

    Also a :class:`ValueError`, so code that caught the plain ``ValueError`` still does.
    """


class NotKeyMaterial(ByokInputError, TypeError):
    """Something that is not key material (AES bytes or an RSA/EC private key) was passed."""


def choice(kind: type[enum.Enum], value: object, what: str) -> Any:
    """``kind(value)``, or a :class:`ByokInputError` listing the values ``kind`` allows."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(f"{kind.__name__}.{m.name}" for m in kind)
        raise ByokInputError(f"{value!r} is not a {what}.", f"Use one of {allowed}.") from None


def new_aes_key(bits: int = 256) -> bytes:
    """Fresh AES key material (``bits`` 128, 192 or 256) from the operating system's RNG."""
    if bits not in (128, 192, 256):
        raise ByokInputError(f"AES keys are 128, 192 or 256 bits, not {bits!r}.", "Use bits=256.")
    return secrets.token_bytes(bits // 8)


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA private key (public exponent 65537) made by ``cryptography`` (OpenSSL)."""
    if bits not in (2048, 3072, 4096):
        raise ByokInputError(
            f"The lab makes RSA keys of 2048, 3072 or 4096 bits, not {bits!r}.", "Use bits=2048."
        )
    return rsa.generate_private_key(65537, bits)


def new_ec_key(curve: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    """A fresh EC private key on ``curve`` (``secp256r1`` = P-256, ``secp384r1`` = P-384)."""
    try:
        chosen = Curve(curve)
    except ValueError:
        names = ", ".join(c.value for c in Curve)
        raise ByokInputError(
            f"{curve!r} is not a curve the lab uses.", f"Use one of {names}."
        ) from None
    return ec.generate_private_key(chosen.cryptography())


def pkcs8_der(private_key: PrivateKey) -> bytes:
    """The private key as an unencrypted PKCS#8 ``PrivateKeyInfo`` (DER) — secret bytes."""
    return private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def describe(material: Material) -> str:
    """A one-line description that reveals nothing secret: ``'RSA-2048 private key'``."""
    if isinstance(material, bytes | bytearray):
        if len(material) not in (16, 24, 32):
            raise ByokInputError(
                f"AES key material is 16, 24 or 32 bytes; this is {len(material)} bytes.",
                _MATERIAL_FIX,
            )
        return f"AES-{len(material) * 8} key"
    if isinstance(material, rsa.RSAPrivateKey):
        return f"RSA-{material.key_size} private key"
    if isinstance(material, ec.EllipticCurvePrivateKey):
        return f"EC {material.curve.name} private key"
    raise NotKeyMaterial(f"{type(material).__name__} is not key material.", _MATERIAL_FIX)


def write_pem_file(private_key: PrivateKey, path: Path) -> Path:
    """Write the private key as an *unencrypted* PEM file (mode 0600) and return its path.

    This is what plaintext import starts from — and its weakness: the secret now sits in a
    file, in backups and in the page cache of whatever machine wrote it. Delete the file
    as soon as the import is done (``path.unlink()``); better, do not make one at all.
    """
    path = Path(path)
    data = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def read_pem_file(path: Path) -> PrivateKey:
    """Load an unencrypted PEM private key file (RSA or EC) written by :func:`write_pem_file`."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("the lab imports RSA and EC private keys only")
    return key
