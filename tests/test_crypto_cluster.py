"""Every lesson-04 operation through the Client SDK layer: a crypto user on a 2-HSM cluster.

The helpers take any python-pkcs11 Session; here it is the cluster session
(``client.login("alice:…")``) that the lesson uses, with token keys synchronized to both
HSMs and session keys on one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from localcluster import make_local_cluster
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import AttributeSensitive, KeyUnextractable

from labsupport import client as chsm
from labsupport.crypto import (
    GcmAuthenticationFailed,
    GcmCiphertext,
    KeyNotFound,
    KeySpec,
    SignatureScheme,
    Usage,
    WrapMechanism,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    attribute_table,
    check_value,
    delete_key,
    encrypt_outside,
    export_private_key,
    find_key,
    find_key_pair,
    find_keys,
    generate_aes,
    generate_hmac_key,
    generate_key_pair,
    hmac_sign,
    hmac_verify,
    key_summary,
    oaep_hashes,
    oaep_scheme,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
    sign,
    signing_plan,
    unwrap_key,
    verify,
    verify_outside,
    wrap_key,
)
from labsupport.crypto.throughput import lesson_benchmark
from labsupport.crypto.usecases import (
    create_ca_certificate,
    issue_server_certificate,
    openssl_verify_certificate,
    write_certificate,
)
from labsupport.workspace import Workspace

PASSWORD = "cluster-test-pw"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chsm.Client]:
    ws = Workspace.open(tmp_path_factory.mktemp("crypto-cluster"))
    cluster = make_local_cluster(ws, 2, owner="04")
    chsm.install_trust_anchor(cluster.ca_pem, ws)
    chsm.configure(cluster_id=cluster.cluster_id, workspace=ws, owner="04")
    cl = chsm.connect(ws)
    cl.cli.run("cluster activate", password=PASSWORD).raise_for_error()
    cl.cli.run("login --username admin --role admin", password=PASSWORD).raise_for_error()
    for user in ("alice", "bob"):
        cl.cli.run(f"user create --username {user} --role crypto-user", password=PASSWORD)
    cl.cli.run("logout")
    yield cl
    cl.close()


@pytest.fixture(scope="module")
def session(client: chsm.Client) -> pkcs11.Session:
    return client.login(f"alice:{PASSWORD}")


@pytest.fixture(scope="module")
def rsa_pair(session: pkcs11.Session):
    return generate_key_pair(
        session, KeySpec.RSA_2048, "cl-rsa", usage=Usage.SIGN | Usage.ENCRYPT | Usage.WRAP
    )


def test_token_and_session_keys_with_templates(client, session) -> None:
    aes = generate_aes(session, "cl-aes", key_id=b"\x04\x01")
    temp = generate_aes(session, "cl-temp", token=False, extractable=False)
    assert aes[Attribute.TOKEN] is True and temp[Attribute.TOKEN] is False
    assert aes.id == b"\x04\x01"  # the learner's CKA_ID survives the cluster's references
    assert len(aes.hsms) == 2  # a token key is on both HSMs
    table = attribute_table(aes, temp)
    assert table.value(Attribute.EXTRACTABLE, 0) == "True"
    assert table.value(Attribute.EXTRACTABLE, 1) == "False"
    assert table.value(Attribute.VALUE, 0) == "(sensitive)"
    assert "session" in key_summary(temp) and "token" in key_summary(aes)
    assert find_key(session, label="cl-aes") == aes
    assert find_key(session, key_id=b"\x04\x01") == aes


def test_keys_belong_to_their_crypto_user(client, session) -> None:
    generate_aes(session, "alice-only")
    bob = client.login(f"bob:{PASSWORD}")
    try:
        assert find_keys(bob, label="alice-only") == []
        with pytest.raises(KeyNotFound):
            find_key(bob, label="alice-only")
    finally:
        bob.close()


def test_pairs_find_and_delete(session) -> None:
    pair = generate_key_pair(session, KeySpec.EC_P384, "cl-ec384")
    assert find_key_pair(session, "cl-ec384").private == pair.private
    delete_key(pair)
    assert find_keys(session, label="cl-ec384") == []


def test_gcm(session) -> None:
    aes = generate_aes(session, "cl-gcm")
    sealed = aes_gcm_encrypt(aes, b"through the cluster", aad=b"id-1")
    assert aes_gcm_decrypt(aes, sealed) == b"through the cluster"
    assert aes_gcm_encrypt(aes, b"x").iv != aes_gcm_encrypt(aes, b"x").iv
    with pytest.raises(GcmAuthenticationFailed):
        aes_gcm_decrypt(aes, GcmCiphertext(sealed.iv, sealed.ciphertext, b"id-2"))


def test_oaep(session, rsa_pair) -> None:
    supported = oaep_hashes(rsa_pair.public)
    assert supported and oaep_hashes(rsa_pair.private) == supported
    scheme = oaep_scheme(rsa_pair.public)
    secret = os.urandom(32)
    assert rsa_oaep_decrypt(rsa_pair.private, rsa_oaep_encrypt(rsa_pair.public, secret)) == secret
    ciphertext = encrypt_outside(rsa_pair.public, secret, scheme)
    assert rsa_oaep_decrypt(rsa_pair.private, ciphertext) == secret


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_signatures(session, rsa_pair, scheme: SignatureScheme) -> None:
    if scheme.key_type is KeyType.EC:
        spec = KeySpec.EC_P384 if scheme is SignatureScheme.ECDSA_SHA384 else KeySpec.EC_P256
        pair = generate_key_pair(session, spec, f"cl-{scheme.name}", token=False)
    else:
        pair = rsa_pair
    signature = sign(pair.private, b"msg", scheme)
    assert verify(pair.public, b"msg", signature, scheme)
    assert verify_outside(pair.public, b"msg", signature, scheme)
    assert not verify_outside(pair.public, b"msg2", signature, scheme)


def test_signing_plan_probes_when_no_mechanism_list(session) -> None:
    pair = generate_key_pair(session, KeySpec.EC_P256, "cl-plan", token=False)
    plan = signing_plan(pair.private, SignatureScheme.ECDSA_SHA256)
    assert plan.mechanism in (Mechanism.ECDSA, Mechanism.ECDSA_SHA256)
    if getattr(session.token, "slot", None) is None:
        with pytest.raises(ValueError, match="pass the key"):
            signing_plan(session, SignatureScheme.ECDSA_SHA256)


def test_hmac(session) -> None:
    key = generate_hmac_key(session, "cl-hmac")
    tag = hmac_sign(key, b"req")
    assert hmac_verify(key, b"req", tag) and not hmac_verify(key, b"req2", tag)


def test_wrapping(session, rsa_pair) -> None:
    kek = generate_aes(session, "cl-kek", usage=Usage.WRAP)
    data = generate_aes(session, "cl-data")
    for how in (WrapMechanism.AES_KEY_WRAP, WrapMechanism.AES_KEY_WRAP_PAD):
        copy = unwrap_key(
            kek,
            wrap_key(kek, data, how),
            object_class=ObjectClass.SECRET_KEY,
            key_type=KeyType.AES,
            label="cl-data-copy",
            usage=Usage.ENCRYPT,
            how=how,
            token=False,
        )
        assert check_value(copy) == check_value(data)
        assert copy[Attribute.LOCAL] is False
    via_rsa = unwrap_key(
        rsa_pair.private,
        wrap_key(rsa_pair.public, data, WrapMechanism.RSA_OAEP),
        object_class=ObjectClass.SECRET_KEY,
        key_type=KeyType.AES,
        label="cl-data-rsa",
        usage=Usage.ENCRYPT,
        how=WrapMechanism.RSA_OAEP,
        token=False,
    )
    assert check_value(via_rsa) == check_value(data)
    locked = generate_key_pair(session, KeySpec.EC_P256, "cl-locked", extractable=False)
    with pytest.raises(KeyUnextractable):
        wrap_key(kek, locked.private)
    with pytest.raises(AttributeSensitive):
        export_private_key(locked.private)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_ca_in_the_cluster(session, tmp_path: Path) -> None:
    ca = generate_key_pair(session, KeySpec.EC_P384, "cl-ca", extractable=False)
    ca_cert = create_ca_certificate(ca)
    web = generate_key_pair(session, KeySpec.EC_P256, "cl-web", token=False)
    cert = issue_server_certificate(ca, ca_cert, "www.cluster.example", web.public)
    result = openssl_verify_certificate(
        write_certificate(ca_cert, tmp_path / "ca.pem"),
        write_certificate(cert, tmp_path / "server.pem"),
        "www.cluster.example",
    )
    assert result.ok, result.output


def test_benchmark_through_the_cluster(session) -> None:
    results = lesson_benchmark(session, budget_s=0.0, rsa_keygen=False)
    assert all(r.count >= 1 for r in results)
    assert find_keys(session, label="bench-kek") == []
