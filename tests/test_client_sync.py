"""Client SDK HA: keys cloned onto new HSMs, failover on removed or degraded HSMs."""

from __future__ import annotations

import pkcs11
import pytest
from client_fixtures import (
    PASSWORDS,
    assert_consistent,
    gcm,
    lab,
    lab3,
    make_aes,
    token_refs,
    ungcm,
)
from localcluster import make_ca
from pkcs11 import KeyType

from labsupport import aws, simulators
from labsupport import client as chsm
from labsupport.client.endpoints import HsmState
from labsupport.client.errors import ClusterChanging

_FIXTURES = (
    lab,
    lab3,
)  # pytest fixtures used as test arguments


def served_by(client, since: int) -> set[str]:
    return {r.hsm_id for r in client.requests.requests() if r.number > since}


def test_adding_an_hsm_clones_every_key_onto_it(lab):
    session = lab.login("alice")
    keys = [make_aes(session, f"k{i}") for i in range(5)]
    pub, priv = session.generate_keypair(KeyType.RSA, 2048, label="pair", store=True)
    ciphertexts = [gcm(k, b"payload") for k in keys]
    new = lab.cluster.add_hsm()
    mark = lab.client.requests.total
    for _ in range(3):
        for key, ct in zip(keys, ciphertexts, strict=True):
            assert ungcm(key, ct) == b"payload"
    assert new.hsm_id in served_by(lab.client, mark)
    for key in [*keys, pub, priv]:
        assert new.hsm_id in key.hsms
    assert_consistent(lab.client)
    assert sorted(lab.client.token_labels(new.hsm_id)) == sorted(
        [f"k{i}" for i in range(5)] + ["pair", "pair"]
    )


def test_removing_an_hsm_keeps_the_application_working(lab3):
    session = lab3.login("alice")
    key = make_aes(session, "survivor")
    ct = gcm(key, b"still here")
    gone = lab3.cluster.hsms[0].hsm_id
    for _ in range(6):
        ungcm(key, ct)
    assert gone in served_by(lab3.client, 0)
    lab3.client.requests.mark(f"{gone} deleted")
    mark = lab3.client.requests.total
    lab3.cluster.remove_hsm(gone)  # deletes the token: this kernel's sessions die
    for _ in range(6):
        assert ungcm(key, ct) == b"still here"
    after = served_by(lab3.client, mark)
    assert gone not in after and len(after) == 2
    assert [e[1] for e in lab3.client.requests.events] == [f"{gone} deleted"]
    assert sorted(key.hsms) == sorted(h.hsm_id for h in lab3.cluster.hsms)
    assert_consistent(lab3.client)


def test_removing_down_to_one_hsm_fails_the_availability_check(lab):
    session = lab.login("alice")
    key = make_aes(session, "k")
    lab.cluster.remove_hsm(lab.cluster.hsms[0].hsm_id)
    with pytest.raises(chsm.KeyAvailabilityError):
        gcm(key, b"x")
    lab.cluster.add_hsm()  # a new HSM gets the key, and the key is usable again
    assert ungcm(key, gcm(key, b"x")) == b"x"


def test_degraded_hsm_is_routed_around_and_resynchronized(lab3):
    session = lab3.login("alice")
    key = make_aes(session, "k")
    sick = lab3.cluster.hsms[1].hsm_id
    lab3.cluster.set_state(sick, HsmState.DEGRADED)
    lab3.client.poll(force=True)
    mark = lab3.client.requests.total
    for _ in range(6):
        gcm(key, b"x")
    assert sick not in served_by(lab3.client, mark)
    made_meanwhile = make_aes(session, "made-while-degraded")
    assert sick not in made_meanwhile.hsms
    assert made_meanwhile.handle not in token_refs(lab3.client).get(sick, {})

    lab3.cluster.set_state(sick, HsmState.ACTIVE)
    lab3.client.poll(force=True)  # the HSM is back: it gets the key it missed
    assert sick in made_meanwhile.hsms
    mark = lab3.client.requests.total
    for _ in range(6):
        gcm(made_meanwhile, b"x")
    assert sick in served_by(lab3.client, mark)
    assert_consistent(lab3.client)


