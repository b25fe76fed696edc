"""Client SDK fidelity: the cluster session reports what a PKCS#11 token would."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from client_fixtures import lab, make_aes, pin
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import KeyHandleInvalid
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.client import SessionKeyLost
from labsupport.client.gcmiv import GcmIvRefused
from labsupport.crypto import aes_gcm_decrypt, aes_gcm_encrypt
from labsupport.crypto.signatures import token_mechanisms
from labsupport.hsm.tokens import token_store

_FIXTURES = (lab,)  # pytest fixtures used as test arguments


def _partner_public_key(private: ec.EllipticCurvePrivateKey) -> dict[Attribute, object]:
    """Template of a partner's EC P-256 public key (made outside the HSMs)."""
    numbers = private.public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    return {
        Attribute.CLASS: ObjectClass.PUBLIC_KEY,
        Attribute.KEY_TYPE: KeyType.EC,
        Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
        Attribute.EC_POINT: b"\x04\x41" + point,
        Attribute.VERIFY: True,
        Attribute.LABEL: "partner",
    }


@pytest.mark.parametrize("store", [False, True])
def test_import_public_key(lab, store):
    """A partner's public key imports on a cluster session (no CKA_EXTRACTABLE added)."""
    partner = ec.generate_private_key(ec.SECP256R1())
    session = lab.login("alice")
    key = session.create_object({**_partner_public_key(partner), Attribute.TOKEN: store})
    assert key[Attribute.CLASS] == ObjectClass.PUBLIC_KEY
    assert key.label == "partner"
    assert key.is_token_key is store
    assert len(key.hsms) == (2 if store else 1)
    der = partner.sign(b"order 66", ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    digest = hashlib.sha256(b"order 66").digest()
    assert key.verify(digest, raw, mechanism=Mechanism.ECDSA)
    assert not key.verify(hashlib.sha256(b"order 67").digest(), raw, mechanism=Mechanism.ECDSA)
    session.close()


def _on_each_hsm(key, attr):
    """``attr`` as the cluster key reports it when each of its HSMs is the one asked."""
    key._read_replica()  # resolve the replicas
    replicas = list(key._reps)
    values = {}
    for i, (hsm_id, _) in enumerate(replicas):
        key._reps = replicas[i:] + replicas[:i]  # this HSM answers reads
        values[hsm_id] = key[attr]
    return values


def test_synced_key_reports_always_sensitive_like_the_original(lab):
    session = lab.login("alice")
    key = make_aes(session, "locked", template={Attribute.EXTRACTABLE: False})
    assert len(key.hsms) == 2
    key._read_replica()  # resolve the replicas
    raw = {h: obj[Attribute.ALWAYS_SENSITIVE] for h, obj in key._reps}
    assert sorted(raw.values()) == [False, True]  # SoftHSM: the synced copy was unwrapped
    assert _on_each_hsm(key, Attribute.ALWAYS_SENSITIVE) == dict.fromkeys(raw, True)
    assert key[Attribute.NEVER_EXTRACTABLE] is True and key[Attribute.LOCAL] is True
    # a fresh connection reads the record, not a replica
    with lab.reconnect().login(pin("alice")) as again:
        same = again.key_by_reference(key.reference)
        assert same.get_attributes([Attribute.ALWAYS_SENSITIVE, Attribute.NEVER_EXTRACTABLE]) == {
            Attribute.ALWAYS_SENSITIVE: True,
            Attribute.NEVER_EXTRACTABLE: True,
        }


@pytest.mark.parametrize("store", [False, True])
def test_unwrapped_key_is_not_never_extractable(lab, store):
    """PKCS#11: an unwrapped key (CKA_LOCAL false) is neither never-extractable nor
    always-sensitive, even when unwrapped as non-extractable."""
    session = lab.login("alice")
    kek = make_aes(
        session, "kek", capabilities=None, template={Attribute.WRAP: True, Attribute.UNWRAP: True}
    )
    payload = make_aes(session, "payload", template={Attribute.EXTRACTABLE: True})
    blob = kek.wrap_key(payload, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    copy = kek.unwrap_key(
        ObjectClass.SECRET_KEY,
        KeyType.AES,
        blob,
        label="imported",
        store=store,
        mechanism=Mechanism.AES_KEY_WRAP_PAD,
        template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
    )
    assert copy[Attribute.LOCAL] is False
    assert copy[Attribute.EXTRACTABLE] is False
    assert copy[Attribute.NEVER_EXTRACTABLE] is False
    assert copy[Attribute.ALWAYS_SENSITIVE] is False


def test_imported_secret_is_not_never_extractable(lab):
    session = lab.login("alice")
    key = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: bytes(range(32)),
            Attribute.TOKEN: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: True,
        }
    )
    assert key[Attribute.LOCAL] is False
    assert key[Attribute.NEVER_EXTRACTABLE] is False
    assert key[Attribute.ALWAYS_SENSITIVE] is False


