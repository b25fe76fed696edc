"""Client SDK users: activation, PIN login, lockout and reset, role rules, stored hashes."""

from __future__ import annotations

import json

import pkcs11
import pytest
from client_fixtures import PASSWORDS, build, lab, pin

from labsupport import client as chsm
from labsupport.client import resolver
from labsupport.client.users import MAX_FAILED_LOGINS, Role

_FIXTURES = (lab,)  # pytest fixtures used as test arguments


def test_fresh_cluster_has_unactivated_admin_and_needs_activation(workspace):
    lab = build(workspace, 2, users=False)
    users = lab.client.cli.run("user list").data["users"]
    assert [(u["username"], u["role"]) for u in users] == [
        ("admin", "unactivated-admin"),
        ("app_user", "internal(APPLIANCE_USER)"),
    ]
    assert all(u["locked"] == "false" and u["cluster-coverage"] == "full" for u in users)
    with pytest.raises(chsm.ClusterNotActive):
        lab.client.login("admin:whatever1")
    result = lab.client.cli.run("login --username admin --role admin", password="whatever1")
    assert result.error_code == 1

    assert lab.client.cli.run("cluster activate", password=PASSWORDS["admin"]).data == (
        "Cluster activation successful"
    )
    assert lab.client.cluster_state == "ACTIVE"
    assert resolver.describe(workspace, lab.cluster.cluster_id).state == "ACTIVE"
    again = lab.client.cli.run("cluster activate", password="another-pass")
    assert again.error_code == 1 and "already been activated" in again.data
    roles = {u.username: u.role for u in lab.client.users.list()}
    assert roles["admin"] is Role.ADMIN


def test_pin_format_and_wrong_password(lab):
    with pytest.raises(chsm.PinFormatError):
        lab.client.login("alice")
    with pytest.raises(chsm.LoginFailed) as err:
        lab.client.login("alice:not-her-password")
    assert isinstance(err.value, pkcs11.exceptions.PinIncorrect)
    assert "not-her-password" not in str(err.value)
    session = lab.client.login(pin("alice"))
    assert isinstance(session, pkcs11.Session)
    assert session.user.username == "alice"


def test_five_wrong_passwords_lock_until_an_admin_resets(lab):
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(chsm.LoginFailed):
            lab.client.login("bob:wrong-password")
    with pytest.raises(chsm.UserLocked) as err:
        lab.client.login(pin("bob"))  # even the right password
    assert isinstance(err.value, pkcs11.exceptions.PinLocked)
    bob = {u["username"]: u for u in lab.client.cli.run("user list").data["users"]}["bob"]
    assert bob["locked"] == "true"

    cli = lab.client.cli
    assert cli.run("login --username admin --role admin", password=PASSWORDS["admin"]).ok
    reset = cli.run("user change-password --username bob --role crypto-user", password="bob-new-1")
    assert reset.ok, reset
    with pytest.raises(chsm.LoginFailed):
        lab.client.login(pin("bob"))  # the old password is gone
    assert lab.client.login("bob:bob-new-1").username == "bob"


def test_a_successful_login_resets_the_count(lab):
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(chsm.LoginFailed):
            lab.client.login("alice:wrong-password")
    lab.client.login(pin("alice")).close()
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(chsm.LoginFailed):
            lab.client.login("alice:wrong-password")
    assert lab.client.login(pin("alice")).username == "alice"


def test_role_rules(lab):
    with pytest.raises(chsm.WrongRole):
        lab.client.login(pin("admin"))  # PKCS#11 is for crypto users
    cli = lab.client.cli
    assert cli.run(
        "user create --username eve --role crypto-user", password="eve-pass-1"
    ).error_code
    assert cli.run("login --username alice --role crypto-user", password=PASSWORDS["alice"]).ok
    denied = cli.run("user create --username eve --role crypto-user", password="eve-pass-1")
    assert denied.error_code == 1 and "admin" in denied.data
    other = cli.run("user change-password --username bob --role crypto-user", password="x" * 9)
    assert other.error_code == 1
    own = cli.run("user change-password --username alice --role crypto-user", password="alice-2nd")
    assert own.ok
    cli.run("logout")
    assert lab.client.login("alice:alice-2nd").username == "alice"
    wrong_role = cli.run("login --username alice --role admin", password="alice-2nd")
    assert wrong_role.error_code == 1


