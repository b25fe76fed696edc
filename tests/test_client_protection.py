"""Key protection: no path out of the cluster reveals a sensitive or non-extractable key.

One test per refused path (attribute read, export, wrap, derive, the layer's replicas, the
HSM tokens themselves, another user's key), each checked against what a bare SoftHSM
token answers where the behaviour is plain PKCS#11.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import pytest
from client_fixtures import PASSWORDS, lab, make_aes
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as ckr

from labsupport.client import KeyNotExtractable, KeyPermissionError
from labsupport.client.inspector import HsmObject, inspect_hsm
from labsupport.client.mechanisms import MechanismNotSupported
from labsupport.crypto import export_private_key
from labsupport.hsm.tokens import HsmTokenSealed, TokenPurpose, firmware_pin_fd, token_store

_FIXTURES = (lab,)  # pytest fixtures used as test arguments

LOCKED = {Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: False}


@pytest.fixture
def bare(workspace):
    """A bare SoftHSM practice token (the reference behaviour)."""
    store = token_store(workspace)
    store.create("bare-ref", owner="test")
    session = store.open_session("bare-ref")
    yield session


@pytest.mark.parametrize("store", [False, True])
def test_non_extractable_value_is_refused_like_a_bare_token(lab, bare, store):
    """CKA_EXTRACTABLE false, CKA_SENSITIVE false: the value stays secret (PKCS#11)."""
    ref = bare.generate_key(KeyType.AES, 256, store=False, template=LOCKED)
    with pytest.raises(ckr.AttributeSensitive):
        ref[Attribute.VALUE]
    session = lab.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="locked", store=store, template=LOCKED)
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.SENSITIVE] is False  # as the user asked, not the internal value
    with pytest.raises(ckr.AttributeSensitive):
        key[Attribute.VALUE]
    # python-pkcs11's bulk read leaves refused attributes out, on a bare token too
    assert ref.get_attributes([Attribute.VALUE, Attribute.CLASS]) == {
        Attribute.CLASS: ObjectClass.SECRET_KEY
    }
    assert key.get_attributes([Attribute.LABEL, Attribute.VALUE]) == {Attribute.LABEL: "locked"}


def test_sensitive_extractable_value_is_refused(lab):
    session = lab.login("alice")
    key = make_aes(session, "sensitive", template={Attribute.EXTRACTABLE: True})
    assert key[Attribute.SENSITIVE] is True
    with pytest.raises(ckr.AttributeSensitive):
        key[Attribute.VALUE]


def test_plain_key_value_is_readable_by_its_owner_only(lab):
    """A non-sensitive, extractable key reveals its value to its owner, as PKCS#11 allows;
    a user it is shared with may use it but not export it."""
    alice = lab.login("alice")
    key = make_aes(
        alice,
        "plain",
        template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
    )
    assert len(key[Attribute.VALUE]) == 32
    key.share("bob")
    bob = lab.login("bob")
    theirs = bob.key_by_reference(key.reference)
    with pytest.raises(ckr.AttributeSensitive):
        theirs[Attribute.VALUE]


@pytest.mark.parametrize("store", [False, True])
def test_export_private_key_is_refused(lab, store):
    """RSA private exponent and friends: refused for a non-extractable key."""
    session = lab.login("alice")
    _, priv = session.generate_keypair(
        KeyType.RSA, 2048, label="rsa", store=store, private_template=LOCKED
    )
    with pytest.raises(ckr.AttributeSensitive):
        export_private_key(priv)
    for attr in (Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1, Attribute.COEFFICIENT):
        with pytest.raises(ckr.AttributeSensitive):
            priv[attr]
    assert priv[Attribute.MODULUS]  # public material stays readable


def test_replicas_inside_the_layer_are_sensitive(lab):
    """Even the lab's own HSM copies of a non-extractable key refuse to reveal its value."""
    session = lab.login("alice")
    key = make_aes(session, "locked", template=LOCKED)
    key._read_replica()  # resolve the replicas
    assert len(key._reps) == 2
    for _, obj in key._reps:
        with pytest.raises(ckr.AttributeSensitive):
            obj[Attribute.VALUE]
    assert not hasattr(key, "_any")


@pytest.mark.parametrize("store", [False, True])
def test_wrap_out_non_extractable_is_refused(lab, store):
    session = lab.login("alice")
    kek = session.generate_key(
        KeyType.AES,
        256,
        label="kek",
        store=store,
        template={Attribute.WRAP: True, Attribute.UNWRAP: True},
    )
    target = session.generate_key(KeyType.AES, 256, label="locked", store=store, template=LOCKED)
    with pytest.raises(ckr.KeyUnextractable):
        kek.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    if store:
        with pytest.raises(KeyNotExtractable):
            kek.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP_PAD)


