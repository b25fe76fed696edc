"""Code signing and a CA in the HSM, checked with the real `openssl` command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pkcs11
import pytest
from crypto_fixtures import *  # noqa: F403
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from labsupport.crypto import Curve, KeySpec, SignatureScheme, generate_ec, generate_key_pair
from labsupport.crypto.usecases import (
    create_ca_certificate,
    issue_server_certificate,
    openssl_verify_certificate,
    openssl_verify_signature,
    sign_file,
    write_certificate,
    write_public_key,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.mark.parametrize(
    "scheme",
    [
        SignatureScheme.ECDSA_SHA256,
        SignatureScheme.RSA_PSS_SHA256,
        SignatureScheme.RSA_PKCS1V15_SHA256,
    ],
)
def test_code_signing_verified_by_openssl(
    session: pkcs11.Session, rsa_pair, tmp_path: Path, scheme: SignatureScheme
) -> None:
    pair = (
        rsa_pair
        if scheme.key_type is pkcs11.KeyType.RSA
        else generate_ec(session, "code-signing", token=False)
    )
    release = tmp_path / "release-1.0.tar.gz"
    release.write_bytes(b"pretend tarball " * 1000)
    sig = sign_file(pair.private, release, scheme)
    assert sig == tmp_path / "release-1.0.tar.gz.sig"
    pub = write_public_key(pair.public, tmp_path / "signing-key.pem")
    result = openssl_verify_signature(pub, release, sig, scheme)
    assert result.ok, result.output
    assert str(result) == "Verified OK"
    assert result.command[:2] == ("openssl", "dgst")
    release.write_bytes(release.read_bytes() + b"malware")
    tampered = openssl_verify_signature(pub, release, sig, scheme)
    assert not tampered.ok and "Verification failure" in tampered.output


@pytest.mark.parametrize("ca_spec", [KeySpec.EC_P384, KeySpec.RSA_2048])
def test_hsm_ca_issues_a_tls_server_certificate(
    session: pkcs11.Session, tmp_path: Path, ca_spec: KeySpec
) -> None:
    ca = generate_key_pair(session, ca_spec, "lab-root-ca", extractable=False, token=False)
    ca_cert = create_ca_certificate(ca, "CloudHSM Lab Root CA")
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = generate_ec(session, "www-tls", Curve.P256, token=False)
    cert = issue_server_certificate(ca, ca_cert, "www.example.test", server.public)
    cert.verify_directly_issued_by(ca_cert)  # cryptography's own check
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.test"]
    ca_path = write_certificate(ca_cert, tmp_path / "ca.pem")
    cert_path = write_certificate(cert, tmp_path / "server.pem")
    result = openssl_verify_certificate(ca_path, cert_path, "www.example.test")
    assert result.ok and result.output == "server.pem: OK"
    wrong_host = openssl_verify_certificate(ca_path, cert_path, "evil.example.test")
    assert not wrong_host.ok and "hostname mismatch" in wrong_host.output


def test_certificate_from_another_ca_is_rejected(session: pkcs11.Session, tmp_path: Path) -> None:
    ca = generate_ec(session, "ca-one", Curve.P256, token=False)
    other = generate_ec(session, "ca-two", Curve.P256, token=False)
    ca_cert = create_ca_certificate(ca, "CA one")
    other_cert = create_ca_certificate(other, "CA two")
    server = generate_ec(session, "srv", token=False)
    cert = issue_server_certificate(other, other_cert, "srv.example.test", server.public)
    ca_path = write_certificate(ca_cert, tmp_path / "ca.pem")
    cert_path = write_certificate(cert, tmp_path / "server.pem")
    result = openssl_verify_certificate(ca_path, cert_path)
    assert not result.ok
    assert "unable to get local issuer certificate" in result.output
