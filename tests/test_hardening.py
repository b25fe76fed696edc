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
