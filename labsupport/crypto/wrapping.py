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
  key. With KWP this composes CloudHSM's "RSA-AES" scheme, which SoftHSM 2.6.1 lacks as one
  mechanism (CKM_RSA_AES_KEY_WRAP).

A key that was unwrapped (imported) is not "local": its CKA_LOCAL is false, which tells
an auditor it was not generated in this HSM.
"""

from __future__ import annotations

import enum
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.attributes import ALL_CAPABILITIES
from pkcs11.constants import DEFAULT

from labsupport.crypto.checks import key_label, require_capability
from labsupport.crypto.ciphers import oaep_scheme
from labsupport.crypto.keygen import Usage, key_template, new_key_id


class WrapMechanism(enum.Enum):
    """How a key is wrapped: AES key wrap (RFC 3394), AES key wrap with padding, RSA-OAEP."""

    AES_KEY_WRAP = Mechanism.AES_KEY_WRAP
    AES_KEY_WRAP_PAD = Mechanism.AES_KEY_WRAP_PAD
    RSA_OAEP = Mechanism.RSA_PKCS_OAEP

    @property
    def wrapping_key_type(self) -> KeyType:
        """Type of the key that wraps (AES, or RSA for OAEP)."""
        return KeyType.RSA if self is WrapMechanism.RSA_OAEP else KeyType.AES


def _mechanism_param(rsa_key: pkcs11.Key, how: WrapMechanism) -> object:
    if how is WrapMechanism.RSA_OAEP:
        return oaep_scheme(rsa_key).mechanism_param
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
        from labsupport.crypto.checks import WrongKeyType

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
) -> pkcs11.Key:
    """Unwrap (import) a wrapped key into the HSM under a full CloudHSM-like template.

    Say what the blob is (``object_class``, ``key_type``) and what the new key may do
    (``usage``): the HSM decrypts the blob internally and creates a key object; the key
    material is never visible to you. For ``RSA_OAEP`` the unwrapping key is the RSA
    private key.
    """
    require_capability(unwrapping_key, Attribute.UNWRAP, "unwrap keys")
    key_id = new_key_id() if key_id is None else key_id
    template = unwrap_template(
        object_class, label=label, usage=usage, token=token, extractable=extractable
    )
    return unwrapping_key.unwrap_key(
        object_class,
        key_type,
        wrapped,
        id=key_id,
        label=label,
        store=token,
        mechanism=how.value,
        mechanism_param=_mechanism_param(unwrapping_key, how),
        template=template,
    )


def check_value(key: pkcs11.SecretKey) -> bytes | None:
    """The key check value (KCV) of an AES key: 3 bytes that identify it without revealing it.

    Computed in the HSM as the first 3 bytes of AES-ECB(key, 16 zero bytes) — the classic
    KCV, which SoftHSM also stores in CKA_CHECK_VALUE when it generates a key. Two keys
    with the same KCV are (almost certainly) the same key: compare a key and its unwrapped
    copy this way. Returns None if the key may not encrypt.
    """
    if key[Attribute.KEY_TYPE] is not KeyType.AES or not key[Attribute.ENCRYPT]:
        stored = key[Attribute.CHECK_VALUE] if key[Attribute.KEY_TYPE] is KeyType.AES else b""
        return stored or None
    return key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB)[:3]
