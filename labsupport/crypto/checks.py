"""Checks run before a crypto call, and the lab errors they raise.

PKCS#11 reports a wrong key for an operation in ways that differ between tokens (SoftHSM
often answers ``CKR_GENERAL_ERROR``; python-pkcs11 even hides ``key.sign`` when CKA_SIGN
is false, so the learner gets a bare ``AttributeError``). The helpers in
``labsupport.crypto`` check first and raise one of these errors, which say what is wrong
and what to do — the same on SoftHSM and on a real CloudHSM.
"""

from __future__ import annotations

from collections.abc import Iterable

import pkcs11
from pkcs11 import Attribute, KeyType

from labsupport.errors import LabError


class CryptoLabError(LabError):
    """Base class of the errors the lesson-04 helpers raise on purpose."""


class KeyNotFound(CryptoLabError):
    """No key (or more than one) matched a search by label/id."""


class KeyCapabilityMissing(CryptoLabError):
    """The key's usage attribute (CKA_SIGN, CKA_DECRYPT, CKA_WRAP…) is false."""


class WrongKeyType(CryptoLabError):
    """The key's type or class does not fit the operation (an AES key for ECDSA…)."""


class DecryptionFailed(CryptoLabError):
    """The HSM refused to decrypt: wrong key or parameters, or a damaged ciphertext."""


class GcmAuthenticationFailed(DecryptionFailed):
    """AES-GCM decryption refused: ciphertext, tag, IV, AAD or key does not match."""


class OaepHashUnsupported(CryptoLabError):
    """The token does not support RSA-OAEP with the requested hash."""


class KeyNotExtractable(CryptoLabError, pkcs11.exceptions.KeyUnextractable):
    """The key may not leave the HSM (CKA_EXTRACTABLE false, or a private key's value).

    Also the python-pkcs11 ``KeyUnextractable`` (CKR_KEY_UNEXTRACTABLE), so
    ``except pkcs11.exceptions.KeyUnextractable`` catches it as it would a token's answer.
    """


def key_label(key: pkcs11.Object) -> str:
    """A short description of a key for messages: ``'label' (AES secret key)``."""
    try:
        label = key[Attribute.LABEL]
        object_class = key[Attribute.CLASS].name.lower().replace("_", " ")
        kind = f"{key[Attribute.KEY_TYPE].name} {object_class}"
    except pkcs11.PKCS11Error:
        return "this key"
    return f"{label!r} ({kind})" if label else f"this {kind}"


def require_capability(key: pkcs11.Object, attr: Attribute, action: str) -> None:
    """Raise :class:`KeyCapabilityMissing` unless ``key[attr]`` is true."""
    if not key[attr]:
        raise KeyCapabilityMissing(
            f"Key {key_label(key)} may not {action}: its CKA_{attr.name} attribute is false. "
            f"(A token would refuse with CKR_KEY_FUNCTION_NOT_PERMITTED.)",
            "Generate a key meant for this (usage=Usage.… when you generate it); usage "
            "attributes are chosen at creation, and one key should have one purpose.",
        )


def article(word: str) -> str:
    """'a' or 'an' before a key-type name as it is spoken ("an RSA key", "a GENERIC_SECRET")."""
    spelled = len(word) <= 4 and word.isupper()  # acronyms are read letter by letter
    return "an" if word[0] in ("AEFHILMNORSX" if spelled else "AEIOU") else "a"


def require_key_type(
    key: pkcs11.Object, allowed: Iterable[KeyType], what: str, object_class: pkcs11.ObjectClass
) -> None:
    """Raise :class:`WrongKeyType` unless ``key`` is an ``object_class`` of an ``allowed`` type."""
    allowed = tuple(allowed)
    actual_class = key[Attribute.CLASS]
    actual_type = key[Attribute.KEY_TYPE]
    if actual_type in allowed and actual_class is object_class:
        return
    wanted = " or ".join(t.name for t in allowed)
    raise WrongKeyType(
        f"{what} needs {article(wanted)} {wanted} "
        f"{object_class.name.lower().replace('_', ' ')}, but key {key_label(key)} is not. "
        f"(A token would refuse with CKR_KEY_TYPE_INCONSISTENT or a general error.)",
        "Pass the matching key: the private half signs and decrypts, the public half "
        "verifies and encrypts; AES keys do GCM and key wrap; EC keys do ECDSA only.",
    )
