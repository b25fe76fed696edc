"""Client SDK keys: sessions look like python-pkcs11, ownership and sharing, availability."""

from __future__ import annotations

import hashlib
import itertools

import pkcs11
import pytest
from client_fixtures import build, gcm, lab, make_aes, token_refs, ungcm
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport import client as chsm
from labsupport.client.config import log_path

_FIXTURES = (lab,)  # pytest fixtures used as test arguments


def test_sessions_and_keys_are_python_pkcs11_objects(lab):
    session = lab.login("alice")
    assert isinstance(session, pkcs11.Session)
    key = make_aes(session, "k1")
    assert isinstance(key, pkcs11.SecretKey)
    assert isinstance(key, pkcs11.EncryptMixin) and isinstance(key, pkcs11.DecryptMixin)
    assert key.key_length == 256 and key.label == "k1"
    assert key.reference.startswith("0x") and len(key.reference) == 18
    assert key.handle == int(key.reference, 16)
    assert ungcm(key, gcm(key, b"secret data")) == b"secret data"
    assert session.get_key(label="k1") == key
    with token_open(lab) as other:
        assert other.get_key(label="k1").reference == key.reference


def token_open(lab):
    return lab.client.token.open(rw=True, user_pin="alice:alice-pass-1")


def test_token_key_is_on_every_hsm_and_session_key_on_one(lab):
    session = lab.login("alice")
    key = make_aes(session, "everywhere")
    hsm_ids = [h.hsm_id for h in lab.client.hsms]
    assert sorted(key.hsms) == sorted(hsm_ids)
    for hsm_id, refs in token_refs(lab.client).items():
        assert refs.get(key.handle) == 1, hsm_id
        assert "everywhere" in lab.client.token_labels(hsm_id)
    temp = session.generate_key(KeyType.AES, 128, label="temp", store=False)
    assert len(temp.hsms) == 1 and not temp.is_token_key
    assert all(temp.handle not in refs for refs in token_refs(lab.client).values())
    for _ in range(4):
        gcm(temp, b"x")
    assert {r.hsm_id for r in lab.client.requests.requests() if r.operation == "encrypt"} >= {
        temp.hsms[0]
    }


def test_read_only_session_cannot_create_token_keys(lab):
    with lab.client.token.open(user_pin="alice:alice-pass-1") as session:  # rw=False
        with pytest.raises(pkcs11.exceptions.SessionReadOnly):
            make_aes(session, "nope")
        session.generate_key(KeyType.AES, 128, store=False)


def test_key_pairs_sign_on_every_hsm(lab):
    session = lab.login("alice")
    pub, priv = session.generate_keypair(KeyType.RSA, 2048, label="rsa", store=True)
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    ec_pub, ec_priv = params.generate_keypair(label="ec", store=True)
    digest = hashlib.sha256(b"hello").digest()
    before = lab.client.requests.total
    for _ in range(2):  # round robin: each HSM signs once
        sig = priv.sign(b"hello", mechanism=Mechanism.SHA256_RSA_PKCS)
        assert pub.verify(b"hello", sig, mechanism=Mechanism.SHA256_RSA_PKCS)
        ec_sig = ec_priv.sign(digest, mechanism=Mechanism.ECDSA)
        assert ec_pub.verify(digest, ec_sig, mechanism=Mechanism.ECDSA)
    recent = lab.client.requests.requests(last=lab.client.requests.total - before)
    signers = {r.hsm_id for r in recent if r.operation == "sign"}
    assert len(signers) == 2
    assert len(pub.hsms) == len(priv.hsms) == len(ec_priv.hsms) == 2


