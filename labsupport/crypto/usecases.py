"""Two real jobs for a key that lives in the HSM, checked with the ``openssl`` command.

* **Code signing** — :func:`sign_file` signs a release file with an HSM private key and
  writes a detached signature; anyone verifies it with the public key alone
  (:func:`openssl_verify_signature` runs ``openssl dgst -verify``).
* **A CA in the HSM** — :func:`create_ca_certificate` makes a self-signed root certificate
  for an HSM key pair; :func:`issue_server_certificate` issues a TLS server certificate
  signed by that key; :func:`openssl_verify_certificate` runs ``openssl verify``. The CA's
  private key signs through ``labsupport.crypto.x509`` adapters: ``cryptography`` builds the
  certificate, the token makes the signature, the key never leaves.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labsupport.crypto.interop import public_key_pem, to_cryptography
from labsupport.crypto.keygen import KeyPair
from labsupport.crypto.signatures import SignatureScheme, sign
from labsupport.crypto.x509 import (
    add_ca_extensions,
    certificate_builder,
    key_usage,
    token_private_key,
)
from labsupport.errors import LabError


@dataclass(frozen=True)
class OpenSslResult:
    """The outcome of an ``openssl`` command: ``ok``, its output, and the command line."""

    command: tuple[str, ...]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        """True when openssl exited with status 0."""
        return self.returncode == 0

    def __str__(self) -> str:
        return self.output


def _openssl(args: list[str], cwd: Path) -> OpenSslResult:
    exe = shutil.which("openssl")
    if exe is None:
        raise LabError(
            "The openssl command is not installed, so the check cannot run.",
            "Install OpenSSL (apt-get install openssl, brew install openssl, or conda install "
            "-c conda-forge openssl) and restart the kernel.",
        )
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    return OpenSslResult(("openssl", *args), proc.returncode, output)


# -- code signing --------------------------------------------------------------------------


def write_public_key(public_key: pkcs11.PublicKey, path: Path) -> Path:
    """Write the public key as PEM to ``path`` (what you publish next to your releases)."""
    path.write_bytes(public_key_pem(public_key))
    return path


def sign_file(
    private_key: pkcs11.PrivateKey,
    path: Path,
    scheme: SignatureScheme = SignatureScheme.ECDSA_SHA256,
) -> Path:
    """Sign the file at ``path`` in the HSM; writes the detached signature to ``<path>.sig``."""
    signature = sign(private_key, Path(path).read_bytes(), scheme)
    sig_path = Path(f"{path}.sig")
    sig_path.write_bytes(signature)
    return sig_path


def openssl_verify_signature(
    public_key_path: Path,
    path: Path,
    signature_path: Path,
    scheme: SignatureScheme = SignatureScheme.ECDSA_SHA256,
) -> OpenSslResult:
    """Run ``openssl dgst -<hash> -verify PUB -signature SIG FILE`` (prints ``Verified OK``).

    All three files must be in the same folder (the command runs there, so its output
    shows no paths).
    """
    folder = Path(path).parent
    args = [
        "dgst",
        f"-{scheme.hash.openssl_name}",
        "-verify",
        Path(public_key_path).name,
        *scheme.openssl_options(),
        "-signature",
        Path(signature_path).name,
        Path(path).name,
    ]
    return _openssl(args, folder)


# -- a certificate authority whose key lives in the HSM -------------------------------------


def _hash_for(signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> hashes.HashAlgorithm:
    if isinstance(signer, ec.EllipticCurvePrivateKey) and signer.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def create_ca_certificate(
    ca: KeyPair, common_name: str = "CloudHSM Lab Root CA", days: int = 3650
) -> x509.Certificate:
    """A self-signed root CA certificate for the HSM key pair ``ca`` (signed in the HSM)."""
    signer = token_private_key(ca.private)
    public = to_cryptography(ca.public)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudHSM Lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    builder = certificate_builder(name, name, public, days)
    builder = add_ca_extensions(builder, public, path_length=0, digital_signature=False)
    return builder.sign(signer, _hash_for(signer))


def issue_server_certificate(
    ca: KeyPair,
    ca_certificate: x509.Certificate,
    hostname: str,
    server_public_key: pkcs11.PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    days: int = 90,
) -> x509.Certificate:
    """Issue a TLS server certificate for ``hostname``, signed by the CA key in the HSM.

    ``server_public_key`` is the web server's public key — from a key pair in the HSM
    (TLS offload keeps it there too) or from anywhere else.
    """
    signer = token_private_key(ca.private)
    if isinstance(server_public_key, pkcs11.PublicKey):
        server_public_key = to_cryptography(server_public_key)
    ca_ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    usage = key_usage(
        digital_signature=True,
        key_encipherment=isinstance(server_public_key, rsa.RSAPublicKey),
    )
    builder = (
        certificate_builder(subject, ca_certificate.subject, server_public_key, days)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_public_key), critical=False)
    )
    return builder.sign(signer, _hash_for(signer))


def write_certificate(certificate: x509.Certificate, path: Path) -> Path:
    """Write a certificate as PEM to ``path``."""
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def openssl_verify_certificate(
    ca_path: Path, certificate_path: Path, hostname: str | None = None
) -> OpenSslResult:
    """Run ``openssl verify -CAfile CA [-verify_hostname H] CERT`` (prints ``CERT: OK``).

    Both files must be in the same folder (the command runs there).
    """
    args = ["verify", "-CAfile", Path(ca_path).name]
    if hostname:
        args += ["-verify_hostname", hostname]
    args.append(Path(certificate_path).name)
    return _openssl(args, Path(certificate_path).parent)
