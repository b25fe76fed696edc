"""Hardening: bad input at every entry point gets a clear, modeled error; no secret leaks."""

from __future__ import annotations

from typing import Any

import pytest
from client_fixtures import lab

from labsupport.errors import LabError, SoftHSMNotFound
from labsupport.hsm import token_store
from labsupport.pedagogy import start_lesson
from labsupport.workspace import Workspace

__all__ = ["lab"]


def test_swapped_pin_never_echoes_the_password(lab: Any) -> None:
    import labsupport.client as chsm

    for pin in ("Secret-Pass!9:alice", "hunter2hunter2:alice", "x" * 40 + ":alice"):
        password = pin.split(":")[0]
        with pytest.raises(chsm.LoginFailed) as info:
            lab.client.login(pin)
        assert password not in str(info.value)
        assert "<username>:<password>" in str(info.value)


def test_empty_or_short_user_pin_is_refused(workspace: Workspace) -> None:
    lesson = start_lesson("00", workspace)
    for pin in ("", "abc"):
        with pytest.raises(LabError, match="4 to 255") as info:
            lesson.create_token("lab00", user_pin=pin)
        assert "create_token" in str(info.value)
    assert "lab00" not in token_store(workspace).records()  # nothing half-made


def test_pkcs11_module_that_is_not_a_library(monkeypatch: pytest.MonkeyPatch) -> None:
    from labsupport.hsm.tokens import _load

    monkeypatch.setenv("PKCS11_MODULE", "/etc/passwd")
    with pytest.raises(SoftHSMNotFound, match="not a usable PKCS#11 module") as info:
        from labsupport.hsm.module import find_module

        _load(find_module())
    assert "PKCS11_MODULE" in info.value.fix


# --- one validation path from the botocore models -------------------------------------------


@pytest.fixture
def cloudhsm(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Any:
    from labsupport import aws

    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    return aws.client("cloudhsmv2", workspace=workspace)


@pytest.fixture
def subnets(workspace: Workspace) -> list[str]:
    from labsupport import aws

    found = aws.client("ec2", workspace=workspace).describe_subnets()["Subnets"]
    return [s["SubnetId"] for s in sorted(found, key=lambda s: s["AvailabilityZone"])[:2]]


@pytest.mark.parametrize("value", ["\u00b2", "\u0663\u0660", "1000"])  # ², ٣٠
def test_retention_value_outside_the_model_pattern(
    cloudhsm: Any, subnets: list[str], value: str
) -> None:
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException) as info:
        cloudhsm.create_cluster(
            HsmType="hsm2m.medium",
            SubnetIds=subnets,
            BackupRetentionPolicy={"Type": "DAYS", "Value": value},
        )
    assert "at 'backupRetentionPolicy.value' failed to satisfy constraint" in str(info.value)
    assert cloudhsm.describe_clusters()["Clusters"] == []  # nothing was created


def test_model_limits_enums_and_patterns(cloudhsm: Any, subnets: list[str]) -> None:
    invalid = cloudhsm.exceptions.CloudHsmInvalidRequestException
    with pytest.raises(invalid, match="less than or equal to 25"):
        cloudhsm.describe_clusters(MaxResults=26)  # botocore itself checks only minimums
    with pytest.raises(invalid, match="enum value set"):
        cloudhsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets, Mode="SORTA")
    with pytest.raises(cloudhsm.exceptions.CloudHsmTagException, match=r"tagList\.1\.value"):
        cloudhsm.create_cluster(
            HsmType="hsm2m.medium", SubnetIds=subnets, TagList=[{"Key": "ok", "Value": "<b>"}]
        )
    with pytest.raises(invalid, match="clusterId"):
        cloudhsm.delete_cluster(ClusterId="cluster-../../etc")
    cid = cloudhsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=subnets, TagList=[{"Key": "Kurs", "Value": "Übung 3"}]
    )["Cluster"]["ClusterId"]  # \p{L} letters are allowed, as on AWS
    az = sorted(cloudhsm.describe_clusters()["Clusters"][0]["SubnetMapping"])[0]
    with pytest.raises(invalid, match="not a valid IPv4"):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az, IpAddress="999.1.1.1")
    arabic_ip = "\u0661\u0667\u0662.31.0.10"  # Arabic-Indic digits: \d in Java is ASCII
    with pytest.raises(invalid, match="regular expression"):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az, IpAddress=arabic_ip)


