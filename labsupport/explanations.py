"""The one table of plain-language error explanations: what an error means, what to do.

Data only, at the bottom of the package (like :mod:`labsupport.errors`), so every layer
may read it: :func:`labsupport.pedagogy.explain.explain` prints an entry under a
traceback in the notebooks, and lesson 04's :func:`labsupport.crypto.errors_help.diagnose`
adds what it knows about the key and mechanism. Keys are python-pkcs11 exception class
names (with their ``CKR_*`` name), AWS error codes (CloudHSM, KMS, botocore) and the one
Python error lesson 04 explains (``AttributeError`` for a hidden key method).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Source(enum.Enum):
    """Where an error comes from, which decides how its title reads."""

    PKCS11 = "PKCS#11 error"
    AWS = "AWS error"
    PYTHON = "Python error"


@dataclass(frozen=True)
class Explanation:
    """What error ``name`` means (``meaning``) and what to do about it (``fix``).

    ``ckr`` is the PKCS#11 return-value name (``CKR_PIN_INCORRECT``) or, for errors that
    have none, a short phrase in its place (``no matching key``).
    """

    source: Source
    name: str
    meaning: str
    fix: str
    ckr: str = ""

    def render(self, title: str) -> str:
        """The explanation as the text block shown to the learner, under ``title``."""
        return f"💡 {title}\n   What it means: {self.meaning}\n   What to do:    {self.fix}"


_TABLE: tuple[Explanation, ...] = (
    Explanation(
        Source.PKCS11,
        "PinIncorrect",
        (
            "The PIN (password) was wrong. SoftHSM just refuses; a real CloudHSM counts it and "
            "locks the user after 5 failures."
        ),
        "Check the PIN. On CloudHSM the PIN is 'username:password'.",
        "CKR_PIN_INCORRECT",
    ),
    Explanation(
        Source.PKCS11,
        "PinLocked",
        "Too many wrong logins: this user is locked.",
        "An admin must reset the user's password (CloudHSM CLI: user change-password).",
        "CKR_PIN_LOCKED",
    ),
    Explanation(
        Source.PKCS11,
        "UserNotLoggedIn",
        (
            "The operation needs a logged-in user (private objects and keys are invisible "
            "before login)."
        ),
        "Open the session with a PIN.",
        "CKR_USER_NOT_LOGGED_IN",
    ),
    Explanation(
        Source.PKCS11,
        "UserAlreadyLoggedIn",
        (
            "This process is already logged in to the token; PKCS#11 logins are per "
            "application, not per session."
        ),
        (
            "Open further sessions without a PIN — they share the login — or close all sessions"
            " first."
        ),
        "CKR_USER_ALREADY_LOGGED_IN",
    ),
    Explanation(
        Source.PKCS11,
        "MechanismInvalid",
        "The token does not support this mechanism (or not for this operation).",
        (
            "List what it supports with token.slot.get_mechanisms() and pick another mechanism,"
            " or compose it (e.g. hash client-side, then CKM_ECDSA)."
        ),
        "CKR_MECHANISM_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "MechanismParamInvalid",
        "The mechanism's parameters are wrong (IV length, OAEP hash, tag length…).",
        "Check mechanism_param against the mechanism's documentation.",
        "CKR_MECHANISM_PARAM_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "KeyHandleInvalid",
        (
            "The key handle does not refer to a key any more — it was deleted, or it was a "
            "session key whose session closed."
        ),
        "Find the key again by label (session.get_key(label=…)) or create it again.",
        "CKR_KEY_HANDLE_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "ObjectHandleInvalid",
        "The object no longer exists (deleted, or a session object of a closed session).",
        "Look the object up again or recreate it.",
        "CKR_OBJECT_HANDLE_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "NoSuchKey",
        "No key matched the label/id/type you searched for.",
        ("Check the label and key type; keys created with store=False vanish with their session."),
        "no matching key",
    ),
    Explanation(
        Source.PKCS11,
        "MultipleObjectsReturned",
        "More than one key matched.",
        ("Search with more attributes (id, key type, object class) or give keys unique labels."),
        "several matching keys",
    ),
    Explanation(
        Source.PKCS11,
        "KeyTypeInconsistent",
        "The key's type does not fit the mechanism (e.g. an EC key with an RSA mechanism).",
        "Use a mechanism made for this key type.",
        "CKR_KEY_TYPE_INCONSISTENT",
    ),
    Explanation(
        Source.PKCS11,
        "KeyFunctionNotPermitted",
        "The key's attributes forbid this use (CKA_SIGN, CKA_ENCRYPT, CKA_WRAP… is false).",
        (
            "Create the key with the capability you need; attributes like these are fixed at "
            "creation on CloudHSM."
        ),
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
    ),
    Explanation(
        Source.PKCS11,
        "KeyUnextractable",
        (
            "The key is non-extractable (CKA_EXTRACTABLE false): its value can never leave the "
            "HSM, not even wrapped."
        ),
        (
            "That is the point of an HSM. Export the public key instead, or create a new key "
            "that is extractable if a wrapped copy is really needed."
        ),
        "CKR_KEY_UNEXTRACTABLE",
    ),
    Explanation(
        Source.PKCS11,
        "KeyNotWrappable",
        "This key cannot be wrapped by that wrapping key.",
        "Check CKA_EXTRACTABLE on the target and CKA_WRAP on the wrapping key.",
        "CKR_KEY_NOT_WRAPPABLE",
    ),
    Explanation(
        Source.PKCS11,
        "AttributeSensitive",
        (
            "That attribute (for instance CKA_VALUE of a sensitive key) cannot be read out of "
            "the token."
        ),
        "Read a non-secret attribute, or use the key inside the HSM.",
        "CKR_ATTRIBUTE_SENSITIVE",
    ),
    Explanation(
        Source.PKCS11,
        "AttributeTypeInvalid",
        "The object has no such attribute.",
        "Check which attributes apply to this object class and key type.",
        "CKR_ATTRIBUTE_TYPE_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "AttributeValueInvalid",
        "An attribute value in the template is not valid.",
        "Check the template values (sizes, curves, booleans).",
        "CKR_ATTRIBUTE_VALUE_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "AttributeReadOnly",
        "That attribute cannot be changed.",
        "Create a new object with the value you need.",
        "CKR_ATTRIBUTE_READ_ONLY",
    ),
    Explanation(
        Source.PKCS11,
        "TemplateIncomplete",
        "A required attribute is missing from the template.",
        "Add the missing attribute (key size, curve, class…).",
        "CKR_TEMPLATE_INCOMPLETE",
    ),
    Explanation(
        Source.PKCS11,
        "TemplateInconsistent",
        "Attributes in the template contradict each other.",
        "Remove the conflicting attribute.",
        "CKR_TEMPLATE_INCONSISTENT",
    ),
    Explanation(
        Source.PKCS11,
        "DataLenRange",
        (
            "The input is too long or too short for this mechanism (RSA encrypts only a few "
            "hundred bytes)."
        ),
        "Encrypt a key instead (envelope encryption) or use AES for bulk data.",
        "CKR_DATA_LEN_RANGE",
    ),
    Explanation(
        Source.PKCS11,
        "EncryptedDataInvalid",
        "The ciphertext is damaged or was made with another key/IV.",
        "Use the same key and IV/nonce as for encryption.",
        "CKR_ENCRYPTED_DATA_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "SignatureInvalid",
        "The signature does not match the data and key.",
        ("Check you verify the exact bytes that were signed, with the right key and mechanism."),
        "CKR_SIGNATURE_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "FunctionFailed",
        (
            "The operation failed inside the HSM. On CloudHSM this is also what a key that does"
            " not meet the availability requirements returns."
        ),
        "Read the message above; on a cluster, make sure it has at least 2 active HSMs.",
        "CKR_FUNCTION_FAILED",
    ),
    Explanation(
        Source.PKCS11,
        "SessionHandleInvalid",
        ("The session is gone (closed, or the library was re-initialised when an HSM was added)."),
        "Open a new session.",
        "CKR_SESSION_HANDLE_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "SessionClosed",
        "The session was closed.",
        "Open a new session.",
        "CKR_SESSION_CLOSED",
    ),
    Explanation(
        Source.PKCS11,
        "TokenNotPresent",
        "The token is not there any more.",
        "Run the lesson's first cell again to recreate its tokens.",
        "CKR_TOKEN_NOT_PRESENT",
    ),
    Explanation(
        Source.PKCS11,
        "NoSuchToken",
        "No token has that label.",
        "List tokens with lib.get_tokens(); run the lesson's first cell to create them.",
        "no such token",
    ),
    Explanation(
        Source.PKCS11,
        "WrappedKeyInvalid",
        "The wrapped key blob is damaged or was wrapped with another key or mechanism.",
        "Unwrap with the same key and mechanism that wrapped it.",
        "CKR_WRAPPED_KEY_INVALID",
    ),
    Explanation(
        Source.PKCS11,
        "GeneralError",
        (
            "SoftHSM's catch-all. In this lesson it usually means: a signing mechanism that "
            "does not fit the key (ECDSA with an RSA key), an AES-GCM tag that does not verify "
            "(wrong key, IV, AAD, or tampered data), or raw-mechanism input of the wrong "
            "length. CloudHSM reports these with specific codes (CKR_KEY_TYPE_INCONSISTENT, "
            "CKR_ENCRYPTED_DATA_INVALID…)."
        ),
        (
            "Check key type, mechanism and parameters; the labsupport.crypto helpers check them"
            " first and say which one is wrong."
        ),
        "CKR_GENERAL_ERROR",
    ),
    Explanation(
        Source.PKCS11,
        "ArgumentsBad",
        (
            "A mechanism parameter is not accepted. SoftHSM 2.6.1 accepts RSA-OAEP only with "
            "SHA-1 (CloudHSM also takes SHA-256); python-pkcs11 raises it too for a GCM IV over"
            " 12 bytes."
        ),
        (
            "For OAEP use ciphers.oaep_scheme(session) to pick a hash the token supports; for "
            "GCM let aes_gcm_encrypt generate the 12-byte IV."
        ),
        "CKR_ARGUMENTS_BAD",
    ),
    Explanation(
        Source.PKCS11,
        "KeySizeRange",
        (
            "The key is too short or too long for this mechanism (SoftHSM wants an HMAC key at "
            "least as long as the digest: 48 bytes for HMAC-SHA384; RSA below 2048 bits is "
            "weak)."
        ),
        "Generate a key of the size the mechanism needs, or pick the matching hash.",
        "CKR_KEY_SIZE_RANGE",
    ),
    Explanation(
        Source.PYTHON,
        "AttributeError",
        (
            "python-pkcs11 gives a key object only the methods its attributes allow: a key with"
            " CKA_SIGN false has no .sign(), one with CKA_WRAP false has no .wrap_key()."
        ),
        "Generate the key with the usage you need (usage=Usage.SIGN, Usage.WRAP …).",
        "no PKCS#11 call made",
    ),
    Explanation(
        Source.AWS,
        "CloudHsmInvalidRequestException",
        (
            "AWS rejected the request: a parameter or the resource's current state does not "
            "allow it."
        ),
        (
            "Read the message: it names the state; wait for a transitional state to end, or do "
            "the missing step first."
        ),
        "",
    ),
    Explanation(
        Source.AWS,
        "CloudHsmResourceNotFoundException",
        "No resource with that id exists in this region.",
        "Check the id (describe_clusters lists yours) and the region.",
        "",
    ),
    Explanation(
        Source.AWS,
        "CloudHsmAccessDeniedException",
        "Your identity may not do this.",
        "Check IAM permissions (in the lab this means the resource is not yours).",
        "",
    ),
    Explanation(
        Source.AWS,
        "CloudHsmTagException",
        "A tag is invalid (key/value length, reserved prefix 'aws:').",
        "Fix the tag and try again.",
        "",
    ),
    Explanation(
        Source.AWS,
        "ParamValidationError",
        (
            "botocore refused the call before sending it: a required parameter is missing or "
            "has the wrong type."
        ),
        "Compare your arguments with help(client.<operation>).",
        "",
    ),
    Explanation(
        Source.AWS,
        "NotFoundException",
        (
            "No KMS key (or alias) with that id exists in this account and region — or it was "
            "deleted after its waiting period."
        ),
        "Check the key id/ARN and the region; kms.list_keys() lists your keys.",
        "",
    ),
    Explanation(
        Source.AWS,
        "DisabledException",
        "The key exists but is disabled, so it may not encrypt or decrypt.",
        "Enable it with kms.enable_key(KeyId=...) if that is intended.",
        "",
    ),
    Explanation(
        Source.AWS,
        "KMSInvalidStateException",
        (
            "The key's state does not allow this operation (for example PendingImport: no key "
            "material yet or it expired; PendingDeletion: being deleted)."
        ),
        (
            "kms.describe_key(KeyId=...)['KeyMetadata']['KeyState'] tells you which; import the"
            " key material again, or cancel the deletion."
        ),
        "",
    ),
    Explanation(
        Source.AWS,
        "InvalidCiphertextException",
        (
            "KMS could not decrypt: the ciphertext was altered, is not a KMS ciphertext, or the"
            " encryption context differs from the one used to encrypt (on ImportKeyMaterial: "
            "the key material was not wrapped with this import's public key and algorithm)."
        ),
        (
            "Pass the exact same EncryptionContext as for Encrypt/GenerateDataKey; for an "
            "import, wrap with the PublicKey and WrappingAlgorithm of the same "
            "GetParametersForImport."
        ),
        "",
    ),
    Explanation(
        Source.AWS,
        "IncorrectKeyException",
        "The ciphertext was made under a different KMS key than the KeyId you passed.",
        ("Pass the key that encrypted it, or leave KeyId out (symmetric blobs name their key)."),
        "",
    ),
    Explanation(
        Source.AWS,
        "IncorrectKeyMaterialException",
        (
            "A KMS key with imported material only ever accepts that same material again (or "
            "the material has the wrong size)."
        ),
        ("Reimport the original key material — keep a copy of it, for instance in your own HSM."),
        "",
    ),
    Explanation(
        Source.AWS,
        "ExpiredImportTokenException",
        (
            "The import token and its wrapping public key are valid for 24 hours, and these "
            "have expired."
        ),
        ("Call get_parameters_for_import again and wrap the key material with the new public key."),
        "",
    ),
    Explanation(
        Source.AWS,
        "InvalidImportTokenException",
        "The import token is damaged or belongs to another KMS key.",
        ("Use the ImportToken from the same get_parameters_for_import response as the public key."),
        "",
    ),
    Explanation(
        Source.AWS,
        "UnsupportedOperationException",
        (
            "This operation or parameter is not supported here (for example RSAES_PKCS1_V1_5 "
            "wrapping, or importing into a key whose origin is AWS_KMS)."
        ),
        "Read the message: it names the option to use instead.",
        "",
    ),
    Explanation(
        Source.AWS,
        "InvalidKeyUsageException",
        (
            "The key cannot be used this way (for example an RSA encryption algorithm with a "
            "symmetric key)."
        ),
        "Use EncryptionAlgorithm='SYMMETRIC_DEFAULT' (or omit it).",
        "",
    ),
    Explanation(
        Source.AWS,
        "ValidationException",
        (
            "AWS rejected a parameter value before doing anything (too long, out of range, "
            "missing a required combination). KMS's Encrypt, for instance, takes at most 4,096 "
            "bytes."
        ),
        (
            "Read the message: it names the parameter and the constraint. For data larger than "
            "4 KB, use envelope encryption (GenerateDataKey)."
        ),
        "",
    ),
    Explanation(
        Source.AWS,
        "InvalidArnException",
        "The ARN is malformed.",
        "A key ARN looks like arn:aws:kms:<region>:<account>:key/<key id>.",
        "",
    ),
    Explanation(
        Source.AWS,
        "InvalidMarkerException",
        "The pagination marker is not one KMS issued.",
        "Pass NextMarker from the previous response unchanged, or use a paginator.",
        "",
    ),
)

#: Every explanation by error name (exception class name or AWS error code).
EXPLANATIONS: dict[str, Explanation] = {e.name: e for e in _TABLE}

#: CKR codes python-pkcs11 0.10 has no exception class for: it raises a bare
#: ``PKCS11Error("Unmapped error code 0x68")``; the code maps to the entry's name.
UNMAPPED_CKR: dict[int, str] = {0x68: "KeyFunctionNotPermitted"}


def lookup(name: str, source: Source | None = None) -> Explanation | None:
    """The entry for error ``name`` (of ``source``, when given), or None."""
    entry = EXPLANATIONS.get(name)
    if entry is None or (source is not None and entry.source is not source):
        return None
    return entry


def add(entry: Explanation) -> None:
    """Add or replace one entry (for a course that adds its own services or errors)."""
    EXPLANATIONS[entry.name] = entry
