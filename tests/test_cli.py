"""doctor, env and reset from the command line, including a machine without SoftHSM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labsupport.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labsupport", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or dict(os.environ),
        timeout=120,
    )


def test_doctor_passes_here(workspace: Workspace) -> None:
    proc = _run("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok ] SoftHSMv2" in proc.stdout and "PKCS#11 round trip" in proc.stdout


def test_doctor_without_softhsm_says_how_to_install(workspace: Workspace) -> None:
    env = dict(os.environ, PKCS11_MODULE="/nonexistent/libsofthsm2.so")
    proc = _run("doctor", env=env)
    assert proc.returncode == 1
    assert "[FIX] SoftHSMv2" in proc.stdout and "Unset PKCS11_MODULE" in proc.stdout


def test_env_prints_exports_usable_by_pkcs11_tools(workspace: Workspace) -> None:
    proc = _run("env")
    assert proc.returncode == 0
    assert f"export SOFTHSM2_CONF={workspace.softhsm_conf}" in proc.stdout
    assert "export PKCS11_MODULE=" in proc.stdout


def test_reset_command(workspace: Workspace) -> None:
    (workspace.lesson_dir("02") / "x").write_text("x")
    proc = _run("reset", "02")
    assert proc.returncode == 0 and "lesson 02" in proc.stdout
    assert not (workspace.root / "lessons" / "02").exists()


def test_unknown_command_fails() -> None:
    assert _run("frobnicate").returncode == 2


def test_commands_are_listed_without_importing_them(workspace: Workspace) -> None:
    """NAME and HELP read from each command's source are the module's own, and running one
    command imports no other command (``env`` loads neither nbformat nor boto3)."""
    import importlib

    from labsupport.commands import commands

    found = commands()
    assert {"env", "grade", "reset", "doctor"} <= set(found)
    for name, info in found.items():
        module = importlib.import_module(info.module)
        assert (module.NAME, module.HELP) == (name, info.help)
    heavy = ("nbformat", "boto3", "labsupport.commands.grade", "labsupport.commands.bench")
    code = (
        "import sys\nfrom labsupport.commands import main\nmain(['env'])\n"
        f"print('loaded:', [m for m in {heavy!r} if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "loaded: []"