def test_derived_key_inherits_the_base_history(lab):
    session = lab.login("alice")
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}
    )
    pub, priv = params.generate_keypair(
        store=True, private_template={Attribute.EXTRACTABLE: False, Attribute.DERIVE: True}
    )
    assert priv[Attribute.NEVER_EXTRACTABLE] is True and priv[Attribute.ALWAYS_SENSITIVE] is True
    derived = priv.derive_key(
        KeyType.AES,
        256,
        store=True,
        mechanism_param=(KDF.NULL, None, pub[Attribute.EC_POINT]),
        template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
    )
    assert set(_on_each_hsm(derived, Attribute.ALWAYS_SENSITIVE).values()) == {True}
    assert derived[Attribute.NEVER_EXTRACTABLE] is True


def test_cluster_token_has_a_slot_listing_common_mechanisms(lab):
    token = lab.client.token
    slot = token.slot
    assert slot is not None and slot.get_token() is token
    per_hsm = []
    for endpoint in lab.client.topology.routable():
        per_hsm.append(set(lab.client.topology.link(endpoint).session.token.slot.get_mechanisms()))
    assert len(per_hsm) == 2
    mechanisms = slot.get_mechanisms()
    assert mechanisms == set.intersection(*per_hsm) & CLOUDHSM_MECHANISMS
    assert {Mechanism.AES_GCM, Mechanism.RSA_PKCS_OAEP, Mechanism.ECDSA} <= mechanisms
    info = slot.get_mechanism_info(Mechanism.AES_KEY_GEN)
    assert info.min_key_length <= 32 <= info.max_key_length
    with lab.login("alice") as session:
        assert session.token.slot.get_mechanisms() == mechanisms
        assert token_mechanisms(session) == frozenset(mechanisms)


@pytest.mark.parametrize("store", [False, True])
def test_using_a_deleted_key_says_it_was_deleted(lab, store):
    session = lab.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="gone", store=store)
    key.destroy()
    with pytest.raises(KeyHandleInvalid, match="was deleted") as info:
        key.encrypt(b"x" * 16, mechanism=Mechanism.AES_ECB)
    assert not isinstance(info.value, SessionKeyLost)
    assert "went away" not in str(info.value)


def test_session_key_lost_with_its_hsm_still_says_so(lab):
    session = lab.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="lost", store=False)
    lab.cluster.add_hsm()  # creating a token re-initializes PKCS#11 in this kernel
    with pytest.raises(SessionKeyLost, match="went away"):
        key.encrypt(b"x" * 16, mechanism=Mechanism.AES_ECB)


# -- routing: C_WrapKey / C_UnwrapKey between any two keys (python-pkcs11 test_wrap) --------


def test_session_keys_of_one_session_share_one_hsm(lab):
    session = lab.login("alice")
    keys = [session.generate_key(KeyType.AES, 128, label=f"s{i}") for i in range(6)]
    assert len({tuple(k.hsms) for k in keys}) == 1


