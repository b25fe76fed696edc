"""Errors of the Client SDK layer.

Each one is a :class:`~labsupport.errors.LabError` (the message says what to do next)
and, where a PKCS#11 application would see a ``CKR_*`` return value, also the matching
python-pkcs11 exception — so ``except pkcs11.exceptions.PinIncorrect`` works as it
would against the real ``libcloudhsm_pkcs11.so``.
"""

from __future__ import annotations

from pkcs11 import exceptions as ckr

# One class for "this key may not leave the HSM" (CKR_KEY_UNEXTRACTABLE), shared with
# the crypto recipes and the token-key adapters; re-exported here for the client layer.
from labsupport.crypto.checks import KeyNotExtractable  # noqa: F401
from labsupport.errors import LabError, LessonOrderError


class ClientNotConfigured(LabError):
    """``connect()`` ran before ``configure()`` wrote the client configuration."""


class TrustAnchorError(LabError):
    """``customerCA.crt`` is missing, unreadable, or did not issue the HSM's certificate."""


class HsmUnreachable(LabError):
    """No HSM answers at the configured address (wrong IP, HSM deleted, cluster gone)."""


class ClusterNotActive(LessonOrderError):
    """The cluster must be activated (``cluster activate``) before users can log in."""


class CliError(LabError):
    """A CloudHSM CLI command failed; ``data`` carries the CLI's message string."""


class UserError(CliError):
    """Bad user-management request: invalid name or password, duplicate, wrong role."""


class NotAuthorized(CliError):
    """The logged-in user's role does not allow this command."""


class LoginFailed(LabError, ckr.PinIncorrect):
    """Wrong ``user:password`` (CKR_PIN_INCORRECT); counts toward the lockout."""


class PinFormatError(LabError, ckr.PinInvalid):
    """The PIN is not of the form ``<username>:<password>`` (CKR_PIN_INVALID)."""


class UserLocked(LabError, ckr.PinLocked):
    """The user is locked after too many wrong passwords (CKR_PIN_LOCKED)."""


class WrongRole(LabError, ckr.PKCS11Error):
    """Only crypto users log in through the PKCS#11 library; admins use the CloudHSM CLI."""


class KeyAvailabilityError(LabError, ckr.FunctionFailed):
    """A token key is on fewer HSMs than the availability check requires (CKR_FUNCTION_FAILED)."""


class KeyPermissionError(LabError, ckr.PKCS11Error):
    """The user may not do this with the key (not the owner, or the key is not shared)."""


class SessionKeyLost(LabError, ckr.KeyHandleInvalid):
    """A session key lived on an HSM (or library session) that is gone."""


class NoHsmAvailable(LabError, ckr.DeviceError):
    """No usable (ACTIVE) HSM is left to serve the request (CKR_DEVICE_ERROR)."""


class ClusterChanging(LabError, ckr.DeviceError):
    """The cluster's HSMs kept changing (created or deleted by another process) while this
    client synchronized keys or created one; retried, and still changing (CKR_DEVICE_ERROR)."""


class SessionClosedError(LabError, ckr.SessionClosed):
    """The cluster session was closed; open a new one with ``client.login(...)``."""


class NotSupportedByCloudHsm(LabError, ckr.FunctionNotSupported):
    """A PKCS#11 function AWS CloudHSM's library does not implement (CKR_FUNCTION_NOT_SUPPORTED):
    C_CopyObject, C_DigestKey, C_InitPIN, C_SeedRandom, C_InitToken, security-officer login."""


class AttributeNotSupported(LabError, ckr.AttributeTypeInvalid):
    """An attribute AWS CloudHSM's library does not support in a template
    (CKR_ATTRIBUTE_TYPE_INVALID), e.g. CKA_ALWAYS_AUTHENTICATE."""


class ObjectClassNotSupported(LabError, ckr.AttributeValueInvalid):
    """An object class the cluster does not store (certificates, data objects)."""


class KeySizeNotSupported(LabError, ckr.KeySizeRange):
    """A key size AWS CloudHSM refuses (RSA below 2048 bits, AES other than 128/192/256)
    (CKR_KEY_SIZE_RANGE)."""


class BadArgument(LabError, ckr.ArgumentsBad):
    """An argument the call cannot use at all (CKR_ARGUMENTS_BAD); the message says which."""


class InvalidKeyReference(BadArgument):
    """A key reference that is not ``0x`` + up to 16 hex digits (or a non-negative int)."""


class NotLoggedIn(LabError, ckr.UserNotLoggedIn):
    """A public (not logged-in) session tried something that needs a crypto user."""
