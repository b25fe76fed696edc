"""Cluster PKI: the HSM certificate chain checked with openssl, the learner's CA, the
rejections of InitializeCluster, and the token-key adapters of labsupport.crypto.x509."""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cp_fixtures import cloudhsm, describe, ec2, fast, sign_cluster_csr, with_first_hsm
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.controlplane import pki
from labsupport.crypto.x509 import (
    KeyNotExtractable,
    TokenECPrivateKey,
    TokenRSAPrivateKey,
    public_key_from_token,
    token_private_key,
)
from labsupport.hsm import token_store

__all__ = ["cloudhsm", "ec2", "fast"]


def openssl(*args: str, cwd: Path) -> str:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def certs(workspace: Any, cloudhsm: Any, ec2: Any, tmp_path: Path) -> dict[str, Any]:
    """A cluster with its first HSM; its certificates and the roots saved as AWS names them."""
    cid, hsm_id = with_first_hsm(cloudhsm, ec2)
    found = describe(cloudhsm, cid)["Certificates"]
    files = {
        "ClusterCsr": f"{cid}_ClusterCsr.csr",
        "HsmCertificate": f"{hsm_id}_HsmCertificate.crt",
        "AwsHardwareCertificate": f"{hsm_id}_AwsHardwareCertificate.crt",
        "ManufacturerHardwareCertificate": f"{hsm_id}_ManufacturerHardwareCertificate.crt",
    }
    for name, filename in files.items():
        (tmp_path / filename).write_text(found[name])
    aws_root, mfr_root = pki.download_roots(workspace, tmp_path)
    return {
        "cid": cid,
        "dir": tmp_path,
        "files": files,
        "pem": found,
        "aws_root": aws_root,
        "mfr_root": mfr_root,
    }


def test_hsm_certificate_verifies_against_both_roots_with_openssl(certs: dict[str, Any]) -> None:
    d, f = certs["dir"], certs["files"]
    for hardware, root in (
        ("AwsHardwareCertificate", certs["aws_root"]),
        ("ManufacturerHardwareCertificate", certs["mfr_root"]),
    ):
        chain = d / f"{hardware}_chain.crt"
        chain.write_text((d / f[hardware]).read_text() + root.read_text())
        assert f"{f['HsmCertificate']}: OK" in openssl(
            "verify", "-CAfile", chain.name, f["HsmCertificate"], cwd=d
        )
    # ... but not against the other root alone (the chains are really different)
    assert (
        subprocess.run(
            ["openssl", "verify", "-CAfile", str(certs["aws_root"]), f["HsmCertificate"]],
            cwd=d,
            capture_output=True,
        ).returncode
        != 0
    )
    hsm_mod = openssl("x509", "-in", f["HsmCertificate"], "-modulus", "-noout", cwd=d)
    csr_mod = openssl("req", "-in", f["ClusterCsr"], "-modulus", "-noout", cwd=d)
    assert hsm_mod.startswith("Modulus=") and hsm_mod == csr_mod
    assert "verify OK" in openssl("req", "-in", f["ClusterCsr"], "-verify", "-noout", cwd=d)
    text = openssl("x509", "-in", f["HsmCertificate"], "-text", "-noout", cwd=d)
    assert "PARTN:1, for FIPS mode" in text and "ecdsa-with-SHA256" in text
    root_text = openssl("x509", "-in", certs["aws_root"].name, "-text", "-noout", cwd=d)
    assert "CA:TRUE" in root_text and "simulation" in root_text


def test_hardware_certificates_share_subject_and_key(certs: dict[str, Any]) -> None:
    aws_hw = pki.load_certificate(certs["pem"]["AwsHardwareCertificate"], "aws")
    mfr_hw = pki.load_certificate(certs["pem"]["ManufacturerHardwareCertificate"], "mfr")
    assert aws_hw.subject == mfr_hw.subject and aws_hw.issuer != mfr_hw.issuer
    assert pki.same_public_key(aws_hw.public_key(), mfr_hw.public_key())  # type: ignore[arg-type]


