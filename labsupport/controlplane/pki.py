"""The cluster PKI: simulated AWS and manufacturer roots, HSM certificates, the cluster CSR.

What AWS CloudHSM shows you after the first HSM of a cluster is created
(``describe_clusters()["Clusters"][0]["Certificates"]``), and how the pieces relate::

    AWS root (AWS_CloudHSM_Root-G1.crt)      manufacturer root (liquid_security_certificate.crt)
            │ signs                                  │ signs
    AwsHardwareCertificate          ManufacturerHardwareCertificate
            └──────── same subject, same hardware key (in the HSM) ────────┘
                                     │ signs
                               HsmCertificate  ── public key ──  ClusterCsr
                                                  (the same cluster key, in the HSM)

You verify the HsmCertificate against *both* chains, check that its public key is the
CSR's, then sign the CSR with **your own** CA. ``InitializeCluster(SignedCert, TrustAnchor)``
hands the signed certificate and your root back: from then on the HSMs prove their
identity with a certificate only you could have issued, and clients trust the cluster
through your root (``customerCA.crt``) — not through AWS.

In the lab the two roots are generated once per workspace (RSA-2048, clearly named
"simulated") and their keys stay in the workspace; the hardware and cluster keys are
generated *inside* each HSM's SoftHSM token and sign through
:mod:`labsupport.crypto.x509`.

The learner-side helpers at the end (:func:`create_root_ca`, :func:`sign_csr`) are what
the lesson's solution does step by step; later lessons use them through
:mod:`labsupport.controlplane.quickstart`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from labsupport.controlplane.records import expect_keys
from labsupport.crypto.x509 import add_ca_extensions
from labsupport.workspace.home import Workspace
from labsupport.workspace.statefile import StateFile, StateShapeError

#: File names AWS uses for the two roots you download to verify an HSM.
AWS_ROOT_FILENAME = "AWS_CloudHSM_Root-G1.crt"
MANUFACTURER_ROOT_FILENAME = "liquid_security_certificate.crt"

_TEN_YEARS = dt.timedelta(days=3652)
_DAY = dt.timedelta(days=1)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateRejected(ValueError):
    """InitializeCluster refuses the submitted certificate(s); the message says why."""


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA: its certificate and (software or token) private key."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def name(self) -> x509.Name:
        """The CA's subject name (the issuer name of what it signs)."""
        return self.certificate.subject


@dataclass(frozen=True)
class SimulatedRoots:
    """The simulated AWS CloudHSM root and HSM-manufacturer root of a workspace."""

    aws: CertificateAuthority
    manufacturer: CertificateAuthority


# --- small helpers ------------------------------------------------------------------


def to_pem(obj: x509.Certificate | x509.CertificateSigningRequest) -> str:
    """PEM text of a certificate or CSR."""
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def public_key_pem(key: PublicKey) -> str:
    """PEM (SubjectPublicKeyInfo) text of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    """True if ``a`` and ``b`` are the same public key (compares their DER encoding)."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return a.public_bytes(der, fmt) == b.public_bytes(der, fmt)


def _name(common_name: str, org: str, unit: str | None = None, country: str = "US") -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    return hashes.SHA256()


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def _self_signed_ca(
    name: x509.Name, key: PrivateKey, now: dt.datetime, days: int
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + dt.timedelta(days=days))
    )
    return add_ca_extensions(builder, key.public_key(), None).sign(key, _hash_for(key))


# --- the simulated AWS and manufacturer roots --------------------------------------------


#: ``state/aws-pki.json``: ``{"aws": RootRecord.to_json(), "manufacturer": …}``.
STATE_NAME = "aws-pki"
_ROLES = ("aws", "manufacturer")


@dataclass(frozen=True)
class RootRecord:
    """One simulated root CA as ``state/aws-pki.json`` keeps it (PEM texts)."""

    certificate: str
    key: str = field(repr=False)

    def to_json(self) -> dict[str, str]:
        """The JSON form stored in ``aws-pki.json``."""
        return {"certificate": self.certificate, "key": self.key}

    @classmethod
    def from_json(cls, raw: Any, where: str) -> RootRecord:
        """Read one root's entry, checking its shape (``StateShapeError`` naming the path)."""
        expect_keys(raw, {"certificate": str, "key": str}, where)
        return cls(raw["certificate"], raw["key"])

    def load(self) -> CertificateAuthority:
        """The root as a usable :class:`CertificateAuthority`."""
        key = serialization.load_pem_private_key(self.key.encode(), password=None)
        assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
        return CertificateAuthority(x509.load_pem_x509_certificate(self.certificate.encode()), key)


