"""Benchmark of the Client SDK layer: its cost over raw python-pkcs11, and key sync time.

``python -m labsupport bench [--quick | --smoke] [--json]`` calls :func:`run`. It builds a scratch
workspace (in the system temp directory, never the learner's), a two-HSM cluster the way
lessons 03-07 build theirs (:func:`~labsupport.controlplane.quickstart.initialized_cluster`,
then ``cluster activate``), and measures:

* **ratios** — operations per second through a :class:`~labsupport.client.ClusterSession`
  (routing, load balancing, request log) divided by the same operation on a raw
  python-pkcs11 session on one token, for AES-256-GCM encryption of 1 KiB, RSA-2048
  signing (``SHA256_RSA_PKCS``) and EC P-256 signing (``CKM_ECDSA`` on a SHA-256
  digest). Target: ≥ 0.9. Raw and client runs alternate and the median round counts, so
  other load on the machine affects both sides alike.
* **sync_seconds** — time to bring N token keys onto a newly added HSM
  (:meth:`Client.reconcile`), for N = 10, 100, 1,000 (quick: 10, 20, 50; smoke: 5). Target:
  linear, 1,000 keys under 10 s. SoftHSM writes each new token object to disk once per
  attribute, so this depends mostly on the file system (reported as ``client_filesystem``).
* **login_ms** — ``Client.login`` + ``close`` of a crypto user: the first in a process
  (it runs scrypt on the stored hash, as an HSM verifies a password) and the median of
  repeated ones (answered from the process's cache of verified logins).
* **raw_unwrap_seconds** — for the largest N, raw python-pkcs11 ``unwrap_key`` of N
  wrapped AES keys into a token, for comparison: the token writes dominate both.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.authoring.execute import scratch_workspace
from labsupport.bench.size import BenchSize
from labsupport.hsm.tokens import firmware_session
from labsupport.workspace.home import Workspace

BENCH_PASSWORD = "bench-password-1"


def _filesystem(path: Path) -> str:
    """The file system type of ``path`` (Linux: from /proc/mounts), or "unknown"."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, fstype = "", "unknown"
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
            best, fstype = parts[1], parts[2]
    return fstype


def _paired_rates(
    raw: Callable[[], Any], client: Callable[[], Any], seconds: float
) -> tuple[float, float]:
    """ops/s of ``raw`` and ``client``, measured in alternating batches of 25 operations.

    Alternating finely makes load from other processes fall on both sides alike.
    """
    raw()
    client()
    t_raw = t_client = 0.0
    n = 0
    clock = time.perf_counter
    while t_raw + t_client < 2 * seconds:
        start = clock()
        for _ in range(25):
            raw()
        mid = clock()
        for _ in range(25):
            client()
        end = clock()
        t_raw += mid - start
        t_client += end - mid
        n += 25
    return n / t_raw, n / t_client


def _operations(
    session: Any, keys: dict[str, Any], hsm_makes_iv: bool
) -> dict[str, Callable[[], Any]]:
    """The measured operations. AES-GCM encrypts with a fresh IV each time, as applications
    must: raw SoftHSM is given one (``os.urandom``); the cluster, like CloudHSM, writes the
    IV its HSM generated into a writable buffer (``hsm_makes_iv``)."""
    data = os.urandom(1024)
    digest = hashlib.sha256(b"benchmark").digest()
    aes, rsa, ec = keys["aes"], keys["rsa"], keys["ec"]
    if hsm_makes_iv:

        def gcm_params() -> GCMParams:
            return GCMParams(bytearray(12))
    else:

        def gcm_params() -> GCMParams:
            return GCMParams(os.urandom(12))

    return {
        "aes_gcm_1k_encrypt": lambda: aes.encrypt(
            data, mechanism=Mechanism.AES_GCM, mechanism_param=gcm_params()
        ),
        "rsa2048_sign": lambda: rsa.sign(digest, mechanism=Mechanism.SHA256_RSA_PKCS),
        "ec_p256_sign": lambda: ec.sign(digest, mechanism=Mechanism.ECDSA),
    }


