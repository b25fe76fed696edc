"""A kernel killed (SIGKILL) in the middle of a key sync leaves the cluster consistent.

A child process works on the same workspace and stops (or is stopped) half-way through
copying keys; the parent kills it with SIGKILL, connects, and checks that every key is
on every HSM exactly once, that nothing half-made is left, and that every key still
decrypts what it encrypted before the crash on every HSM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from client_fixtures import (
    PASSWORDS,
    assert_consistent,
    build,
    env_for_child,
    gcm,
    make_aes,
    token_refs,
    ungcm,
)
from pkcs11 import KeyType

from labsupport import client as chsm
from labsupport.client.keys import KeyStatus, format_ref
from labsupport.client.links import HsmLink

#: The HSM the child adds (``add-hsm``): a test-double HSM in the control plane's state.
NEW_HSM = "hsm-crashtestnewa"

CHILD = textwrap.dedent(
    """
    import sys, time
    from pkcs11 import KeyType
    from labsupport import client as chsm
    from labsupport.client import sync
    from labsupport.workspace import Workspace
    from localcluster import add_hsm

    cluster_id, action, stop_after, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    new_hsm = sys.argv[5]
    ws = Workspace.open()
    client = chsm.connect(ws)
    copies = 0

    real_copy_key = sync.copy_key

    def copy_key_then_count(source, obj, target, ref):
        # Wraps the one function every key copy goes through (new keys and syncs alike).
        global copies
        copied = real_copy_key(source, obj, target, ref)
        copies += 1
        print("COPIED", copies, flush=True)
        if copies == stop_after:
            print("STOP", flush=True)
            if pause == "pause":
                time.sleep(600)
        return copied

    sync.copy_key = copy_key_then_count
    if action == "add-hsm":
        add_hsm(ws, cluster_id, hsm_id=new_hsm)
        client.reconcile(progress=False)
    elif action == "create":
        session = client.login("alice:alice-pass-1")
        session.generate_key(KeyType.AES, 256, label="in-flight", store=True)
    print("DONE", flush=True)
    """
)


def run_and_kill(lab, action: str, stop_after: int, pause: bool) -> list[str]:
    """Run the child until it prints STOP, then SIGKILL it; return what it printed."""
    lab.client.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            lab.cluster.cluster_id,
            action,
            str(stop_after),
            "pause" if pause else "go",
            NEW_HSM,
        ],
        env={**env_for_child(lab.workspace), "PYTHONPATH": str(Path(__file__).parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("STOP"):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert "STOP" in lines, (
        f"child ended early: {lines} {proc.stderr.read() if proc.stderr else ''}"
    )
    assert proc.returncode == -signal.SIGKILL
    return lines


def check_every_key_everywhere(lab, ciphertexts: dict[str, bytes]) -> None:
    """Connect afresh; every key is everywhere once and decrypts its ciphertext on each HSM."""
    client = lab.reconnect()
    assert_consistent(client)
    session = client.login("alice:" + PASSWORDS["alice"])
    hsm_count = len(client.topology.describe().usable_hsms)
    for label, ct in ciphertexts.items():
        key = session.get_key(label=label)
        assert len(key.hsms) == hsm_count
        mark = client.requests.total
        for _ in range(hsm_count):
            assert ungcm(key, ct) == label.encode()
        served = {r.hsm_id for r in client.requests.requests() if r.number > mark}
        assert len(served) == hsm_count


def make_keys(lab, count: int) -> dict[str, bytes]:
    session = lab.login("alice")
    out = {}
    for i in range(count):
        label = f"key-{i:03d}"
        out[label] = gcm(make_aes(session, label), label.encode())
    session.close()
    return out


@pytest.mark.slow
def test_killed_while_copying_keys_onto_a_new_hsm(workspace):
    lab = build(workspace, 2)
    ciphertexts = make_keys(lab, 12)
    lines = run_and_kill(lab, "add-hsm", stop_after=5, pause=True)
    assert "DONE" not in lines
    # The new HSM holds only some keys now; the next connect finishes the copy.
    refs = token_refs_after_crash(lab)
    assert 0 < len(refs[NEW_HSM]) < 12
    check_every_key_everywhere(lab, ciphertexts)


@pytest.mark.slow
def test_killed_at_an_arbitrary_point_of_a_sync(workspace):
    lab = build(workspace, 2)
    ciphertexts = make_keys(lab, 30)
    run_and_kill(lab, "add-hsm", stop_after=3, pause=False)  # killed while it keeps copying
    check_every_key_everywhere(lab, ciphertexts)


@pytest.mark.slow
def test_killed_while_a_new_key_is_being_synchronized(workspace):
    lab = build(workspace, 3)
    ciphertexts = make_keys(lab, 2)
    run_and_kill(lab, "create", stop_after=1, pause=True)  # on 2 of 3 HSMs, still pending
    doc = json.loads(lab.client.store.path.read_text())
    pending = [r for r, k in doc["keys"].items() if k["status"] == KeyStatus.PENDING.value]
    assert len(pending) == 1
    client = lab.reconnect()  # rolls the key forward onto the third HSM
    key = client.login("alice:" + PASSWORDS["alice"]).key_by_reference(pending[0])
    assert key.label == "in-flight" and len(key.hsms) == 3
    ciphertexts["in-flight"] = gcm(key, b"in-flight")
    check_every_key_everywhere(lab, ciphertexts)


def token_refs_after_crash(lab) -> dict[str, dict[int, int]]:
    lab.client.tokens.refresh()
    from labsupport.client import resolver

    view = resolver.describe(lab.workspace, lab.cluster.cluster_id)
    out = {}
    for endpoint in view.hsms:
        link = HsmLink(lab.client.tokens, endpoint)
        out[endpoint.hsm_id] = {ref: len(objs) for ref, objs in link.index().items()}
        link.close()
    return out


# -- the replay rules, without a crash ------------------------------------------------------


def test_pending_key_that_no_hsm_holds_is_rolled_back(workspace):
    lab = build(workspace, 2)
    with lab.client.store.update() as doc:
        ref = doc["next_ref"]
        doc["next_ref"] += 1
        doc["keys"][format_ref(ref)] = {
            "owner": "alice",
            "key_class": "secret-key",
            "key_type": "AES",
            "status": "pending",
        }
    report = lab.client.reconcile(progress=False)
    assert report.rolled_back == [format_ref(ref)]
    assert ref not in lab.client.keys.records()
    assert_consistent(lab.client)


def test_interrupted_delete_is_finished(workspace):
    lab = build(workspace, 2)
    key = make_aes(lab.login("alice"), "half-deleted")
    lab.client.keys.update(key.handle, status=KeyStatus.DELETING.value)
    report = lab.client.reconcile(progress=False)
    assert report.deleted == [key.reference]
    assert all(key.handle not in refs for refs in token_refs(lab.client).values())
    assert_consistent(lab.client)


def test_half_made_key_pair_is_rolled_back_whole(workspace):
    lab = build(workspace, 2)
    session = lab.login("alice")
    pub, priv = session.generate_keypair(KeyType.RSA, 2048, label="pair", store=True)
    # As if the kernel died after the public key was made and before the private key:
    for hsm_id in priv.hsms:
        session.links[hsm_id].find(priv.handle).destroy()
    for ref in (pub.handle, priv.handle):
        lab.client.keys.update(ref, status=KeyStatus.PENDING.value)
    report = lab.client.reconcile(progress=False)
    assert sorted(report.rolled_back) == sorted([pub.reference, priv.reference])
    assert_consistent(lab.client)


def test_duplicate_copies_are_removed(workspace):
    from labsupport.client import sync

    lab = build(workspace, 2)
    key = make_aes(lab.login("alice"), "twice")
    a, b = (HsmLink(lab.client.tokens, h) for h in lab.client.topology.describe().usable_hsms)
    sync.copy_key(a, a.find(key.handle), b, key.handle)  # as an interrupted unwrap could
    assert token_refs(lab.client)[b.hsm_id][key.handle] == 2
    report = lab.client.reconcile(progress=False)
    assert report.duplicates_removed == 1
    assert_consistent(lab.client)
    assert isinstance(chsm.connect(workspace), chsm.Client)