def test_sensitive_cannot_be_turned_off(lab):
    session = lab.login("alice")
    key = make_aes(session, "sens")
    with pytest.raises(ckr.AttributeReadOnly):
        key[Attribute.SENSITIVE] = False
    plain = make_aes(session, "plain", template={Attribute.SENSITIVE: False})
    plain[Attribute.SENSITIVE] = True
    assert plain[Attribute.SENSITIVE] is True
    with pytest.raises(ckr.AttributeSensitive):
        plain[Attribute.VALUE]


def test_derive_with_a_mechanism_cloudhsm_lacks_is_refused(lab):
    """CKM_CONCATENATE_BASE_AND_DATA would copy a key's value into an extractable key;
    CloudHSM offers only ECDH and SP800-108 for C_DeriveKey."""
    session = lab.login("alice")
    key = make_aes(session, "base", template={**LOCKED, Attribute.DERIVE: True})
    with pytest.raises(MechanismNotSupported) as info:
        key.derive_key(
            KeyType.GENERIC_SECRET,
            32,
            mechanism=Mechanism.CONCATENATE_BASE_AND_DATA,
            mechanism_param=b"",
            template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
        )
    assert isinstance(info.value, ckr.MechanismInvalid)


def test_other_users_keys_are_invisible_and_unwrappable(lab):
    alice = lab.login("alice")
    key = make_aes(alice, "alice-only", template={Attribute.EXTRACTABLE: True})
    bob = lab.login("bob")
    assert all(k.reference != key.reference for k in bob.get_objects())
    with pytest.raises(ckr.NoSuchKey):
        bob.key_by_reference(key.reference)
    key.share("bob")
    shared = bob.key_by_reference(key.reference)
    kek = make_aes(bob, "bob-kek", template={Attribute.WRAP: True})
    with pytest.raises(KeyPermissionError):
        kek.wrap_key(shared, mechanism=Mechanism.AES_KEY_WRAP_PAD)


def test_hsm_tokens_are_sealed(lab):
    """lab.tokens.open_session(<HSM>) used to open an HSM with its internal PIN."""
    hsm = lab.cluster.hsms[0]
    with pytest.raises(HsmTokenSealed):
        token_store(lab.workspace).open_session(hsm.token_label)


def test_hsm_token_object_is_sealed(lab):
    """lab.tokens.token(<HSM>).open() would share the client layer's login (per process)."""
    lab.login("alice")  # the client layer is logged in to every HSM token now
    with pytest.raises(HsmTokenSealed):
        token_store(lab.workspace).token(lab.cluster.hsms[0].token_label)


def test_hsm_tokens_come_and_go_only_with_their_hsm(lab):
    """lab.tokens.delete(<HSM>) pulled an HSM's storage out from under the cluster, and
    lab.tokens.create(<hsm-…>) could plant a token posing as an HSM with a known PIN."""
    store = token_store(lab.workspace)
    label = lab.cluster.hsms[0].token_label
    with pytest.raises(HsmTokenSealed, match="DeleteHsm"):
        store.delete(label)
    assert label in store.records()  # nothing was removed
    with pytest.raises(HsmTokenSealed, match="CreateHsm"):
        store.create("hsm-abcdefghijk", owner="test", user_pin="1234")
    with pytest.raises(HsmTokenSealed):
        store.create("practice", owner="test", purpose=TokenPurpose.HSM)
    assert "hsm-abcdefghijk" not in store.records() and "practice" not in store.records()


def test_token_records_carry_no_pin(lab):
    """lab.tokens.record(<HSM>).user_pin used to hand out an HSM's internal PIN."""
    store = token_store(lab.workspace)
    stored = json.loads((lab.workspace.state_dir / "tokens.json").read_text())
    for rec in [store.record(h.token_label) for h in lab.cluster.hsms]:
        assert rec.plays_hsm
        pins = {stored[rec.label]["user_pin"], stored[rec.label]["so_pin"]}
        assert not hasattr(rec, "user_pin") and not hasattr(rec, "so_pin")
        assert not any(pin in repr(rec) or pin in str(asdict(rec)) for pin in pins)
    for rec in store.records().values():
        assert not hasattr(rec, "user_pin")


def test_firmware_pin_reaches_a_child_through_a_pipe_only(lab):
    """The launcher's path: the PIN goes from tokens.json into a pipe, not a return value."""
    label = lab.cluster.hsms[0].token_label
    stored = json.loads((lab.workspace.state_dir / "tokens.json").read_text())[label]
    fd = firmware_pin_fd(token_store(lab.workspace), label, lambda pin: f"PIN={pin}".encode())
    assert isinstance(fd, int)
    with os.fdopen(fd, "rb") as fh:
        assert fh.read() == f"PIN={stored['user_pin']}".encode()


