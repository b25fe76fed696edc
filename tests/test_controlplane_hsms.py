"""HSMs and cluster initialization through boto3: CreateHsm, DeleteHsm, InitializeCluster."""

from __future__ import annotations

import ipaddress
import re
import warnings
from typing import Any

import pkcs11
import pytest
from cp_fixtures import (
    cloudhsm,
    describe,
    ec2,
    fast,
    freeze_normal_clock,
    initialized,
    new_cluster,
    sign_cluster_csr,
    with_first_hsm,
)

from labsupport import aws
from labsupport.controlplane import activate_cluster, cluster_for_ip, describe_cluster, pki
from labsupport.controlplane.hardware import CLUSTER_KEY_LABEL, HARDWARE_KEY_LABEL
from labsupport.controlplane.reconcile import needs_reconcile, reconcile
from labsupport.controlplane.states import ClusterState, HsmState
from labsupport.hsm import token_store
from labsupport.hsm.tokens import firmware_session

__all__ = ["cloudhsm", "ec2", "fast"]


def test_first_hsm_is_a_token_with_identity_keys(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2)
    az = sorted(describe(cloudhsm, cid)["SubnetMapping"])[0]
    hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)["Hsm"]
    assert hsm["State"] == "CREATE_IN_PROGRESS"
    assert re.fullmatch(r"hsm-[2-7a-z]{11}", hsm["HsmId"])
    assert re.fullmatch(r"eni-[0-9a-f]{17}", hsm["EniId"])
    subnet = ec2.describe_subnets(SubnetIds=[hsm["SubnetId"]])["Subnets"][0]
    assert subnet["AvailabilityZone"] == az
    assert ipaddress.ip_address(hsm["EniIp"]) in ipaddress.ip_network(subnet["CidrBlock"])
    cluster = describe(cloudhsm, cid)
    assert cluster["Hsms"][0]["State"] == "ACTIVE"
    assert set(cluster["Certificates"]) == {
        "ClusterCsr",
        "HsmCertificate",
        "AwsHardwareCertificate",
        "ManufacturerHardwareCertificate",
    }
    # the HSM is a SoftHSM token holding the two identity keys, private halves locked in
    with firmware_session(token_store(workspace), hsm["HsmId"]) as session:
        for label in (HARDWARE_KEY_LABEL, CLUSTER_KEY_LABEL):
            key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=label)
            assert key[pkcs11.Attribute.SENSITIVE] and not key[pkcs11.Attribute.EXTRACTABLE]
    view = describe_cluster(workspace, cid)
    assert view.hsms[0].token_label == hsm["HsmId"] and view.hsms[0].holds_cluster_key
    assert cluster_for_ip(workspace, hsm["EniIp"]).cluster_id == cid


def test_csr_is_hidden_until_the_hsm_is_active(workspace: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid = new_cluster(cloudhsm, aws.client("ec2", workspace=workspace))
    from labsupport.controlplane.waiters import wait_for_cluster, wait_for_hsm
    from labsupport.workspace.clock import LabClock

    wait_for_cluster(cloudhsm, cid, "UNINITIALIZED", poll=0.01, progress=False)
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "normal")  # HSM creation: 3 s of lab time
    clock = LabClock(workspace)
    with clock.frozen():  # however slow this machine is, no lab time passes until advance
        az = sorted(describe(cloudhsm, cid)["SubnetMapping"])[0]
        hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)["Hsm"]
        assert describe(cloudhsm, cid)["Certificates"] == {}
        with pytest.raises(
            cloudhsm.exceptions.CloudHsmInvalidRequestException,
            match=r"CREATE_IN_PROGRESS\. Wait until it is ACTIVE",
        ):
            cloudhsm.initialize_cluster(ClusterId=cid, SignedCert="x", TrustAnchor="y")
        clock.advance(2.9)
        assert describe(cloudhsm, cid)["Hsms"][0]["State"] == "CREATE_IN_PROGRESS"
        clock.advance(0.2)
        assert wait_for_hsm(cloudhsm, cid, hsm["HsmId"], progress=False)["State"] == "ACTIVE"
    assert "ClusterCsr" in describe(cloudhsm, cid)["Certificates"]