def _make_keys(session: Any) -> dict[str, Any]:
    aes = session.generate_key(KeyType.AES, 256, label="bench-aes", store=True)
    _, rsa = session.generate_keypair(KeyType.RSA, 2048, label="bench-rsa", store=True)
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    _, ec = params.generate_keypair(label="bench-ec", store=True)
    return {"aes": aes, "rsa": rsa, "ec": ec}


def _connected(ws: Any, hsm_count: int) -> tuple[Any, Any, Any]:
    """A cluster made as lessons make theirs (``initialized_cluster``), the client configured
    and connected, the cluster activated, crypto user ``bench`` logged in.

    Returns the cluster id, the client and the session.
    """
    from labsupport import client as chsm
    from labsupport.controlplane.quickstart import initialized_cluster

    ready = initialized_cluster(ws, owner="bench", hsm_count=hsm_count)
    chsm.install_trust_anchor(ready.customer_ca_cert, ws)
    chsm.configure(cluster_id=ready.cluster_id, workspace=ws, owner="bench")
    cl = chsm.connect(ws)
    cli = cl.cli
    cli.run("cluster activate", password=BENCH_PASSWORD).raise_for_error()
    cli.run("login --username admin --role admin", password=BENCH_PASSWORD).raise_for_error()
    cli.run("user create --username bench --role crypto-user", password=BENCH_PASSWORD)
    cli.run("logout")
    return ready.cluster_id, cl, cl.login(f"bench:{BENCH_PASSWORD}")


def _add_hsm(ws: Any, cluster_id: str) -> None:
    """CreateHsm in an Availability Zone the cluster has no HSM in yet; wait for ACTIVE."""
    from labsupport import aws
    from labsupport.controlplane import clock
    from labsupport.controlplane.waiters import wait_for_hsm

    cloudhsm = aws.client("cloudhsmv2", workspace=ws)
    with clock.fast_forward():
        cluster = cloudhsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"][0]
        taken = {h["AvailabilityZone"] for h in cluster["Hsms"]}
        zone = next(az for az in sorted(cluster["SubnetMapping"]) if az not in taken)
        hsm = cloudhsm.create_hsm(ClusterId=cluster_id, AvailabilityZone=zone)["Hsm"]
        wait_for_hsm(cloudhsm, cluster_id, hsm["HsmId"], "ACTIVE", progress=False)


