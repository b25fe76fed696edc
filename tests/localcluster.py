"""A fast cluster double for the tests: control-plane records seeded directly.

Building a cluster the way lessons do (``controlplane.quickstart.initialized_cluster``:
boto3 calls, an identity key pair and certificates per HSM) costs about half a second;
about a hundred tests need a cluster. This double writes the same cluster straight into
the control plane's own state — a :class:`~labsupport.controlplane.records.ClusterRecord`
with its :class:`~labsupport.controlplane.records.HsmRecord` s in ``state/cloudhsmv2.json``,
one HSM token each made with :func:`~labsupport.hsm.tokens.firmware_create` — so the client
learns about it through the one path production code has (``client/resolver.py`` → the
control plane) and the control plane's reconcile finds every token it expects and no
other.

What the double leaves out: the HSMs' identity keys and hardware certificates, the cluster
CSR (the cluster certificate is issued directly by a throwaway EC CA), and the backups AWS
takes when an HSM is created or deleted. Each change is made under the state file's lock
with the token created before its record and deleted before its record goes, so a killed
process leaves only what reconcile already repairs (an orphan token, or an HSM whose token
vanished).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labsupport.client import resolver
from labsupport.client.endpoints import ClusterView, HsmEndpoint, HsmState
from labsupport.controlplane import drills, hardware, ids
from labsupport.controlplane.api.inputs import retention_policy
from labsupport.controlplane.cluster import ControlPlane, record_owner
from labsupport.controlplane.records import ClusterRecord, HsmRecord
from labsupport.controlplane.states import ClusterMode, ClusterState, HsmType
from labsupport.controlplane.vpc import default_vpc
from labsupport.hsm.tokens import firmware_create, firmware_delete, token_store
from labsupport.workspace.home import Workspace

REGION = "us-east-1"


def make_ca(
    common_name: str = "Lab Test Issuing CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed EC CA (a fast stand-in for the learner's own CA)."""
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


def add_hsm(
    workspace: Workspace,
    cluster_id: str,
    availability_zone: str | None = None,
    hsm_id: str | None = None,
) -> HsmEndpoint:
    """Add an ACTIVE HSM (a new token) to ``cluster_id``; returns its endpoint.

    Without ``availability_zone`` the HSMs go round the cluster's zones in order. A
    function of the workspace, not only a method, so a child process can call it.
    """
    plane = ControlPlane(workspace)
    with plane.change() as data:
        rec = data["clusters"][cluster_id]
        zones = sorted(rec["subnets"])
        az = availability_zone or zones[len(rec["hsms"]) % len(zones)]
        subnet = default_vpc(workspace, rec["region"]).subnet(rec["subnets"][az])
        assert subnet is not None, f"{cluster_id} has no subnet in {az}"
        used = {h["eni_ip"] for c in data["clusters"].values() for h in c["hsms"].values()}
        hsm_id = hsm_id or ids.hsm_id()
        owner = record_owner(rec)
        firmware_create(token_store(workspace), hsm_id, owner)
        hsm: HsmRecord = {
            "id": hsm_id,
            "az": az,
            "subnet": subnet.subnet_id,
            "eni_id": ids.ec2_id("eni"),
            "eni_ip": subnet.allocate_ip(used),
            "hsm_type": rec["hsm_type"],
            "state": HsmState.ACTIVE.value,
            "state_message": "HSM created.",
            "created": plane.clock.now(owner),
            "token": hsm_id,
            "next": [],
            "serial": hardware.new_serial(),
            "holds_cluster_key": False,
        }
        rec["hsms"][hsm_id] = hsm
    view = resolver.describe(workspace, cluster_id).hsm(hsm_id)
    assert view is not None
    return view


@dataclass
class LocalCluster:
    """A test cluster in the control plane's state; add, remove or degrade its HSMs."""

    workspace: Workspace
    cluster_id: str
    owner: str
    ca_pem: str

    @property
    def view(self) -> ClusterView:
        """The cluster as the client resolves it."""
        return resolver.describe(self.workspace, self.cluster_id)

    @property
    def hsms(self) -> list[HsmEndpoint]:
        """The cluster's HSMs now, oldest first."""
        return list(self.view.hsms)

    def add_hsm(self, availability_zone: str | None = None) -> HsmEndpoint:
        """Create a token and add it to the cluster as a new ACTIVE HSM."""
        return add_hsm(self.workspace, self.cluster_id, availability_zone)

    def remove_hsm(self, hsm_id: str) -> None:
        """Remove an HSM and delete its token at once (DeleteHsm without its wait)."""
        plane = ControlPlane(self.workspace)
        with plane.change() as data:
            rec = data["clusters"][self.cluster_id]
            firmware_delete(token_store(self.workspace), rec["hsms"][hsm_id]["token"])
            del rec["hsms"][hsm_id]

    def set_state(self, hsm_id: str, state: HsmState | str) -> None:
        """Set an HSM's state: DEGRADED (``lab_fail_hsm``, the cluster follows), or ACTIVE
        again (the cluster too once no HSM is DEGRADED)."""
        state = HsmState(state)
        if state is HsmState.DEGRADED:
            drills.lab_fail_hsm(self.workspace, self.cluster_id, hsm_id)
            return
        with ControlPlane(self.workspace).change() as data:
            rec = data["clusters"][self.cluster_id]
            rec["hsms"][hsm_id]["state"] = state.value
            if state is HsmState.ACTIVE:
                drills.recover_if_healthy(rec, hsm_id)


def make_local_cluster(
    workspace: Workspace,
    hsm_count: int = 2,
    owner: str = "test",
    state: ClusterState = ClusterState.INITIALIZED,
) -> LocalCluster:
    """A cluster of ``hsm_count`` ACTIVE HSMs, initialized with a throwaway CA."""
    cluster_id = ids.cluster_id()
    ca_key, ca_cert = make_ca()
    cert = issue_cluster_certificate(ca_key, ca_cert, cluster_id)
    vpc = default_vpc(workspace, REGION)
    subnets = {s.availability_zone: s.subnet_id for s in vpc.subnets[:3]}
    plane = ControlPlane(workspace)
    with plane.change() as data:
        rec: ClusterRecord = {
            "id": cluster_id,
            "region": REGION,
            "owner": owner,
            "hsm_type": HsmType.HSM2M_MEDIUM.value,
            "mode": ClusterMode.FIPS.value,
            "state": state.value,
            "state_message": "Cluster initialized.",
            "created": plane.clock.now(owner),
            "vpc_id": vpc.vpc_id,
            "security_group": ids.ec2_id("sg"),
            "subnets": subnets,
            "retention": retention_policy(None),  # the default, as CreateCluster stores it
            "hsms": {},
            "pki": {"cluster_cert": _pem(cert), "trust_anchor": _pem(ca_cert)},
            "tags": [],
            "next": [],
        }
        data["clusters"][cluster_id] = rec
    cluster = LocalCluster(workspace, cluster_id, owner, _pem(ca_cert))
    for _ in range(hsm_count):
        cluster.add_hsm()
    return cluster