@pytest.mark.parametrize("stores", [(False, False), (True, False), (False, True), (True, True)])
def test_wrap_unwrap_between_any_two_keys(lab, stores):
    """python-pkcs11's test_aes::test_wrap, repeated so round robin would spread the keys."""
    session = lab.login("alice")
    for i in range(4):
        kek = session.generate_key(
            KeyType.AES,
            128,
            label=f"kek{i}",
            store=stores[0],
            template={Attribute.WRAP: True, Attribute.UNWRAP: True},
        )
        key = session.generate_key(
            KeyType.AES,
            128,
            label=f"payload{i}",
            store=stores[1],
            template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
        )
        blob = kek.wrap_key(key)
        back = kek.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            blob,
            template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
        )
        assert back[Attribute.VALUE] == key[Attribute.VALUE]


def test_rsa_wraps_a_session_aes_key(lab):
    """python-pkcs11's test_rsa::test_key_wrap: RSA pair and AES key, all session keys."""
    session = lab.login("alice")
    pub, priv = session.generate_keypair(KeyType.RSA, 2048, store=False)
    for i in range(3):
        key = session.generate_key(
            KeyType.AES, 128, label=f"k{i}", template={Attribute.EXTRACTABLE: True}
        )
        blob = pub.wrap_key(key)
        back = priv.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, blob)
        iv = b"\x00" * 16
        assert back.decrypt(key.encrypt(b"x" * 16, mechanism_param=iv), mechanism_param=iv)


# -- CloudHSM's PKCS#11 surface: what the library offers and refuses, with exact exceptions --

from pkcs11 import UserType  # noqa: E402
from pkcs11 import exceptions as ckr  # noqa: E402
from pkcs11.attributes import AttributeMapper, handle_str  # noqa: E402

from labsupport.client.mechanisms import CLOUDHSM_MECHANISMS  # noqa: E402


def test_slot_lists_client_sdk5_mechanisms_only(lab):
    mechs = lab.client.token.slot.get_mechanisms()
    assert mechs <= CLOUDHSM_MECHANISMS
    for present in (Mechanism.AES_GCM, Mechanism.ECDSA, Mechanism.SHA256_RSA_PKCS):
        assert present in mechs
    for absent in (Mechanism.DSA, Mechanism.DH_PKCS_KEY_PAIR_GEN, Mechanism.MD5_RSA_PKCS):
        assert absent not in mechs
    with pytest.raises(ckr.MechanismInvalid):
        lab.client.token.slot.get_mechanism_info(Mechanism.DSA)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, k: k.copy({Attribute.LABEL: "copy"}),
        lambda s, k: s.digest(k, mechanism=Mechanism.SHA256),
        lambda s, k: s.digest([b"data", k], mechanism=Mechanism.SHA256),
        lambda s, k: s.init_pin("carol:carol-pass-1"),
        lambda s, k: s.seed_random(b"1234"),
        lambda s, k: s.token.open(so_pin="admin:admin-pass-1"),
    ],
    ids=["C_CopyObject", "C_DigestKey", "C_DigestKey-iter", "C_InitPIN", "C_SeedRandom", "SO"],
)
def test_functions_cloudhsm_does_not_implement(lab, call):
    session = lab.login("alice")
    key = make_aes(session, "k")
    with pytest.raises(ckr.FunctionNotSupported):
        call(session, key)


def test_refused_at_generation(lab):
    session = lab.login("alice")
    with pytest.raises(ckr.KeySizeRange):
        session.generate_keypair(KeyType.RSA, 1024)
    with pytest.raises(ckr.MechanismInvalid):
        session.generate_key(KeyType.DES2, 128)
    with pytest.raises(ckr.MechanismInvalid):
        session.generate_domain_parameters(KeyType.DSA, 1024)
    with pytest.raises(ckr.AttributeTypeInvalid):
        session.generate_keypair(
            KeyType.RSA, 2048, private_template={Attribute.ALWAYS_AUTHENTICATE: True}
        )
    with pytest.raises(ckr.AttributeValueInvalid):
        session.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.VALUE: b"0\x00"})


