"""Quorum (M of N) authentication for user management, with real RSA signatures."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from client_fixtures import PASSWORDS, build
from cryptography.hazmat.primitives.asymmetric import rsa

from labsupport.client.quorum import TOKEN_TIMEOUT_SECONDS, new_signing_key, sign_token_file
from labsupport.workspace.clock import LabClock

ADMINS = ("admin", "admin2", "admin3")


@pytest.fixture
def quorum_lab(workspace: Any, tmp_path: Path) -> Any:
    """A cluster with three admins, each with a registered token-sign key; quorum 2."""
    lab = build(workspace, 2)
    cli = lab.client.cli
    cli.run("login --username admin --role admin", password=PASSWORDS["admin"]).raise_for_error()
    for name in ADMINS[1:]:
        cli.run(f"user create --username {name} --role admin", password="adm-pass-99")
    cli.run("logout").raise_for_error()
    keys: dict[str, rsa.RSAPrivateKey] = {}
    for name in ADMINS:
        password = PASSWORDS["admin"] if name == "admin" else "adm-pass-99"
        cli.run(f"login --username {name} --role admin", password=password).raise_for_error()
        keys[name] = new_signing_key(tmp_path / f"{name}.key", tmp_path / f"{name}.pub")
        reg = tmp_path / f"{name}.reg"
        cli.run(f"quorum token-sign generate --service registration --token {reg}")
        sign_token_file(reg, name, keys[name])
        out = cli.run(
            f"user change-quorum token-sign register --public-key {tmp_path / f'{name}.pub'} "
            f"--signed-token {reg}"
        )
        assert out.ok, out
        cli.run("logout").raise_for_error()
    cli.run("login --username admin --role admin", password=PASSWORDS["admin"]).raise_for_error()
    assert cli.run("quorum token-sign set-quorum-value --service user --value 2").ok
    yield lab, keys, tmp_path
    lab.client.close()


def test_create_user_needs_two_valid_approvals(quorum_lab: Any) -> None:
    lab, keys, tmp = quorum_lab
    cli = lab.client.cli
    refused = cli.run("user create --username carol --role crypto-user", password="carol-pass1")
    assert not refused.ok and refused.data == "Quorum approval is required for this operation"
    token = tmp / "admin.token"
    assert cli.run(f"quorum token-sign generate --service user --token {token}").ok
    listed = cli.run("quorum token-sign list").data["tokens"]
    assert listed[0]["approvals-required"]["value"] == 2
    assert 0 < listed[0]["token-timeout-seconds"]["value"] <= TOKEN_TIMEOUT_SECONDS
    sign_token_file(token, "admin2", keys["admin2"])
    one = cli.run(
        f"user create --username carol --role crypto-user --approval {token}",
        password="carol-pass1",
    )
    assert not one.ok and "1 valid approval" in one.data
    sign_token_file(token, "admin3", keys["admin3"])
    ok = cli.run(
        f"user create --username carol --role crypto-user --approval {token}",
        password="carol-pass1",
    )
    assert ok.ok, ok
    reused = cli.run(f"user delete --username carol --role crypto-user --approval {token}")
    assert not reused.ok and "already used" in reused.data  # one operation per token


def test_forged_approval_is_refused(quorum_lab: Any) -> None:
    lab, keys, tmp = quorum_lab
    cli = lab.client.cli
    token = tmp / "admin.token"
    cli.run(f"quorum token-sign generate --service user --token {token}").raise_for_error()
    sign_token_file(token, "admin2", keys["admin2"])
    mallory = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sign_token_file(token, "admin3", mallory)  # signed with a key admin3 never registered
    out = cli.run(
        f"user create --username carol --role crypto-user --approval {token}",
        password="carol-pass1",
    )
    assert not out.ok and "admin3" in out.data and "forged" in out.data
    # the same signature twice does not make two approvals
    doc = json.loads(token.read_text())
    doc["signatures"] = [doc["signatures"][0], doc["signatures"][0]]
    token.write_text(json.dumps(doc))
    out = cli.run(
        f"user create --username carol --role crypto-user --approval {token}",
        password="carol-pass1",
    )
    assert not out.ok and "1 valid approval" in out.data
    # a token whose approval_data was changed is refused before any signature counts
    doc["approval_data"] = base64.b64encode(b"something else").decode()
    token.write_text(json.dumps(doc))
    out = cli.run(f"user delete --username bob --role crypto-user --approval {token}")
    assert not out.ok and "altered" in out.data


def test_openssl_signature_counts_and_tokens_expire(workspace: Any, quorum_lab: Any) -> None:
    lab, _, tmp = quorum_lab
    cli = lab.client.cli
    token = tmp / "admin.token"
    cli.run(f"quorum token-sign generate --service user --token {token}").raise_for_error()
    doc = json.loads(token.read_text())
    (tmp / "token.bin").write_bytes(base64.b64decode(doc["token"]))
    for name in ("admin2", "admin3"):  # exactly AWS's documented openssl command
        subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-sign",
                "-inkey",
                str(tmp / f"{name}.key"),
                "-pkeyopt",
                "digest:sha256",
                "-keyform",
                "PEM",
                "-in",
                str(tmp / "token.bin"),
                "-out",
                str(tmp / f"{name}.sig"),
            ],
            check=True,
        )
        sig = base64.b64encode((tmp / f"{name}.sig").read_bytes()).decode()
        doc["signatures"].append({"username": name, "signature": sig})
    token.write_text(json.dumps(doc))
    LabClock(workspace).advance(TOKEN_TIMEOUT_SECONDS + 1, scope="test")  # the cluster's scope
    out = cli.run(f"user delete --username bob --role crypto-user --approval {token}")
    assert not out.ok and "expired" in out.data
    cli.run(f"quorum token-sign generate --service user --token {token}").raise_for_error()
    doc2 = json.loads(token.read_text())
    (tmp / "token.bin").write_bytes(base64.b64decode(doc2["token"]))
    for name in ("admin2", "admin3"):
        subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-sign",
                "-inkey",
                str(tmp / f"{name}.key"),
                "-pkeyopt",
                "digest:sha256",
                "-in",
                str(tmp / "token.bin"),
                "-out",
                str(tmp / f"{name}.sig"),
            ],
            check=True,
        )
        sig = base64.b64encode((tmp / f"{name}.sig").read_bytes()).decode()
        doc2["signatures"].append({"username": name, "signature": sig})
    token.write_text(json.dumps(doc2))
    assert cli.run(f"user delete --username bob --role crypto-user --approval {token}").ok
    assert cli.run("quorum token-sign list-quorum-values").data == {"user": 2, "quorum": 1}
    assert "bob" not in {u["username"] for u in cli.run("user list").data["users"]}


def test_quorum_value_cannot_exceed_registered_admins(workspace: Any) -> None:
    lab = build(workspace, 2)
    cli = lab.client.cli
    cli.run("login --username admin --role admin", password=PASSWORDS["admin"]).raise_for_error()
    out = cli.run("quorum token-sign set-quorum-value --service user --value 2")
    assert not out.ok and "could never be met" in out.data
    lab.client.close()
