"""Client configuration: ``configure -a <ENI IP>`` / ``--cluster-id`` and the trust anchor.

On a real client, ``/opt/cloudhsm/bin/configure-pkcs11`` writes
``/opt/cloudhsm/etc/cloudhsm-pkcs11.cfg`` (JSON) and the library verifies every HSM it
connects to against ``/opt/cloudhsm/etc/customerCA.crt``. The lab keeps the same two
files inside the workspace, one "client machine" per lesson scope (so lesson 03 and
its exercise, or lessons 03 and 04, never see each other's trust anchor)::

    ~/.cloudhsm-lab/cloudhsm/<scope>/etc/cloudhsm-pkcs11.cfg
    ~/.cloudhsm-lab/cloudhsm/<scope>/etc/customerCA.crt
    ~/.cloudhsm-lab/cloudhsm/<scope>/run/cloudhsm-pkcs11.log

``<scope>`` is the running lesson's (``03-lesson``, ``03-ex``) or ``workspace``.

The configuration file has the SDK's shape (``clusters[].cluster.hsm_ca_file``,
``servers[{hostname, port, enable}]``, ``options``, ``logging``) plus one lab-only key,
``x-cloudhsm-lab``, recording the cluster id and the lesson that wrote it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from labsupport.client.errors import ClientNotConfigured, TrustAnchorError
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace, belongs_to, current_scope

HSM_PORT = 2223
CONFIG_NAME = "cloudhsm-pkcs11.cfg"
TRUST_ANCHOR_NAME = "customerCA.crt"
LOG_NAME = "cloudhsm-pkcs11.log"


def client_root(workspace: Workspace) -> Path:
    """The lab's ``/opt/cloudhsm`` of the current lesson scope's client machine."""
    return workspace.root / "cloudhsm" / current_scope()


def etc_dir(workspace: Workspace) -> Path:
    """The lab's ``/opt/cloudhsm/etc``: client configuration and trust anchor."""
    path = client_root(workspace) / "etc"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path(workspace: Workspace) -> Path:
    """The client log file (the lab's ``/opt/cloudhsm/run/cloudhsm-pkcs11.log``)."""
    path = client_root(workspace) / "run"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path / LOG_NAME


def config_path(workspace: Workspace) -> Path:
    """Where ``configure`` writes ``cloudhsm-pkcs11.cfg``."""
    return etc_dir(workspace) / CONFIG_NAME


def trust_anchor_path(workspace: Workspace) -> Path:
    """The default trust anchor location, ``…/cloudhsm/etc/customerCA.crt``."""
    return etc_dir(workspace) / TRUST_ANCHOR_NAME


@dataclass(frozen=True)
class Server:
    """One ``servers[]`` entry: an HSM ENI address the client connects to."""

    hostname: str
    port: int = HSM_PORT
    enable: bool = True


