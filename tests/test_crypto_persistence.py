"""Token keys persist in the HSM; session keys do not (library reinitialised in between)."""

from __future__ import annotations

from labsupport.crypto import KeyNotFound, delete_key, find_key, find_keys, generate_aes
from labsupport.crypto.wrapping import check_value
from labsupport.hsm import token_store
from labsupport.workspace import Workspace


def test_token_key_survives_reinitialisation_session_key_does_not(
    workspace: Workspace,
) -> None:
    store = token_store(workspace)
    store.create("persist", owner="04")
    session = store.open_session("persist")
    kept = generate_aes(session, "persistent", token=True)
    generate_aes(session, "ephemeral", token=False)
    kcv = check_value(kept)
    generation = store.generation
    store.refresh()  # like restarting the application: every session is gone
    assert store.generation == generation + 1
    fresh = store.open_session("persist")
    again = find_key(fresh, label="persistent")
    assert check_value(again) == kcv
    assert find_keys(fresh, label="ephemeral") == []
    delete_key(again)
    try:
        find_key(fresh, label="persistent")
    except KeyNotFound:
        pass
    else:  # pragma: no cover - the assertion message is the point
        raise AssertionError("a deleted token key is still found")
    fresh.close()
