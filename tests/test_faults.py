"""Fault injection: SIGKILL at random moments, damaged files, concurrent processes.

Each test ends with :func:`assert_consistent`: every HSM the control plane lists has its
SoftHSM token (record + directory + visible to PKCS#11), no token belongs to a gone HSM,
no intent or temporary file is left behind.

``./lab test`` runs a few kills per loop; ``CLOUDHSM_LAB_FAULTS=long`` runs the
acceptance figure (25 kills during create/delete-HSM loops) and more.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from labsupport import aws
from labsupport.controlplane import quickstart
from labsupport.controlplane.cluster import ControlPlane
from labsupport.controlplane.records import has_intents
from labsupport.hsm.tokens import (
    TokenPurpose,
    TokenStatus,
    TokenStore,
    firmware_session,
    serial_of_dir,
)
from labsupport.workspace import Workspace

LONG = os.environ.get("CLOUDHSM_LAB_FAULTS") == "long"
KILLS = 25 if LONG else 3

pytestmark = pytest.mark.slow


def _env(workspace: Workspace, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CLOUDHSM_LAB_HOME": str(workspace.root),
        "CLOUDHSM_LAB_CLOCK": "fast",
        "PYTHONWARNINGS": "ignore",
        **extra,
    }


def assert_consistent(workspace: Workspace) -> dict[str, int]:
    """Invariants after faults, checked from a fresh process's point of view."""
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            "from labsupport import aws\n"
            "import json\n"
            "cs = aws.client('cloudhsmv2').describe_clusters()['Clusters']\n"
            "print(json.dumps([[h['HsmId'], h['State']] for c in cs for h in c['Hsms']]))",
        ],
        env=_env(workspace),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    listed = {hid: state for hid, state in json.loads(out.stdout.strip().splitlines()[-1])}
    data = ControlPlane(workspace).state.read()
    assert not has_intents(data), "an intent was left behind"
    hsm_tokens = {h["token"] for c in data["clusters"].values() for h in c["hsms"].values()}
    store = TokenStore(workspace)
    raw = store._state.read()
    assert all(r["status"] == TokenStatus.READY.value for r in raw.values()), raw.keys()
    records = store.records()
    serials = {r.serial for r in records.values()}
    dirs = {serial_of_dir(p.name): p for p in workspace.token_dir.iterdir()}
    # A DELETE_IN_PROGRESS HSM has no token by design (DeleteHsm removed it first).
    holding = [hid for hid, state in listed.items() if state != "DELETE_IN_PROGRESS"]
    zombies = [hid for hid in holding if hid not in records or records[hid].serial not in dirs]
    assert not zombies, f"HSMs without a token: {zombies}"
    orphans = [
        label
        for label, rec in records.items()
        if rec.purpose is TokenPurpose.HSM and label not in hsm_tokens
    ]
    assert not orphans, f"tokens of gone HSMs: {orphans}"
    stray_dirs = [p.name for s, p in dirs.items() if s not in serials]
    assert not stray_dirs, f"token directories nobody records: {stray_dirs}"
    store.refresh()
    visible = {t.label for t in store.lib.get_tokens()}
    assert set(holding) <= visible
    temp = [p.name for p in workspace.state_dir.iterdir() if p.name.startswith(".")]
    temp = [n for n in temp if not n.startswith(".write-test")]
    assert not temp, f"temporary files left: {temp}"
    assert not (workspace.root / ".trash").exists() or not any(
        (workspace.root / ".trash").iterdir()
    )
    return {"hsms": len(listed), "tokens": len(records)}


_CHURN = """
import random, sys
from labsupport import aws
cloudhsm = aws.client("cloudhsmv2")
cid = sys.argv[1]
print("ready", flush=True)
while True:
    c = cloudhsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]
    hsms = [h for h in c["Hsms"] if h["State"] == "ACTIVE"]
    if len(hsms) < 3 or random.random() < 0.5:
        az = random.choice(sorted(c["SubnetMapping"]))
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)
    else:
        cloudhsm.delete_hsm(ClusterId=cid, HsmId=random.choice(hsms[1:])["HsmId"])
"""


