"""Which RSA-OAEP hashes does the token accept for *wrapping and unwrapping* keys?

Both BYOK directions use RSA-OAEP, and both sides must agree on its hash. CloudHSM
accepts SHA-1 to SHA-512 (its documentation uses SHA-256); SoftHSM 2.6.1 accepts SHA-1
only and answers ``CKR_ARGUMENTS_BAD`` to anything else. :func:`oaep_hashes_for` finds out
with the key you are going to use, by trying each hash once on that very key (the token
refuses unsupported parameters before it touches any data):

* an RSA private key that may unwrap: ``C_UnwrapKey`` of a dummy block;
* an RSA public key that may wrap: ``C_WrapKey`` of a throw-away AES session key;
* a key that may encrypt or decrypt: ``labsupport.crypto.oaep_hashes``;
* a session: a throw-away RSA public key (a token object, so it also works on the lab's
  cluster) is created, tried and deleted.

Answers are remembered per token model, so each probe runs once per kernel.
"""

from __future__ import annotations

from functools import lru_cache

import pkcs11
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import ArgumentsBad, MechanismParamInvalid

from labsupport.crypto.checks import OaepHashUnsupported
from labsupport.crypto.ciphers import OaepScheme, oaep_hashes
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.interop import import_public_key
from labsupport.crypto.keygen import KeySpec, Usage, generate_secret_key

#: Hashes tried, best first.
CANDIDATES = (HashAlg.SHA256, HashAlg.SHA384, HashAlg.SHA512, HashAlg.SHA1)
_REFUSED = (ArgumentsBad, MechanismParamInvalid)
_CACHE: dict[tuple[str, str, str], tuple[HashAlg, ...]] = {}


def _token_model(session: pkcs11.Session) -> tuple[str, str]:
    token = session.token
    return (str(token.manufacturer_id), str(token.model))


def _accepts_unwrap(private_key: pkcs11.PrivateKey, alg: HashAlg) -> bool:
    size = len(private_key[Attribute.MODULUS])
    try:
        made = private_key.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            bytes(size),
            store=False,
            mechanism=Mechanism.RSA_PKCS_OAEP,
            mechanism_param=OaepScheme(alg).mechanism_param,
            template={Attribute.TOKEN: False, Attribute.SENSITIVE: True},
        )
    except _REFUSED:
        return False
    except pkcs11.PKCS11Error:
        return True  # the parameters were accepted; the dummy block was (rightly) not
    made.destroy()
    return True


def _accepts_wrap(public_key: pkcs11.PublicKey, alg: HashAlg) -> bool:
    dummy = generate_secret_key(
        public_key.session, KeySpec.AES_128, "oaep-probe", usage=Usage.NONE, token=False
    )
    try:
        public_key.wrap_key(
            dummy,
            mechanism=Mechanism.RSA_PKCS_OAEP,
            mechanism_param=OaepScheme(alg).mechanism_param,
        )
    except _REFUSED:
        return False
    finally:
        dummy.destroy()
    return True


@lru_cache(maxsize=1)
def _probe_public_key() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(65537, 2048).public_key()


def oaep_hashes_for(target: pkcs11.Session | pkcs11.Key) -> tuple[HashAlg, ...]:
    """The OAEP hashes the token accepts for key wrapping with ``target``, best first.

    ``target``: the RSA key you will wrap or unwrap with, or a session.
    """
    if isinstance(target, pkcs11.types.Key):
        session = target.session
        if hasattr(target, "encrypt") or hasattr(target, "decrypt"):
            return oaep_hashes(target)
        if target[Attribute.CLASS] is ObjectClass.PRIVATE_KEY and target[Attribute.UNWRAP]:
            kind, check = "unwrap", _accepts_unwrap
        elif target[Attribute.CLASS] is ObjectClass.PUBLIC_KEY and target[Attribute.WRAP]:
            kind, check = "wrap", _accepts_wrap
        else:
            raise ValueError("pass an RSA key that may wrap, unwrap, encrypt or decrypt")
        cache_key = (*_token_model(session), kind)
        if cache_key not in _CACHE:
            _CACHE[cache_key] = tuple(alg for alg in CANDIDATES if check(target, alg))
        return _CACHE[cache_key]
    cache_key = (*_token_model(target), "wrap")
    if cache_key not in _CACHE:
        probe = import_public_key(
            target, _probe_public_key(), "oaep-probe", usage=Usage.WRAP, token=True
        )
        try:
            _CACHE[cache_key] = tuple(alg for alg in CANDIDATES if _accepts_wrap(probe, alg))
        finally:
            probe.destroy()
    return _CACHE[cache_key]


def require_oaep_hash(target: pkcs11.Session | pkcs11.Key, alg: HashAlg, fix: str) -> None:
    """Raise ``OaepHashUnsupported`` (``fix`` = the next step) unless the token accepts ``alg``."""
    accepted = oaep_hashes_for(target)
    if alg not in accepted:
        names = ", ".join(h.name for h in accepted) or "none"
        raise OaepHashUnsupported(
            f"This token refuses RSA-OAEP with {alg.name} for key wrapping (it accepts: "
            f"{names}). SoftHSM 2.6.1 implements OAEP with SHA-1 only; CloudHSM accepts "
            "SHA-1 to SHA-512.",
            fix,
        )
