"""Shared fixtures and helpers for the Client SDK tests (imported by test_client_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from localcluster import LocalCluster, make_local_cluster
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.mechanisms import GCMParams

from labsupport import client as chsm
from labsupport.client.keys import KeyStatus, format_ref
from labsupport.client.links import HsmLink
from labsupport.workspace import Workspace

PASSWORDS = {"admin": "admin-pass-1", "alice": "alice-pass-1", "bob": "bob-pass-12"}


def pin(user: str) -> str:
    """The PKCS#11 PIN of a test user."""
    return f"{user}:{PASSWORDS[user]}"


@dataclass
class Lab:
    """A connected cluster with users alice and bob (crypto users)."""

    workspace: Workspace
    cluster: LocalCluster
    client: chsm.Client

    def login(self, user: str = "alice") -> chsm.ClusterSession:
        return self.client.login(pin(user))

    def reconnect(self) -> chsm.Client:
        self.client.close()
        self.client = chsm.connect(self.workspace)
        return self.client


def build(
    workspace: Workspace, hsm_count: int = 2, disable_check: bool = False, users: bool = True
) -> Lab:
    """Cluster of ``hsm_count`` tokens, trust anchor installed, configured, connected."""
    cluster = make_local_cluster(workspace, hsm_count, owner="test")
    chsm.install_trust_anchor(cluster.ca_pem, workspace)
    chsm.configure(
        cluster_id=cluster.cluster_id,
        workspace=workspace,
        disable_key_availability_check=disable_check,
    )
    client = chsm.connect(workspace)
    if users:
        cli = client.cli
        cli.run("cluster activate", password=PASSWORDS["admin"]).raise_for_error()
        cli.run("login --username admin --role admin", password=PASSWORDS["admin"])
        for user in ("alice", "bob"):
            cli.run(
                f"user create --username {user} --role crypto-user", password=PASSWORDS[user]
            ).raise_for_error()
        cli.run("logout").raise_for_error()
    return Lab(workspace, cluster, client)


@pytest.fixture
def lab(workspace: Workspace) -> Any:
    """Two-HSM cluster, activated, with crypto users alice and bob."""
    lab = build(workspace, 2)
    yield lab
    lab.client.close()


@pytest.fixture
def lab3(workspace: Workspace) -> Any:
    """Three-HSM cluster, activated, with crypto users alice and bob."""
    lab = build(workspace, 3)
    yield lab
    lab.client.close()


def gcm(key: Any, data: bytes) -> bytes:
    """AES-GCM encryption the CloudHSM way (the HSM writes the IV): IV + ciphertext + tag."""
    params = GCMParams(bytearray(12))
    ciphertext = key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    return bytes(params.nonce) + ciphertext


def ungcm(key: Any, blob: bytes) -> bytes:
    """AES-GCM decryption of what :func:`gcm` returned."""
    params = GCMParams(blob[:12])
    return key.decrypt(blob[12:], mechanism=Mechanism.AES_GCM, mechanism_param=params)


def token_refs(client: chsm.Client) -> dict[str, dict[int, int]]:
    """Ground truth per ACTIVE HSM: key reference → number of objects on the token."""
    out = {}
    for endpoint in client.topology.describe().usable_hsms:
        link = HsmLink(client.tokens, endpoint)
        out[endpoint.hsm_id] = {ref: len(objs) for ref, objs in link.index().items()}
        link.close()
    return out


def assert_consistent(client: chsm.Client) -> None:
    """Every recorded key is OK and on every ACTIVE HSM exactly once; no unrecorded keys."""
    records = client.keys.records()
    for ref, rec in records.items():
        assert rec.status is KeyStatus.OK, f"{format_ref(ref)} is {rec.status}"
    for hsm_id, refs in token_refs(client).items():
        assert set(refs) == set(records), f"{hsm_id} holds {sorted(refs)} not {sorted(records)}"
        assert all(n == 1 for n in refs.values()), f"duplicates on {hsm_id}: {refs}"


def make_aes(session: Any, label: str, **kw: Any) -> Any:
    """A 256-bit AES token key."""
    return session.generate_key(KeyType.AES, 256, label=label, store=True, **kw)


def env_for_child(workspace: Workspace) -> dict[str, str]:
    """Environment for a child Python process working on the same workspace."""
    return dict(os.environ, CLOUDHSM_LAB_HOME=str(workspace.root))


__all__ = ["Attribute", "GCMParams"]
