"""KMS custom key store requirements, checked on lab clusters that do and do not meet them."""

from __future__ import annotations

from typing import Any

from labsupport import aws, byok
from labsupport.client.quickstart import connected_cluster
from labsupport.controlplane import clock
from labsupport.controlplane.waiters import wait_for_hsm
from labsupport.workspace import Workspace


def _failed(readiness: byok.KeyStoreReadiness) -> list[str]:
    return [r.name for r in readiness.requirements if not r.ok]


def test_a_two_az_cluster_with_kmsuser_is_ready(workspace: Workspace) -> None:
    ready = connected_cluster(workspace, owner="test", users=("alice", byok.KMS_USER))
    try:
        readiness = byok.custom_key_store_readiness(ready.client)
        assert readiness.ok, str(readiness)
        assert readiness.cluster_id == ready.cluster_id
        text = str(readiness)
        assert "2 ACTIVE HSM(s) in us-east-1a, us-east-1b" in text
        assert text.splitlines()[-1].endswith("meets these key store requirements")
    finally:
        ready.client.close()


def test_one_hsm_and_no_kmsuser_then_fixed(workspace: Workspace) -> None:
    ready = connected_cluster(workspace, owner="test", hsm_count=1, users=("alice",))
    try:
        readiness = byok.custom_key_store_readiness(ready.client)
        assert not readiness.ok
        assert _failed(readiness) == ["2+ ACTIVE HSMs in 2+ AZs", "crypto user 'kmsuser'"]
        assert "does NOT meet" in str(readiness) and "user create" in str(readiness)

        # Fix both: a second HSM in another AZ (control plane), kmsuser (CloudHSM CLI).
        cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
        cluster = cloudhsm.describe_clusters(Filters={"clusterIds": [ready.cluster_id]})
        zones = sorted(cluster["Clusters"][0]["SubnetMapping"])
        used = {h["AvailabilityZone"] for h in cluster["Clusters"][0]["Hsms"]}
        zone = next(z for z in zones if z not in used)
        with clock.fast_forward():
            hsm = cloudhsm.create_hsm(ClusterId=ready.cluster_id, AvailabilityZone=zone)["Hsm"]
            wait_for_hsm(cloudhsm, ready.cluster_id, hsm["HsmId"], "ACTIVE", progress=False)
        _add_crypto_user(ready, byok.KMS_USER)
        assert byok.custom_key_store_readiness(ready.client, cloudhsm).ok
    finally:
        ready.client.close()


def _add_crypto_user(ready: Any, name: str) -> None:
    cli = ready.client.cli
    password = ready._passwords["admin"]
    cli.run("login --username admin --role admin", password=password).raise_for_error()
    cli.run(f"user create --username {name} --role crypto-user", password="kms-pass-1")
    cli.run("logout").raise_for_error()