def test_a_new_hsm_waits_while_every_hsm_with_the_keys_is_degraded(lab):
    """A second sync key would split the cluster (the HSMs could no longer copy keys to each
    other once the others return, and every use then failed with a bare GeneralError): the
    client refuses to sync the new HSM until an HSM that holds the keys is back."""
    session = lab.login("alice")
    blob = gcm(make_aes(session, "kept"), b"made before the failures")
    session.close()
    lab.client.close()
    old = [h.hsm_id for h in lab.cluster.hsms]
    for hsm_id in old:
        lab.cluster.set_state(hsm_id, HsmState.DEGRADED)
    new = lab.cluster.add_hsm().hsm_id
    with pytest.raises(ClusterChanging, match="DEGRADED or gone") as refused:
        chsm.connect(lab.workspace)
    assert new in str(refused.value) and "connect again" in refused.value.fix

    lab.cluster.set_state(old[0], HsmState.ACTIVE)
    client = lab.reconnect()
    key = client.login(f"alice:{PASSWORDS['alice']}").get_key(label="kept")
    assert new in key.hsms
    for _ in range(4):  # round robin: each ACTIVE HSM decrypts with its copy
        assert ungcm(key, blob) == b"made before the failures"
    assert_consistent(client)


def test_reconcile_is_idempotent(lab):
    session = lab.login("alice")
    for i in range(3):
        make_aes(session, f"k{i}")
    lab.cluster.add_hsm()
    first = lab.client.reconcile(progress=False)
    second = lab.client.reconcile(progress=False)
    assert first.copied in (0, 3)  # 0 if a poll already synchronized the new HSM
    assert second.copied == 0 and not second.changed
    assert_consistent(lab.client)


def test_a_second_client_sees_keys_and_topology(lab):
    session = lab.login("alice")
    key = make_aes(session, "shared-state")
    other = chsm.connect(lab.workspace)
    try:
        other_session = other.login("alice:" + PASSWORDS["alice"])
        found = other_session.get_key(label="shared-state")
        assert ungcm(found, gcm(key, b"from the first client")) == b"from the first client"
    finally:
        other.close()


def test_with_the_control_plane(workspace, monkeypatch):
    """Quickstart cluster, DeleteHsm / CreateHsm through boto3, keys follow."""
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    from labsupport.controlplane.quickstart import initialized_cluster

    ready = initialized_cluster(workspace, owner="test", hsm_count=2)
    with pytest.raises(chsm.TrustAnchorError, match="No trust anchor"):
        chsm.configure(cluster_id=ready.cluster_id, workspace=workspace)
        chsm.connect(workspace)
    chsm.install_trust_anchor(ready.customer_ca_cert, workspace)
    client = chsm.connect(workspace)
    try:
        assert client.cluster_state == "INITIALIZED"
        client.cli.run("cluster activate", password="admin-pass-1").raise_for_error()
        assert client.cluster_state == "ACTIVE"
        client.cli.run("login --username admin --role admin", password="admin-pass-1")
        client.cli.run("user create --username app --role crypto-user", password="app-pass-1")
        session = client.login("app:app-pass-1")
        key = make_aes(session, "k")
        ct = gcm(key, b"x")
        cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
        azs = sorted({h.availability_zone for h in client.hsms})
        third = cloudhsm.create_hsm(ClusterId=ready.cluster_id, AvailabilityZone=azs[0])["Hsm"]
        assert ungcm(key, ct) == b"x"
        assert third["HsmId"] in key.hsms
        first = client.hsms[0].hsm_id
        cloudhsm.delete_hsm(ClusterId=ready.cluster_id, HsmId=first)
        for _ in range(4):
            assert ungcm(key, ct) == b"x"
        assert first not in key.hsms and len(key.hsms) == 2
        assert_consistent(client)
    finally:
        client.close()


def test_configure_by_ip_and_bad_addresses(lab):
    ip = lab.cluster.hsms[1].eni_ip
    config = chsm.configure(hsm_ip=ip, workspace=lab.workspace)
    assert config.cluster_id == lab.cluster.cluster_id
    assert [s.hostname for s in config.servers] == [ip]
    other = chsm.connect(lab.workspace)
    assert {h.hsm_id for h in other.hsms} == {h.hsm_id for h in lab.cluster.hsms}
    other.close()
    with pytest.raises(chsm.LabError if hasattr(chsm, "LabError") else Exception):
        chsm.configure(hsm_ip="not-an-ip", workspace=lab.workspace)
    chsm.configure(hsm_ip="10.9.9.9", workspace=lab.workspace)
    with pytest.raises(chsm.HsmUnreachable):
        chsm.connect(lab.workspace)


