"""BYOK into the HSM: wrap outside with cryptography, C_UnwrapKey inside, prove it is the same key.

Every import path runs on the lab cluster (through the Client SDK layer) and on a bare
SoftHSM token, with real SoftHSM unwrapping and no mocks.
"""

from __future__ import annotations

from typing import Any

import pkcs11
import pytest
from byok_fixtures import *  # noqa: F403
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport import byok
from labsupport.byok import ImportScheme, UnwrapFailed
from labsupport.crypto import KeyPair, OaepHashUnsupported, Usage, public_key_pem
from labsupport.crypto.hashes import HashAlg
from labsupport.kms import unwrap_key_material


def _hash(import_key: KeyPair) -> HashAlg:
    return byok.oaep_hashes_for(import_key.private)[0]


def _labels(session: Any, label: str) -> list[Any]:
    return list(session.get_objects({Attribute.LABEL: label}))


def test_the_token_is_asked_which_oaep_hash_it_accepts(session: Any, import_key: KeyPair) -> None:
    by_unwrap = byok.oaep_hashes_for(import_key.private)
    by_wrap = byok.oaep_hashes_for(import_key.public)
    assert by_unwrap == by_wrap == byok.oaep_hashes_for(session)
    assert HashAlg.SHA1 in by_unwrap  # SoftHSM 2.6.1: SHA-1 only; CloudHSM: SHA-1 to SHA-512
    assert not _labels(session, "oaep-probe"), "probe objects are deleted"


def test_the_import_key_may_only_unwrap_and_never_leaves(import_key: KeyPair) -> None:
    private = import_key.private
    assert private[Attribute.UNWRAP] and not private[Attribute.DECRYPT]
    assert not private[Attribute.SIGN] and not private[Attribute.EXTRACTABLE]
    assert import_key.public[Attribute.WRAP] and not import_key.public[Attribute.ENCRYPT]


def test_aes_key_via_rsa_oaep(session: Any, import_key: KeyPair) -> None:
    material = byok.new_aes_key()
    wrapped = byok.wrap_for_import(import_key.public, material, hash=_hash(import_key))
    assert wrapped.scheme is ImportScheme.RSA_OAEP and len(wrapped.blob) == 256
    imported = byok.unwrap_into_hsm(import_key.private, wrapped, "imported-aes")
    key = imported.key
    assert len(imported.steps) == 1 and "CKM_RSA_PKCS_OAEP" in imported.steps[0]
    assert key[Attribute.LOCAL] is False  # born outside this HSM, and it says so
    assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
    assert key[Attribute.KEY_TYPE] is KeyType.AES and key[Attribute.TOKEN]
    assert byok.hsm_kcv(key) == byok.kcv(material)
    proof = byok.round_trip(key, material)
    assert proof.ok and len(proof.checks) == 3, str(proof)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: byok.new_rsa_key(2048), KeyType.RSA),
        (lambda: byok.new_ec_key("secp256r1"), KeyType.EC),
        (lambda: byok.new_ec_key("secp384r1"), KeyType.EC),
    ],
    ids=["rsa-2048", "ec-p256", "ec-p384"],
)
def test_private_key_via_composed_rsa_aes(
    session: Any, import_key: KeyPair, make: Any, kind: KeyType
) -> None:
    original = make()
    wrapped = byok.wrap_for_import(import_key.public, original, hash=_hash(import_key))
    assert wrapped.scheme is ImportScheme.RSA_AES
    assert wrapped.object_class is ObjectClass.PRIVATE_KEY and wrapped.key_type is kind
    imported = byok.unwrap_into_hsm(import_key.private, wrapped, f"imported-{kind.name}")
    key = imported.key
    assert [s.split("(")[0] for s in imported.steps[1:]] == [
        "C_UnwrapKey",
        "C_UnwrapKey",
        "C_DestroyObject",
    ]
    assert key[Attribute.CLASS] is ObjectClass.PRIVATE_KEY and key[Attribute.KEY_TYPE] is kind
    assert key[Attribute.LOCAL] is False and not key[Attribute.EXTRACTABLE]
    proof = byok.round_trip(key, original)
    assert proof.ok and len(proof.checks) == 1, str(proof)
    assert not _labels(session, "byok-ephemeral"), "the ephemeral AES key is destroyed"


