"""The PKCS#11 errors lesson 04 triggers on purpose, and the help a learner gets for each."""

from __future__ import annotations

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from pkcs11 import Attribute, Mechanism
from pkcs11.exceptions import (
    GeneralError,
    KeyTypeInconsistent,
    KeyUnextractable,
    MechanismInvalid,
    ObjectHandleInvalid,
)
from pkcs11.mechanisms import GCMParams

import labsupport.crypto  # noqa: F401 - registers the lesson's explanations
from labsupport.crypto import Usage, generate_aes, generate_ec
from labsupport.crypto.errors_help import HELP, diagnose, help_for
from labsupport.pedagogy.explain import explain


def test_wrong_mechanism_ecdsa_sha256(session: pkcs11.Session) -> None:
    if Mechanism.ECDSA_SHA256 in set(session.token.slot.get_mechanisms()):
        pytest.skip("this token has CKM_ECDSA_SHA256")
    pair = generate_ec(session, "ec-err", token=False)
    with pytest.raises(MechanismInvalid) as info:
        pair.private.sign(b"data", mechanism=Mechanism.ECDSA_SHA256)
    assert "CKM_ECDSA" in help_for(info.value).fix
    assert "CKR_MECHANISM_INVALID" in explain(info.value)


def test_wrong_key_type_for_mechanism(session: pkcs11.Session, rsa_pair) -> None:
    with pytest.raises(KeyTypeInconsistent) as info:
        rsa_pair.private.decrypt(
            bytes(32), mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(bytes(12))
        )
    text = diagnose(info.value, key=rsa_pair.private, mechanism=Mechanism.AES_GCM)
    assert "CKM_AES_GCM needs an AES key, but this key is RSA (PRIVATE_KEY)" in text
    assert "CKR_KEY_TYPE_INCONSISTENT" in text


def test_general_error_is_explained(session: pkcs11.Session, rsa_pair) -> None:
    # SoftHSM answers ECDSA with an RSA key with CKR_GENERAL_ERROR
    try:
        rsa_pair.private.sign(bytes(32), mechanism=Mechanism.ECDSA)
    except (GeneralError, KeyTypeInconsistent) as exc:
        text = explain(exc)
        assert text, "no explanation registered"
        assert "What to do" in text
        hint = diagnose(exc, key=rsa_pair.private, mechanism=Mechanism.ECDSA)
        assert "CKM_ECDSA needs an EC key, but this key is RSA" in hint
    else:  # pragma: no cover
        pytest.fail("ECDSA with an RSA key was accepted")


def test_missing_usage_attribute(session: pkcs11.Session) -> None:
    # 1) python-pkcs11 hides the method of a capability the key lacks
    key = generate_aes(session, "no-sign", token=False)
    with pytest.raises(AttributeError) as info:
        key.sign(b"x", mechanism=Mechanism.AES_CMAC)  # type: ignore[attr-defined]
    assert help_for(info.value) is HELP["AttributeError"]
    assert "CKA_SIGN = False" in diagnose(info.value, key=key)
    # 2) the token itself refuses: CKR_KEY_FUNCTION_NOT_PERMITTED (0x68, unmapped)
    key2 = generate_aes(session, "revoked", usage=Usage.ENCRYPT, token=False)
    key2[Attribute.ENCRYPT] = False  # the Python object still has .encrypt()
    with pytest.raises(pkcs11.PKCS11Error) as info2:
        key2.encrypt(bytes(16), mechanism=Mechanism.AES_ECB)
    assert "0x68" in str(info2.value)
    entry = help_for(info2.value)
    assert entry is not None and entry.ckr == "CKR_KEY_FUNCTION_NOT_PERMITTED"


def test_operation_on_a_deleted_key(session: pkcs11.Session) -> None:
    key = generate_aes(session, "gone", token=False)
    key.destroy()
    with pytest.raises(ObjectHandleInvalid) as info:
        key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB)
    text = diagnose(info.value, key=key)
    assert text.startswith("The key object no longer exists")
    assert "CKR_OBJECT_HANDLE_INVALID" in explain(info.value)


def test_non_extractable_wrap_is_explained(session: pkcs11.Session) -> None:
    kek = generate_aes(session, "kek-err", usage=Usage.WRAP, token=False)
    locked = generate_aes(session, "locked-err", extractable=False, token=False)
    with pytest.raises(KeyUnextractable) as info:
        kek.wrap_key(locked, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    assert "public key" in help_for(info.value).fix


def test_every_help_entry_is_complete() -> None:
    for name, entry in HELP.items():
        assert entry.meaning and entry.fix and entry.ckr, name
        assert "What it means" in entry.render(name)
    assert help_for(ValueError("unrelated")) is None
    assert diagnose(ValueError("unrelated")) == ""
