"""A context-aware diagnosis of the errors lesson 04 can trigger.

:func:`diagnose` gives a sharper answer than the general explanation when it also knows
the key and mechanism involved (SoftHSM answers many different mistakes with the same
``CKR_GENERAL_ERROR``). The texts come from the one table,
:mod:`labsupport.explanations` (:data:`HELP` is its PKCS#11 part).
"""

from __future__ import annotations

import re

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from labsupport.crypto.checks import article
from labsupport.explanations import EXPLANATIONS, UNMAPPED_CKR, Explanation, Source

#: This lesson's entries of the one table (PKCS#11 errors, and python-pkcs11's hidden
#: methods), by exception name.
HELP: dict[str, Explanation] = {
    name: entry for name, entry in EXPLANATIONS.items() if entry.source is not Source.AWS
}


# Mechanisms and the key types they need (for diagnose()).
_MECHANISM_KEY_TYPES: dict[Mechanism, KeyType] = {
    Mechanism.AES_GCM: KeyType.AES,
    Mechanism.AES_ECB: KeyType.AES,
    Mechanism.AES_CBC_PAD: KeyType.AES,
    Mechanism.AES_KEY_WRAP: KeyType.AES,
    Mechanism.AES_KEY_WRAP_PAD: KeyType.AES,
    Mechanism.ECDSA: KeyType.EC,
    Mechanism.ECDSA_SHA256: KeyType.EC,
    Mechanism.ECDSA_SHA384: KeyType.EC,
    Mechanism.RSA_PKCS: KeyType.RSA,
    Mechanism.RSA_PKCS_PSS: KeyType.RSA,
    Mechanism.RSA_PKCS_OAEP: KeyType.RSA,
    Mechanism.SHA256_RSA_PKCS: KeyType.RSA,
    Mechanism.SHA384_RSA_PKCS: KeyType.RSA,
    Mechanism.SHA256_RSA_PKCS_PSS: KeyType.RSA,
    Mechanism.SHA384_RSA_PKCS_PSS: KeyType.RSA,
    Mechanism.SHA256_HMAC: KeyType.GENERIC_SECRET,
    Mechanism.SHA384_HMAC: KeyType.GENERIC_SECRET,
}

_UNMAPPED = re.compile(r"Unmapped error code 0x([0-9a-fA-F]+)")
_MISSING_METHOD = re.compile(r"'(\w+)' object has no attribute '(\w+)'")
_METHOD_ATTRIBUTE = {
    "sign": "CKA_SIGN",
    "verify": "CKA_VERIFY",
    "encrypt": "CKA_ENCRYPT",
    "decrypt": "CKA_DECRYPT",
    "wrap_key": "CKA_WRAP",
    "unwrap_key": "CKA_UNWRAP",
    "derive_key": "CKA_DERIVE",
}


def help_for(exc: BaseException) -> Explanation | None:
    """The :data:`HELP` entry for ``exc`` (also recognises python-pkcs11's unmapped 0x68)."""
    match = _UNMAPPED.search(str(exc)) if isinstance(exc, pkcs11.PKCS11Error) else None
    if match and int(match.group(1), 16) in UNMAPPED_CKR:
        return HELP[UNMAPPED_CKR[int(match.group(1), 16)]]
    if isinstance(exc, AttributeError) and _MISSING_METHOD.search(str(exc)):
        return HELP["AttributeError"]
    for cls in type(exc).__mro__:
        if cls.__name__ in HELP and cls is not AttributeError:
            return HELP[cls.__name__]
    return None


def _key_facts(key: pkcs11.Key) -> tuple[KeyType | None, ObjectClass | None]:
    try:
        return key[Attribute.KEY_TYPE], key[Attribute.CLASS]
    except pkcs11.PKCS11Error:
        return None, None


def diagnose(
    exc: BaseException, *, key: pkcs11.Key | None = None, mechanism: Mechanism | None = None
) -> str:
    """Explain ``exc`` for a learner, sharper when the ``key`` and ``mechanism`` are known.

    Returns a short multi-line text (never secrets); '' when nothing useful is known.
    """
    lines: list[str] = []
    entry = help_for(exc)
    if key is not None:
        key_type, object_class = _key_facts(key)
        if key_type is None:
            lines.append(
                "The key object no longer exists in the HSM (deleted, or its session closed)."
            )
        elif mechanism is not None:
            needed = _MECHANISM_KEY_TYPES.get(mechanism)
            if needed is not None and needed is not key_type:
                lines.append(
                    f"CKM_{mechanism.name} needs {article(needed.name)} {needed.name} key, "
                    f"but this key is "
                    f"{key_type.name} ({object_class.name if object_class else '?'})."
                )
        if key_type is not None and isinstance(exc, AttributeError):
            match = _MISSING_METHOD.search(str(exc))
            if match and match.group(2) in _METHOD_ATTRIBUTE:
                attr = _METHOD_ATTRIBUTE[match.group(2)]
                lines.append(
                    f"This key has {attr} = False, so python-pkcs11 hides .{match.group(2)}()."
                )
    if entry is not None:
        lines.append(entry.render(f"{type(exc).__name__} ({entry.ckr})"))
    return "\n".join(lines)