def test_the_four_routed_operations_check_their_mechanism_and_take_turns(lab):
    """encrypt, decrypt, sign and verify: each is logged under its name, the calls on one
    key alternate between the HSMs holding it, and each refuses a mechanism outside
    CloudHSM's list, naming itself, before routing — also right after another mechanism
    passed the check."""
    session = lab.login("alice")
    aes = make_aes(session, "aes")
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    ec_pub, ec_priv = params.generate_keypair(None, "ec", True)  # python-pkcs11's order
    assert ec_priv.is_token_key and ec_priv[Attribute.LABEL] == "ec"
    digest = hashlib.sha256(b"hello").digest()
    before = lab.client.requests.total
    for _ in range(2):
        gcm_params = GCMParams(bytearray(12))
        sealed = aes.encrypt(b"data", mechanism=Mechanism.AES_GCM, mechanism_param=gcm_params)
        opened = aes.decrypt(
            sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(bytes(gcm_params.nonce))
        )
        assert opened == b"data"
        assert ec_pub.verify(
            digest, ec_priv.sign(digest, mechanism=Mechanism.ECDSA), mechanism=Mechanism.ECDSA
        )
    recent = lab.client.requests.requests(last=lab.client.requests.total - before)
    assert [r.operation for r in recent] == ["encrypt", "decrypt", "sign", "verify"] * 2
    for pair in (("encrypt", "decrypt"), ("sign",), ("verify",)):  # round robin per key
        served = [r.hsm_id for r in recent if r.operation in pair]
        assert all(a != b for a, b in itertools.pairwise(served)), served
    refused = {
        "encrypt": lambda: aes.encrypt(
            b"x" * 16, mechanism=Mechanism.AES_OFB, mechanism_param=bytes(16)
        ),
        "decrypt": lambda: aes.decrypt(
            b"x" * 16, mechanism=Mechanism.AES_OFB, mechanism_param=bytes(16)
        ),
        "sign": lambda: ec_priv.sign(digest, mechanism=Mechanism.DSA_SHA1),
        "verify": lambda: ec_pub.verify(digest, b"x" * 64, mechanism=Mechanism.DSA_SHA1),
    }
    routed = lab.client.requests.total
    for operation, call in refused.items():
        with pytest.raises(
            pkcs11.exceptions.MechanismInvalid, match=f"not an? {operation} mechanism"
        ):
            call()
    assert lab.client.requests.total == routed  # refused before any HSM saw it


def test_learner_id_is_kept(lab):
    session = lab.login("alice")
    key = make_aes(session, "with-id", id=b"my-id")
    assert key.id == b"my-id" and key[Attribute.ID] == b"my-id"
    assert session.get_key(id=b"my-id") == key
    with pytest.raises(pkcs11.NoSuchKey):
        session.get_key(id=b"other")