def test_wrong_trust_anchor_is_refused(lab):
    _, stranger = make_ca("Someone Else's CA")
    from cryptography.hazmat.primitives.serialization import Encoding

    chsm.install_trust_anchor(stranger.public_bytes(Encoding.PEM).decode(), lab.workspace)
    with pytest.raises(chsm.TrustAnchorError, match="not issued by the CA"):
        chsm.connect(lab.workspace)
    with pytest.raises(chsm.TrustAnchorError, match="not a CA certificate"):
        from labsupport.client import resolver

        chsm.install_trust_anchor(
            resolver.describe(lab.workspace, lab.cluster.cluster_id).hsm_certificate_pem,
            lab.workspace,
        )


def test_session_keys_end_when_the_library_restarts(lab):
    session = lab.login("alice")
    temp = session.generate_key(KeyType.AES, 128, store=False)
    gcm(temp, b"x")
    lab.cluster.add_hsm()  # creating a token re-initializes PKCS#11 in this kernel
    with pytest.raises(chsm.SessionKeyLost):
        gcm(temp, b"x")
    assert isinstance(chsm.SessionKeyLost("a"), pkcs11.exceptions.KeyHandleInvalid)


def test_quickstart_connected_cluster(workspace, monkeypatch):
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    monkeypatch.setenv("CLOUDHSM_LAB_LESSON", "test")  # as start_lesson does
    from labsupport.client.quickstart import connected_cluster

    ready = connected_cluster(workspace, owner="test", users=("alice", "bob"))
    try:
        assert not any(p in repr(ready) for p in ready._passwords.values())
        assert ready.client.cluster_state == "ACTIVE"
        key = make_aes(ready.login("alice"), "k")
        assert len(key.hsms) == 2
        simulators.reset(
            workspace, "test"
        )  # the lesson reset removes cluster, client state and files
        assert not ready.client.store.path.exists()
        with pytest.raises(chsm.ClientNotConfigured):
            chsm.connect(workspace)
    finally:
        ready.client.close()


def test_local_cluster_file_of_an_older_version_is_ignored(lab):
    """Older versions let clusters declared in ``state/client-local-clusters.json`` (the tests'
    and the benchmark's bare-token clusters) win over the control plane. Nothing reads that
    file now: its clusters do not resolve, its HSM token is an orphan that the control plane's
    reconcile deletes, and a whole-workspace reset removes the file with ``state/``."""
    import json

    from labsupport.client import resolver
    from labsupport.controlplane.reconcile import ControlPlaneRepaired, reconcile
    from labsupport.hsm.tokens import firmware_create, token_store

    ws, old_hsm = lab.workspace, "hsm-oldlocalclustr"
    firmware_create(token_store(ws), old_hsm, "test")
    endpoint = {
        "hsm_id": old_hsm,
        "eni_ip": "10.0.0.11",
        "availability_zone": "us-east-1a",
        "token_label": old_hsm,
        "state": "ACTIVE",
        "subnet_id": "",
    }
    old = {"state": "ACTIVE", "hsms": [endpoint], "owner": "test", "region": "us-east-1"}
    legacy = ws.state_dir / "client-local-clusters.json"
    legacy.write_text(
        json.dumps(
            {
                "clusters": {
                    cid: {**old, "cluster_id": cid, "hsm_certificate_pem": None}
                    for cid in (lab.cluster.cluster_id, "cluster-oldlocalonly")
                }
            }
        )
    )
    view = resolver.describe(ws, lab.cluster.cluster_id)  # the control plane's cluster, not
    assert old_hsm not in {h.hsm_id for h in view.hsms} and len(view.hsms) == 2  # the file's
    with pytest.raises(resolver.ClusterNotFound):
        resolver.describe(ws, "cluster-oldlocalonly")
    assert resolver.find_by_ip(ws, "10.0.0.11") is None
    with pytest.warns(ControlPlaneRepaired, match=old_hsm):
        assert reconcile(ws).orphan_tokens == [old_hsm]
    assert old_hsm not in token_store(ws).records()
    key = make_aes(lab.login("alice"), "after")
    assert ungcm(key, gcm(key, b"x")) == b"x"
    assert_consistent(lab.client)
    lab.client.close()
    simulators.reset(ws, "test")  # a lesson reset leaves the file alone, harmlessly
    simulators.reset(ws)
    assert not legacy.exists()