def test_signed_cluster_certificate_checks_out_with_openssl(
    cloudhsm: Any, certs: dict[str, Any]
) -> None:
    d = certs["dir"]
    ca, cert = sign_cluster_csr(cloudhsm, certs["cid"])
    (d / "customerCA.crt").write_text(pki.to_pem(ca.certificate))
    (d / "cluster.crt").write_text(pki.to_pem(cert))
    assert "cluster.crt: OK" in openssl("verify", "-CAfile", "customerCA.crt", "cluster.crt", cwd=d)
    out = cloudhsm.initialize_cluster(
        ClusterId=certs["cid"], SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(ca.certificate)
    )
    assert out["State"] == "INITIALIZE_IN_PROGRESS"


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    signer: Any,
    start: dt.datetime,
    end: dt.datetime,
    ca: bool | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    return builder.sign(signer, hashes.SHA256())


def test_initialize_rejects_bad_certificates_like_aws(cloudhsm: Any, certs: dict[str, Any]) -> None:
    cid = certs["cid"]
    csr = x509.load_pem_x509_csr(certs["pem"]["ClusterCsr"].encode())
    ca = pki.create_root_ca()
    now = dt.datetime.now(dt.timezone.utc)
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(csr.subject)
        .sign(other_key, hashes.SHA256())
    )
    day = dt.timedelta(days=1)
    leaf_ca = _cert(
        x509.Name.from_rfc4514_string("CN=Not a root"),
        ca.name,
        impostor_key.public_key(),
        ca.key,
        now - day,
        now + day,
        ca=True,
    )
    not_ca_root = _cert(
        ca.name, ca.name, ca.key.public_key(), ca.key, now - day, now + day, ca=False
    )
    cases = {
        "wrong signature": (
            _cert(csr.subject, ca.name, csr.public_key(), impostor_key, now - day, now + day),
            ca.certificate,
            "not signed by TrustAnchor",
        ),
        "another CSR": (pki.sign_csr(other_csr, ca), ca.certificate, "does not match"),
        "expired": (
            _cert(csr.subject, ca.name, csr.public_key(), ca.key, now - 30 * day, now - day),
            ca.certificate,
            "expired on",
        ),
        "not yet valid": (
            _cert(csr.subject, ca.name, csr.public_key(), ca.key, now + day, now + 30 * day),
            ca.certificate,
            "not valid before",
        ),
        "anchor not self-signed": (
            pki.sign_csr(csr, pki.CertificateAuthority(leaf_ca, impostor_key)),
            leaf_ca,
            "self-signed root",
        ),
        "anchor is not a CA": (pki.sign_csr(csr, ca), not_ca_root, "CA:FALSE"),
        "signed by another CA": (
            pki.sign_csr(csr, pki.create_root_ca()),
            ca.certificate,
            "not signed by TrustAnchor",
        ),
    }
    for name, (cert, anchor, message) in cases.items():
        with pytest.raises(
            cloudhsm.exceptions.CloudHsmInvalidRequestException, match=message
        ) as err:
            cloudhsm.initialize_cluster(
                ClusterId=cid, SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(anchor)
            )
        assert cid in str(err.value), name
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="PEM"):
        cloudhsm.initialize_cluster(
            ClusterId=cid, SignedCert="hello", TrustAnchor=pki.to_pem(ca.certificate)
        )
    # The model allows 20000 characters of PEM (the lab used to stop at 5000).
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="20000"):
        cloudhsm.initialize_cluster(ClusterId=cid, SignedCert="A" * 20001, TrustAnchor="B")
    assert describe(cloudhsm, cid)["State"] == "UNINITIALIZED"
    good = pki.sign_csr(csr, ca)
    cloudhsm.initialize_cluster(
        ClusterId=cid, SignedCert=pki.to_pem(good), TrustAnchor=pki.to_pem(ca.certificate)
    )
    assert describe(cloudhsm, cid)["State"] == "INITIALIZED"


def test_pss_signed_cluster_certificate_is_accepted(cloudhsm: Any, certs: dict[str, Any]) -> None:
    csr = x509.load_pem_x509_csr(certs["pem"]["ClusterCsr"].encode())
    ca = pki.create_root_ca()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.name)
        .public_key(csr.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(
            ca.key,
            hashes.SHA256(),
            rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        )
    )
    cloudhsm.initialize_cluster(
        ClusterId=certs["cid"], SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(ca.certificate)
    )