def _start(code: str, workspace: Workspace, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code), *args],
        env=_env(workspace),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    assert ready and proc.stdout is not None and proc.stdout.readline().strip() == "ready", (
        proc.stderr.read() if proc.stderr else ""
    )
    return proc


def _half_done(workspace: Workspace) -> int:
    """Intents, pending keys and temp files a kill left (read without repairing anything)."""
    plane = workspace.state_dir / "cloudhsmv2.json"
    data = json.loads(plane.read_text() or "{}") if plane.exists() else {}
    hsms = [h for c in data.get("clusters", {}).values() for h in c.get("hsms", {}).values()]
    tokens_path = workspace.state_dir / "tokens.json"
    tokens = json.loads(tokens_path.read_text()) if tokens_path.exists() else {}
    temp = [
        p for p in workspace.state_dir.iterdir() if p.name.startswith(".") and ".json." in p.name
    ]
    pending_keys = 0
    for path in workspace.state_dir.glob("client-cluster-*.json"):
        keys = json.loads(path.read_text() or "{}").get("keys", {})
        pending_keys += sum(1 for k in keys.values() if k.get("status", "ok") != "ok")
    return (
        pending_keys
        + sum(1 for h in hsms if h.get("intent"))
        + sum(1 for r in tokens.values() if r.get("status", "ready") != "ready")
        + len(temp)
    )


def _kill_loop(code: str, workspace: Workspace, kills: int, *args: str) -> dict[str, Any]:
    """SIGKILL ``kills`` fresh processes running ``code`` at random moments."""
    rng = random.Random(int(os.environ.get("CLOUDHSM_LAB_FAULT_SEED", "16")))
    dirty = 0
    for _ in range(kills):
        proc = _start(code, workspace, *args)
        time.sleep(rng.uniform(0.05, 1.2))
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        dirty += _half_done(workspace) > 0
    figures = {"kills": kills, "kills_leaving_half_done_work": dirty}
    print(f"fault figures: {json.dumps(figures)}")
    return figures


def test_sigkill_during_create_and_delete_hsm(workspace: Workspace) -> None:
    cid, _cert, _key = quickstart.initialized_cluster(workspace, owner="faults", hsm_count=1)
    kills = _kill_loop(_CHURN, workspace, KILLS, cid)
    figures = assert_consistent(workspace)
    print(f"after {kills['kills']} kills, one describe_clusters: {json.dumps(figures)}")
    assert figures["hsms"] >= 1
    # The cluster still works: one more create and delete from this process.
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    c = cloudhsm.describe_clusters()["Clusters"][0]
    hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=sorted(c["SubnetMapping"])[0])
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=hsm["Hsm"]["HsmId"])
    assert_consistent(workspace)


_TOKENS = """
import sys
from labsupport.hsm import token_store
store = token_store()
print("ready", flush=True)
i = 0
while True:
    store.create(f"t{i % 4}", owner="faults", user_pin="fault-pin-1")
    if i % 3 == 0:
        store.delete(f"t{(i + 1) % 4}")
    i += 1
"""


def test_sigkill_during_token_create_and_delete(workspace: Workspace) -> None:
    _kill_loop(_TOKENS, workspace, KILLS)
    store = TokenStore(workspace)
    store.reconcile(wait=True)
    assert_consistent(workspace)
    for label, rec in store.records().items():  # every surviving token opens with its PIN
        assert rec.status is TokenStatus.READY
        with store.token(label).open(user_pin="fault-pin-1"):
            pass


def test_reset_interrupted_mid_way_is_finished(workspace: Workspace) -> None:
    quickstart.initialized_cluster(workspace, owner="07-lesson", hsm_count=2)
    code = """
    from labsupport.workspace import Workspace
    from labsupport.controlplane.cluster import delete_clusters_owned_by
    import labsupport.controlplane.hardware as hw, os, signal
    real = hw.decommission_hsm
    def die_after_one(ws, label):
        real(ws, label)
        os.kill(os.getpid(), signal.SIGKILL)
    hw.decommission_hsm = die_after_one
    print("ready", flush=True)
    delete_clusters_owned_by(Workspace.open(), "07")
    """
    proc = _start(code, workspace)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert has_intents(ControlPlane(workspace).state.read())
    with pytest.warns(RuntimeWarning, match="finished the interrupted reset"):
        assert aws.client("cloudhsmv2", workspace=workspace).describe_clusters()["Clusters"] == []
    assert_consistent(workspace)


