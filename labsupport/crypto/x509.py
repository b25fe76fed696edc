"""Use a key that stays inside a PKCS#11 token with the ``cryptography`` library.

``cryptography`` builds certificates, CSRs and CRLs by calling the ``sign()`` method of
the private-key object it is given. :class:`TokenRSAPrivateKey` and
:class:`TokenECPrivateKey` are such objects whose ``sign()`` is a PKCS#11 ``C_Sign`` in
the token, so the private key never leaves the HSM — exactly how a CA key held in
CloudHSM signs certificates::

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from labsupport.crypto.x509 import token_private_key

    with store.open_session("my-ca-token") as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="my-ca")
        signer = token_private_key(key)          # a cryptography private-key object
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(name)
               .sign(signer, hashes.SHA256()))   # C_Sign runs in the token

The adapters are only valid while the PKCS#11 session that found the key is open.
Everything that would reveal the private key (``private_numbers``, ``private_bytes``)
raises :class:`KeyNotExtractable`. :func:`public_key_from_token` turns a token public key
into a ``cryptography`` public key (for ``verify`` or to put in a certificate).

SoftHSM notes: SoftHSM 2.6 has no ``CKM_ECDSA_SHA256``, so the EC adapter hashes in
Python and signs the digest with ``CKM_ECDSA``, then DER-encodes the raw ``r||s`` result
as X.509 expects. The RSA adapter uses the combined hash-and-sign mechanisms
(``CKM_SHA256_RSA_PKCS``, ``CKM_SHA256_RSA_PKCS_PSS`` …), which both SoftHSM and CloudHSM have.
SoftHSM 2.6 decrypts RSA-OAEP with SHA-1 only (SHA-2 OAEP gives ``ArgumentsBad``);
CloudHSM accepts SHA-256 too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature

from labsupport.crypto.checks import KeyNotExtractable
from labsupport.crypto.hashes import HashAlg
from labsupport.errors import LabError

__all__ = [
    "KeyNotExtractable",
    "TokenECPrivateKey",
    "TokenRSAPrivateKey",
    "find_public_key",
    "public_key_from_token",
    "token_private_key",
]


def _stays_in_hsm(what: str) -> KeyNotExtractable:
    return KeyNotExtractable(
        f"{what} would need the private key's value, which never leaves the HSM.",
        "Keep the key in the token and let the token sign or decrypt; export only the "
        "public key (public_key().public_bytes(...)).",
    )


def _hash(algorithm: hashes.HashAlgorithm) -> HashAlg:
    return HashAlg.of(algorithm)


def _unwrap_hash(
    algorithm: hashes.HashAlgorithm | utils.Prehashed,
) -> tuple[hashes.HashAlgorithm, bool]:
    if isinstance(algorithm, utils.Prehashed):
        return algorithm._algorithm, True
    return algorithm, False


# --- public keys --------------------------------------------------------------------


def public_key_from_token(key: pkcs11.PublicKey) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """Return the ``cryptography`` public key equal to the token public key ``key``.

    Works for RSA and EC keys; the result can be written as PEM with
    ``public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)`` or put into a
    certificate.
    """
    if key.key_type == KeyType.RSA:
        n = int.from_bytes(key[Attribute.MODULUS], "big")
        e = int.from_bytes(key[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key.key_type == KeyType.EC:
        loaded = serialization.load_der_public_key(encode_ec_public_key(key))
        assert isinstance(loaded, ec.EllipticCurvePublicKey)
        return loaded
    raise ValueError(f"unsupported key type {key.key_type!r}: expected RSA or EC")


def find_public_key(private_key: pkcs11.PrivateKey) -> pkcs11.PublicKey:
    """Find the public half of ``private_key`` in the same token (same ``CKA_ID``, else label)."""
    session = private_key.session
    attrs: dict[Attribute, Any] = {
        Attribute.CLASS: ObjectClass.PUBLIC_KEY,
        Attribute.KEY_TYPE: private_key.key_type,
    }
    key_id = private_key[Attribute.ID]
    if key_id:
        attrs[Attribute.ID] = key_id
    else:
        attrs[Attribute.LABEL] = private_key.label
    found = list(session.get_objects(attrs))
    if len(found) != 1:
        raise LabError(
            f"Found {len(found)} public keys matching private key {private_key.label!r} "
            "in the token; expected exactly one.",
            "Give each key pair a unique CKA_ID (id=...) when you generate it, or pass "
            "public_key=... to the adapter yourself.",
        )
    pub = found[0]
    assert isinstance(pub, pkcs11.PublicKey)
    return pub


# --- private-key adapters -------------------------------------------------------------


class _StaysInToken:
    """What every token-key adapter shares: adopting the token key and its public half,
    no export, and copies that are the same key."""

    _key_type: KeyType
    _public_type: type

    def __init__(self, private_key: pkcs11.PrivateKey, public_key: Any = None) -> None:
        if private_key.key_type != self._key_type:
            raise ValueError(
                f"expected an {self._key_type.name} private key, got {private_key.key_type!r}"
            )
        self._key = private_key
        if public_key is None:
            public_key = public_key_from_token(find_public_key(private_key))
            assert isinstance(public_key, self._public_type)
        self._public = public_key

    @property
    def token_key(self) -> pkcs11.PrivateKey:
        """The python-pkcs11 key object this adapter signs with."""
        return self._key

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Not available: the private key stays in the HSM."""
        raise _stays_in_hsm("private_bytes()")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class TokenRSAPrivateKey(_StaysInToken, rsa.RSAPrivateKey):
    """A ``cryptography`` RSA private key whose operations run in a PKCS#11 token.

    ``private_key`` is a python-pkcs11 ``PrivateKey`` (its session must stay open while
    you use the adapter); ``public_key`` is its public half as a ``cryptography`` key
    (found in the token when omitted). Supports ``sign`` with PKCS#1 v1.5 or PSS and
    ``decrypt`` with OAEP or PKCS#1 v1.5.
    """

    _key_type = KeyType.RSA
    _public_type = rsa.RSAPublicKey

    @property
    def key_size(self) -> int:
        """Modulus size in bits."""
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half, as an ordinary ``cryptography`` public key."""
        return self._public

    def sign(
        self,
        data: bytes,
        padding: asym_padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | utils.Prehashed,
    ) -> bytes:
        """Sign ``data`` in the token (PKCS#1 v1.5 or PSS), returning the raw signature."""
        hash_alg, prehashed = _unwrap_hash(algorithm)
        alg = _hash(hash_alg)
        if isinstance(padding, asym_padding.PKCS1v15):
            if prehashed:
                return self._key.sign(alg.digest_info + data, mechanism=Mechanism.RSA_PKCS)
            return self._key.sign(data, mechanism=alg.rsa_pkcs_mechanism)
        if isinstance(padding, asym_padding.PSS):
            mgf_hash = _hash(padding.mgf._algorithm)  # type: ignore[attr-defined]
            salt = self._salt_length(padding, hash_alg)
            param = (alg.mechanism, mgf_hash.mgf, salt)
            if prehashed:
                return self._key.sign(data, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=param)
            return self._key.sign(data, mechanism=alg.rsa_pss_mechanism, mechanism_param=param)
        raise ValueError(f"unsupported RSA padding {padding.name}: use PKCS1v15 or PSS")

    def _salt_length(self, padding: asym_padding.PSS, algorithm: hashes.HashAlgorithm) -> int:
        salt = padding._salt_length  # type: ignore[attr-defined]
        if isinstance(salt, int):
            return salt
        if isinstance(salt, asym_padding._MaxLength):
            return (self.key_size + 7) // 8 - algorithm.digest_size - 2
        if isinstance(salt, asym_padding._DigestLength):
            return algorithm.digest_size
        raise ValueError("PSS.AUTO is for verification only; choose a salt length to sign")

    def decrypt(self, ciphertext: bytes, padding: asym_padding.AsymmetricPadding) -> bytes:
        """Decrypt ``ciphertext`` in the token (OAEP or PKCS#1 v1.5)."""
        if isinstance(padding, asym_padding.OAEP):
            alg = _hash(padding._algorithm)  # type: ignore[attr-defined]
            mgf_hash = _hash(padding._mgf._algorithm)  # type: ignore[attr-defined]
            param = (alg.mechanism, mgf_hash.mgf, padding._label or None)  # type: ignore[attr-defined]
            return self._key.decrypt(
                ciphertext, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=param
            )
        if isinstance(padding, asym_padding.PKCS1v15):
            return self._key.decrypt(ciphertext, mechanism=Mechanism.RSA_PKCS)
        raise ValueError(f"unsupported RSA padding {padding.name}: use OAEP or PKCS1v15")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """Not available: the private key stays in the HSM."""
        raise _stays_in_hsm("private_numbers()")

    def __repr__(self) -> str:
        return f"<TokenRSAPrivateKey {self._key.label!r} {self.key_size} bits (in the HSM)>"


class TokenECPrivateKey(_StaysInToken, ec.EllipticCurvePrivateKey):
    """A ``cryptography`` EC private key whose signatures are made in a PKCS#11 token.

    ``sign(data, ec.ECDSA(hashes.SHA256()))`` hashes ``data`` in Python, signs the digest
    with ``CKM_ECDSA`` in the token and returns the DER signature X.509 uses.
    """

    _key_type = KeyType.EC
    _public_type = ec.EllipticCurvePublicKey

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve (e.g. ``SECP256R1``)."""
        return self._public.curve

    @property
    def key_size(self) -> int:
        """Curve size in bits."""
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, as an ordinary ``cryptography`` public key."""
        return self._public

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """ECDSA-sign ``data`` in the token; returns a DER ``ECDSA-Sig-Value``."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ValueError("only ECDSA signatures are supported")
        hash_alg, prehashed = _unwrap_hash(signature_algorithm.algorithm)
        if prehashed:
            digest = data
        else:
            h = hashes.Hash(hash_alg)
            h.update(data)
            digest = h.finalize()
        return encode_ecdsa_signature(self._key.sign(digest, mechanism=Mechanism.ECDSA))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Not supported by the adapter: use ``C_DeriveKey`` (``derive_key``) in the token."""
        raise NotImplementedError(
            "ECDH with a token key: call derive_key() on the python-pkcs11 key instead"
        )

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """Not available: the private key stays in the HSM."""
        raise _stays_in_hsm("private_numbers()")

    def __repr__(self) -> str:
        return f"<TokenECPrivateKey {self._key.label!r} {self.curve.name} (in the HSM)>"


def token_private_key(
    private_key: pkcs11.PrivateKey,
) -> TokenRSAPrivateKey | TokenECPrivateKey:
    """Wrap token key ``private_key`` as a ``cryptography`` private key (RSA or EC)."""
    if private_key.key_type == KeyType.RSA:
        return TokenRSAPrivateKey(private_key)
    if private_key.key_type == KeyType.EC:
        return TokenECPrivateKey(private_key)
    raise ValueError(f"unsupported key type {private_key.key_type!r}: expected RSA or EC")


_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(**allowed: bool) -> x509.KeyUsage:
    """An X.509 KeyUsage with only the purposes named in ``allowed`` set; every other is False.

    ``key_usage(digital_signature=True, key_encipherment=True)`` is a TLS server's RSA key.
    """
    unknown = set(allowed) - set(_KEY_USAGE_FLAGS)
    if unknown:
        raise ValueError(f"not a KeyUsage flag: {', '.join(sorted(unknown))}")
    return x509.KeyUsage(**{flag: bool(allowed.get(flag)) for flag in _KEY_USAGE_FLAGS})


def certificate_builder(
    subject: x509.Name, issuer: x509.Name, public_key: Any, days: int
) -> x509.CertificateBuilder:
    """A certificate builder with subject, issuer, public key, a random serial and a
    validity from five minutes ago (clock skew) to ``days`` from now."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def add_ca_extensions(
    builder: x509.CertificateBuilder,
    public_key: Any,
    path_length: int | None,
    digital_signature: bool = True,
) -> x509.CertificateBuilder:
    """Add the extensions of a CA certificate: critical BasicConstraints(ca=True) and
    KeyUsage (keyCertSign, cRLSign, optionally digitalSignature), and the subject key id.
    """
    usage = key_usage(digital_signature=digital_signature, key_cert_sign=True, crl_sign=True)
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(usage, True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
