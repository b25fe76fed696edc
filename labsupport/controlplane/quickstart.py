"""Lesson 02 in one call: a cluster that is created, initialized and has HSMs.

Lessons 03-05 need an initialized cluster but must run on their own, in any order.
Right after ``lab = start_lesson("03")`` they call::

    from labsupport.controlplane.quickstart import initialized_cluster
    cluster_id, ca_cert, ca_key = initialized_cluster(lab.workspace, owner=lab.scope)

which does what lesson 02 teaches — pick subnets, create the cluster, create the first
HSM, sign its CSR with a new customer root CA, initialize, add more HSMs in other
Availability Zones — through the same boto3 calls, with the lab clock fast-forwarded.
``customerCA.crt`` (the trust anchor clients need) and its key are written to the
lesson's folder. The cluster is INITIALIZED, not ACTIVE: activating it (setting the
admin password) is the Client SDK's job (lesson 03).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from labsupport import aws
from labsupport.controlplane import clock, pki
from labsupport.controlplane.cluster import LESSON_TAG, delete_clusters_owned_by
from labsupport.controlplane.waiters import wait_for_cluster, wait_for_hsm
from labsupport.workspace.home import Workspace

CUSTOMER_CA_CERT = "customerCA.crt"
CUSTOMER_CA_KEY = "customerCA.key"


class InitializedCluster(NamedTuple):
    """What :func:`initialized_cluster` made: the cluster id and the customer CA files."""

    cluster_id: str
    customer_ca_cert: Path
    customer_ca_key: Path


def initialized_cluster(
    workspace: Workspace | None = None,
    owner: str = "workspace",
    hsm_count: int = 2,
    region: str | None = None,
    hsm_type: str = "hsm2m.medium",
    fresh: bool = True,
) -> InitializedCluster:
    """Create an INITIALIZED cluster with ``hsm_count`` ACTIVE HSMs in different AZs.

    The cluster is tagged as belonging to ``owner`` (a lesson scope such as ``"03"``), so
    that lesson's reset removes it. With ``fresh`` (the default) the owner's previous
    clusters are deleted first. Takes about a second.
    """
    ws = workspace or Workspace.open()
    if hsm_count < 1:
        raise ValueError("a cluster needs at least one HSM to be initialized")
    if fresh:
        delete_clusters_owned_by(ws, owner)
    folder = ws.lesson_dir(owner)
    ec2 = aws.client("ec2", region_name=region, workspace=ws)
    cloudhsm = aws.client("cloudhsmv2", region_name=region, workspace=ws)
    with clock.fast_forward():
        subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
        subnets = subnets[: max(hsm_count, 2)]
        cluster = cloudhsm.create_cluster(
            HsmType=hsm_type,
            SubnetIds=[s["SubnetId"] for s in subnets],
            TagList=[{"Key": LESSON_TAG, "Value": owner}],
        )["Cluster"]
        cluster_id = cluster["ClusterId"]
        wait_for_cluster(cloudhsm, cluster_id, "UNINITIALIZED", progress=False)
        zones = [s["AvailabilityZone"] for s in subnets]
        first = cloudhsm.create_hsm(ClusterId=cluster_id, AvailabilityZone=zones[0])["Hsm"]
        wait_for_hsm(cloudhsm, cluster_id, first["HsmId"], "ACTIVE", progress=False)
        certs = cloudhsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"][0][
            "Certificates"
        ]
        csr = x509.load_pem_x509_csr(certs["ClusterCsr"].encode())
        ca = pki.create_root_ca()
        signed = pki.sign_csr(csr, ca)
        ca_cert = folder / CUSTOMER_CA_CERT
        ca_cert.write_text(pki.to_pem(ca.certificate))
        ca_key = pki.write_private_key(ca.key, folder / CUSTOMER_CA_KEY)
        (folder / f"{cluster_id}_ClusterCsr.csr").write_text(certs["ClusterCsr"])
        (folder / f"{cluster_id}_CustomerHsmCertificate.crt").write_text(pki.to_pem(signed))
        cloudhsm.initialize_cluster(
            ClusterId=cluster_id,
            SignedCert=pki.to_pem(signed),
            TrustAnchor=pki.to_pem(ca.certificate),
        )
        wait_for_cluster(cloudhsm, cluster_id, "INITIALIZED", progress=False)
        for i in range(1, hsm_count):
            hsm = cloudhsm.create_hsm(ClusterId=cluster_id, AvailabilityZone=zones[i % len(zones)])
            wait_for_hsm(cloudhsm, cluster_id, hsm["Hsm"]["HsmId"], "ACTIVE", progress=False)
    return InitializedCluster(cluster_id, ca_cert, ca_key)
