"""Key wrapping: export a key *encrypted* under another key, and import it back.

Wrapping is the only way key material leaves an HSM, and only if the key is
extractable (CKA_EXTRACTABLE true) and the wrapping key may wrap (CKA_WRAP true).
The wrapped blob is useless without the wrapping key, so it can be stored or sent.
CloudHSM uses the same idea to copy keys between the HSMs of a cluster, to back them up,
and for BYOK (lesson 05).

Mechanisms here:

* ``AES_KEY_WRAP`` — RFC 3394 (CKM_AES_KEY_WRAP): wraps keys whose length is a multiple
  of 8 bytes (AES keys); output is 8 bytes longer than the key.
* ``AES_KEY_WRAP_PAD`` — RFC 5649 (CKM_AES_KEY_WRAP_PAD, "KWP"): any length, e.g. an RSA
  or EC private key (wrapped as PKCS#8).
* ``RSA_OAEP`` — wrap a (short) secret key with an RSA public key; unwrap with the private
  key.
* RSA-AES (``CKM_RSA_AES_KEY_WRAP``, KMS's ``RSA_AES_KEY_WRAP_*``) — for material longer
  than RSA-OAEP carries (a PKCS#8 private key): a fresh AES-256 key is wrapped with
  RSA-OAEP and the material with that AES key (KWP); the blob is
  ``RSA-OAEP(aes key) || AES-KWP(material)``. SoftHSM 2.6.1 lacks the one mechanism, so
  :func:`rsa_aes_wrap_in_hsm` / :func:`rsa_aes_unwrap_in_hsm` compose it from its two
  halves inside the token; :func:`rsa_aes_wrap` / :func:`rsa_aes_unwrap` do the same
  with ``cryptography`` outside it (the key owner's side, and the simulated KMS's).
  This is the one implementation lesson 05 (both directions) and the KMS simulator use.

A key that was unwrapped (imported) is not "local": its CKA_LOCAL is false, which tells
an auditor it was not generated in this HSM.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.attributes import ALL_CAPABILITIES
from pkcs11.constants import DEFAULT

from labsupport.crypto.checks import WrongKeyType, key_label, require_capability
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.kcv import KcvUnavailable, hsm_kcv
from labsupport.crypto.keygen import KeySpec, Usage, generate_secret_key, key_template, new_key_id
from labsupport.crypto.oaep import OaepScheme, oaep_scheme

#: The temporary AES key of RSA-AES is AES-256 (as CKM_RSA_AES_KEY_WRAP and KMS use).
RSA_AES_EPHEMERAL_BYTES = 32


class WrapMechanism(enum.Enum):
    """How a key is wrapped: AES key wrap (RFC 3394), AES key wrap with padding, RSA-OAEP."""

    AES_KEY_WRAP = Mechanism.AES_KEY_WRAP
    AES_KEY_WRAP_PAD = Mechanism.AES_KEY_WRAP_PAD
    RSA_OAEP = Mechanism.RSA_PKCS_OAEP

    @property
    def wrapping_key_type(self) -> KeyType:
        """Type of the key that wraps (AES, or RSA for OAEP)."""
        return KeyType.RSA if self is WrapMechanism.RSA_OAEP else KeyType.AES


def _mechanism_param(
    rsa_key: pkcs11.Key, how: WrapMechanism, hash: HashAlg | None = None
) -> object:
    if how is WrapMechanism.RSA_OAEP:
        return oaep_scheme(rsa_key, hash).mechanism_param
    return None


def wrap_key(
    wrapping_key: pkcs11.Key,
    key: pkcs11.Key,
    how: WrapMechanism = WrapMechanism.AES_KEY_WRAP_PAD,
) -> bytes:
    """Wrap (encrypt) ``key`` under ``wrapping_key`` inside the HSM; returns the blob.

    ``key`` must be extractable — a non-extractable key makes the token answer
    ``KeyUnextractable`` (CKR_KEY_UNEXTRACTABLE), and nothing leaves the HSM. For
    ``RSA_OAEP`` the wrapping key is an RSA *public* key.
    """
    require_capability(wrapping_key, Attribute.WRAP, "wrap other keys")
    if wrapping_key[Attribute.KEY_TYPE] is not how.wrapping_key_type:
        raise WrongKeyType(
            f"{how.name} wraps with {how.wrapping_key_type.name} keys; "
            f"{key_label(wrapping_key)} is not one.",
            "Use an AES key with CKA_WRAP for AES key wrap, an RSA public key for RSA-OAEP.",
        )
    return wrapping_key.wrap_key(
        key, mechanism=how.value, mechanism_param=_mechanism_param(wrapping_key, how)
    )


#: Attributes python-pkcs11 takes as keyword arguments of unwrap_key (not in the template).
KWARG_ATTRIBUTES = (Attribute.CLASS, Attribute.LABEL, Attribute.ID, Attribute.TOKEN)


def unwrap_template(
    object_class: ObjectClass, *, label: str, usage: Usage, token: bool, extractable: bool
) -> dict[Attribute, Any]:
    """The CloudHSM-like template for ``C_UnwrapKey``, ready for python-pkcs11's ``template=``.

    CKA_CLASS, CKA_LABEL, CKA_ID and CKA_TOKEN are left out: python-pkcs11 takes them as
    keyword arguments.
    """
    template = key_template(
        object_class, label=label, usage=usage, token=token, extractable=extractable
    )
    for attr in KWARG_ATTRIBUTES:
        template.pop(attr, None)
    # python-pkcs11 adds every usage attribute to an unwrap template; DEFAULT drops the
    # ones that do not belong to this object class (CKA_ENCRYPT on a private key, …).
    for attr in ALL_CAPABILITIES:
        template.setdefault(attr, DEFAULT)
    return template


def unwrap_key(
    unwrapping_key: pkcs11.Key,
    wrapped: bytes,
    *,
    object_class: ObjectClass,
    key_type: KeyType,
    label: str,
    usage: Usage,
    how: WrapMechanism = WrapMechanism.AES_KEY_WRAP_PAD,
    token: bool = True,
    extractable: bool = True,
    key_id: bytes | None = None,
    hash: HashAlg | None = None,
) -> pkcs11.Key:
    """Unwrap (import) a wrapped key into the HSM under a full CloudHSM-like template.

    Say what the blob is (``object_class``, ``key_type``) and what the new key may do
    (``usage``): the HSM decrypts the blob internally and creates a key object; the key
    material is never visible to you. For ``RSA_OAEP`` the unwrapping key is the RSA
    private key and ``hash`` the OAEP hash (default: the best the token accepts).
    ``key_id`` defaults to a fresh random CKA_ID. The one unwrap call of every recipe here.
    """
    require_capability(unwrapping_key, Attribute.UNWRAP, "unwrap keys")
    return unwrapping_key.unwrap_key(
        object_class,
        key_type,
        wrapped,
        id=new_key_id() if key_id is None else key_id,
        label=label,
        store=token,
        mechanism=how.value,
        mechanism_param=_mechanism_param(unwrapping_key, how, hash),
        template=unwrap_template(
            object_class, label=label, usage=usage, token=token, extractable=extractable
        ),
    )


def check_value(key: pkcs11.SecretKey) -> bytes | None:
    """The key check value (KCV) of an AES key: 3 bytes that identify it without revealing it.

    CloudHSM's method: the first 3 bytes of AES-ECB(key, 16 zero bytes), computed in the
    HSM (or the CKA_CHECK_VALUE the token stored). Two keys with the same KCV are (almost
    certainly) the same key: compare a key and its unwrapped copy this way. Returns None
    when the HSM cannot compute it (not an AES key, or it may not encrypt and the token
    stored none). :func:`labsupport.crypto.kcv.hsm_kcv` is the same with its reasons.
    """
    try:
        return hsm_kcv(key)
    except KcvUnavailable:
        return None


# -- RSA-AES key wrap: one implementation, outside and inside the HSM ------------------------


def _split_rsa_aes(blob: bytes, modulus_bytes: int) -> tuple[bytes, bytes]:
    if len(blob) <= modulus_bytes:
        raise ValueError(
            f"an RSA-AES blob is RSA-OAEP({modulus_bytes} bytes) || AES-KWP(material); "
            f"this one has only {len(blob)} bytes"
        )
    return blob[:modulus_bytes], blob[modulus_bytes:]


def rsa_aes_wrap(public_key: rsa.RSAPublicKey, material: bytes, hash: HashAlg) -> bytes:
    """RSA-AES-wrap ``material`` outside the HSM: ``RSA-OAEP(aes) || AES-KWP(material)``."""
    ephemeral = os.urandom(RSA_AES_EPHEMERAL_BYTES)
    head = public_key.encrypt(ephemeral, OaepScheme(hash).padding())
    return head + aes_key_wrap_with_padding(ephemeral, material)


def rsa_aes_unwrap(private_key: rsa.RSAPrivateKey, blob: bytes, hash: HashAlg) -> bytes:
    """Open an RSA-AES blob outside the HSM (what KMS does on ImportKeyMaterial).

    Raises ValueError when the blob was made for another key or hash, or is damaged.
    """
    head, tail = _split_rsa_aes(blob, private_key.key_size // 8)
    ephemeral = private_key.decrypt(head, OaepScheme(hash).padding())
    if len(ephemeral) not in (16, 24, 32):
        raise ValueError("the RSA-wrapped part is not an AES key")
    try:
        return aes_key_unwrap_with_padding(ephemeral, tail)
    except InvalidUnwrap as exc:
        raise ValueError("AES key unwrap failed: the blob was changed or made elsewhere") from exc


def rsa_aes_wrap_in_hsm(wrapping_key: pkcs11.PublicKey, key: pkcs11.Key, hash: HashAlg) -> bytes:
    """CKM_RSA_AES_KEY_WRAP composed in the HSM: a temporary AES-256 session key made in
    the token is wrapped with RSA-OAEP, it wraps ``key`` with CKM_AES_KEY_WRAP_PAD, and it
    is destroyed. ``key`` must be extractable; both keys on one HSM (token objects on a
    cluster)."""
    oaep = OaepScheme(hash)
    ephemeral = generate_secret_key(
        key.session, KeySpec.AES_256, "rsa-aes-ephemeral", usage=Usage.WRAP, token=False
    )
    try:
        head = wrapping_key.wrap_key(
            ephemeral, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep.mechanism_param
        )
        return head + ephemeral.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    finally:
        ephemeral.destroy()


@contextmanager
def rsa_aes_opened_in_hsm(
    unwrapping_key: pkcs11.PrivateKey, blob: bytes, hash: HashAlg
) -> Iterator[tuple[pkcs11.SecretKey, bytes]]:
    """The first half of an RSA-AES unwrap in the HSM: ``C_UnwrapKey`` with RSA-OAEP gives
    a temporary AES session key that may only unwrap; yields it with the AES-KWP part of
    the blob, and destroys it on leaving the ``with`` block.

    For a caller that unwraps the second half under its own template (the CloudHSM CLI's
    ``key unwrap rsa-aes`` applies AWS's attribute defaults); :func:`rsa_aes_unwrap_in_hsm`
    is both halves. Raises ValueError for a blob too short to be RSA-AES.
    """
    head, tail = _split_rsa_aes(blob, len(unwrapping_key[Attribute.MODULUS]))
    ephemeral = unwrap_key(
        unwrapping_key,
        head,
        object_class=ObjectClass.SECRET_KEY,
        key_type=KeyType.AES,
        label="rsa-aes-ephemeral",
        usage=Usage.WRAP,
        how=WrapMechanism.RSA_OAEP,
        token=False,
        extractable=False,
        hash=hash,
    )
    try:
        yield ephemeral, tail
    finally:
        ephemeral.destroy()


def rsa_aes_unwrap_in_hsm(
    unwrapping_key: pkcs11.PrivateKey,
    blob: bytes,
    hash: HashAlg,
    object_class: ObjectClass,
    key_type: KeyType,
    *,
    label: str,
    usage: Usage,
    token: bool,
    extractable: bool,
    key_id: bytes | None = None,
) -> pkcs11.Key:
    """CKM_RSA_AES_KEY_WRAP unwrap composed in the HSM: ``C_UnwrapKey`` with RSA-OAEP gives
    a temporary AES session key that may only unwrap, ``C_UnwrapKey`` with AES-KWP gives
    the key (full CloudHSM-like template), and the temporary key is destroyed.

    Raises ValueError for a blob too short to be RSA-AES; the token's own error otherwise.
    """
    with rsa_aes_opened_in_hsm(unwrapping_key, blob, hash) as (ephemeral, tail):
        return unwrap_key(
            ephemeral,
            tail,
            object_class=object_class,
            key_type=key_type,
            label=label,
            usage=usage,
            token=token,
            extractable=extractable,
            key_id=key_id,
        )