def test_mechanisms_outside_the_list_are_refused(lab):
    session = lab.login("alice")
    key = make_aes(session, "k")
    with pytest.raises(ckr.MechanismInvalid):
        key.encrypt(b"x" * 16, mechanism=Mechanism.AES_OFB, mechanism_param=b"\x00" * 16)
    with pytest.raises(ckr.MechanismInvalid):
        session.digest(b"data", mechanism=Mechanism.SHA3_256)
    assert len(session.digest(b"data", mechanism=Mechanism.SHA256)) == 32


def test_public_session(lab):
    """CloudHSM has public (not logged-in) sessions: digest, random, public keys only."""
    alice = lab.login("alice")
    alice.generate_keypair(KeyType.RSA, 2048, store=True, label="shared-pub")
    with lab.client.token.open() as public:
        assert public.user_type == UserType.NOBODY
        assert len(public.generate_random(128)) == 16
        assert len(public.digest(b"abc", mechanism=Mechanism.SHA256)) == 32
        found = list(public.get_objects({Attribute.LABEL: "shared-pub"}))
        assert [k.object_class for k in found] == [ObjectClass.PUBLIC_KEY]
        with pytest.raises(ckr.UserNotLoggedIn):
            public.generate_key(KeyType.AES, 256)


def test_attribute_mapper_is_honoured(lab):
    """python-pkcs11 test_sessions::test_custom_attribute_mapper through the cluster."""
    mapper = AttributeMapper()
    mapper.register_handler(Attribute.ID, *handle_str)
    with lab.client.token.open(user_pin="alice:alice-pass-1", attribute_mapper=mapper) as s:
        key = s.generate_key(KeyType.AES, 128, id="SAMPLE KEY")
        assert key[Attribute.ID] == "SAMPLE KEY"
        # key pairs take the mapper's values in their templates, RSA and EC alike
        mapper.register_handler(Attribute.LABEL, bytes, bytes)  # labels as bytes
        curve = {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}
        ec = s.create_domain_parameters(KeyType.EC, curve, local=True)
        for name, pair in (
            ("rsa", lambda t: s.generate_keypair(KeyType.RSA, 2048, private_template=t)),
            ("ec", lambda t: ec.generate_keypair(private_template=t)),
        ):
            _, private = pair({Attribute.LABEL: name.encode()})
            assert private[Attribute.LABEL] == name.encode()


def test_bulk_attribute_read_is_partial_like_python_pkcs11(lab):
    """python-pkcs11 test_sessions::test_bulk_attribute_*: refused attributes are left out;
    only when nothing can be read is the error raised."""
    session = lab.login("alice")
    key = session.generate_key(KeyType.AES, 128, label="")
    assert key.get_attributes([Attribute.LABEL, Attribute.CLASS, Attribute.VALUE]) == {
        Attribute.LABEL: "",
        Attribute.CLASS: ObjectClass.SECRET_KEY,
    }
    with pytest.raises(ckr.AttributeSensitive):
        key.get_attributes([Attribute.VALUE])


def test_set_pin_like_python_pkcs11(lab):
    """python-pkcs11 test_sessions::test_set_pin through the cluster (user:password PINs)."""
    old, new = "alice:alice-pass-1", "alice:alice-pass-156"
    with lab.client.token.open(rw=True, user_pin=old) as session:
        session.set_pin(old, new)
    with lab.client.token.open(rw=True, user_pin=new) as session:
        session.set_pin(new, old)
        with pytest.raises(AttributeError):
            session.set_pin(None, new)
        with pytest.raises(ckr.PinLenRange):
            session.set_pin(old, "")
        with pytest.raises(ckr.PinIncorrect):
            session.set_pin("", new)
    lab.login("alice").close()


