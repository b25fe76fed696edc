"""The setup check: Python, packages, SoftHSM, the workspace and the Jupyter kernel.

Lesson 00 shows :func:`findings` in the notebook; ``python -m labsupport doctor`` prints the
same list in a terminal. Each :class:`Finding` says what was checked and, when it failed,
how to fix it.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass

from labsupport.errors import LabError


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    ok: bool
    what: str
    detail: str
    fix: str = ""


def _python() -> Finding:
    ok = sys.version_info >= (3, 10)
    version = ".".join(map(str, sys.version_info[:3]))
    return Finding(
        ok,
        "Python",
        f"{version} at {sys.executable}",
        "" if ok else "Install Python 3.10 or newer.",
    )


def _packages() -> Finding:
    # Found on the path, not imported: importing them all cost about 2 s of CPU in every
    # lesson-00 kernel and `doctor` run (nbformat's jsonschema alone ~1 s), for a presence check.
    missing = []
    for mod in ("pkcs11", "cryptography", "boto3", "nbformat", "matplotlib", "ipykernel"):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(mod)
    return Finding(
        not missing,
        "Python packages",
        "all present" if not missing else "missing: " + ", ".join(missing),
        "Run ./lab setup (or pip install -e .) in the course folder.",
    )


def _softhsm() -> Finding:
    from labsupport.hsm.module import find_module, find_softhsm_util

    try:
        module = find_module()
        util = find_softhsm_util()
    except LabError as err:
        return Finding(False, "SoftHSMv2", err.problem, err.fix)
    version = subprocess.run([str(util), "--version"], capture_output=True, text=True)
    return Finding(True, "SoftHSMv2", f"{version.stdout.strip()} — {module}")


def _workspace() -> list[Finding]:
    from labsupport.hsm.tokens import TokenStore
    from labsupport.workspace.home import Workspace

    try:
        ws = Workspace.open()
    except LabError as err:
        return [Finding(False, "Workspace", err.problem, err.fix)]
    found = [Finding(True, "Workspace", f"{ws.root} (mode 0700, writable)")]
    try:
        store = TokenStore(ws)
        store.create("doctor-probe", owner="doctor")
        session = store.open_session("doctor-probe")
        session.generate_random(64)
        session.close()
        store.delete("doctor-probe")
        found.append(Finding(True, "PKCS#11 round trip", "created a token, logged in, got random"))
    except LabError as err:
        found.append(Finding(False, "PKCS#11 round trip", err.problem, err.fix))
    except Exception as err:  # report any PKCS#11 failure as a finding
        found.append(
            Finding(
                False,
                "PKCS#11 round trip",
                f"{type(err).__name__}: {err}",
                "Run `./lab setup` again; if it persists, reset the workspace.",
            )
        )
    return found


def _kernel() -> Finding:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return Finding(False, "Jupyter kernel", "jupyter_client missing", "Run ./lab setup.")
    specs = KernelSpecManager().find_kernel_specs()
    ok = "python3" in specs
    return Finding(
        ok,
        "Jupyter kernel",
        ", ".join(sorted(specs)) or "none",
        "" if ok else "Run: python -m ipykernel install --user",
    )


def findings() -> list[Finding]:
    """Every check the doctor runs, in order."""
    result = [_python(), _packages(), _softhsm()]
    if result[-1].ok:
        result += _workspace()
    result.append(_kernel())
    tools = [t for t in ("pkcs11-tool", "openssl") if shutil.which(t)]
    tools.append(_openssl_engine())
    result.append(Finding(True, "Optional tools", ", ".join(tools)))
    return result


def _openssl_engine() -> str:
    """Lesson 07: OpenSSL 3 and its PKCS#11 engine (optional: only that lesson needs it)."""
    from labsupport.openssl.engine import OpenSSLNotFound, find_engine

    try:
        return f"OpenSSL PKCS#11 engine ({find_engine()})"
    except OpenSSLNotFound as err:
        return f"no OpenSSL PKCS#11 engine for lesson 07 ({err.fix.split('(')[0].strip()})"