def test_username_rules(lab):
    cli = lab.client.cli
    cli.run("login --username admin --role admin", password=PASSWORDS["admin"]).raise_for_error()
    assert cli.run(
        "user create --username a" + "b" * 31 + " --role crypto-user", password="p" * 8
    ).error_code
    assert cli.run(
        "user create --username bad-name --role crypto-user", password="p" * 8
    ).error_code
    assert cli.run("user create --username New_User2 --role crypto-user", password="p" * 8).ok
    names = [u["username"] for u in cli.run("user list").data["users"]]
    assert "new_user2" in names  # case-insensitive, shown lowercase
    dup = cli.run("user create --username NEW_USER2 --role crypto-user", password="p" * 8)
    assert dup.error_code == 1 and "User already exists" in dup.data
    assert cli.run("user create --username short --role crypto-user", password="abc").error_code
    assert lab.client.login("NEW_USER2:" + "p" * 8).username == "new_user2"


def test_passwords_are_stored_only_as_salted_hashes(lab):
    lab.client.cli.run("login --username admin --role admin", password=PASSWORDS["admin"])
    lab.client.cli.run("user create --username carol --role crypto-user", password="bob-pass-12")
    text = lab.client.store.path.read_text()
    for password in PASSWORDS.values():
        assert password not in text
    users = json.loads(text)["users"]
    assert users["bob"]["kdf"] == "scrypt"
    assert users["bob"]["hash"] != users["carol"]["hash"]  # same password, different salt
    assert users["bob"]["salt"] != users["carol"]["salt"]


def test_user_delete_rules(lab):
    session = lab.login("alice")
    session.generate_key(pkcs11.KeyType.AES, 128, label="owned", store=True)
    session.close()
    cli = lab.client.cli
    cli.run("login --username admin --role admin", password=PASSWORDS["admin"]).raise_for_error()
    for command in ("user delete", "user change-password"):  # a user is its name and role
        for who in ("--username alice --role admin", "--username nobody --role crypto-user"):
            missing = cli.run(f"{command} {who}", password="new-pass-1")
            assert missing.error_code == 1 and "does not exist" in missing.data, missing
    owner = cli.run("user delete --username alice --role crypto-user")
    assert owner.error_code == 1 and "owns" in owner.data
    bob_session = lab.login("bob")
    busy = cli.run("user delete --username bob --role crypto-user")
    assert busy.error_code == 1 and "logged in" in busy.data
    bob_session.close()
    assert cli.run("user delete --username bob --role crypto-user").ok
    assert "bob" not in [u.username for u in lab.client.users.list()]
    assert cli.run("user delete --username admin --role admin").error_code == 1


def test_repeated_login_skips_scrypt_and_hashes_stay_slow(lab, monkeypatch):
    """Once the password was verified in this process, a login runs no scrypt; the stored
    record is still a salted scrypt hash, and a wrong password still pays scrypt and counts.
    (How long a login takes is the benchmark's to measure, not a test's.)"""
    import hashlib

    lab.login("alice").close()  # first login in the process: scrypt
    calls = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(*args, **kwargs):
        calls.append(1)
        return real_scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    for _ in range(15):
        lab.login("alice").close()
    assert calls == []
    stored = json.loads(lab.client.store.path.read_text())["users"]["alice"]
    assert stored["kdf"] == "scrypt" and stored["n"] >= 2**14 and len(stored["salt"]) == 32
    assert PASSWORDS["alice"] not in lab.client.store.path.read_text()
    with pytest.raises(chsm.LoginFailed):
        lab.client.login("alice:not-her-password")
    assert calls == [1]  # a wrong password is never served from the cache
    doc = json.loads(lab.client.store.path.read_text())
    assert doc["users"]["alice"]["failed"] == 1
    lab.login("alice").close()  # the right password resets the count (slow path)
    assert json.loads(lab.client.store.path.read_text())["users"]["alice"]["failed"] == 0