def validate_pki(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``aws-pki.json``: empty (roots not made yet) or both roots."""
    present = [role for role in _ROLES if role in data]
    if present and len(present) != len(_ROLES):
        missing = next(role for role in _ROLES if role not in data)
        raise StateShapeError(f"it has the {present[0]!r} root but no {missing!r} root")
    for role in present:
        RootRecord.from_json(data[role], role)
    return data


def pki_state(workspace: Workspace) -> StateFile:
    """The simulated roots' :class:`StateFile` (shape-checked on load)."""
    return workspace.state(STATE_NAME, {}, validate_pki)


def _new_root(name: x509.Name, now: dt.datetime) -> RootRecord:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _self_signed_ca(name, key, now, days=25 * 365)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return RootRecord(certificate=to_pem(cert), key=pem_key)


def simulated_roots(workspace: Workspace) -> SimulatedRoots:
    """The workspace's simulated AWS and manufacturer roots (created on first use).

    On AWS you download these from the CloudHSM documentation and the manufacturer's
    site; here they are generated once per workspace and kept in ``state/aws-pki.json``.
    """
    state = pki_state(workspace)
    data = state.read()
    if "aws" not in data:
        with state.update() as data:
            if "aws" not in data:
                now = dt.datetime.now(dt.timezone.utc)
                data["aws"] = _new_root(
                    _name(
                        "AWS CloudHSM Root G1 (CloudHSM Lab simulation)",
                        "Amazon Web Services (simulated)",
                        "CloudHSM",
                    ),
                    now,
                ).to_json()
                data["manufacturer"] = _new_root(
                    _name(
                        "HSM Manufacturer Root (CloudHSM Lab simulation)",
                        "Simulated HSM Manufacturer",
                        "LiquidSecurity",
                    ),
                    now,
                ).to_json()
    return SimulatedRoots(
        aws=RootRecord.from_json(data["aws"], "aws").load(),
        manufacturer=RootRecord.from_json(data["manufacturer"], "manufacturer").load(),
    )


def download_roots(workspace: Workspace, directory: Path | str) -> tuple[Path, Path]:
    """Save the two root certificates into ``directory``, as you would download them.

    Returns ``(aws_root_path, manufacturer_root_path)`` named like AWS's files
    (``AWS_CloudHSM_Root-G1.crt``, ``liquid_security_certificate.crt``).
    """
    roots = simulated_roots(workspace)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    aws_path = directory / AWS_ROOT_FILENAME
    mfr_path = directory / MANUFACTURER_ROOT_FILENAME
    aws_path.write_text(to_pem(roots.aws.certificate))
    mfr_path.write_text(to_pem(roots.manufacturer.certificate))
    return aws_path, mfr_path


# --- what the HSM hardware produces -------------------------------------------------


def hardware_subject(hsm_serial: str) -> x509.Name:
    """Subject of an HSM's hardware certificates (the same in the AWS and manufacturer ones)."""
    return _name(f"HSM:{hsm_serial}", "Simulated HSM Manufacturer", "LiquidSecurity")


def issue_hardware_certificate(
    issuer: CertificateAuthority, hardware_key: PublicKey, hsm_serial: str, now: float
) -> x509.Certificate:
    """The certificate ``issuer`` (AWS or the manufacturer) gives the HSM's hardware key."""
    start = _utc(now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(hardware_subject(hsm_serial))
        .issuer_name(issuer.name)
        .public_key(hardware_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _DAY)
        .not_valid_after(start + 20 * 365 * _DAY)
    )
    builder = add_ca_extensions(builder, hardware_key, 0).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
    )
    return builder.sign(issuer.key, _hash_for(issuer.key))


def cluster_subject(hsm_serial: str, partition: int, mode: str) -> x509.Name:
    """Subject of the cluster CSR and HSM certificate, shaped like CloudHSM's."""
    mode_text = "for FIPS mode" if mode == "FIPS" else "for non-FIPS mode"
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "SanJose"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated HSM Manufacturer"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudHSM Lab"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"HSM:{hsm_serial}:PARTN:{partition}, {mode_text}"
            ),
        ]
    )


def build_cluster_csr(
    cluster_key: rsa.RSAPrivateKey, subject: x509.Name
) -> x509.CertificateSigningRequest:
    """The cluster CSR, signed by the cluster key (an HSM-resident key adapter)."""
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(cluster_key, hashes.SHA256())
    )


def issue_hsm_certificate(
    hardware_key: PrivateKey,
    hardware_certificate: x509.Certificate,
    cluster_public_key: PublicKey,
    subject: x509.Name,
    now: float,
) -> x509.Certificate:
    """The HSM certificate: the cluster key, certified by the HSM's hardware key."""
    start = _utc(now)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(hardware_certificate.subject)
        .public_key(cluster_public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _DAY)
        .not_valid_after(start + 20 * 365 * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(hardware_key.public_key()), False
        )
        .sign(hardware_key, hashes.SHA256())
    )


# --- InitializeCluster's checks ----------------------------------------------------------


