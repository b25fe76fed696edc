"""Attribute tables and the CloudHSM vs SoftHSM default templates."""

from __future__ import annotations

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from pkcs11 import Attribute

from labsupport.crypto import (
    attribute_table,
    defaults_table,
    generate_aes,
    generate_ec,
    measure_defaults,
)
from labsupport.crypto.attributes import (
    ABSENT_MARK,
    CLOUDHSM_DEFAULTS,
    SENSITIVE_MARK,
    format_value,
)


def test_table_of_a_secret_key(session: pkcs11.Session) -> None:
    key = generate_aes(session, "tbl-aes", token=False, key_id=b"\x01\x02")
    table = attribute_table(key)
    assert table.headers == ("tbl-aes",)
    values = table.as_dict()
    assert values["CKA_KEY_TYPE"] == "AES"
    assert values["CKA_ID"] == "0102"
    assert values["CKA_VALUE_LEN"] == "32"
    assert values["CKA_SENSITIVE"] == "True"
    assert values["CKA_VALUE"] == SENSITIVE_MARK  # never read
    text = str(table)
    assert "CKA_EXTRACTABLE" in text and "may leave the HSM wrapped" in text
    assert text.splitlines()[0].split() == ["attribute", "tbl-aes", "meaning"]


def test_side_by_side_token_and_session_key(session: pkcs11.Session) -> None:
    token_key = generate_aes(session, "on-token", token=True)
    session_key = generate_aes(session, "in-session", token=False, extractable=False)
    table = attribute_table(token_key, session_key, headers=["token key", "session key"])
    assert table.value(Attribute.TOKEN, 0) == "True"
    assert table.value(Attribute.TOKEN, 1) == "False"
    assert table.value(Attribute.EXTRACTABLE, 1) == "False"
    assert table.value(Attribute.NEVER_EXTRACTABLE, 1) == "True"
    token_key.destroy()
    with pytest.raises(KeyError):
        table.value(Attribute.MODULUS)


def test_public_key_table_shows_curve_not_rsa_rows(session: pkcs11.Session) -> None:
    pair = generate_ec(session, "tbl-ec", "secp384r1", token=False)
    table = attribute_table(pair.public)
    assert table.value(Attribute.EC_PARAMS) == "secp384r1"
    assert "CKA_MODULUS_BITS" not in str(table)
    private = attribute_table(pair.private).as_dict()
    assert private["CKA_VALUE"] == SENSITIVE_MARK
    assert "CKA_PRIVATE_EXPONENT" not in private


def test_rsa_rows_and_mixed_classes(rsa_pair) -> None:
    public = attribute_table(rsa_pair.public).as_dict()
    assert public["CKA_MODULUS_BITS"] == "2048"
    assert public["CKA_PUBLIC_EXPONENT"] == "65537"
    assert attribute_table(rsa_pair.private).as_dict()["CKA_PRIVATE_EXPONENT"] == SENSITIVE_MARK
    with pytest.raises(ValueError, match="different classes"):
        attribute_table(rsa_pair.public, rsa_pair.private)
    mixed = attribute_table(
        rsa_pair.public, rsa_pair.private, attributes=[Attribute.CLASS, Attribute.DECRYPT]
    )
    assert mixed.value(Attribute.DECRYPT, 0) == ABSENT_MARK  # not a public-key attribute
    with pytest.raises(ValueError):
        attribute_table()


def test_format_value() -> None:
    assert format_value(Attribute.ID, b"") == "(empty)"
    assert format_value(Attribute.CHECK_VALUE, b"abc") == "<3 bytes>"
    assert format_value(Attribute.LABEL, "x") == "'x'"
    assert format_value(Attribute.KEY_TYPE, pkcs11.KeyType.RSA) == "RSA"


def test_measured_defaults_match_the_recorded_softhsm_column(session: pkcs11.Session) -> None:
    measured = measure_defaults(session)
    if session.token.manufacturer_id.startswith("SoftHSM"):
        assert measured == {d.attribute: d.softhsm for d in CLOUDHSM_DEFAULTS}
    assert measured[Attribute.TOKEN] is False  # the probe key was a session key...
    assert not list(session.get_objects({Attribute.LABEL: ""}))  # ...and it is gone


def test_defaults_table_marks_differences(session: pkcs11.Session) -> None:
    recorded = defaults_table()
    live = defaults_table(session)
    assert "this token" in live.splitlines()[0]
    differing = [line.split()[0] for line in recorded.splitlines() if "<- differs" in line]
    assert "CKA_SENSITIVE" in differing and "CKA_EXTRACTABLE" in differing
    assert "CKA_PRIVATE" not in differing


def test_key_summary(session: pkcs11.Session, rsa_pair) -> None:
    from labsupport.crypto import key_summary

    ec_pair = generate_ec(session, "sum-ec", token=False, extractable=False)
    assert key_summary(ec_pair.private).split() == [
        "'sum-ec'",
        "private",
        "EC",
        "P-256",
        "session",
        "sensitive,",
        "non-extractable",
    ]
    assert key_summary(rsa_pair.public).split() == [
        "'test-rsa'",
        "public",
        "RSA",
        "2048",
        "session",
    ]
    aes = generate_aes(session, "sum-aes", 128, token=True)
    assert key_summary(aes).split()[2:5] == ["AES", "128", "token"]
