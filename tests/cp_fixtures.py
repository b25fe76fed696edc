"""Shared fixtures and helpers for the control-plane tests (imported by test_controlplane_*)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from labsupport import aws
from labsupport.controlplane import pki
from labsupport.workspace import Workspace


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every transitional state completes at once."""
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    monkeypatch.delenv("CLOUDHSM_LAB_LESSON", raising=False)


@pytest.fixture
def cloudhsm(workspace: Workspace, fast: None) -> Any:
    """A boto3 cloudhsmv2 client answered by the simulator of the test's workspace."""
    return aws.client("cloudhsmv2", workspace=workspace)


@pytest.fixture
def ec2(workspace: Workspace, fast: None) -> Any:
    """A boto3 ec2 client answered by the simulated default VPC."""
    return aws.client("ec2", workspace=workspace)


def subnet_ids(ec2: Any, count: int = 2) -> list[str]:
    """The first ``count`` default subnets, sorted by AZ."""
    subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
    return [s["SubnetId"] for s in subnets[:count]]


def describe(cloudhsm: Any, cluster_id: str) -> dict[str, Any]:
    """The cluster as describe_clusters shows it."""
    return cloudhsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"][0]


def new_cluster(cloudhsm: Any, ec2: Any, count: int = 2, **kwargs: Any) -> str:
    """Create a cluster over ``count`` subnets (fast clock: UNINITIALIZED at once)."""
    kwargs.setdefault("HsmType", "hsm2m.medium")
    cluster = cloudhsm.create_cluster(SubnetIds=subnet_ids(ec2, count), **kwargs)["Cluster"]
    return cluster["ClusterId"]


def with_first_hsm(cloudhsm: Any, ec2: Any) -> tuple[str, str]:
    """A new cluster with its first (ACTIVE) HSM: ``(cluster_id, hsm_id)``."""
    cid = new_cluster(cloudhsm, ec2)
    az = sorted(describe(cloudhsm, cid)["SubnetMapping"])[0]
    hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)["Hsm"]
    return cid, hsm["HsmId"]


def sign_cluster_csr(
    cloudhsm: Any, cluster_id: str
) -> tuple[pki.CertificateAuthority, x509.Certificate]:
    """A new customer CA and the cluster certificate it signs."""
    csr_pem = describe(cloudhsm, cluster_id)["Certificates"]["ClusterCsr"]
    ca = pki.create_root_ca()
    return ca, pki.sign_csr(x509.load_pem_x509_csr(csr_pem.encode()), ca)


def initialized(cloudhsm: Any, ec2: Any) -> tuple[str, str, pki.CertificateAuthority]:
    """A new INITIALIZED cluster with one HSM: ``(cluster_id, hsm_id, customer_ca)``."""
    cid, hsm_id = with_first_hsm(cloudhsm, ec2)
    ca, cert = sign_cluster_csr(cloudhsm, cid)
    cloudhsm.initialize_cluster(
        ClusterId=cid, SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(ca.certificate)
    )
    return cid, hsm_id, ca


def freeze_normal_clock(workspace: Any, monkeypatch: Any) -> Any:
    """Run transitions at their normal lab duration with the lab clock frozen: a test can
    observe a transitional state however slow the machine is; only ``advance`` ends it."""
    from labsupport.workspace.clock import LabClock

    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "normal")
    clock = LabClock(workspace)
    clock.freeze()
    return clock