def test_lost_token_directory_is_not_a_zombie(workspace: Workspace) -> None:
    _cid, _c, _k = quickstart.initialized_cluster(workspace, owner="faults", hsm_count=2)
    store = TokenStore(workspace)
    victim = sorted(r for r in store.records())[0]
    dirs = {serial_of_dir(p.name): p for p in workspace.token_dir.iterdir()}
    import shutil

    shutil.rmtree(dirs[store.records()[victim].serial])
    with pytest.warns(RuntimeWarning, match="token had vanished"):
        hsms = aws.client("cloudhsmv2", workspace=workspace).describe_clusters()["Clusters"][0]
    assert victim not in [h["HsmId"] for h in hsms["Hsms"]]
    assert_consistent(workspace)


def test_truncated_tokens_json_keeps_every_token_openable(workspace: Workspace) -> None:
    quickstart.initialized_cluster(workspace, owner="faults", hsm_count=2)
    store = TokenStore(workspace)
    labels = sorted(store.records())
    path = workspace.state_dir / "tokens.json"
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    with pytest.warns(RuntimeWarning, match="restored its last committed version"):
        assert sorted(TokenStore(workspace).records()) == labels
    for label in labels:  # the newest HSM's token too
        firmware_session(TokenStore(workspace), label).close()
    assert_consistent(workspace)


def test_no_pin_on_any_command_line(workspace: Workspace) -> None:
    pin = "argv-leak-" + os.urandom(4).hex()
    code = """
    import sys
    from labsupport.hsm import token_store
    pin = sys.stdin.readline().strip()
    store = token_store()
    for i in range(12):
        store.create(f"p{i % 3}", owner="faults", user_pin=pin)
    print("done", flush=True)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(workspace),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(pin + "\n")
    proc.stdin.close()
    seen: list[str] = []
    scans = 0
    while proc.poll() is None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("latin-1")
            except OSError:
                continue
            if pin in cmdline:
                seen.append(cmdline)
        scans += 1
    assert proc.returncode == 0 and scans > 0
    assert not seen, f"PIN on a command line: {seen[:1]}"
    store = TokenStore(workspace)
    store.refresh()
    with store.token("p0").open(user_pin=pin):
        pass


_HOLDER = """
import sys, time
from labsupport.workspace import Workspace
sf = Workspace.open().state("cloudhsmv2")
with sf.locked():
    print("ready", flush=True)
    time.sleep(60)
