"""Benchmark of the simulated control plane (wired into ``python -m labsupport bench``).

Measures, in a scratch workspace with the lab clock fast-forwarded:

* ``cluster_setup_s``: wall time of the whole lesson-02 flow through boto3 — create the
  cluster, create the first HSM (a SoftHSM token with an RSA-2048 and an EC P-256 key,
  the CSR and the HSM certificate chain), sign the CSR with a new customer CA and
  initialize the cluster — median over several runs (target: under 2 s);
* ``describe_clusters_per_s``: boto3 ``describe_clusters`` calls per second through the
  in-process handler, on a cluster with two HSMs (target: at least 500);
* ``describe_clusters_all_per_s``: the same without a filter, listing all the clusters
  the set-up runs made;
* ``describe_subnets_per_s``: the same for the EC2 query protocol.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from cryptography import x509

from labsupport import aws, simulators
from labsupport.bench.size import BenchSize
from labsupport.controlplane import clock, pki
from labsupport.controlplane.waiters import wait_for_cluster, wait_for_hsm
from labsupport.workspace.home import Workspace

TARGET_SETUP_S = 2.0
TARGET_DESCRIBE_PER_S = 500.0


def _setup_once(cloudhsm: Any, subnets: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    cluster = cloudhsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=[s["SubnetId"] for s in subnets[:2]]
    )["Cluster"]
    cid = cluster["ClusterId"]
    wait_for_cluster(cloudhsm, cid, "UNINITIALIZED", progress=False)
    t1 = time.perf_counter()
    hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=subnets[0]["AvailabilityZone"])
    wait_for_hsm(cloudhsm, cid, hsm["Hsm"]["HsmId"], "ACTIVE", progress=False)
    t2 = time.perf_counter()
    certs = cloudhsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]["Certificates"]
    ca = pki.create_root_ca()
    signed = pki.sign_csr(x509.load_pem_x509_csr(certs["ClusterCsr"].encode()), ca)
    t3 = time.perf_counter()
    cloudhsm.initialize_cluster(
        ClusterId=cid, SignedCert=pki.to_pem(signed), TrustAnchor=pki.to_pem(ca.certificate)
    )
    wait_for_cluster(cloudhsm, cid, "INITIALIZED", progress=False)
    t4 = time.perf_counter()
    steps.update(
        create_cluster=t1 - t0,
        create_first_hsm=t2 - t1,
        sign_csr=t3 - t2,
        initialize=t4 - t3,
        total=t4 - t0,
    )
    return cid, steps


def _rate(call: Any, n: int) -> float:
    call()  # warm up (model loading, caches)
    start = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - start)


#: Per run size: cluster set-ups to time, and boto3 calls per rate.
_PLAN: dict[BenchSize, tuple[int, int]] = {
    BenchSize.FULL: (10, 3000),
    BenchSize.QUICK: (3, 300),
    BenchSize.SMOKE: (1, 30),
}


def run(size: BenchSize = BenchSize.FULL) -> dict[str, Any]:
    """Run the benchmark; returns the measured figures (seconds, calls per second)."""
    runs, calls = _PLAN[BenchSize(size)]
    with tempfile.TemporaryDirectory(prefix="cloudhsm-lab-bench-") as tmp, clock.fast_forward():
        ws = Workspace.open(tmp)
        pki.simulated_roots(ws)  # AWS's roots exist before any cluster does
        cloudhsm = aws.client("cloudhsmv2", workspace=ws)
        ec2 = aws.client("ec2", workspace=ws)
        subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
        samples = []
        cid = ""
        for _ in range(runs):
            cid, steps = _setup_once(cloudhsm, subnets)
            samples.append(steps)
        hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=subnets[1]["AvailabilityZone"])
        wait_for_hsm(cloudhsm, cid, hsm["Hsm"]["HsmId"], "ACTIVE", progress=False)
        only = {"clusterIds": [cid]}
        describe_rate = _rate(lambda: cloudhsm.describe_clusters(Filters=only), calls)
        all_rate = _rate(cloudhsm.describe_clusters, calls)
        subnet_rate = _rate(ec2.describe_subnets, calls // 3)
        simulators.reset(ws)
    median = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    return {
        "cluster_setup_s": round(median["total"], 4),
        "cluster_setup_max_s": round(max(s["total"] for s in samples), 4),
        "cluster_setup_runs": runs,
        "cluster_setup_steps_s": {k: round(v, 4) for k, v in median.items() if k != "total"},
        "describe_clusters_per_s": round(describe_rate, 1),
        "describe_clusters_all_per_s": round(all_rate, 1),
        "describe_subnets_per_s": round(subnet_rate, 1),
        "controlplane_targets": {
            "cluster_setup_s": TARGET_SETUP_S,
            "describe_clusters_per_s": TARGET_DESCRIBE_PER_S,
        },
        "controlplane_meets_targets": median["total"] < TARGET_SETUP_S
        and describe_rate >= TARGET_DESCRIBE_PER_S,
    }
