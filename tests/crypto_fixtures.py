"""Fixtures shared by tests/test_crypto_*.py: one SoftHSM token and session per module.

Import them into a test module with ``from crypto_fixtures import *  # noqa: F403``.
A module-scoped token keeps the suite fast (RSA key generation costs ~0.3 s a key).
"""

from __future__ import annotations

from collections.abc import Iterator

import pkcs11
import pytest

from labsupport.crypto import KeyPair, KeySpec, Usage, generate_key_pair
from labsupport.hsm import TokenStore, token_store
from labsupport.workspace import Workspace

__all__ = ["rsa_pair", "session", "store"]

TOKEN = "crypto-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TokenStore:
    """A workspace with one fresh token for this test module."""
    ws = Workspace.open(tmp_path_factory.mktemp("crypto-lab"))
    tokens = token_store(ws)
    tokens.create(TOKEN, owner="04")
    return tokens


@pytest.fixture(scope="module")
def session(store: TokenStore) -> Iterator[pkcs11.Session]:
    """A logged-in read-write session on the module's token."""
    opened = store.open_session(TOKEN)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def rsa_pair(session: pkcs11.Session) -> KeyPair:
    """One RSA-2048 session key pair for signing and encryption (made once per module)."""
    return generate_key_pair(
        session, KeySpec.RSA_2048, "test-rsa", usage=Usage.SIGN | Usage.ENCRYPT, token=False
    )