def load_certificate(pem: str, what: str) -> x509.Certificate:
    """Parse ``pem``, which must hold exactly one PEM certificate and nothing else.

    Raises :class:`CertificateRejected` otherwise (a chain or a second certificate appended
    is refused rather than silently ignored).
    """
    text = pem.strip()
    blocks = text.count("-----BEGIN ")
    if blocks > 1:
        raise CertificateRejected(
            f"{what} holds {blocks} PEM blocks; pass exactly one certificate (not a chain, "
            "no key). Keep only the first -----BEGIN CERTIFICATE----- … -----END "
            "CERTIFICATE----- block."
        )
    if not (
        text.startswith("-----BEGIN CERTIFICATE-----")
        and text.endswith("-----END CERTIFICATE-----")
    ):
        raise CertificateRejected(
            f"{what} is not a single PEM-encoded X.509 certificate: the text must start with "
            "-----BEGIN CERTIFICATE----- and end with -----END CERTIFICATE-----."
        )
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise CertificateRejected(
            f"{what} is not a valid PEM-encoded X.509 certificate. Pass the text of the "
            "certificate file, starting with -----BEGIN CERTIFICATE-----."
        ) from None


def _signed_by(cert: x509.Certificate, issuer_key: PublicKey) -> bool:
    try:
        if isinstance(issuer_key, rsa.RSAPublicKey):
            sig_padding = cert.signature_algorithm_parameters
            if not isinstance(sig_padding, (padding.PSS, padding.PKCS1v15)):
                sig_padding = padding.PKCS1v15()
            issuer_key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                sig_padding,
                cert.signature_hash_algorithm,  # type: ignore[arg-type]
            )
        elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
            issuer_key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
            )
        else:
            return False
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def _check_validity(cert: x509.Certificate, what: str, now: dt.datetime) -> None:
    if cert.not_valid_after_utc < now:
        raise CertificateRejected(
            f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC. "
            "Issue a certificate that is valid now."
        )
    if cert.not_valid_before_utc > now:
        raise CertificateRejected(
            f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC."
        )


def verify_cluster_certificate(
    csr_pem: str, signed_cert_pem: str, trust_anchor_pem: str, now: float
) -> tuple[x509.Certificate, x509.Certificate]:
    """Check an InitializeCluster request the way CloudHSM does.

    The trust anchor must be a self-signed root, valid now; the signed certificate must
    carry the cluster CSR's public key, be signed directly by the trust anchor and be
    valid now. Returns ``(signed_cert, trust_anchor)``; raises
    :class:`CertificateRejected` with the reason otherwise.
    """
    when = _utc(now)
    anchor = load_certificate(trust_anchor_pem, "TrustAnchor")
    cert = load_certificate(signed_cert_pem, "SignedCert")
    csr = x509.load_pem_x509_csr(csr_pem.encode())

    anchor_key = anchor.public_key()
    if not isinstance(anchor_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise CertificateRejected(
            f"TrustAnchor has a {type(anchor_key).__name__.removesuffix('PublicKey')} key; "
            "CloudHSM's cluster certificate chain uses RSA or ECDSA keys only. Create your "
            "issuing CA with an RSA (2048-bit or larger) or EC (P-256/P-384) key and sign the "
            "cluster CSR with it."
        )
    if anchor.issuer != anchor.subject or not _signed_by(anchor, anchor_key):  # type: ignore[arg-type]
        raise CertificateRejected(
            "TrustAnchor must be a self-signed root certificate (the root of your CA); "
            f"this one is issued by '{anchor.issuer.rfc4514_string()}' to "
            f"'{anchor.subject.rfc4514_string()}'."
        )
    try:
        constraints = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            raise CertificateRejected(
                "TrustAnchor is not a CA certificate (its basicConstraints say CA:FALSE)."
            )
    except x509.ExtensionNotFound:
        pass
    _check_validity(anchor, "TrustAnchor", when)

    if not same_public_key(cert.public_key(), csr.public_key()):  # type: ignore[arg-type]
        raise CertificateRejected(
            "SignedCert does not match this cluster's CSR: its public key is not the key in "
            "Certificates.ClusterCsr. Sign the CSR that DescribeClusters returns for this "
            "cluster."
        )
    if cert.issuer != anchor.subject or not _signed_by(cert, anchor.public_key()):  # type: ignore[arg-type]
        raise CertificateRejected(
            "SignedCert was not signed by TrustAnchor: the trust anchor must be the "
            "certificate of the CA that signed the cluster CSR "
            f"(SignedCert's issuer is '{cert.issuer.rfc4514_string()}')."
        )
    _check_validity(cert, "SignedCert", when)
    return cert, anchor


# --- the learner's side: your own CA ---------------------------------------------------


def create_root_ca(
    common_name: str = "CloudHSM Lab customer root CA",
    organization: str = "Example Corp",
    key_size: int = 2048,
    days: int = 3652,
) -> CertificateAuthority:
    """A new self-signed root CA (RSA) — the issuing CA that claims your cluster."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = _name(common_name, organization)
    return CertificateAuthority(
        _self_signed_ca(name, key, dt.datetime.now(dt.timezone.utc), days), key
    )


def sign_csr(
    csr: x509.CertificateSigningRequest, ca: CertificateAuthority, days: int = 3652
) -> x509.Certificate:
    """Sign the cluster CSR with ``ca``: the cluster certificate for InitializeCluster."""
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(ca.key, hashes.SHA256())
    )


def write_private_key(key: PrivateKey, path: Path | str) -> Path:
    """Write ``key`` as unencrypted PKCS#8 PEM with mode 0600 (lab use only)."""
    path = Path(path)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path
