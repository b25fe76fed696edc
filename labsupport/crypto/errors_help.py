"""Plain-language help for the errors lesson 04 can trigger, and a context-aware diagnosis.

:data:`HELP` maps an exception name to what it means *in this lesson* and the next step.
:func:`diagnose` gives a sharper answer when it also knows the key and mechanism involved
(SoftHSM answers many different mistakes with the same ``CKR_GENERAL_ERROR``).
:func:`register` adds the entries the general explainer (``labsupport.pedagogy.explain``)
lacks, so they appear under tracebacks in the notebook; ``labsupport.crypto`` calls it
on import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from labsupport.crypto.checks import article


@dataclass(frozen=True)
class Help:
    """What an error means here (``meaning``), what to do (``fix``), and its CKR_ name."""

    ckr: str
    meaning: str
    fix: str

    def render(self, title: str) -> str:
        """The text block shown to the learner."""
        return (
            f"💡 {title} ({self.ckr})\n   What it means: {self.meaning}\n"
            f"   What to do:    {self.fix}"
        )


HELP: dict[str, Help] = {
    "MechanismInvalid": Help(
        "CKR_MECHANISM_INVALID",
        "This token does not implement that mechanism. SoftHSM 2.6.1 has no CKM_ECDSA_SHA256 "
        "(CloudHSM has it, and hashes in the client library anyway).",
        "Check session.token.slot.get_mechanisms(); for ECDSA hash the message yourself and "
        "sign the digest with CKM_ECDSA (signatures.sign does this when needed).",
    ),
    "KeyTypeInconsistent": Help(
        "CKR_KEY_TYPE_INCONSISTENT",
        "The mechanism is for another key type (an AES mechanism with an RSA key, …).",
        "Use the mechanism that matches the key: AES_GCM/AES_KEY_WRAP_PAD for AES, RSA_PKCS_* "
        "for RSA, ECDSA for EC, SHA256_HMAC for generic-secret keys.",
    ),
    "GeneralError": Help(
        "CKR_GENERAL_ERROR",
        "SoftHSM's catch-all. In this lesson it usually means: a signing mechanism that does not "
        "fit the key (ECDSA with an RSA key), an AES-GCM tag that does not verify (wrong key, IV, "
        "AAD, or tampered data), or raw-mechanism input of the wrong length. CloudHSM reports "
        "these with specific codes (CKR_KEY_TYPE_INCONSISTENT, CKR_ENCRYPTED_DATA_INVALID…).",
        "Check key type, mechanism and parameters; the labsupport.crypto helpers check them "
        "first and say which one is wrong.",
    ),
    "ArgumentsBad": Help(
        "CKR_ARGUMENTS_BAD",
        "A mechanism parameter is not accepted. SoftHSM 2.6.1 accepts RSA-OAEP only with SHA-1 "
        "(CloudHSM also takes SHA-256); python-pkcs11 raises it too for a GCM IV over 12 bytes.",
        "For OAEP use ciphers.oaep_scheme(session) to pick a hash the token supports; for GCM "
        "let aes_gcm_encrypt generate the 12-byte IV.",
    ),
    "ObjectHandleInvalid": Help(
        "CKR_OBJECT_HANDLE_INVALID",
        "The key was deleted (or was a session key of a closed session): its handle points at "
        "nothing. CloudHSM answers CKR_KEY_HANDLE_INVALID or CKR_OBJECT_HANDLE_INVALID.",
        "Stop using the old Python object; find the key again with keygen.find_key(...) or "
        "generate a new one. Deleted HSM keys cannot be recovered (except from a backup).",
    ),
    "KeyHandleInvalid": Help(
        "CKR_KEY_HANDLE_INVALID",
        "The key handle does not refer to a key (deleted, or a closed session's key).",
        "Find the key again by label or id, or generate it again.",
    ),
    "KeyUnextractable": Help(
        "CKR_KEY_UNEXTRACTABLE",
        "The key was created with CKA_EXTRACTABLE false: the HSM will not wrap it, so it never "
        "leaves the HSM in any form — exactly what you want for a CA or code-signing key.",
        "Export the public key instead (interop.public_key_pem). If a wrapped copy is really "
        "needed, generate a new key with extractable=True; the attribute can't be turned back on.",
    ),
    "AttributeSensitive": Help(
        "CKR_ATTRIBUTE_SENSITIVE",
        "The key is sensitive: its value (CKA_VALUE, or an RSA key's private exponent) is never "
        "revealed in plaintext.",
        "Use the key inside the HSM, or export it wrapped if it is extractable.",
    ),
    "AttributeReadOnly": Help(
        "CKR_ATTRIBUTE_READ_ONLY",
        "That attribute cannot change now: CKA_EXTRACTABLE can only go true→false, CKA_SENSITIVE "
        "only false→true, and CKA_LOCAL, CKA_KEY_TYPE, CKA_CLASS never.",
        "Security attributes are decided when the key is generated; generate a new key.",
    ),
    "KeyFunctionNotPermitted": Help(
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        "The key's usage attribute for this operation (CKA_SIGN, CKA_DECRYPT, CKA_WRAP…) is "
        "false. python-pkcs11 0.10 shows it as 'Unmapped error code 0x68'.",
        "Generate a key with that usage (usage=Usage.SIGN …). One key, one purpose.",
    ),
    "KeySizeRange": Help(
        "CKR_KEY_SIZE_RANGE",
        "The key is too short or too long for this mechanism (SoftHSM wants an HMAC key at "
        "least as long as the digest: 48 bytes for HMAC-SHA384; RSA below 2048 bits is weak).",
        "Generate a key of the size the mechanism needs, or pick the matching hash.",
    ),
    "AttributeError": Help(
        "no PKCS#11 call made",
        "python-pkcs11 gives a key object only the methods its attributes allow: a key with "
        "CKA_SIGN false has no .sign(), one with CKA_WRAP false has no .wrap_key().",
        "Generate the key with the usage you need (usage=Usage.SIGN, Usage.WRAP …).",
    ),
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


def help_for(exc: BaseException) -> Help | None:
    """The :data:`HELP` entry for ``exc`` (also recognises python-pkcs11's unmapped 0x68)."""
    match = _UNMAPPED.search(str(exc)) if isinstance(exc, pkcs11.PKCS11Error) else None
    if match and int(match.group(1), 16) == 0x68:
        return HELP["KeyFunctionNotPermitted"]
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
        title = type(exc).__name__
        lines.append(entry.render(f"{title}"))
    return "\n".join(lines)


def register() -> bool:
    """Add this lesson's explanations that ``labsupport.pedagogy.explain`` lacks.

    Registers ``GeneralError`` and ``ArgumentsBad`` (SoftHSM's answers to several lesson-04
    mistakes). Returns False if the explainer is not available.
    """
    try:
        from labsupport.pedagogy.explain import register_explanation
    except ImportError:  # pragma: no cover - the pedagogy layer is part of the package
        return False
    for name in ("GeneralError", "ArgumentsBad"):
        entry = HELP[name]
        register_explanation(name, entry.meaning, entry.fix, entry.ckr)
    return True
