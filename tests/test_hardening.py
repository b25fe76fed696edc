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


# --- client-side entry points: the PKCS#11 façade and lesson 05's BYOK helpers ---------------


def test_session_refuses_bad_references_and_key_sizes(lab: Any) -> None:
    from pkcs11 import KeyType
    from pkcs11 import exceptions as ckr

    session = lab.login("alice")
    for reference in ("zzz", "", -1, 1 << 64, None, True, 1.5):
        with pytest.raises(ckr.ArgumentsBad) as info:
            session.key_by_reference(reference)
        assert isinstance(info.value, LabError) and "key list" in info.value.fix
    with pytest.raises(ckr.NoSuchKey):
        session.key_by_reference("0x00000000000fffff")  # well-formed, not there
    with pytest.raises(ckr.KeySizeRange, match="128, 192 or 256") as info:
        session.generate_key(KeyType.AES, 9999)
    assert "key_length=256" in info.value.fix
    with pytest.raises(ckr.ArgumentsBad, match=r"pkcs11\.KeyType, not 9999"):
        session.generate_key(9999)
    key = session.generate_key(KeyType.AES, 192, label="ok")  # the valid sizes still work
    assert session.key_by_reference(f"0x{key.ref:016x}").ref == key.ref


def test_byok_helpers_refuse_what_they_cannot_use(workspace: Workspace) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from labsupport import aws, byok
    from labsupport.crypto.hashes import HashAlg

    public = byok.new_rsa_key().public_key()
    aes = byok.new_aes_key()
    cases: list[tuple[Any, str]] = [
        (lambda: byok.wrap_for_import(b"garbage", aes, hash=HashAlg.SHA1), "not a PEM or DER"),
        (lambda: byok.wrap_for_import(None, aes, hash=HashAlg.SHA1), "NoneType"),
        (
            lambda: byok.wrap_for_import(
                ec.generate_private_key(ec.SECP256R1()).public_key(), aes, hash=HashAlg.SHA1
            ),
            "an RSA public key, not",
        ),
        (lambda: byok.wrap_for_import(public, b"garbage", hash=HashAlg.SHA1), "7 bytes"),
        (lambda: byok.wrap_for_import(public, "garbage", hash=HashAlg.SHA1), "not key material"),
        (lambda: byok.wrap_for_import(public, aes, hash="SHA256"), "'SHA256'"),
        (lambda: byok.wrap_for_import(public, aes, hash=HashAlg.SHA1, scheme="zip"), "'zip'"),
    ]
    kms = aws.client("kms", workspace=workspace)
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    cases += [
        (lambda: byok.get_import_parameters(kms, key_id, "ROT13"), "'ROT13'"),
        (lambda: byok.get_import_parameters(kms, key_id, "RSAES_OAEP_SHA_1", "RSA_1"), "RSA_1"),
        (lambda: byok.load_wrapping_key(None, b"\x30\x00"), "wrapping public key"),  # type: ignore[arg-type]
    ]
    for call, words in cases:
        with pytest.raises(byok.ByokInputError, match=words) as info:
            call()
        assert info.value.fix, words  # each says what to pass instead
    with pytest.raises(TypeError):  # still a TypeError for code that caught one
        byok.wrap_for_import(public, 42, hash=HashAlg.SHA1)  # type: ignore[arg-type]
    with pytest.raises(byok.ByokInputError, match="RSAES_OAEP_SHA_256"):
        byok.get_import_parameters(kms, key_id, "ROT13")


def test_kms_lists_page_through_the_one_paginator(workspace: Workspace) -> None:
    from botocore.exceptions import ClientError

    from labsupport import aws

    kms = aws.client("kms", workspace=workspace)
    tags = [{"TagKey": f"k{i}", "TagValue": str(i)} for i in range(5)]
    ids = [kms.create_key(Tags=tags if i == 0 else [])["KeyMetadata"]["KeyId"] for i in range(5)]
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    assert [k["KeyId"] for p in pages for k in p["Keys"]] == ids
    assert [p["Truncated"] for p in pages] == [True, True, False]
    first = kms.list_resource_tags(KeyId=ids[0], Limit=3)
    assert first["Truncated"] and len(first["Tags"]) == 3
    rest = kms.list_resource_tags(KeyId=ids[0], Marker=first["NextMarker"])
    assert first["Tags"] + rest["Tags"] == tags and not rest["Truncated"]
    with pytest.raises(ClientError, match="ValidationException"):
        kms.list_resource_tags(KeyId=ids[0], Limit=51)  # AWS: 1 to 50
    with pytest.raises(ClientError, match="less than or equal to 1000"):
        kms.list_keys(Limit=1001)
    kms.rotate_key_on_demand(KeyId=ids[1])
    kms.rotate_key_on_demand(KeyId=ids[1])
    rotations = kms.list_key_rotations(KeyId=ids[1], Limit=1)
    assert rotations["Truncated"] and len(rotations["Rotations"]) == 1
    # A marker works only for the operation that issued it.
    keys_marker = kms.list_keys(Limit=1)["NextMarker"]
    for call in (
        lambda: kms.list_key_rotations(KeyId=ids[1], Marker=keys_marker),
        lambda: kms.list_resource_tags(KeyId=ids[0], Marker=keys_marker),
        lambda: kms.list_keys(Marker=rotations["NextMarker"]),
        lambda: kms.list_keys(Marker="not-a-marker"),
    ):
        with pytest.raises(kms.exceptions.InvalidMarkerException, match="Marker"):
            call()