def test_inspector_is_read_only_and_shows_the_user_view(lab):
    session = lab.login("alice")
    key = make_aes(session, "locked", template=LOCKED, id=b"mine")
    hsm = lab.cluster.hsms[1]
    objects = inspect_hsm(hsm.hsm_id, lab.workspace)
    assert all(isinstance(o, HsmObject) for o in objects)
    mine = next(o for o in objects if o.reference == key.reference)
    assert mine.object_class is ObjectClass.SECRET_KEY
    assert mine.label == "locked" and mine.id == b"mine"
    assert mine.extractable is False and mine.sensitive is False  # the user's view
    for obj in objects:  # nothing that can be used: plain data only
        assert not hasattr(obj, "session") and not hasattr(obj, "wrap_key")
        assert Attribute.VALUE not in obj.public


def test_kcv_and_length_of_a_synced_key_answer_from_the_record(lab):
    """CKA_CHECK_VALUE / CKA_VALUE_LEN stay readable on a locked key (SoftHSM loses them on
    the unwrapped copies; the record keeps the generating HSM's values)."""
    session = lab.login("alice")
    key = make_aes(session, "locked", template=LOCKED)
    assert key[Attribute.VALUE_LEN] == 32
    assert len(key[Attribute.CHECK_VALUE]) == 3


def test_extractable_cannot_be_turned_on(lab):
    """CKA_EXTRACTABLE goes from true to false only (PKCS#11), so a locked key stays locked."""
    session = lab.login("alice")
    key = make_aes(session, "locked", template=LOCKED)
    with pytest.raises(ckr.AttributeReadOnly):
        key[Attribute.EXTRACTABLE] = True
    assert key[Attribute.EXTRACTABLE] is False


@pytest.mark.parametrize("kek_store", [False, True])
def test_wrap_out_under_a_key_of_the_other_kind_is_refused(lab, kek_store):
    """A session KEK for a token key, a token KEK for a session key: both refused."""
    session = lab.login("alice")
    kek = session.generate_key(
        KeyType.AES, 256, label="kek", store=kek_store, template={Attribute.WRAP: True}
    )
    target = session.generate_key(
        KeyType.AES, 256, label="locked", store=not kek_store, template=LOCKED
    )
    with pytest.raises(ckr.KeyUnextractable):
        kek.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP_PAD)


def test_rsa_public_key_wrap_of_a_locked_key_is_refused(lab):
    """Wrapping under one's own RSA public key (RSA-OAEP) is a wrap like any other."""
    session = lab.login("alice")
    public, _ = session.generate_keypair(
        KeyType.RSA, 2048, label="rsa-kek", store=False, public_template={Attribute.WRAP: True}
    )
    target = make_aes(session, "locked", template=LOCKED)
    with pytest.raises(ckr.KeyUnextractable):
        public.wrap_key(target, mechanism=Mechanism.RSA_PKCS_OAEP)


def test_unwrapped_copy_cannot_be_made_readable(lab):
    """Unwrap-then-rewrap: a key unwrapped as sensitive/non-extractable stays locked, and
    the blob of an extractable key gives back only what its owner could export anyway."""
    session = lab.login("alice")
    kek = make_aes(session, "kek", template={Attribute.WRAP: True, Attribute.UNWRAP: True})
    data = make_aes(session, "data", template={Attribute.EXTRACTABLE: True})  # sensitive
    blob = kek.wrap_key(data, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    locked = kek.unwrap_key(
        ObjectClass.SECRET_KEY,
        KeyType.AES,
        blob,
        label="copy",
        store=True,
        mechanism=Mechanism.AES_KEY_WRAP_PAD,
        template={**LOCKED, Attribute.SENSITIVE: True},
    )
    with pytest.raises(ckr.AttributeSensitive):
        locked[Attribute.VALUE]
    with pytest.raises(ckr.KeyUnextractable):
        kek.wrap_key(locked, mechanism=Mechanism.AES_KEY_WRAP_PAD)


def test_cli_key_wrap_of_a_locked_key_is_refused(lab, tmp_path):
    """CloudHSM CLI `key wrap`: the same rule as C_WrapKey, and no blob is written."""
    session = lab.login("alice")
    make_aes(session, "locked", template=LOCKED)
    make_aes(session, "kek", template={Attribute.WRAP: True})
    cli = lab.client.cli
    cli.run("login --username alice --role crypto-user", password=PASSWORDS["alice"])
    out = tmp_path / "blob"
    result = cli.run(
        "key wrap aes-no-pad --payload-filter attr.label=locked --wrapping-filter "
        f"attr.label=kek --path {out}"
    )
    cli.run("logout")
    assert result.error_code == 1 and "extractable" in str(result.data).lower()
    assert not out.exists()
