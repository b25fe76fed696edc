"""Fixtures shared by tests/test_byok_*.py: one workspace, cluster and token per module.

Import them with ``from byok_fixtures import *  # noqa: F403``. A module-scoped cluster
and import key keep the suite fast (a cluster takes about a second, an RSA key ~0.3 s).
Everything is passed its workspace explicitly, so no test depends on CLOUDHSM_LAB_HOME.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pkcs11
import pytest

from labsupport import aws, byok
from labsupport.client.quickstart import ReadyCluster, connected_cluster
from labsupport.crypto import KeyPair
from labsupport.hsm import token_store
from labsupport.workspace import Workspace

__all__ = ["cluster", "import_key", "kms", "module_workspace", "session", "token_session"]

TOKEN = "byok-test"


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A fresh workspace for this test module."""
    return Workspace.open(tmp_path_factory.mktemp("byok-lab"))


@pytest.fixture(scope="module")
def cluster(module_workspace: Workspace) -> Iterator[ReadyCluster]:
    """An ACTIVE two-HSM cluster with crypto users alice, bob and kmsuser."""
    ready = connected_cluster(module_workspace, owner="test", users=("alice", "bob", "kmsuser"))
    yield ready
    ready.client.close()


@pytest.fixture(scope="module")
def token_session(module_workspace: Workspace) -> Iterator[pkcs11.Session]:
    """A logged-in session on a bare SoftHSM token (no cluster client in between)."""
    store = token_store(module_workspace)
    store.create(TOKEN, owner="test")
    opened = store.open_session(TOKEN)
    yield opened
    opened.close()


@pytest.fixture(scope="module", params=["cluster", "token"])
def session(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Alice's cluster session, then a bare-token session: the helpers must work on both."""
    if request.param == "cluster":
        opened = request.getfixturevalue("cluster").login("alice")
        yield opened
        opened.close()
    else:
        yield request.getfixturevalue("token_session")


@pytest.fixture(scope="module")
def import_key(session: Any) -> KeyPair:
    """The RSA-2048 import key pair of ``session``'s HSM."""
    return byok.create_import_key(session, "test-import-key")


@pytest.fixture(scope="module")
def kms(module_workspace: Workspace) -> Any:
    """The simulated KMS of the module's workspace."""
    return aws.client("kms", workspace=module_workspace)
