"""RSA-OAEP: the scheme, and which hashes the token accepts for it — asked once, one way.

OAEP takes a hash (and an MGF1 hash). SHA-256 is the modern choice and what CloudHSM
and KMS use for key import; SoftHSM 2.6.1 accepts only SHA-1 with OAEP and answers
``CKR_ARGUMENTS_BAD`` to SHA-256 (OAEP with SHA-1 is still considered secure: OAEP does
not rely on collision resistance — but say which one you used, the other side must use
the same). :func:`oaep_hashes` finds out by trying each hash once on a key that will use
it (the token refuses unsupported parameters before it touches any data):

* an RSA public key that may encrypt: ``C_Encrypt`` of a short probe;
* an RSA private key that may decrypt: ``C_Decrypt`` of a zero block;
* an RSA private key that may only unwrap: ``C_UnwrapKey`` of a zero block;
* an RSA public key that may only wrap: ``C_WrapKey`` of a throw-away AES session key;
* a session: a throw-away RSA public session key is created, tried and destroyed.

Answers are remembered per token model and operation, so each probe runs once per kernel.
Lesson 04 (encryption) and lesson 05 (BYOK key wrapping) both ask here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

import pkcs11
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import ArgumentsBad, MechanismParamInvalid

from labsupport.crypto.checks import OaepHashUnsupported
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.keygen import KeySpec, Usage, generate_secret_key


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


class _Operation(enum.Enum):
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    WRAP = "wrap"
    UNWRAP = "unwrap"


#: Hashes tried, best first.
CANDIDATES = (HashAlg.SHA256, HashAlg.SHA384, HashAlg.SHA512, HashAlg.SHA1)
_REFUSED = (ArgumentsBad, MechanismParamInvalid)
_CACHE: dict[tuple[str, str, _Operation], tuple[HashAlg, ...]] = {}


def _session_of(target: pkcs11.Session | pkcs11.Key) -> pkcs11.Session:
    return target.session if isinstance(target, pkcs11.types.Key) else target


def _operation(key: pkcs11.Key) -> _Operation:
    public = key[Attribute.CLASS] is ObjectClass.PUBLIC_KEY
    if public and key[Attribute.ENCRYPT]:
        return _Operation.ENCRYPT
    if not public and key[Attribute.DECRYPT]:
        return _Operation.DECRYPT
    if public and key[Attribute.WRAP]:
        return _Operation.WRAP
    if not public and key[Attribute.UNWRAP]:
        return _Operation.UNWRAP
    raise ValueError("pass an RSA key that may encrypt, decrypt, wrap or unwrap (or a session)")


def _accepts(probe: pkcs11.Key, operation: _Operation, alg: HashAlg) -> bool:
    """Does the token start an OAEP ``operation`` with ``alg`` on the RSA key ``probe``?"""
    param = OaepScheme(alg).mechanism_param
    oaep = {"mechanism": Mechanism.RSA_PKCS_OAEP, "mechanism_param": param}
    dummy = None
    try:
        if operation is _Operation.ENCRYPT:
            probe.encrypt(b"probe", **oaep)
        elif operation is _Operation.DECRYPT:  # zeros fail *after* the parameters passed
            probe.decrypt(bytes(len(probe[Attribute.MODULUS])), **oaep)
        elif operation is _Operation.UNWRAP:
            made = probe.unwrap_key(
                ObjectClass.SECRET_KEY,
                KeyType.AES,
                bytes(len(probe[Attribute.MODULUS])),
                store=False,
                template={Attribute.TOKEN: False, Attribute.SENSITIVE: True},
                **oaep,
            )
            made.destroy()
        else:
            dummy = generate_secret_key(
                probe.session, KeySpec.AES_128, "oaep-probe", usage=Usage.NONE, token=False
            )
            probe.wrap_key(dummy, **oaep)
    except _REFUSED:
        return False
    except pkcs11.PKCS11Error:
        return True  # the parameters were accepted; the probe data was (rightly) not
    finally:
        if dummy is not None:
            dummy.destroy()
    return True


@lru_cache(maxsize=1)
def _probe_public_numbers() -> rsa.RSAPublicNumbers:
    # Any valid RSA public key will do to ask the token which OAEP hashes it accepts.
    return rsa.generate_private_key(65537, 2048).public_key().public_numbers()


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

    ``target`` is the RSA key you will encrypt, decrypt, wrap or unwrap with (it is the
    probe, for that operation), or a session (a throw-away public key is the probe). A
    token that does not support a hash refuses when the operation starts
    (CKR_ARGUMENTS_BAD or CKR_MECHANISM_PARAM_INVALID); SoftHSM 2.6.1 accepts only SHA-1.
    """
    token = _session_of(target).token
    key = target if isinstance(target, pkcs11.types.Key) else None
    operation = _operation(key) if key is not None else _Operation.ENCRYPT
    cache_key = (str(token.manufacturer_id), str(token.model), operation)
    if cache_key not in _CACHE:
        probe = key if key is not None else _session_probe_key(_session_of(target))
        try:
            _CACHE[cache_key] = tuple(a for a in CANDIDATES if _accepts(probe, operation, a))
        finally:
            if key is None:
                probe.destroy()
    return _CACHE[cache_key]


def require_oaep_hash(target: pkcs11.Session | pkcs11.Key, alg: HashAlg, fix: str) -> None:
    """Raise :class:`OaepHashUnsupported` (``fix`` = the next step) unless the token
    accepts ``alg`` for OAEP with ``target``."""
    accepted = oaep_hashes(target)
    if alg not in accepted:
        names = ", ".join(h.name for h in accepted) or "none"
        raise OaepHashUnsupported(
            f"This token refuses RSA-OAEP with {alg.name} (it accepts: {names}). "
            "SoftHSM 2.6.1 implements OAEP with SHA-1 only; CloudHSM accepts SHA-1 to SHA-512.",
            fix,
        )


def oaep_scheme(target: pkcs11.Session | pkcs11.Key, hash: HashAlg | None = None) -> OaepScheme:
    """The OAEP scheme to use on this token: ``hash`` if given (checked), else the best.

    ``target`` as for :func:`oaep_hashes`. Raises :class:`OaepHashUnsupported` if the
    token refuses ``hash``.
    """
    if hash is None:
        supported = oaep_hashes(target)
        if not supported:
            raise OaepHashUnsupported(
                "This token supports RSA-OAEP with none of SHA-1/256/384/512.",
                "Check its mechanism list (CKM_RSA_PKCS_OAEP) or use another module.",
            )
        return OaepScheme(supported[0])
    require_oaep_hash(
        target,
        hash,
        "Leave hash=None to use the best hash the token has, and tell the other side "
        "which one (OaepScheme.padding() gives the matching cryptography padding).",
    )
    return OaepScheme(hash)
