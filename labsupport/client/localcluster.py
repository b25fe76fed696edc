"""Clusters made directly from SoftHSM tokens, without the control plane.

Tests, the benchmark and quick experiments use this to get a cluster whose HSMs are
bare tokens, with a throwaway CA standing in for the learner's issuing CA. Lessons use
the real control plane instead (``labsupport.controlplane.quickstart``). It lives in the
package, not in tests/, because the benchmark (:mod:`labsupport.bench.client`) uses it
and lesson 03 imports :func:`make_ca` for its wrong-trust-anchor demonstration.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labsupport.client import resolver
from labsupport.client.endpoints import ClusterView, HsmEndpoint, HsmState
from labsupport.hsm.tokens import firmware_create, firmware_delete, token_store
from labsupport.workspace.home import Workspace

_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _lab_id(prefix: str) -> str:
    return prefix + "-" + "".join(secrets.choice(_B32) for _ in range(11))


def make_ca(
    common_name: str = "Lab Test Issuing CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed EC CA (a stand-in for the learner's own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_cluster_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, cluster_id: str
) -> x509.Certificate:
    """A cluster certificate for ``cluster_id`` issued by the given CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cluster_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class LocalCluster:
    """A cluster defined from tokens; add, remove or degrade its HSMs."""

    workspace: Workspace
    cluster_id: str
    owner: str
    ca_pem: str
    hsms: list[HsmEndpoint] = field(default_factory=list)
    _next_ip: int = 10

    def _endpoint(self, az: str) -> HsmEndpoint:
        hsm_id = _lab_id("hsm")
        self._next_ip += 1
        return HsmEndpoint(hsm_id, f"10.0.{len(self.hsms) % 3}.{self._next_ip}", az, hsm_id)

    def add_hsm(self, availability_zone: str | None = None) -> HsmEndpoint:
        """Create a token and add it to the cluster as a new ACTIVE HSM."""
        az = availability_zone or f"us-east-1{'abc'[len(self.hsms) % 3]}"
        endpoint = self._endpoint(az)
        firmware_create(token_store(self.workspace), endpoint.token_label, self.owner)
        resolver.update_local_cluster(self.workspace, self.cluster_id, add=endpoint)
        self.hsms.append(endpoint)
        return endpoint

    def remove_hsm(self, hsm_id: str, delete_token: bool = True) -> None:
        """Remove an HSM from the cluster (and delete its token, as DeleteHsm does)."""
        resolver.update_local_cluster(self.workspace, self.cluster_id, remove=hsm_id)
        endpoint = next(h for h in self.hsms if h.hsm_id == hsm_id)
        self.hsms.remove(endpoint)
        if delete_token:
            firmware_delete(token_store(self.workspace), endpoint.token_label)

    def set_state(self, hsm_id: str, state: HsmState | str) -> None:
        """Set an HSM's state (e.g. DEGRADED, then ACTIVE again)."""
        resolver.update_local_cluster(
            self.workspace, self.cluster_id, hsm_state=(hsm_id, HsmState(state))
        )

    @property
    def view(self) -> ClusterView:
        """The cluster as the client resolves it."""
        return resolver.describe(self.workspace, self.cluster_id)


def make_local_cluster(
    workspace: Workspace, hsm_count: int = 2, owner: str = "test", state: str = "INITIALIZED"
) -> LocalCluster:
    """A cluster of ``hsm_count`` fresh tokens, initialized with a throwaway CA."""
    cluster_id = _lab_id("cluster")
    ca_key, ca_cert = make_ca()
    cert = issue_cluster_certificate(ca_key, ca_cert, cluster_id)
    cluster = LocalCluster(workspace, cluster_id, owner, _pem(ca_cert))
    resolver.define_local_cluster(
        workspace,
        ClusterView(
            cluster_id, state, (), hsm_certificate_pem=_pem(cert), owner=owner, region="us-east-1"
        ),
    )
    for _ in range(hsm_count):
        cluster.add_hsm()
    return cluster