def test_filters_with_values_aws_rejects(cloudhsm: Any) -> None:
    invalid = cloudhsm.exceptions.CloudHsmInvalidRequestException
    with pytest.raises(invalid, match="'True' or 'False', not 'maybe'"):
        cloudhsm.describe_backups(Filters={"neverExpires": ["maybe"]})
    with pytest.raises(invalid, match="Valid states"):
        cloudhsm.describe_clusters(Filters={"states": ["HAPPY"]})
    assert cloudhsm.describe_backups(Filters={"neverExpires": ["False"]})["Backups"] == []


def test_bad_page_token_is_modeled(cloudhsm: Any) -> None:
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="NextToken"):
        cloudhsm.describe_clusters(NextToken="not-a-token")


def test_unknown_region_says_which_exist(workspace: Workspace) -> None:
    from labsupport import aws

    with pytest.raises(LabError, match="xx-bogus-9") as info:
        aws.client("cloudhsmv2", region_name="xx-bogus-9", workspace=workspace)
    assert "us-east-1" in info.value.fix
    with pytest.raises(LabError, match="does not simulate"):
        aws.client("s3", workspace=workspace)


def test_unimplemented_operation_is_modeled_and_names_the_supported(
    workspace: Workspace,
) -> None:
    from labsupport import aws

    kms = aws.client("kms", workspace=workspace)
    with pytest.raises(kms.exceptions.UnsupportedOperationException, match="supports: "):
        kms.list_aliases()


def test_failure_inside_a_simulator_is_a_modeled_500(cloudhsm: Any, workspace: Workspace) -> None:
    (workspace.state_dir / "cloudhsmv2.json").write_text("{damaged")  # and no .bak
    with pytest.raises(cloudhsm.exceptions.CloudHsmInternalFailureException) as info:
        cloudhsm.describe_clusters()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "labsupport reset" in str(info.value)


# --- InitializeCluster's certificates -------------------------------------------------------


def _uninitialized_with_csr(cloudhsm: Any, subnets: list[str]) -> tuple[str, Any]:
    from cryptography import x509

    cid = cloudhsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]
    cid = cid["ClusterId"]
    az = sorted(cloudhsm.describe_clusters()["Clusters"][0]["SubnetMapping"])[0]
    cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)
    csr = cloudhsm.describe_clusters()["Clusters"][0]["Certificates"]["ClusterCsr"]
    return cid, x509.load_pem_x509_csr(csr.encode())


def test_signed_cert_with_a_second_certificate_is_refused(
    cloudhsm: Any, subnets: list[str]
) -> None:
    from labsupport.controlplane import pki

    cid, csr = _uninitialized_with_csr(cloudhsm, subnets)
    ca = pki.create_root_ca()
    cert = pki.to_pem(pki.sign_csr(csr, ca))
    anchor = pki.to_pem(ca.certificate)
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="2 PEM blocks"):
        cloudhsm.initialize_cluster(ClusterId=cid, SignedCert=cert + anchor, TrustAnchor=anchor)
    assert cloudhsm.describe_clusters()["Clusters"][0]["State"] == "UNINITIALIZED"


def test_ed25519_trust_anchor_says_what_is_wrong(cloudhsm: Any, subnets: list[str]) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    from labsupport.controlplane import pki

    cid, csr = _uninitialized_with_csr(cloudhsm, subnets)
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ed CA")])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    anchor = builder.sign(key, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(name)
        .public_key(csr.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, None)
    )
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException) as info:
        cloudhsm.initialize_cluster(
            ClusterId=cid, SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(anchor)
        )
    assert "Ed25519 key" in str(info.value) and "RSA" in str(info.value)
    assert "self-signed" not in str(info.value)


# --- KMS through the same path --------------------------------------------------------------


def test_kms_empty_plaintext_and_unknown_wrapping_algorithm(workspace: Workspace) -> None:
    from botocore.exceptions import ClientError

    from labsupport import aws

    kms = aws.client("kms", workspace=workspace)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError, match="ValidationException") as info:
        kms.encrypt(KeyId=key_id, Plaintext=b"")
    assert "Value '***' at 'plaintext'" in str(info.value)
    assert "greater than or equal to 1" in str(info.value)
    external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError, match="enum value set") as info:
        kms.get_parameters_for_import(
            KeyId=external, WrappingAlgorithm="ROT13", WrappingKeySpec="RSA_2048"
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"
