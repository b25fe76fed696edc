"""Key check values: known vectors, ECB vs CMAC, and the HSM computing the same value."""

from __future__ import annotations

from typing import Any

import pytest
from byok_fixtures import *  # noqa: F403
from pkcs11 import Attribute

from labsupport import byok
from labsupport.byok import KcvMethod, KcvUnavailable
from labsupport.crypto import KeySpec, Usage, generate_key_pair, generate_secret_key
from labsupport.crypto.kcv import KCV_BYTES

# AES(zero key, zero block): FIPS-197-style known answers for all-zero keys.
ZERO_KEY_ECB = {
    16: "66e94b",  # 66e94bd4ef8a2c3b884cfa59ca342b2e
    32: "dc95c0",  # dc95c078a2408989ad48a21492842087
}


@pytest.mark.parametrize(("size", "expected"), sorted(ZERO_KEY_ECB.items()))
def test_ecb_kcv_known_answers(size: int, expected: str) -> None:
    assert byok.kcv(bytes(size)).hex() == expected


def test_cmac_kcv_is_another_value() -> None:
    material = byok.new_aes_key()
    ecb, cmac = byok.kcv(material), byok.kcv(material, KcvMethod.AES_CMAC)
    assert len(ecb) == len(cmac) == KCV_BYTES == 3
    assert ecb != cmac  # same key, two methods, two answers: always say which one
    assert byok.format_kcv(ecb) == "0x" + ecb.hex()


def test_kcv_needs_an_aes_key() -> None:
    with pytest.raises(ValueError):
        byok.kcv(b"short")


def test_hsm_kcv_of_a_generated_key_is_the_stored_check_value(session: Any) -> None:
    key = generate_secret_key(session, KeySpec.AES_256, "kcv-generated")
    stored = bytes(key[Attribute.CHECK_VALUE])
    assert byok.hsm_kcv(key) == stored and len(stored) == 3


def test_hsm_kcv_of_an_imported_key_matches_the_material(session: Any) -> None:
    material = byok.new_aes_key()
    key = byok.import_plaintext(session, material, "kcv-imported", usage=Usage.ENCRYPT | Usage.SIGN)
    assert byok.hsm_kcv(key) == byok.kcv(material)
    # CMAC in the HSM (CKM_AES_CMAC) against CMAC in cryptography: two implementations agree.
    assert byok.hsm_kcv(key, KcvMethod.AES_CMAC) == byok.kcv(material, KcvMethod.AES_CMAC)


def test_hsm_kcv_unavailable_is_explained(session: Any, import_key: Any) -> None:
    # SoftHSM stores a check value for generated and C_CreateObject keys, not unwrapped ones.
    hash_alg = byok.oaep_hashes_for(import_key.private)[0]
    wrapped = byok.wrap_for_import(import_key.public, byok.new_aes_key(), hash=hash_alg)
    wrap_only = byok.unwrap_into_hsm(import_key.private, wrapped, "kcv-wrap", usage=Usage.WRAP).key
    stored = bytes(wrap_only[Attribute.CHECK_VALUE] or b"")
    if len(stored) == 3:
        pytest.skip("this token stores a check value for unwrapped keys")
    with pytest.raises(KcvUnavailable, match="CKA_ENCRYPT"):
        byok.hsm_kcv(wrap_only)
    with pytest.raises(KcvUnavailable, match="CKA_SIGN"):
        byok.hsm_kcv(wrap_only, KcvMethod.AES_CMAC)
    pair = generate_key_pair(session, KeySpec.EC_P256, "kcv-ec", token=False)
    with pytest.raises(KcvUnavailable, match="not an AES key"):
        byok.hsm_kcv(pair.private)
