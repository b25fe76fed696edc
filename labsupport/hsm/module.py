"""Find the PKCS#11 module (``libsofthsm2.so``) and the ``softhsm2-util`` tool.

Search order: ``$PKCS11_MODULE``, then the places Debian/Ubuntu, Fedora, Homebrew and
conda install SoftHSMv2. A real CloudHSM client would set ``PKCS11_MODULE`` to
``/opt/cloudhsm/lib/libcloudhsm_pkcs11.so`` instead.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

from labsupport.errors import SoftHSMNotFound

ENV_MODULE = "PKCS11_MODULE"


def _prefixes() -> list[Path]:
    prefixes = [Path(sys.prefix)]
    if os.environ.get("CONDA_PREFIX"):
        prefixes.insert(0, Path(os.environ["CONDA_PREFIX"]))
    prefixes += [Path("/opt/homebrew"), Path("/usr/local"), Path("/usr")]
    return prefixes


def candidate_paths() -> list[Path]:
    """Every path where a SoftHSMv2 module is looked for, in order."""
    machine = platform.machine()
    arch_dirs = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
    paths = [
        Path("/usr/lib/softhsm/libsofthsm2.so"),  # Debian, Ubuntu
        Path(f"/usr/lib/{arch_dirs.get(machine, machine + '-linux-gnu')}/softhsm/libsofthsm2.so"),
        Path("/usr/lib64/pkcs11/libsofthsm2.so"),  # Fedora, RHEL
        Path("/usr/lib64/softhsm/libsofthsm2.so"),
        Path("/opt/homebrew/opt/softhsm/lib/softhsm/libsofthsm2.so"),  # Homebrew (arm64)
        Path("/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so"),  # Homebrew (x86_64)
    ]
    for prefix in _prefixes():  # conda, venvs, /usr/local builds
        paths.append(prefix / "lib" / "softhsm" / "libsofthsm2.so")
        paths.append(prefix / "lib" / "softhsm" / "libsofthsm2.dylib")
    return list(dict.fromkeys(paths))


def install_hint() -> str:
    """The command that installs SoftHSMv2 on this platform."""
    if sys.platform == "darwin":
        return "brew install softhsm"
    if os.environ.get("CONDA_PREFIX"):
        return "conda install -c conda-forge softhsm"
    os_release = Path("/etc/os-release")
    text = os_release.read_text() if os_release.exists() else ""
    if any(name in text for name in ("fedora", "rhel", "centos")):
        return "sudo dnf install softhsm"
    return "sudo apt-get install -y softhsm2"


def find_module() -> Path:
    """Return the PKCS#11 module path; raise :class:`SoftHSMNotFound` saying how to install it."""
    env = os.environ.get(ENV_MODULE)
    if env:
        path = Path(env)
        if path.is_file():
            return path
        raise SoftHSMNotFound(
            f"{ENV_MODULE} is set to {env}, but no file is there.",
            f"Unset {ENV_MODULE} to let labsupport find SoftHSMv2, or point it at the module.",
        )
    for path in candidate_paths():
        if path.is_file():
            return path
    raise SoftHSMNotFound(
        "SoftHSMv2 (libsofthsm2.so) is not installed, so the lab has no HSM to talk to.",
        f"Install it with `{install_hint()}` (or set {ENV_MODULE} to your PKCS#11 module), "
        "then restart the kernel. `python -m labsupport doctor` checks the result.",
    )


def find_softhsm_util() -> Path:
    """Return the ``softhsm2-util`` executable that ships with SoftHSMv2."""
    found = shutil.which("softhsm2-util")
    if found:
        return Path(found)
    for prefix in _prefixes():
        path = prefix / "bin" / "softhsm2-util"
        if path.is_file():
            return path
    raise SoftHSMNotFound(
        "softhsm2-util (part of SoftHSMv2) is not on PATH; labsupport needs it to create tokens.",
        f"Install SoftHSMv2 with `{install_hint()}`, then restart the kernel.",
    )