def test_rsa_key_imported_to_decrypt_too(import_key: KeyPair) -> None:
    original = byok.new_rsa_key()
    wrapped = byok.wrap_for_import(import_key.public, original, hash=_hash(import_key))
    key = byok.unwrap_into_hsm(
        import_key.private, wrapped, "rsa-sign-decrypt", usage=Usage.SIGN | Usage.ENCRYPT
    ).key
    proof = byok.round_trip(key, original)
    assert proof.ok and len(proof.checks) == 2, str(proof)
    assert "decrypted in the HSM" in str(proof)


def test_round_trip_catches_a_different_key(import_key: KeyPair) -> None:
    material, other = byok.new_aes_key(), byok.new_aes_key()
    wrapped = byok.wrap_for_import(import_key.public, material, hash=_hash(import_key))
    key = byok.unwrap_into_hsm(import_key.private, wrapped, "aes-x", usage=Usage.ENCRYPT).key
    proof = byok.round_trip(key, other)
    assert not proof.ok and not any(passed for _, passed in proof.checks)
    rsa_key = byok.unwrap_into_hsm(
        import_key.private,
        byok.wrap_for_import(import_key.public, byok.new_ec_key(), hash=_hash(import_key)),
        "ec-x",
    ).key
    assert not byok.round_trip(rsa_key, byok.new_ec_key()).ok


def test_session_keys_and_extractable_imports(import_key: KeyPair) -> None:
    material = byok.new_aes_key(128)
    wrapped = byok.wrap_for_import(import_key.public, material, hash=_hash(import_key))
    key = byok.unwrap_into_hsm(
        import_key.private, wrapped, "aes-128-session", token=False, extractable=True
    ).key
    assert not key[Attribute.TOKEN] and key[Attribute.EXTRACTABLE]
    assert byok.round_trip(key, material).ok


def test_the_public_key_travels_as_pem_or_der(import_key: KeyPair) -> None:
    pem = public_key_pem(import_key.public)
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for form in (pem, der):
        material = byok.new_aes_key()
        wrapped = byok.wrap_for_import(form, material, hash=_hash(import_key))
        key = byok.unwrap_into_hsm(import_key.private, wrapped, "via-file").key
        assert byok.hsm_kcv(key) == byok.kcv(material)


def test_a_blob_for_another_import_key_is_refused(import_key: KeyPair) -> None:
    stranger = byok.new_rsa_key().public_key()
    wrapped = byok.wrap_for_import(stranger, byok.new_aes_key(), hash=_hash(import_key))
    with pytest.raises(UnwrapFailed, match="another import key"):
        byok.unwrap_into_hsm(import_key.private, wrapped, "never")


@pytest.mark.parametrize("position", [10, -10], ids=["rsa-part", "kwp-part"])
def test_a_damaged_rsa_aes_blob_is_refused(
    session: Any, import_key: KeyPair, position: int
) -> None:
    wrapped = byok.wrap_for_import(import_key.public, byok.new_ec_key(), hash=_hash(import_key))
    blob = bytearray(wrapped.blob)
    blob[position] ^= 0x01
    damaged = byok.WrappedKey(
        bytes(blob),
        wrapped.scheme,
        wrapped.hash,
        wrapped.object_class,
        wrapped.key_type,
        wrapped.description,
    )
    with pytest.raises(UnwrapFailed):
        byok.unwrap_into_hsm(import_key.private, damaged, "never")
    assert not _labels(session, "byok-ephemeral")


def test_too_short_rsa_aes_blob(import_key: KeyPair) -> None:
    wrapped = byok.wrap_for_import(import_key.public, byok.new_ec_key(), hash=_hash(import_key))
    short = byok.WrappedKey(
        wrapped.blob[:200],
        wrapped.scheme,
        wrapped.hash,
        wrapped.object_class,
        wrapped.key_type,
        wrapped.description,
    )
    with pytest.raises(UnwrapFailed, match="only 200 bytes"):
        byok.unwrap_into_hsm(import_key.private, short, "never")


