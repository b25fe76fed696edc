"""HSM backend: finding SoftHSM, creating tokens, logging in, cross-process visibility."""

from __future__ import annotations

import json
import subprocess
import sys

import pkcs11
import pytest

from labsupport import simulators
from labsupport.errors import SoftHSMNotFound, TokenNotFound
from labsupport.hsm import find_module, install_hint, token_store
from labsupport.pedagogy import start_lesson
from labsupport.workspace import Workspace


def test_module_is_found() -> None:
    assert find_module().name.startswith("libsofthsm2")


def test_missing_softhsm_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKCS11_MODULE", "/nonexistent/libsofthsm2.so")
    with pytest.raises(SoftHSMNotFound, match="Unset PKCS11_MODULE"):
        find_module()
    monkeypatch.delenv("PKCS11_MODULE")
    monkeypatch.setattr("labsupport.hsm.module.candidate_paths", lambda: [])
    with pytest.raises(SoftHSMNotFound) as info:
        find_module()
    assert install_hint() in str(info.value)
    assert "doctor" in str(info.value)


def test_create_open_delete(workspace: Workspace) -> None:
    store = token_store(workspace)
    rec = store.create("t-one", owner="00")
    stored = json.loads((workspace.state_dir / "tokens.json").read_text())["t-one"]
    assert not hasattr(rec, "user_pin") and not rec.plays_hsm  # PINs stay firmware-side
    assert stored["user_pin"] not in repr(rec) and stored["so_pin"] not in repr(rec)
    session = store.open_session("t-one")
    key = session.generate_key(pkcs11.KeyType.AES, 128, label="k", store=True)
    assert key.key_length == 128
    second = store.open_session("t-one")  # same process: shares the login
    assert second.get_key(label="k").key_length == 128
    session.close()
    second.close()
    store.delete("t-one")
    with pytest.raises(TokenNotFound, match="Run the lesson from the top"):
        store.token("t-one")


def test_wrong_pin_is_pin_incorrect(workspace: Workspace) -> None:
    lesson = start_lesson("00", workspace)
    token = lesson.create_token("pin-test", user_pin="right-pin")
    with pytest.raises(pkcs11.PinIncorrect):
        token.open(user_pin="wrong-pin")
    token.open(user_pin="right-pin").close()


def test_token_made_by_another_process_is_seen(workspace: Workspace) -> None:
    store = token_store(workspace)
    store.create("mine", owner="00")
    code = (
        "import sys; from labsupport.workspace import Workspace; "
        "from labsupport.hsm import token_store; "
        "token_store(Workspace.open(sys.argv[1])).create('theirs', owner='00')"
    )
    subprocess.run([sys.executable, "-c", code, str(workspace.root)], check=True)
    session = store.open_session("theirs")  # refreshes the library once
    assert session.token.label == "theirs"
    session.close()


def test_reset_lesson_deletes_only_its_tokens(workspace: Workspace) -> None:
    store = token_store(workspace)
    store.create("l00", owner="00")
    store.create("l01", owner="01")
    simulators.reset(workspace, "00")
    assert set(store.records()) == {"l01"}
    labels = {t.label for t in store.lib.get_tokens()}
    assert "l00" not in labels and "l01" in labels


def test_start_lesson_twice_is_clean(workspace: Workspace) -> None:
    for _ in range(2):
        lesson = start_lesson("00", workspace)
        token = lesson.create_token("lab00", user_pin="pin-0000")
        session = token.open(rw=True, user_pin="pin-0000")
        session.generate_key(pkcs11.KeyType.AES, 128, label="k", store=True)
        assert len(list(session.get_objects({pkcs11.Attribute.LABEL: "k"}))) == 1
        session.close()


def test_starting_a_lesson_keeps_its_exercise_tokens(workspace: Workspace) -> None:
    exercise = start_lesson("00", workspace, exercise=True)
    exercise.create_token("ex-token", user_pin="pin-1111")
    lesson = start_lesson("00", workspace)
    lesson.create_token("lesson-token", user_pin="pin-2222")
    start_lesson("00", workspace)  # restarting the guided lesson
    assert set(token_store(workspace).records()) == {"ex-token"}