# --- labsupport.crypto.x509: cryptography objects whose key stays in the token -------------


@pytest.fixture
def session(workspace: Any) -> Any:
    store = token_store(workspace)
    store.create("x509-test", owner="test")
    with store.open_session("x509-test") as s:
        yield s


def _rsa(session: Any) -> tuple[Any, Any]:
    return session.generate_keypair(KeyType.RSA, 2048, store=False, label="rsa", id=b"r1")


def _ec(session: Any) -> tuple[Any, Any]:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    return params.generate_keypair(
        store=False, label="ec", id=b"e1", mechanism=Mechanism.EC_KEY_PAIR_GEN
    )


def test_rsa_adapter_signs_and_decrypts_in_the_token(session: Any) -> None:
    pub, priv = _rsa(session)
    key = token_private_key(priv)
    assert isinstance(key, TokenRSAPrivateKey) and key.key_size == 2048
    public = key.public_key()
    assert public == public_key_from_token(pub)
    data = b"sign me"
    public.verify(
        key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        data,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    for salt in (padding.PSS.MAX_LENGTH, padding.PSS.DIGEST_LENGTH, 20):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
        public.verify(
            key.sign(data, pss, hashes.SHA256()),
            data,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            hashes.SHA256(),
        )
    digest = hashes.Hash(hashes.SHA384())
    digest.update(data)
    prehashed = utils.Prehashed(hashes.SHA384())
    public.verify(
        key.sign(digest.finalize(), padding.PKCS1v15(), prehashed),
        data,
        padding.PKCS1v15(),
        hashes.SHA384(),
    )
    with pytest.raises(InvalidSignature):
        public.verify(
            key.sign(b"other", padding.PKCS1v15(), hashes.SHA256()),
            data,
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    # SoftHSM 2.6 decrypts RSA-OAEP with SHA-1 only (CloudHSM also takes SHA-2)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    assert key.decrypt(public.encrypt(b"secret", oaep), oaep) == b"secret"
    assert key.decrypt(public.encrypt(b"v15", padding.PKCS1v15()), padding.PKCS1v15()) == b"v15"


def test_ec_adapter_signs_der_ecdsa(session: Any) -> None:
    _pub, priv = _ec(session)
    key = token_private_key(priv)
    assert isinstance(key, TokenECPrivateKey) and key.curve.name == "secp256r1"
    data = b"sign me too"
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(sig, data, ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(sig)  # DER, not raw r||s
    assert r > 0 and s > 0
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    sig2 = key.sign(digest.finalize(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    key.public_key().verify(sig2, data, ec.ECDSA(hashes.SHA256()))


def test_adapters_build_a_ca_certificate_in_the_token(session: Any) -> None:
    _, priv = _ec(session)
    key = token_private_key(priv)
    name = x509.Name.from_rfc4514_string("CN=Token CA")
    now = dt.datetime.now(dt.timezone.utc)
    cert = _cert(name, name, key.public_key(), key, now, now + dt.timedelta(days=1), ca=True)
    cert.verify_directly_issued_by(cert)


def test_private_key_never_leaves(session: Any) -> None:
    _, priv = _rsa(session)
    key = token_private_key(priv)
    with pytest.raises(KeyNotExtractable, match="never leaves the HSM"):
        key.private_numbers()
    with pytest.raises(KeyNotExtractable):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    assert copy.copy(key) is key and copy.deepcopy(key) is key
    assert "in the HSM" in repr(key)


def test_find_public_key_needs_a_unique_match(session: Any) -> None:
    session.generate_keypair(KeyType.RSA, 1024, store=False, label="twin", id=b"same")
    _, priv = session.generate_keypair(KeyType.RSA, 1024, store=False, label="twin", id=b"same")
    from labsupport.errors import LabError

    with pytest.raises(LabError, match="Found 2 public keys"):
        TokenRSAPrivateKey(priv)
    with pytest.raises(ValueError, match="expected an EC"):
        TokenECPrivateKey(priv)
    assert isinstance(pkcs11.ObjectClass.PRIVATE_KEY, int)
