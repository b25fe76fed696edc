"""The simulated HSM hardware: one SoftHSM token per HSM, with its identity keys.

When CreateHsm runs, the simulator "racks" a new HSM:

1. a SoftHSM token labelled with the HSM id is created in the workspace;
2. inside it, a **hardware identity key** (EC P-256, non-extractable) is generated —
   the key a real HSM is born with; the simulated AWS root and manufacturer root each
   certify it (``AwsHardwareCertificate``, ``ManufacturerHardwareCertificate``);
3. for the cluster's first HSM only, a **cluster key** (RSA-2048, non-extractable) is
   generated in the token; it signs the cluster CSR, and the hardware key signs the
   ``HsmCertificate`` that binds the cluster key to this HSM.

The private keys never leave the token: the CSR and the HSM certificate are signed
through :mod:`labsupport.crypto.x509`. Token objects use these labels, which later layers
may look up: :data:`HARDWARE_KEY_LABEL` and :data:`CLUSTER_KEY_LABEL`.

Creating a token re-initialises the PKCS#11 library in this process (see
:mod:`labsupport.hsm.tokens`), which closes any open session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.controlplane import pki
from labsupport.crypto.x509 import TokenECPrivateKey, TokenRSAPrivateKey, public_key_from_token
from labsupport.hsm.tokens import firmware_create, firmware_delete, firmware_session, token_store
from labsupport.workspace.home import Workspace

HARDWARE_KEY_LABEL = "hsm-hardware-identity"
CLUSTER_KEY_LABEL = "cluster-identity"


@dataclass(frozen=True)
class HsmIdentity:
    """The certificates an HSM produced when it was created (PEM text)."""

    serial: str
    aws_hardware_certificate: str
    manufacturer_hardware_certificate: str
    hsm_certificate: str | None = None
    cluster_csr: str | None = None


def new_serial() -> str:
    """A simulated HSM serial number, e.g. ``LAB2417-0038291``."""
    return f"LAB{secrets.randbelow(9000) + 1000}-{secrets.randbelow(10**7):07d}"


def _generate_hardware_key(session: pkcs11.Session) -> tuple[pkcs11.PublicKey, pkcs11.PrivateKey]:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    return params.generate_keypair(
        store=True,
        label=HARDWARE_KEY_LABEL,
        id=b"hw",
        mechanism=Mechanism.EC_KEY_PAIR_GEN,
        private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
    )


def _generate_cluster_key(session: pkcs11.Session) -> tuple[pkcs11.PublicKey, pkcs11.PrivateKey]:
    return session.generate_keypair(
        KeyType.RSA,
        2048,
        store=True,
        label=CLUSTER_KEY_LABEL,
        id=b"cluster",
        private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
    )


def provision_hsm(
    workspace: Workspace,
    token_label: str,
    owner: str,
    mode: str,
    now: float,
    with_cluster_key: bool,
    partition: int = 1,
) -> HsmIdentity:
    """Create the token of a new HSM and its identity keys and certificates."""
    roots = pki.simulated_roots(workspace)
    store = token_store(workspace)
    firmware_create(store, token_label, owner)
    serial = new_serial()
    with firmware_session(store, token_label, rw=True) as session:
        hw_pub, hw_priv = _generate_hardware_key(session)
        hw_public = public_key_from_token(hw_pub)
        aws_cert = pki.issue_hardware_certificate(roots.aws, hw_public, serial, now)
        mfr_cert = pki.issue_hardware_certificate(roots.manufacturer, hw_public, serial, now)
        identity = HsmIdentity(
            serial=serial,
            aws_hardware_certificate=pki.to_pem(aws_cert),
            manufacturer_hardware_certificate=pki.to_pem(mfr_cert),
        )
        if not with_cluster_key:
            return identity
        cl_pub, cl_priv = _generate_cluster_key(session)
        cluster_public = public_key_from_token(cl_pub)
        subject = pki.cluster_subject(serial, partition, mode)
        csr = pki.build_cluster_csr(TokenRSAPrivateKey(cl_priv, cluster_public), subject)  # type: ignore[arg-type]
        hsm_cert = pki.issue_hsm_certificate(
            TokenECPrivateKey(hw_priv, hw_public),  # type: ignore[arg-type]
            aws_cert,
            cluster_public,
            subject,
            now,
        )
        return HsmIdentity(
            serial=serial,
            aws_hardware_certificate=identity.aws_hardware_certificate,
            manufacturer_hardware_certificate=identity.manufacturer_hardware_certificate,
            hsm_certificate=pki.to_pem(hsm_cert),
            cluster_csr=pki.to_pem(csr),
        )


def decommission_hsm(workspace: Workspace, token_label: str) -> None:
    """Delete the token of a deleted HSM (no error if it is already gone)."""
    firmware_delete(token_store(workspace), token_label)