# -- AES-GCM: the HSM generates the IV (CloudHSM) ----------------------------------------------


@pytest.mark.parametrize("store", [False, True])
def test_gcm_iv_is_generated_by_the_hsm_and_written_back(lab, store):
    """CloudHSM ignores the caller's IV and writes its own 12-byte IV into pIv."""
    session = lab.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="gcm", store=store)
    ivs = set()
    for caller_iv in (bytearray(12), bytearray(b"\x01" * 12)):  # a chosen IV is ignored too
        params = GCMParams(caller_iv, b"aad")
        sealed = key.encrypt(b"data", mechanism=Mechanism.AES_GCM, mechanism_param=params)
        iv = bytes(params.nonce)
        assert params.nonce is caller_iv and iv not in (bytes(12), b"\x01" * 12)
        ivs.add(iv)
        opened = key.decrypt(
            sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, b"aad")
        )
        assert opened == b"data"
    assert len(ivs) == 2


@pytest.mark.parametrize(
    "param",
    [
        GCMParams(bytes(12)),  # immutable: the HSM could not hand its IV back
        GCMParams(b"\x07" * 12),
        GCMParams(bytearray(8)),  # CloudHSM writes 12 bytes
        SimpleNamespace(
            nonce=bytearray(12), aad=None, tag_bits=128
        ),  # python-pkcs11 wants GCMParams
        None,
    ],
    ids=["bytes-zero", "bytes-chosen", "short-buffer", "not-gcmparams", "no-params"],
)
def test_gcm_encrypt_without_a_writable_iv_buffer_is_refused(lab, param):
    session = lab.login("alice")
    key = make_aes(session, "gcm")
    with pytest.raises(ckr.MechanismParamInvalid) as info:
        key.encrypt(b"data", mechanism=Mechanism.AES_GCM, mechanism_param=param)
    assert isinstance(info.value, GcmIvRefused)
    assert "bytearray(12)" in info.value.fix and "CloudHSM" in str(info.value)


def test_gcm_runs_with_the_callers_aad_and_tag_length(lab):
    """The HSM's IV goes into the caller's GCMParams, which then run as given."""
    key = make_aes(lab.login("alice"), "gcm")
    params = GCMParams(bytearray(12), b"header", 96)
    sealed = key.encrypt(b"data", mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert len(sealed) == len(b"data") + 96 // 8
    iv = bytes(params.nonce)
    opened = key.decrypt(
        sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, b"header", 96)
    )
    assert opened == b"data"
    with pytest.raises(ckr.PKCS11Error):
        key.decrypt(
            sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, b"other", 96)
        )


def test_gcm_helper_returns_the_hsm_iv_on_cluster_and_bare_token(lab, workspace):
    """aes_gcm_encrypt works the same on the cluster and on a plain SoftHSM token."""
    store = token_store(workspace)
    store.create("gcm-bare", owner="test")
    bare = store.open_session("gcm-bare")
    for session in (lab.login("alice"), bare):
        key = session.generate_key(KeyType.AES, 256, store=False)
        sealed = aes_gcm_encrypt(key, b"data", aad=b"a")
        assert len(sealed.iv) == 12 and sealed.iv != bytes(12)
        assert aes_gcm_decrypt(key, sealed) == b"data"


def test_the_library_has_one_slot_for_the_whole_cluster(lab):
    """CloudHSM's PKCS#11 library shows one slot (the cluster), not one per HSM; python-pkcs11's
    test_get_slots / test_get_tokens expect SoftHSM's two (a token and the free slot)."""
    lib = lab.client.lib
    slots = lib.get_slots()
    assert len(slots) == 1 and slots == lib.get_slots(token_present=True)
    tokens = list(lib.get_tokens())
    assert len(tokens) == 1 and tokens[0].label == lab.client.token.label
    assert len(lab.cluster.hsms) == 2  # two HSMs behind that one slot