@dataclass(frozen=True)
class ClientConfig:
    """The parsed ``cloudhsm-pkcs11.cfg``."""

    servers: tuple[Server, ...]
    hsm_ca_file: Path
    disable_key_availability_check: bool = False
    cluster_id: str | None = None
    region: str = ""
    owner: str = ""
    log_level: str = "info"
    log_file: Path | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        """The JSON document written to ``cloudhsm-pkcs11.cfg``."""
        return {
            "clusters": [
                {
                    "cluster": {
                        "hsm_ca_file": str(self.hsm_ca_file),
                        "servers": [
                            {"hostname": s.hostname, "port": s.port, "enable": s.enable}
                            for s in self.servers
                        ],
                        "options": {
                            "disable_key_availability_check": self.disable_key_availability_check
                        },
                    }
                }
            ],
            "logging": {
                "log_type": "file",
                "log_file": str(self.log_file or ""),
                "log_level": self.log_level,
                "log_interval": "daily",
            },
            "x-cloudhsm-lab": {
                "cluster_id": self.cluster_id,
                "region": self.region,
                "owner": self.owner,
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> ClientConfig:
        """Parse the JSON document of ``cloudhsm-pkcs11.cfg``."""
        cluster = data["clusters"][0]["cluster"]
        lab = data.get("x-cloudhsm-lab", {})
        logging = data.get("logging", {})
        return cls(
            servers=tuple(
                Server(s["hostname"], int(s.get("port", HSM_PORT)), bool(s.get("enable", True)))
                for s in cluster.get("servers", [])
            ),
            hsm_ca_file=Path(cluster["hsm_ca_file"]),
            disable_key_availability_check=bool(
                cluster.get("options", {}).get("disable_key_availability_check", False)
            ),
            cluster_id=lab.get("cluster_id"),
            region=lab.get("region", ""),
            owner=lab.get("owner", ""),
            log_level=logging.get("log_level", "info"),
            log_file=Path(logging["log_file"]) if logging.get("log_file") else None,
        )

    @property
    def enabled_ips(self) -> list[str]:
        """ENI addresses of the enabled servers."""
        return [s.hostname for s in self.servers if s.enable]


def _atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def save_config(config: ClientConfig, workspace: Workspace) -> Path:
    """Write ``config`` to ``cloudhsm-pkcs11.cfg`` atomically; return the path."""
    path = config_path(workspace)
    _atomic_write(path, json.dumps(config.to_json(), indent=2) + "\n")
    return path


def load_config(workspace: Workspace | None = None) -> ClientConfig:
    """Read ``cloudhsm-pkcs11.cfg``; raise :class:`ClientNotConfigured` when there is none."""
    ws = workspace or Workspace.open()
    path = config_path(ws)
    try:
        return ClientConfig.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ClientNotConfigured(
            "The CloudHSM client is not configured yet, so it does not know which HSMs to "
            "connect to.",
            "Run labsupport.client.configure(hsm_ip=...) with an HSM's ENI IP, or "
            "configure(cluster_id=...) — like `configure-pkcs11 -a <IP>` / `--cluster-id`.",
        ) from None
    except (ValueError, KeyError, IndexError) as exc:
        raise ClientNotConfigured(
            f"{path.name} is damaged ({exc}).",
            "Run labsupport.client.configure(...) again to rewrite it.",
        ) from exc


def _check_ip(hsm_ip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(hsm_ip.strip()))
    except (ipaddress.AddressValueError, AttributeError):
        raise LabError(
            f"{hsm_ip!r} is not an IPv4 address.",
            "Pass the ENI IP of one HSM, e.g. the EniIp field of "
            "cloudhsm.describe_clusters()['Clusters'][0]['Hsms'][0].",
        ) from None


def configure(
    hsm_ip: str | list[str] | None = None,
    *,
    cluster_id: str | None = None,
    region: str | None = None,
    hsm_ca_cert: str | Path | None = None,
    disable_key_availability_check: bool = False,
    owner: str | None = None,
    workspace: Workspace | None = None,
) -> ClientConfig:
    """Point the client at a cluster, like ``configure-pkcs11 -a <IP>`` or ``--cluster-id``.

    Give exactly one of ``hsm_ip`` (the ENI IP of any HSM in the cluster — the client
    discovers the others from it when it connects; a list is ``-a`` given several times)
    or ``cluster_id`` (the tool calls DescribeClusters and writes every HSM's ENI IP).
    ``hsm_ca_cert`` points at a trust anchor other than the default ``customerCA.crt``.
    ``disable_key_availability_check`` lets a one-HSM cluster use its keys (development
    only, as on CloudHSM).

    Returns the :class:`ClientConfig` written to ``cloudhsm-pkcs11.cfg``.
    """
    from labsupport.client import resolver

    ws = workspace or Workspace.open()
    if (hsm_ip is None) == (cluster_id is None):
        raise LabError(
            "configure needs exactly one of hsm_ip=… or cluster_id=….",
            "Use configure(hsm_ip='10.0.1.23') (like `-a`) or configure(cluster_id='cluster-…') "
            "(like `--cluster-id`).",
        )
    if cluster_id is not None:
        view = resolver.describe(ws, cluster_id)
        if not view.hsms:
            raise LabError(
                f"Cluster {cluster_id} has no HSMs, so there is no address to configure.",
                "Create an HSM first (cloudhsm.create_hsm(ClusterId=..., AvailabilityZone=...)).",
            )
        servers = tuple(Server(h.eni_ip) for h in view.hsms)
        found_cluster: str | None = cluster_id
        found_owner = view.owner
        found_region = view.region
    else:
        ips = [hsm_ip] if isinstance(hsm_ip, str) else list(hsm_ip or [""])
        servers = tuple(Server(_check_ip(ip)) for ip in ips)
        found_cluster, found_owner, found_region = None, "", ""
        view = resolver.find_by_ip(ws, servers[0].hostname)
        if view is not None:  # remember it; connect() re-resolves anyway
            found_cluster, found_owner, found_region = view.cluster_id, view.owner, view.region
    config = ClientConfig(
        servers=servers,
        hsm_ca_file=Path(hsm_ca_cert) if hsm_ca_cert else trust_anchor_path(ws),
        disable_key_availability_check=disable_key_availability_check,
        cluster_id=found_cluster,
        region=region or found_region or "",
        owner=owner if owner is not None else found_owner,
        log_file=log_path(ws),
    )
    save_config(config, ws)
    return config


def set_option(workspace: Workspace | None = None, **options: bool) -> ClientConfig:
    """Change options of the existing configuration (``disable_key_availability_check``)."""
    ws = workspace or Workspace.open()
    config = load_config(ws)
    unknown = set(options) - {"disable_key_availability_check"}
    if unknown:
        raise LabError(
            f"Unknown client option(s): {', '.join(sorted(unknown))}.",
            "The lab client supports disable_key_availability_check=True|False.",
        )
    config = replace(config, **options)
    save_config(config, ws)
    return config


# -- trust anchor ----------------------------------------------------------------------


def _load_pem_certificate(
    data: str | bytes | Path | x509.Certificate, what: str
) -> x509.Certificate:
    if isinstance(data, x509.Certificate):
        return data
    if isinstance(data, Path) or (isinstance(data, str) and "-----BEGIN" not in data):
        path = Path(data)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrustAnchorError(
                f"Cannot read {what} from {path}: {exc.strerror}.",
                "Pass the PEM text of the certificate, or the path of a file that holds it.",
            ) from exc
    raw = data.encode() if isinstance(data, str) else data
    try:
        return x509.load_pem_x509_certificate(raw)
    except ValueError as exc:
        raise TrustAnchorError(
            f"The {what} is not a PEM X.509 certificate ({exc}).",
            "Use the PEM file that starts with -----BEGIN CERTIFICATE-----.",
        ) from exc


def install_trust_anchor(
    certificate: str | bytes | Path | x509.Certificate, workspace: Workspace | None = None
) -> Path:
    """Install your issuing CA's certificate as ``customerCA.crt`` (the trust anchor).

    ``certificate`` is PEM text, a file path, or a ``cryptography`` certificate. It must
    be the CA certificate that signed the cluster CSR (lesson 02) — the client refuses
    to talk to any HSM whose certificate that CA did not issue.
    """
    ws = workspace or Workspace.open()
    cert = _load_pem_certificate(certificate, "trust anchor")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise TrustAnchorError(
            "That certificate is not a CA certificate (no BasicConstraints CA:TRUE), so it "
            "cannot be the trust anchor.",
            "Install the certificate of the CA you used to sign the cluster CSR, not the "
            "cluster certificate itself.",
        )
    from cryptography.hazmat.primitives.serialization import Encoding

    path = trust_anchor_path(ws)
    _atomic_write(path, cert.public_bytes(Encoding.PEM).decode(), mode=0o644)
    return path


def verify_hsm_certificate(
    anchor_file: Path, hsm_certificate_pem: str | None, cluster_id: str
) -> x509.Certificate:
    """Check the certificate an HSM presents against the trust anchor; return the anchor.

    Raises :class:`TrustAnchorError` when ``customerCA.crt`` is missing or unreadable,
    when the cluster has no certificate yet, or when the trust anchor did not issue it.
    """
    if not anchor_file.exists():
        raise TrustAnchorError(
            f"No trust anchor: {anchor_file.name} is not installed. The client checks every "
            "HSM's certificate against it before it sends any PIN.",
            "Install the CA certificate that signed the cluster CSR: "
            "labsupport.client.install_trust_anchor(<PEM text or file>).",
        )
    anchor = _load_pem_certificate(anchor_file, f"trust anchor {anchor_file.name}")
    if not hsm_certificate_pem:
        raise TrustAnchorError(
            f"The HSMs of {cluster_id} have no certificate from your CA yet: the cluster "
            "is not initialized.",
            "Sign the cluster CSR with your CA and call InitializeCluster (lesson 02), then "
            "connect again.",
        )
    cert = _load_pem_certificate(hsm_certificate_pem, "HSM certificate")
    try:
        cert.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise TrustAnchorError(
            f"The HSM certificate of {cluster_id} was not issued by the CA in "
            f"{anchor_file.name} (HSM certificate issuer: {cert.issuer.rfc4514_string()}; "
            f"trust anchor: {anchor.subject.rfc4514_string()}). The client refuses to "
            "connect: this could be someone else's HSM.",
            "Install the CA certificate you used to sign this cluster's CSR as "
            f"{TRUST_ANCHOR_NAME} (labsupport.client.install_trust_anchor(...)).",
        ) from exc
    return anchor


def reset_config(workspace: Workspace, lesson: str | None) -> None:
    """Remove the client machines (config, trust anchor, log) of the reset lesson scopes."""
    base = workspace.root / "cloudhsm"
    if not base.is_dir():
        return
    for machine in base.iterdir():
        if machine.is_dir() and belongs_to(machine.name, lesson):
            shutil.rmtree(machine, ignore_errors=True)
