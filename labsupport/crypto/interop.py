"""Working with the world outside the HSM: public keys out, signatures checked anywhere.

The pattern real applications use: the private key stays in the HSM; its *public* key is
exported (PEM, in a certificate) and everyone else verifies signatures and encrypts with
ordinary software such as ``cryptography`` or OpenSSL — no HSM needed on their side.

What cannot leave: a sensitive key's value can't be read (``AttributeSensitive``,
CKR_ATTRIBUTE_SENSITIVE), and a non-extractable key can't even be wrapped
(``KeyUnextractable``, CKR_KEY_UNEXTRACTABLE). :func:`exportability` explains which rule
holds for a key; :func:`export_private_key` shows the error a learner gets when trying.

The conversion of token keys to ``cryptography`` objects reuses ``labsupport.crypto.x509``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pkcs11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport.crypto.ciphers import OaepScheme
from labsupport.crypto.keygen import Curve, Usage, key_template
from labsupport.crypto.signatures import Family, SignatureScheme
from labsupport.crypto.x509 import public_key_from_token

PublicKeyLike = pkcs11.PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def to_cryptography(public_key: pkcs11.PublicKey) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The token public key as a ``cryptography`` public key (RSA or EC)."""
    return public_key_from_token(public_key)


def _as_cryptography(key: PublicKeyLike) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    return to_cryptography(key) if isinstance(key, pkcs11.PublicKey) else key


def public_key_pem(public_key: PublicKeyLike) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo) — safe to publish, e.g. to OpenSSL."""
    return _as_cryptography(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verify_outside(
    public_key: PublicKeyLike, data: bytes, signature: bytes, scheme: SignatureScheme
) -> bool:
    """Verify an HSM-made signature with ``cryptography`` only (no PKCS#11 call).

    ECDSA signatures in DER, as ``signatures.sign`` returns them.
    """
    key = _as_cryptography(public_key)
    try:
        if scheme.family is Family.ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            key.verify(signature, data, ec.ECDSA(scheme.hash.cryptography()))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            pad = scheme.cryptography_padding()
            assert pad is not None
            key.verify(signature, data, pad, scheme.hash.cryptography())
    except InvalidSignature:
        return False
    return True


def encrypt_outside(public_key: PublicKeyLike, plaintext: bytes, scheme: OaepScheme) -> bytes:
    """RSA-OAEP-encrypt to an HSM key with ``cryptography``: only the HSM can decrypt it."""
    key = _as_cryptography(public_key)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("RSA-OAEP needs an RSA public key")
    return key.encrypt(plaintext, scheme.padding())


def import_public_key(
    session: pkcs11.Session,
    public_key: rsa.RSAPublicKey,
    label: str,
    *,
    usage: Usage = Usage.ENCRYPT,
    token: bool = False,
) -> pkcs11.PublicKey:
    """Import someone else's RSA public key into the HSM (``C_CreateObject``).

    The HSM can then encrypt (or wrap keys) *to* that party, who decrypts outside with
    their own private key. Imported keys are not local (CKA_LOCAL false).
    """
    numbers = public_key.public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    template = key_template(ObjectClass.PUBLIC_KEY, label=label, usage=usage, token=token)
    template.update(
        {
            Attribute.KEY_TYPE: KeyType.RSA,
            Attribute.MODULUS: numbers.n.to_bytes(size, "big"),
            Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"),
        }
    )
    return session.create_object(template)  # type: ignore[return-value]


@dataclass(frozen=True)
class Exportability:
    """Whether and how a key could leave the HSM, read from its attributes."""

    label: str
    sensitive: bool
    extractable: bool
    never_extractable: bool

    @property
    def readable_in_plaintext(self) -> bool:
        """True only for non-sensitive keys: their value can be read with C_GetAttributeValue."""
        return not self.sensitive

    @property
    def wrappable(self) -> bool:
        """True if the key may leave the HSM encrypted under a wrapping key."""
        return self.extractable

    def __str__(self) -> str:
        if not self.sensitive:
            verdict = "its value can be READ in plaintext (not sensitive) — not HSM-grade"
        elif self.extractable:
            verdict = "cannot be read; CAN leave the HSM wrapped (encrypted) by its owner"
        else:
            verdict = "cannot be read and cannot be wrapped: it never leaves this HSM"
        return f"{self.label!r}: {verdict}"


def exportability(key: pkcs11.Key) -> Exportability:
    """Read CKA_SENSITIVE / CKA_EXTRACTABLE / CKA_NEVER_EXTRACTABLE and say what they allow."""
    attrs = key.get_attributes(
        [Attribute.LABEL, Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.NEVER_EXTRACTABLE]
    )
    return Exportability(
        attrs[Attribute.LABEL],
        bool(attrs[Attribute.SENSITIVE]),
        bool(attrs[Attribute.EXTRACTABLE]),
        bool(attrs[Attribute.NEVER_EXTRACTABLE]),
    )


def _int(key: pkcs11.Key, attr: Attribute) -> int:
    return int.from_bytes(key[attr], "big")


def export_private_key(
    private_key: pkcs11.PrivateKey,
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Try to read a private key out of the HSM as a ``cryptography`` key object.

    For an HSM-grade key this fails at the first secret attribute with the token's own
    error, ``AttributeSensitive`` (CKR_ATTRIBUTE_SENSITIVE) — which is the point. It only
    succeeds for a key created with ``CKA_SENSITIVE`` false (never do that for real keys).
    """
    if private_key[Attribute.KEY_TYPE] is KeyType.RSA:
        n = _int(private_key, Attribute.MODULUS)
        e = _int(private_key, Attribute.PUBLIC_EXPONENT)
        d = _int(private_key, Attribute.PRIVATE_EXPONENT)  # raises AttributeSensitive
        numbers = rsa.RSAPrivateNumbers(
            p=_int(private_key, Attribute.PRIME_1),
            q=_int(private_key, Attribute.PRIME_2),
            d=d,
            dmp1=_int(private_key, Attribute.EXPONENT_1),
            dmq1=_int(private_key, Attribute.EXPONENT_2),
            iqmp=_int(private_key, Attribute.COEFFICIENT),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        return numbers.private_key()
    if private_key[Attribute.KEY_TYPE] is KeyType.EC:
        value = _int(private_key, Attribute.VALUE)  # raises AttributeSensitive
        curve = Curve.from_ec_params(private_key[Attribute.EC_PARAMS])
        return ec.derive_private_key(value, curve.cryptography())
    raise ValueError("export_private_key handles RSA and EC private keys")