def test_only_the_owner_shares_and_shared_users_only_use(lab):
    alice, bob = lab.login("alice"), lab.login("bob")
    key = make_aes(alice, "alice-key")
    assert list(bob.get_objects({Attribute.LABEL: "alice-key"})) == []
    with pytest.raises(pkcs11.NoSuchKey):
        bob.key_by_reference(key.reference)

    with pytest.raises(chsm.KeyPermissionError):
        bob_view = alice.key_by_reference(key.reference)
        bob_view.session.client.keys.share("bob", key.handle, "bob", share=True)
    key.share("bob")
    assert key.shared_with == ("bob",)
    shared = bob.get_key(label="alice-key")
    ciphertext = gcm(shared, b"for bob")
    assert ungcm(key, ciphertext) == b"for bob"
    with pytest.raises(chsm.KeyPermissionError, match="shared users can use"):
        shared.destroy()
    wrapper = make_aes(bob, "bob-wrapper")
    with pytest.raises(chsm.KeyPermissionError):
        wrapper.wrap_key(shared, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    with pytest.raises(chsm.KeyPermissionError):
        shared.share("bob")
    with pytest.raises(chsm.KeyPermissionError):
        shared[Attribute.LABEL] = "renamed"

    key.unshare("bob")
    lab.client.poll(force=True)
    with pytest.raises(chsm.KeyPermissionError):
        gcm(shared, b"no longer")
    assert list(bob.get_objects({Attribute.LABEL: "alice-key"})) == []


def test_public_keys_are_visible_to_every_crypto_user(lab):
    alice, bob = lab.login("alice"), lab.login("bob")
    pub, priv = alice.generate_keypair(KeyType.RSA, 2048, label="pair", store=True)
    visible = list(bob.get_objects({Attribute.LABEL: "pair"}))
    assert [k.reference for k in visible] == [pub.reference]
    sig = priv.sign(b"m", mechanism=Mechanism.SHA256_RSA_PKCS)
    assert visible[0].verify(b"m", sig, mechanism=Mechanism.SHA256_RSA_PKCS)


def test_owner_deletes_everywhere(lab):
    session = lab.login("alice")
    key = make_aes(session, "doomed")
    ref = key.handle
    key.destroy()
    assert all(ref not in refs for refs in token_refs(lab.client).values())
    assert ref not in lab.client.keys.records()
    with pytest.raises(pkcs11.NoSuchKey):
        session.get_key(label="doomed")
    with pytest.raises(pkcs11.exceptions.KeyHandleInvalid):
        gcm(key, b"x")


def test_non_extractable_keys_cannot_be_wrapped_even_by_the_owner(lab):
    session = lab.login("alice")
    wrapper = make_aes(session, "wrapper")
    locked = make_aes(session, "locked", template={Attribute.EXTRACTABLE: False})
    assert locked[Attribute.EXTRACTABLE] is False
    assert locked[Attribute.NEVER_EXTRACTABLE] is True
    assert len(locked.hsms) == 2  # synchronized all the same
    with pytest.raises(chsm.KeyNotExtractable):
        wrapper.wrap_key(locked, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    free = make_aes(session, "free")
    blob = wrapper.wrap_key(free, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    copy = wrapper.unwrap_key(
        pkcs11.ObjectClass.SECRET_KEY,
        KeyType.AES,
        blob,
        label="copy",
        store=True,
        mechanism=Mechanism.AES_KEY_WRAP_PAD,
    )
    assert copy[Attribute.LOCAL] is False and len(copy.hsms) == 2
    assert ungcm(copy, gcm(free, b"same key")) == b"same key"


def test_availability_check_on_a_one_hsm_cluster(workspace):
    lab = build(workspace, 1)
    session = lab.login("alice")
    key = make_aes(session, "lonely")  # creating works
    with pytest.raises(chsm.KeyAvailabilityError) as err:
        gcm(key, b"x")
    assert isinstance(err.value, pkcs11.exceptions.FunctionFailed)
    message = (
        f"Key {key.handle} does not meet the availability requirements - The key must be "
        "available on at least 2 HSMs before being used."
    )
    assert message in str(err.value)
    assert message in log_path(workspace).read_text()
    temp = session.generate_key(KeyType.AES, 128, store=False)  # session keys are exempt
    gcm(temp, b"fine")

    chsm.set_option(workspace, disable_key_availability_check=True)
    client = lab.reconnect()
    session = client.login("alice:alice-pass-1")
    assert ungcm(session.get_key(label="lonely"), gcm(session.get_key(label="lonely"), b"ok"))


def test_cli_key_commands(lab):
    cli = lab.client.cli
    assert cli.run("key list").error_code == 1  # needs a crypto user
    cli.run("login --username alice --role crypto-user", password="alice-pass-1").raise_for_error()
    made = cli.run("key generate-symmetric aes --label cli-key --key-length-bytes 32").data["key"]
    assert made["key-info"]["key-owners"] == [{"username": "alice", "key-coverage": "full"}]
    assert made["key-info"]["cluster-coverage"] == "full"
    attrs = made["attributes"]
    assert attrs["key-type"] == "aes" and attrs["key-length-bytes"] == 32
    assert attrs["class"] == "secret-key" and attrs["token"] is True
    assert attrs["check-value"].startswith("0x") and len(attrs["check-value"]) == 8
    pair = cli.run(
        "key generate-asymmetric-pair ec --public-label ec-pub --private-label ec-priv "
        "--curve secp256r1"
    ).data
    assert pair["private_key"]["attributes"]["curve"] == "secp256r1"
    listed = cli.run("key list --filter attr.label=cli-key").data
    assert listed["returned_key_count"] == 1
    assert listed["matched_keys"][0]["key-reference"] == made["key-reference"]
    shared = cli.run("key share --filter attr.label=cli-key --username bob --role crypto-user")
    assert shared.data == {"message": "Key shared successfully"}
    verbose = cli.run(f"key list --filter key-reference={made['key-reference']} --verbose").data
    assert verbose["matched_keys"][0]["key-info"]["shared-users"][0]["username"] == "bob"
    assert cli.run("key delete --filter attr.label=cli-key").data == {
        "message": "Key deleted successfully"
    }
    assert cli.run("key list --filter attr.label=cli-key").data["total_key_count"] == 0
    assert cli.run("key list --max-items 1").data["next_token"] == "1"


def test_closing_one_session_does_not_log_out_the_others(lab):
    first = lab.login("alice")  # its HSM sessions do the token logins
    key = make_aes(first, "private-key-object")
    second = lab.login("alice")
    found = second.get_key(label="private-key-object")
    first.close()
    with pytest.raises(chsm.SessionClosedError):
        first.get_key(label="private-key-object")
    for _ in range(4):  # both HSMs still serve the second session
        assert ungcm(found, gcm(found, b"x")) == b"x"
    assert second.get_key(label="private-key-object") == key


def test_closing_another_client_does_not_log_out_this_one(lab):
    session = lab.login("alice")
    key = make_aes(session, "k")
    other = chsm.connect(lab.workspace)  # re-initializes PKCS#11, then logs in again
    gcm(key, b"reopen")  # this session reopens its HSM sessions under the other's login
    other.login("alice:alice-pass-1").close()
    other.close()
    for _ in range(4):
        assert ungcm(key, gcm(key, b"x")) == b"x"
    assert session.get_key(label="k") == key
