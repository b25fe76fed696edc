"""Plain-language explanations of the errors a learner meets.

``explain(exc)`` returns a short text: what the error means and what to do next. In
a notebook, :func:`install_exception_hook` (called by ``start_lesson``) prints that
text under the normal traceback for PKCS#11 errors (``pkcs11.exceptions.*``, which
carry the ``CKR_*`` code names), AWS errors (botocore ``ClientError``) and lab errors.
The cell still fails, so nbval and graded cells behave as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pkcs11.exceptions as p11e
from botocore.exceptions import ClientError

from labsupport.errors import LabError


@dataclass(frozen=True)
class Explanation:
    """What an error means (``meaning``) and what to do about it (``fix``)."""

    meaning: str
    fix: str

    def render(self, title: str) -> str:
        """The explanation as the text block shown under a traceback."""
        return f"💡 {title}\n   What it means: {self.meaning}\n   What to do:    {self.fix}"


# python-pkcs11 exception class → explanation. The CKR_ name is in the title.
_PKCS11: dict[str, tuple[str, Explanation]] = {}
_AWS: dict[str, Explanation] = {}


def register_explanation(name: str, meaning: str, fix: str, ckr: str = "") -> None:
    """Add or replace the explanation for exception class ``name`` (or AWS error code).

    ``ckr`` is the PKCS#11 return-value name (e.g. ``CKR_PIN_INCORRECT``) for PKCS#11
    errors; leave it empty for AWS error codes.
    """
    if ckr or hasattr(p11e, name):
        _PKCS11[name] = (ckr or name, Explanation(meaning, fix))
    else:
        _AWS[name] = Explanation(meaning, fix)


for _name, _ckr, _meaning, _fix in [
    (
        "PinIncorrect",
        "CKR_PIN_INCORRECT",
        "The PIN (password) was wrong. SoftHSM just refuses; "
        "a real CloudHSM counts it and locks the user after 5 failures.",
        "Check the PIN. On CloudHSM the PIN is 'username:password'.",
    ),
    (
        "PinLocked",
        "CKR_PIN_LOCKED",
        "Too many wrong logins: this user is locked.",
        "An admin must reset the user's password (CloudHSM CLI: user change-password).",
    ),
    (
        "UserNotLoggedIn",
        "CKR_USER_NOT_LOGGED_IN",
        "The operation needs a logged-in user "
        "(private objects and keys are invisible before login).",
        "Open the session with a PIN.",
    ),
    (
        "UserAlreadyLoggedIn",
        "CKR_USER_ALREADY_LOGGED_IN",
        "This process is already logged in "
        "to the token; PKCS#11 logins are per application, not per session.",
        "Open further sessions without a PIN — they share the login — or close all sessions first.",
    ),
    (
        "MechanismInvalid",
        "CKR_MECHANISM_INVALID",
        "The token does not support this mechanism (or not for this operation).",
        "List what it supports with token.slot.get_mechanisms() "
        "and pick another mechanism, or compose it (e.g. hash client-side, then CKM_ECDSA).",
    ),
    (
        "MechanismParamInvalid",
        "CKR_MECHANISM_PARAM_INVALID",
        "The mechanism's parameters are wrong (IV length, OAEP hash, tag length…).",
        "Check mechanism_param against the mechanism's documentation.",
    ),
    (
        "KeyHandleInvalid",
        "CKR_KEY_HANDLE_INVALID",
        "The key handle does not refer to a key any "
        "more — it was deleted, or it was a session key whose session closed.",
        "Find the key again by label (session.get_key(label=…)) or create it again.",
    ),
    (
        "ObjectHandleInvalid",
        "CKR_OBJECT_HANDLE_INVALID",
        "The object no longer exists (deleted, or a session object of a closed session).",
        "Look the object up again or recreate it.",
    ),
    (
        "NoSuchKey",
        "no matching key",
        "No key matched the label/id/type you searched for.",
        "Check the label and key type; keys created with store=False vanish with their session.",
    ),
    (
        "MultipleObjectsReturned",
        "several matching keys",
        "More than one key matched.",
        "Search with more attributes (id, key type, object class) or give keys unique labels.",
    ),
    (
        "KeyTypeInconsistent",
        "CKR_KEY_TYPE_INCONSISTENT",
        "The key's type does not fit the mechanism (e.g. an EC key with an RSA mechanism).",
        "Use a mechanism made for this key type.",
    ),
    (
        "KeyFunctionNotPermitted",
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        "The key's attributes forbid this use (CKA_SIGN, CKA_ENCRYPT, CKA_WRAP… is false).",
        "Create the key with the capability "
        "you need; attributes like these are fixed at creation on CloudHSM.",
    ),
    (
        "KeyUnextractable",
        "CKR_KEY_UNEXTRACTABLE",
        "The key is non-extractable (CKA_EXTRACTABLE "
        "false): its value can never leave the HSM, not even wrapped.",
        "That is the point of an HSM. Export the public key instead, or create a new key that is "
        "extractable if a wrapped copy is really needed.",
    ),
    (
        "KeyNotWrappable",
        "CKR_KEY_NOT_WRAPPABLE",
        "This key cannot be wrapped by that wrapping key.",
        "Check CKA_EXTRACTABLE on the target and CKA_WRAP on the wrapping key.",
    ),
    (
        "AttributeSensitive",
        "CKR_ATTRIBUTE_SENSITIVE",
        "That attribute (for instance CKA_VALUE of a "
        "sensitive key) cannot be read out of the token.",
        "Read a non-secret attribute, or use the key inside the HSM.",
    ),
    (
        "AttributeTypeInvalid",
        "CKR_ATTRIBUTE_TYPE_INVALID",
        "The object has no such attribute.",
        "Check which attributes apply to this object class and key type.",
    ),
    (
        "AttributeValueInvalid",
        "CKR_ATTRIBUTE_VALUE_INVALID",
        "An attribute value in the template is not valid.",
        "Check the template values (sizes, curves, booleans).",
    ),
    (
        "AttributeReadOnly",
        "CKR_ATTRIBUTE_READ_ONLY",
        "That attribute cannot be changed.",
        "Create a new object with the value you need.",
    ),
    (
        "TemplateIncomplete",
        "CKR_TEMPLATE_INCOMPLETE",
        "A required attribute is missing from the template.",
        "Add the missing attribute (key size, curve, class…).",
    ),
    (
        "TemplateInconsistent",
        "CKR_TEMPLATE_INCONSISTENT",
        "Attributes in the template contradict each other.",
        "Remove the conflicting attribute.",
    ),
    (
        "DataLenRange",
        "CKR_DATA_LEN_RANGE",
        "The input is too long or too short for this "
        "mechanism (RSA encrypts only a few hundred bytes).",
        "Encrypt a key instead (envelope encryption) or use AES for bulk data.",
    ),
    (
        "EncryptedDataInvalid",
        "CKR_ENCRYPTED_DATA_INVALID",
        "The ciphertext is damaged or was made with another key/IV.",
        "Use the same key and IV/nonce as for encryption.",
    ),
    (
        "SignatureInvalid",
        "CKR_SIGNATURE_INVALID",
        "The signature does not match the data and key.",
        "Check you verify the exact bytes that were signed, with the right key and mechanism.",
    ),
    (
        "FunctionFailed",
        "CKR_FUNCTION_FAILED",
        "The operation failed inside the HSM. On CloudHSM "
        "this is also what a key that does not meet the availability requirements returns.",
        "Read the message above; on a cluster, make sure it has at least 2 active HSMs.",
    ),
    (
        "SessionHandleInvalid",
        "CKR_SESSION_HANDLE_INVALID",
        "The session is gone (closed, or the library was re-initialised when an HSM was added).",
        "Open a new session.",
    ),
    ("SessionClosed", "CKR_SESSION_CLOSED", "The session was closed.", "Open a new session."),
    (
        "TokenNotPresent",
        "CKR_TOKEN_NOT_PRESENT",
        "The token is not there any more.",
        "Run the lesson's first cell again to recreate its tokens.",
    ),
    (
        "NoSuchToken",
        "no such token",
        "No token has that label.",
        "List tokens with lib.get_tokens(); run the lesson's first cell to create them.",
    ),
    (
        "WrappedKeyInvalid",
        "CKR_WRAPPED_KEY_INVALID",
        "The wrapped key blob is damaged or was wrapped with another key or mechanism.",
        "Unwrap with the same key and mechanism that wrapped it.",
    ),
]:
    register_explanation(_name, _meaning, _fix, _ckr)

for _code, _meaning, _fix in [
    (
        "CloudHsmInvalidRequestException",
        "AWS rejected the request: a parameter or the resource's current state does not allow it.",
        "Read the message: it names the state; wait for a "
        "transitional state to end, or do the missing step first.",
    ),
    (
        "CloudHsmResourceNotFoundException",
        "No resource with that id exists in this region.",
        "Check the id (describe_clusters lists yours) and the region.",
    ),
    (
        "CloudHsmAccessDeniedException",
        "Your identity may not do this.",
        "Check IAM permissions (in the lab this means the resource is not yours).",
    ),
    (
        "CloudHsmTagException",
        "A tag is invalid (key/value length, reserved prefix 'aws:').",
        "Fix the tag and try again.",
    ),
    (
        "ParamValidationError",
        "botocore refused the call before sending it: a required parameter "
        "is missing or has the wrong type.",
        "Compare your arguments with help(client.<operation>).",
    ),
]:
    register_explanation(_code, _meaning, _fix)


# CKR codes python-pkcs11 0.10 has no exception class for: it raises a bare PKCS11Error
# whose message is "Unmapped error code 0x68"; map the code to our explanation key.
_UNMAPPED = {0x68: "KeyFunctionNotPermitted"}
_UNMAPPED_RE = re.compile(r"Unmapped error code (0x[0-9a-fA-F]+)")


def explain(exc: BaseException) -> str:
    """Return a plain-language explanation of ``exc`` with a next step ('' if none is known)."""
    if isinstance(exc, LabError):
        return ""  # its message already says what to do
    match = _UNMAPPED_RE.search(str(exc)) if type(exc) is p11e.PKCS11Error else None
    if match and int(match.group(1), 16) in _UNMAPPED:
        ckr, text = _PKCS11[_UNMAPPED[int(match.group(1), 16)]]
        return text.render(f"PKCS#11 error {ckr} ({match.group(1)})")
    for cls in type(exc).__mro__:
        found = _PKCS11.get(cls.__name__)
        if found and isinstance(exc, p11e.PKCS11Error):
            ckr, text = found
            return text.render(f"PKCS#11 error {type(exc).__name__} ({ckr})")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        text = _AWS.get(code)
        if text:
            return text.render(f"AWS error {code}")
    name = type(exc).__name__
    if name in _AWS:
        return _AWS[name].render(f"AWS error {name}")
    return ""


def _hook(shell: Any, etype: type, evalue: BaseException, tb: Any, tb_offset: Any = None) -> Any:
    structured = shell.InteractiveTB.structured_traceback(etype, evalue, tb, tb_offset=tb_offset)
    shell._showtraceback(etype, evalue, structured)
    text = explain(evalue)
    if text:
        print(text)
    return structured


def install_exception_hook() -> bool:
    """In IPython/Jupyter, add explanations under PKCS#11, AWS and lab tracebacks.

    Returns False (and does nothing) outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    from botocore.exceptions import ParamValidationError

    shell.set_custom_exc((p11e.PKCS11Error, ClientError, ParamValidationError), _hook)
    return True