def test_a_hash_the_token_refuses_is_explained(import_key: KeyPair) -> None:
    if HashAlg.SHA256 in byok.oaep_hashes_for(import_key.private):
        pytest.skip("this token accepts RSA-OAEP with SHA-256")
    wrapped = byok.wrap_for_import(import_key.public, byok.new_aes_key(), hash=HashAlg.SHA256)
    with pytest.raises(OaepHashUnsupported, match="SHA-1 only"):
        byok.unwrap_into_hsm(import_key.private, wrapped, "never")


def test_private_keys_do_not_fit_in_rsa_oaep(import_key: KeyPair) -> None:
    with pytest.raises(ValueError, match="RSA_AES"):
        byok.wrap_for_import(
            import_key.public,
            byok.new_rsa_key(),
            hash=HashAlg.SHA1,
            scheme=ImportScheme.RSA_OAEP,
        )
    assert byok.scheme_for(byok.new_aes_key()) is ImportScheme.RSA_OAEP
    assert byok.scheme_for(byok.new_ec_key()) is ImportScheme.RSA_AES
    with pytest.raises(TypeError):
        byok.scheme_for("not a key")  # type: ignore[arg-type]


def test_rsa_aes_blob_has_the_kms_layout() -> None:
    """wrap_for_import's rsa-aes blob is KMS's RSA_AES_KEY_WRAP blob: one format, two uses."""
    receiver = byok.new_rsa_key()
    original = byok.new_ec_key()
    wrapped = byok.wrap_for_import(receiver.public_key(), original, hash=HashAlg.SHA256)
    opened = unwrap_key_material(receiver, wrapped.blob, "RSA_AES_KEY_WRAP_SHA_256")
    assert opened == byok.pkcs8_der(original)


@pytest.mark.parametrize("make", [byok.new_aes_key, byok.new_rsa_key, byok.new_ec_key])
def test_plaintext_import_gives_the_same_kind_of_key(session: Any, make: Any) -> None:
    original = make()
    key = byok.import_plaintext(session, original, "plaintext-import")
    assert key[Attribute.LOCAL] is False and key[Attribute.SENSITIVE]
    assert not key[Attribute.EXTRACTABLE]
    assert byok.round_trip(key, original).ok


def test_pem_file_import(session: Any, module_workspace: Any) -> None:
    original = byok.new_ec_key()
    path = byok.write_pem_file(original, module_workspace.root / "legacy.pem")
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()  # the weakness: the secret is in a file
    key = byok.import_pem_file(session, path, "from-pem")
    assert byok.round_trip(key, original).ok
    path.unlink()


def test_material_helpers() -> None:
    assert len(byok.new_aes_key(192)) == 24
    assert byok.describe(byok.new_aes_key()) == "AES-256 key"
    assert byok.describe(byok.new_ec_key("secp384r1")) == "EC secp384r1 private key"
    with pytest.raises(ValueError):
        byok.new_aes_key(100)
    with pytest.raises(ValueError):
        byok.new_rsa_key(1024)
    with pytest.raises(ValueError):
        byok.new_ec_key("secp256k1")
    assert "blob" not in repr(
        byok.WrappedKey(
            b"secret",
            ImportScheme.RSA_OAEP,
            HashAlg.SHA1,
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            "AES-256 key",
        )
    )


def test_only_the_owner_may_use_the_import_key(cluster: Any) -> None:
    alice = cluster.login("alice")
    bob = cluster.login("bob")
    try:
        pair = byok.create_import_key(alice, "alice-import-key")
        assert not list(
            bob.get_objects(
                {Attribute.LABEL: "alice-import-key", Attribute.CLASS: ObjectClass.PRIVATE_KEY}
            )
        )
        with pytest.raises(pkcs11.exceptions.NoSuchKey):
            bob.key_by_reference(pair.private.reference)
    finally:
        bob.close()
        alice.close()