def measure_ratios(ws: Any, seconds: float, rounds: int) -> dict[str, Any]:
    """ops/s through the client layer and raw python-pkcs11, and their ratio, per operation."""
    _cluster_id, cl, session = _connected(ws, 2)
    raw = firmware_session(cl.tokens, cl.hsms[0].token_label)
    raw_ops = _operations(raw, _make_keys(raw), hsm_makes_iv=False)
    client_ops = _operations(session, _make_keys(session), hsm_makes_iv=True)
    result: dict[str, Any] = {"ratios": {}, "ops_per_second": {}}
    for name in raw_ops:
        runs = sorted(
            (_paired_rates(raw_ops[name], client_ops[name], seconds) for _ in range(rounds)),
            key=lambda pair: pair[1] / pair[0],
        )
        raw_rate, client_rate = runs[len(runs) // 2]  # the median round
        result["ops_per_second"][name] = {
            "raw": round(raw_rate, 1),
            "client": round(client_rate, 1),
        }
        result["ratios"][name] = round(client_rate / raw_rate, 3)
    result["requests_per_hsm"] = cl.requests.counts()
    result["login_ms"] = measure_login(cl, f"bench:{BENCH_PASSWORD}")
    raw.close()
    cl.close()
    return result


def measure_login(cl: Any, pin: str, repeats: int = 20) -> dict[str, float]:
    """Milliseconds for login + close: the first in this process, then the median repeat."""
    from labsupport.client.users import forget_verified_logins

    forget_verified_logins()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        cl.login(pin).close()
        times.append((time.perf_counter() - start) * 1000)
    return {"first": round(times[0], 2), "repeat_median": round(statistics.median(times[1:]), 2)}


def _register_keys(cl: Any, link: Any, count: int, owner: str) -> None:
    """Create ``count`` AES token keys on one HSM and record them (bench setup only)."""
    from labsupport.client.keys import KeyClass, KeyRecord, KeyStatus, ref_to_id

    with cl.store.update() as doc:
        first = doc["next_ref"]
        doc["next_ref"] += count
        for ref in range(first, first + count):
            link.session.generate_key(
                KeyType.AES,
                256,
                id=ref_to_id(ref),
                label=f"sync-{ref}",
                store=True,
                template={Attribute.EXTRACTABLE: True},
            )
            rec = KeyRecord(
                ref, owner, KeyClass.SECRET, "AES", label=f"sync-{ref}", status=KeyStatus.OK
            )
            doc["keys"][rec.reference] = rec.to_json()


def measure_sync(ws: Any, n: int) -> float:
    """Seconds to copy ``n`` token keys onto a newly added HSM (``Client.reconcile``)."""
    from labsupport.client.links import HsmLink

    cluster_id, cl, _session = _connected(ws, 1)
    link = HsmLink(cl.tokens, cl.hsms[0])
    _register_keys(cl, link, n, "bench")
    link.close()
    _add_hsm(ws, cluster_id)
    start = time.perf_counter()
    report = cl.reconcile(progress=False)
    seconds = time.perf_counter() - start
    if report.copied != n:
        raise RuntimeError(f"sync copied {report.copied} keys, expected {n}")
    cl.close()
    return seconds


def measure_raw_unwrap(ws: Any, n: int) -> float:
    """Seconds for raw python-pkcs11 to unwrap ``n`` AES keys into a token (the I/O floor)."""
    from labsupport.hsm.tokens import token_store

    store = token_store(ws)
    store.create("bench-raw", "bench")
    session = store.open_session("bench-raw")
    kek = session.generate_key(
        KeyType.AES, 256, template={Attribute.WRAP: True, Attribute.UNWRAP: True}
    )
    blobs = []
    for _ in range(n):
        key = session.generate_key(KeyType.AES, 256, template={Attribute.EXTRACTABLE: True})
        blobs.append(kek.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD))
        key.destroy()
    start = time.perf_counter()
    for i, blob in enumerate(blobs):
        kek.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            blob,
            label=f"raw-{i}",
            store=True,
            mechanism=Mechanism.AES_KEY_WRAP_PAD,
        )
    seconds = time.perf_counter() - start
    session.close()
    store.delete("bench-raw")
    return seconds


@contextlib.contextmanager
def _scratch_workspace() -> Iterator[Workspace]:
    """A throw-away workspace for one measurement (never the learner's)."""
    with scratch_workspace() as root:
        yield Workspace.open(root)


#: Per run size: key counts for the sync measurement, seconds per ratio batch, rounds.
_PLAN: dict[BenchSize, tuple[tuple[int, ...], float, int]] = {
    BenchSize.FULL: ((10, 100, 1000), 0.8, 7),
    BenchSize.QUICK: ((10, 20, 50), 0.2, 5),
    BenchSize.SMOKE: ((5,), 0.02, 1),
}


def run(size: BenchSize = BenchSize.FULL) -> dict[str, Any]:
    """Run the benchmark; return ``{"ratios", "sync_seconds", …}`` (see module docstring)."""
    sizes, seconds, rounds = _PLAN[BenchSize(size)]
    started = time.perf_counter()
    result: dict[str, Any] = {}
    with _scratch_workspace() as ws:
        result["client_filesystem"] = _filesystem(ws.root)
        result.update(measure_ratios(ws, seconds, rounds))
        result["sync_seconds"] = {}
        result["raw_unwrap_seconds"] = {}
        for n in sizes:
            with _scratch_workspace() as sub:
                result["sync_seconds"][n] = round(measure_sync(sub, n), 3)
        with _scratch_workspace() as sub:
            result["raw_unwrap_seconds"][sizes[-1]] = round(measure_raw_unwrap(sub, sizes[-1]), 3)
    per_key = {n: s / n for n, s in result["sync_seconds"].items()}
    result["sync_ms_per_key"] = {n: round(v * 1000, 2) for n, v in per_key.items()}
    result["client_targets"] = {
        "ratio_at_least": 0.9,
        "ratios_met": all(r >= 0.9 for r in result["ratios"].values()),
        "sync_1000_under_seconds": 10.0,
        "sync_1000_met": (
            result["sync_seconds"].get(1000, 0.0) < 10.0 if 1000 in result["sync_seconds"] else None
        ),
    }
    result["client_bench_seconds"] = round(time.perf_counter() - started, 1)
    return result