"""


def test_lock_wait_names_the_holder_and_the_fix(workspace: Workspace) -> None:
    from labsupport.errors import LockTimeout
    from labsupport.workspace.statefile import StateFile

    holder = _start(_HOLDER, workspace)
    try:
        sf = StateFile(workspace.state_dir / "cloudhsmv2.json", timeout=0.5)
        with pytest.raises(LockTimeout) as info:
            with sf.update():
                pass
        message = str(info.value)
        assert f"process {holder.pid}" in message and f"kill {holder.pid}" in message
        import filelock

        assert not isinstance(info.value, filelock.Timeout)
    finally:
        holder.kill()
        holder.wait()
    with StateFile(workspace.state_dir / "cloudhsmv2.json", timeout=5).update():
        pass  # the lock died with its process


def test_concurrent_churn_from_two_processes(workspace: Workspace) -> None:
    cid, _c, _k = quickstart.initialized_cluster(workspace, owner="faults", hsm_count=1)
    code = _CHURN.replace("while True:", "for _ in range(int(sys.argv[2])):")
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", code, cid, "4" if not LONG else "15"],
            env=_env(workspace),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    assert_consistent(workspace)


_KEYGEN = """
import sys
from pkcs11 import KeyType
from labsupport import client as chsm
session = chsm.connect().login("alice:" + sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    session.generate_key(KeyType.AES, 256, label=f"gen-{i}", store=True)
    i += 1
"""


def test_sigkill_during_key_generation_and_sync(workspace: Workspace) -> None:
    from client_fixtures import PASSWORDS, build, gcm, make_aes, ungcm
    from client_fixtures import assert_consistent as keys_consistent

    lab = build(workspace, 2)
    session = lab.login("alice")
    before = {f"old-{i}": make_aes(session, f"old-{i}") for i in range(3)}
    ciphertexts = {label: gcm(key, label.encode()) for label, key in before.items()}
    lab.client.close()
    figures = _kill_loop(_KEYGEN, workspace, KILLS, PASSWORDS["alice"])
    client = lab.reconnect()  # replays the sync journal: forward or back
    keys_consistent(client)  # every key OK, on every HSM exactly once, none unrecorded
    session = client.login("alice:" + PASSWORDS["alice"])
    for label, ct in ciphertexts.items():  # zero lost keys
        assert ungcm(session.get_key(label=label), ct) == label.encode()
    assert figures["kills"] == KILLS


def test_damaged_token_object_names_the_hsm_and_the_recovery(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged ``token.object`` is not "add a second HSM": the error names the HSM, what
    was lost and the way back (delete it, create a new one, key sync refills it)."""
    from client_fixtures import gcm, ungcm
    from pkcs11 import KeyType

    from labsupport import client as chsm
    from labsupport.client.quickstart import connected_cluster
    from labsupport.hsm.tokens import TokenDamaged

    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    ready = connected_cluster(workspace, owner="faults", hsm_count=2)
    session = ready.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="precious", store=True)
    sealed = gcm(key, b"keep me")
    store = TokenStore(workspace)
    victim = sorted(store.records())[0]
    dirs = {serial_of_dir(p.name): p for p in workspace.token_dir.iterdir()}
    (dirs[store.records()[victim].serial] / "token.object").write_bytes(b"\x00damaged" * 8)
    ready.client.close()

    fresh = chsm.connect(workspace)  # a fresh connect, as a new kernel would
    with pytest.raises(chsm.KeyAvailabilityError) as info:
        gcm(ready.login("alice", client=fresh).get_key(label="precious"), b"x")
    text = str(info.value)
    assert f"HSM {victim}'s token is unreadable" in text and "token.object is damaged" in text
    assert "Add a second HSM" not in text
    assert f"Delete HSM {victim}" in info.value.fix and "backup" in info.value.fix
    with pytest.raises(TokenDamaged, match=victim):  # the HSM firmware's own view too
        firmware_session(TokenStore(workspace), victim)

    # The recovery the message gives works: delete that HSM, create a new one, sync refills it.
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cluster = cloudhsm.describe_clusters()["Clusters"][0]
    zone = next(h["AvailabilityZone"] for h in cluster["Hsms"] if h["HsmId"] == victim)
    cloudhsm.delete_hsm(ClusterId=ready.cluster_id, HsmId=victim)
    cloudhsm.create_hsm(ClusterId=ready.cluster_id, AvailabilityZone=zone)
    fresh.close()
    fresh = chsm.connect(workspace)
    again = ready.login("alice", client=fresh).get_key(label="precious")
    assert ungcm(again, sealed) == b"keep me"  # zero keys lost
    fresh.close()
    assert_consistent(workspace)


_KMS = """
import sys
from labsupport import aws
from labsupport.kms.reset import reset_kms
from labsupport.workspace import Workspace
kms = aws.client("kms")
tag = [{"TagKey": "cloudhsm-lab:lesson", "TagValue": "faults"}]
print("ready", flush=True)
while True:
    key = kms.create_key(Tags=tag)["KeyMetadata"]["KeyId"]
    kms.rotate_key_on_demand(KeyId=key)
    kms.encrypt(KeyId=key, Plaintext=b"x")
    reset_kms(Workspace.open(), "faults")
"""


def _kms_half_done(workspace: Workspace) -> int:
    """Rotation entries whose key is gone, and temp files (read without repairing)."""
    files = {n: workspace.state_dir / f"{n}.json" for n in ("kms", "kms-rotation")}
    data = {n: json.loads(p.read_text() or "{}") if p.exists() else {} for n, p in files.items()}
    orphans = set(data["kms-rotation"]) - set(data["kms"].get("keys", {}))
    temp = [p for p in workspace.state_dir.iterdir() if p.name.startswith(".kms")]
    return len(orphans) + len(temp)