def test_create_hsm_errors(cloudhsm: Any, ec2: Any) -> None:
    errors = cloudhsm.exceptions
    cid = new_cluster(cloudhsm, ec2, count=2)
    zones = sorted(describe(cloudhsm, cid)["SubnetMapping"])
    other_az = next(
        s["AvailabilityZone"]
        for s in ec2.describe_subnets()["Subnets"]
        if s["AvailabilityZone"] not in zones
    )
    with pytest.raises(
        errors.CloudHsmInvalidRequestException, match=f"no subnet in Availability Zone {other_az}"
    ):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=other_az)
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="availabilityZone"):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone="moon-1a")
    with pytest.raises(errors.CloudHsmResourceNotFoundException):
        cloudhsm.create_hsm(ClusterId="cluster-ccccccccccc", AvailabilityZone=zones[0])
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="not available in subnet"):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[0], IpAddress="10.0.0.5")
    subnet = ec2.describe_subnets(SubnetIds=[describe(cloudhsm, cid)["SubnetMapping"][zones[0]]])
    net = ipaddress.ip_network(subnet["Subnets"][0]["CidrBlock"])
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="reserves"):
        cloudhsm.create_hsm(
            ClusterId=cid, AvailabilityZone=zones[0], IpAddress=str(net.network_address + 2)
        )
    wanted = str(net.network_address + 10)
    hsm = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[0], IpAddress=wanted)["Hsm"]
    assert hsm["EniIp"] == wanted
    with pytest.raises(
        errors.CloudHsmInvalidRequestException,
        match=r"UNINITIALIZED and already has an HSM.*Initialize",
    ):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])


def test_create_hsm_before_cluster_is_ready(workspace: Any, monkeypatch: Any) -> None:
    freeze_normal_clock(workspace, monkeypatch)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid = new_cluster(cloudhsm, aws.client("ec2", workspace=workspace))
    az = sorted(describe(cloudhsm, cid)["SubnetMapping"])[0]
    with pytest.raises(
        cloudhsm.exceptions.CloudHsmInvalidRequestException, match="CREATE_IN_PROGRESS"
    ):
        cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)


def test_initialize_before_any_hsm(cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2)
    ca = pki.create_root_ca()
    with pytest.raises(
        cloudhsm.exceptions.CloudHsmInvalidRequestException, match=r"has no HSM yet.*CreateHsm"
    ):
        cloudhsm.initialize_cluster(
            ClusterId=cid,
            SignedCert=pki.to_pem(ca.certificate),
            TrustAnchor=pki.to_pem(ca.certificate),
        )


def test_initialize_then_second_hsm_in_another_az(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    cid, first, ca = initialized(cloudhsm, ec2)
    cluster = describe(cloudhsm, cid)
    assert cluster["State"] == "INITIALIZED"
    assert list(cluster["Certificates"]) == ["ClusterCertificate"]
    cert = pki.load_certificate(cluster["Certificates"]["ClusterCertificate"], "cert")
    assert cert.issuer == ca.certificate.subject
    with pytest.raises(
        cloudhsm.exceptions.CloudHsmInvalidRequestException, match="already initialized"
    ):
        cloudhsm.initialize_cluster(ClusterId=cid, SignedCert="x", TrustAnchor="y")
    other_az = sorted(cluster["SubnetMapping"])[1]
    second = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=other_az)["Hsm"]
    hsms = describe(cloudhsm, cid)["Hsms"]
    assert [h["HsmId"] for h in hsms] == [first, second["HsmId"]]
    assert {h["AvailabilityZone"] for h in hsms} == set(cluster["SubnetMapping"])
    view = describe_cluster(workspace, cid)
    assert view.trust_anchor == pki.to_pem(ca.certificate)
    assert [h.state for h in view.hsms] == [HsmState.ACTIVE, HsmState.ACTIVE]
    assert len(view.eni_ips) == 2 and not view.hsms[1].holds_cluster_key
    # backups on initialize and on the second HSM; activation (CloudHSM CLI's job) makes
    # the cluster ACTIVE and takes another
    assert len(cloudhsm.describe_backups()["Backups"]) == 2
    assert activate_cluster(workspace, cid).state is ClusterState.ACTIVE
    assert len(cloudhsm.describe_backups()["Backups"]) == 3


