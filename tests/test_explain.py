"""Plain-language explanations for PKCS#11, AWS and lab errors."""

from __future__ import annotations

import pkcs11
from botocore.exceptions import ClientError

from labsupport.errors import LabError
from labsupport.pedagogy import explain, register_explanation


def test_pkcs11_errors_are_explained_with_ckr_name() -> None:
    for exc, ckr in [
        (pkcs11.PinIncorrect(), "CKR_PIN_INCORRECT"),
        (pkcs11.MechanismInvalid(), "CKR_MECHANISM_INVALID"),
        (pkcs11.KeyHandleInvalid(), "CKR_KEY_HANDLE_INVALID"),
    ]:
        text = explain(exc)
        assert ckr in text and "What to do" in text


def test_aws_error_codes_are_explained() -> None:
    err = ClientError(
        {"Error": {"Code": "CloudHsmInvalidRequestException", "Message": "x"}}, "CreateHsm"
    )
    assert "state" in explain(err)


def test_lab_errors_already_carry_their_fix() -> None:
    assert explain(LabError("problem", "fix")) == ""
    assert str(LabError("problem", "fix")) == "problem\n→ fix"


def test_registration_overrides() -> None:
    register_explanation("DemoServiceException", "demo meaning", "demo fix")
    err = ClientError({"Error": {"Code": "DemoServiceException", "Message": "x"}}, "Op")
    assert "demo fix" in explain(err)


def test_unmapped_ckr_code_is_explained() -> None:
    # python-pkcs11 0.10 raises a bare PKCS11Error for CKR_KEY_FUNCTION_NOT_PERMITTED.
    text = explain(pkcs11.PKCS11Error("Unmapped error code 0x68"))
    assert "CKR_KEY_FUNCTION_NOT_PERMITTED" in text
    assert explain(pkcs11.PKCS11Error("Unmapped error code 0x999")) == ""