def test_sigkill_between_kms_and_its_rotation_store(workspace: Workspace) -> None:
    """kms.json and kms-rotation.json agree after SIGKILLs mid-reset, and no key is lost."""
    from labsupport.kms.rotation import KmsRepaired

    kms = aws.client("kms", workspace=workspace)
    kept = kms.create_key()["KeyMetadata"]["KeyId"]  # outside the "faults" scope
    kms.rotate_key_on_demand(KeyId=kept)
    blob = kms.encrypt(KeyId=kept, Plaintext=b"survives")["CiphertextBlob"]
    dirty = 0
    rng = random.Random(int(os.environ.get("CLOUDHSM_LAB_FAULT_SEED", "16")))
    for _ in range(KILLS):
        proc = _start(_KMS, workspace)
        time.sleep(rng.uniform(0.05, 1.0))
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        dirty += _kms_half_done(workspace) > 0
    print(f"kms fault figures: {json.dumps({'kills': KILLS, 'left_out_of_step': dirty})}")
    # A key whose reset was interrupted between the two files: make one for sure.
    rotation = workspace.state("kms-rotation")
    with rotation.update() as data:
        data["00000000-0000-4000-8000-000000000000"] = {"current": "00" * 32, "older": []}
    with pytest.warns(KmsRepaired, match="no longer exist"):
        fresh = aws.client("kms", workspace=workspace)
    assert _kms_half_done(workspace) == 0
    keys = set(workspace.state("kms").read()["keys"])
    assert set(rotation.read()) <= keys and kept in keys
    assert fresh.decrypt(CiphertextBlob=blob)["Plaintext"] == b"survives"  # zero keys lost


def test_kms_deletion_drops_rotated_materials_and_wrong_shape_is_restored(
    workspace: Workspace,
) -> None:
    from labsupport.kms import advance_clock
    from labsupport.workspace.statefile import StateRestored

    kms = aws.client("kms", workspace=workspace)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.rotate_key_on_demand(KeyId=key)
    assert key in workspace.state("kms-rotation").read()
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    advance_clock(days=8, workspace=workspace)
    kms.create_key()  # any write applies the deletion that is due
    assert key not in workspace.state("kms-rotation").read()  # its older materials too
    path = workspace.state_dir / "kms.json"
    path.write_text(json.dumps({"keys": []}))  # valid JSON, wrong shape
    with pytest.warns(StateRestored):
        assert len(kms.list_keys()["Keys"]) == 1


def test_generate_key_while_another_process_churns_hsms(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key generation racing CreateHsm/DeleteHsm in another process: each call succeeds or
    fails with a clear error (retried first), never a raw PKCS#11 error; no key is lost."""
    from client_fixtures import assert_consistent as keys_consistent
    from pkcs11 import KeyType

    from labsupport import client as chsm
    from labsupport.client.quickstart import connected_cluster
    from labsupport.errors import LabError

    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    ready = connected_cluster(workspace, owner="faults", hsm_count=3)
    session = ready.login("alice")
    churn = _start(_CHURN, workspace, ready.cluster_id)
    made, clear, raw = [], [], []
    try:
        for i in range(100 if LONG else 8):
            try:
                key = session.generate_key(KeyType.AES, 256, label=f"k{i}", store=True)
                made.append((f"k{i}", key.ref))
            except LabError as exc:
                assert exc.fix, exc  # says what to do
                clear.append(type(exc).__name__)
            except Exception as exc:  # a raw error is what this test is about
                raw.append(f"{type(exc).__name__}: {exc}")
    finally:
        os.kill(churn.pid, signal.SIGKILL)
        churn.wait()
    print(f"generate_key under churn: {len(made)} ok, {len(clear)} clear errors, {len(raw)} raw")
    assert not raw, raw
    assert made, "no key could be made at all"
    ready.client.close()
    client = chsm.connect(workspace)
    keys_consistent(client)  # every key OK, on every HSM once; the abandoned ones are gone
    session = client.login(ready.pin_environment("alice")["CLOUDHSM_PIN"])
    for label, ref in made:  # every key the caller got is there
        assert session.get_key(label=label).ref == ref
    client.close()
    assert_consistent(workspace)