def test_initialize_response_and_state_message(workspace: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid, _ = with_first_hsm(cloudhsm, aws.client("ec2", workspace=workspace))
    ca, cert = sign_cluster_csr(cloudhsm, cid)
    freeze_normal_clock(workspace, monkeypatch)
    out = cloudhsm.initialize_cluster(
        ClusterId=cid, SignedCert=pki.to_pem(cert), TrustAnchor=pki.to_pem(ca.certificate)
    )
    assert out["State"] == "INITIALIZE_IN_PROGRESS" and out["StateMessage"]
    assert describe(cloudhsm, cid)["State"] == "INITIALIZE_IN_PROGRESS"
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="Wait"):
        cloudhsm.create_hsm(
            ClusterId=cid, AvailabilityZone=sorted(describe(cloudhsm, cid)["SubnetMapping"])[1]
        )


def test_delete_hsm_by_each_key(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    cid, first, _ = initialized(cloudhsm, ec2)
    zones = sorted(describe(cloudhsm, cid)["SubnetMapping"])
    second = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])["Hsm"]
    store = token_store(workspace)
    assert cloudhsm.delete_hsm(ClusterId=cid, EniId=second["EniId"])["HsmId"] == second["HsmId"]
    third = cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])["Hsm"]
    assert cloudhsm.delete_hsm(ClusterId=cid, EniIp=third["EniIp"])["HsmId"] == third["HsmId"]
    assert second["HsmId"] not in store.records() and third["HsmId"] not in store.records()
    assert [h["HsmId"] for h in describe(cloudhsm, cid)["Hsms"]] == [first]
    errors = cloudhsm.exceptions
    with pytest.raises(errors.CloudHsmResourceNotFoundException, match=second["HsmId"]):
        cloudhsm.delete_hsm(ClusterId=cid, HsmId=second["HsmId"])
    with pytest.raises(errors.CloudHsmInvalidRequestException, match="HsmId, EniId or EniIp"):
        cloudhsm.delete_hsm(ClusterId=cid)
    assert cloudhsm.delete_hsm(ClusterId=cid, HsmId=first)["HsmId"] == first
    assert describe(cloudhsm, cid)["Hsms"] == []
    assert first not in store.records()


def test_deleting_the_first_hsm_of_an_uninitialized_cluster_drops_its_csr(
    cloudhsm: Any, ec2: Any
) -> None:
    cid, first = with_first_hsm(cloudhsm, ec2)
    old_csr = describe(cloudhsm, cid)["Certificates"]["ClusterCsr"]
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=first)
    assert describe(cloudhsm, cid)["Certificates"] == {}
    az = sorted(describe(cloudhsm, cid)["SubnetMapping"])[1]
    cloudhsm.create_hsm(ClusterId=cid, AvailabilityZone=az)
    assert describe(cloudhsm, cid)["Certificates"]["ClusterCsr"] != old_csr


def test_delete_hsm_while_deleting(workspace: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid, first = with_first_hsm(cloudhsm, aws.client("ec2", workspace=workspace))
    freeze_normal_clock(workspace, monkeypatch)
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=first)
    assert describe(cloudhsm, cid)["Hsms"][0]["State"] == "DELETE_IN_PROGRESS"
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="already"):
        cloudhsm.delete_hsm(ClusterId=cid, HsmId=first)


def test_a_deleted_hsm_waiting_out_delete_in_progress_is_no_zombie(
    workspace: Any, monkeypatch: Any
) -> None:
    """DeleteHsm removes the token, then the HSM shows DELETE_IN_PROGRESS for the AWS
    duration. Another process's reconcile took it for an HSM whose token had vanished and
    dropped it at once, with a ControlPlaneRepaired warning (seen under HSM churn)."""
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid, first = with_first_hsm(cloudhsm, aws.client("ec2", workspace=workspace))
    freeze_normal_clock(workspace, monkeypatch)
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=first)
    assert not needs_reconcile(workspace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a repair would warn
        assert not reconcile(workspace, wait=True)
    assert describe(cloudhsm, cid)["Hsms"][0]["State"] == "DELETE_IN_PROGRESS"
