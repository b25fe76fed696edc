"""Find OpenSSL, the OpenSC PKCS#11 engine (libp11) and OpenSC's PKCS#11 spy module.

On AWS, applications reach CloudHSM keys through AWS's own OpenSSL Dynamic Engine
(``libcloudhsm_openssl_engine.so``, engine id ``cloudhsm``) or its OpenSSL 3 provider.
The lab uses the general-purpose PKCS#11 engine instead — Debian's
``libengine-pkcs11-openssl`` (libp11) — pointed at the SoftHSM token of one simulated HSM.

Why the engine and not the OpenSSL 3 ``pkcs11-provider``: Debian 12 (the lab's reference
platform and CI) ships only the engine; ``pkcs11-provider`` arrives in Debian 13. Both
read the same ``pkcs11:`` URIs (RFC 7512), so moving to the provider later changes the
OpenSSL configuration, not the lesson.

OpenSC's ``pkcs11-spy`` module sits between the engine and SoftHSM when it is installed
and reports every PKCS#11 call; :mod:`labsupport.openssl.requests` turns that into the
request log the lesson shows (which HSM made which signature).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from labsupport.errors import LabError

#: The engine id libp11 registers (``openssl … -engine pkcs11``).
ENGINE_ID = "pkcs11"
#: Standard OpenSSL variable naming the engines directory; also honoured here.
ENV_ENGINES = "OPENSSL_ENGINES"

_ENGINE_NAMES = ("pkcs11.so", "libpkcs11.so", "pkcs11.dylib", "libpkcs11.dylib")


class OpenSSLNotFound(LabError):
    """No usable ``openssl`` 3 command, or no PKCS#11 engine for it."""


def engine_install_hint() -> str:
    """The command that installs the PKCS#11 engine on this platform."""
    if os.environ.get("CONDA_PREFIX"):
        return "conda install -c conda-forge libp11 openssl"
    if sys.platform == "darwin":
        return "brew install libp11 openssl@3 (and put Homebrew's openssl first on PATH)"
    return "sudo apt-get install -y libengine-pkcs11-openssl"


@lru_cache(maxsize=1)
def find_openssl() -> Path:
    """The ``openssl`` command (OpenSSL 3; macOS's LibreSSL ``openssl`` has no engines)."""
    found = shutil.which("openssl")
    if found is None:
        raise OpenSSLNotFound(
            "The openssl command is not installed.",
            "Install OpenSSL 3 (`sudo apt-get install -y openssl`, `brew install openssl@3` "
            "or `conda install -c conda-forge openssl`).",
        )
    version = subprocess.run([found, "version"], capture_output=True, text=True).stdout
    if not version.startswith("OpenSSL 3"):
        raise OpenSSLNotFound(
            f"{found} is {version.strip() or 'not OpenSSL'}; the lab needs OpenSSL 3.",
            "Install OpenSSL 3 and put it first on PATH (`brew install openssl@3` on macOS).",
        )
    return Path(found)


def _engines_dirs() -> list[Path]:
    dirs = []
    if os.environ.get(ENV_ENGINES):
        dirs.append(Path(os.environ[ENV_ENGINES]))
    try:
        out = subprocess.run(
            [str(find_openssl()), "version", "-e"], capture_output=True, text=True
        ).stdout
        # ENGINESDIR: "/usr/lib/x86_64-linux-gnu/engines-3"
        if ":" in out:
            dirs.append(Path(out.split(":", 1)[1].strip().strip('"')))
    except OpenSSLNotFound:
        pass
    for prefix in (os.environ.get("CONDA_PREFIX"), sys.prefix, "/opt/homebrew", "/usr/local"):
        if prefix:
            dirs.append(Path(prefix) / "lib" / "engines-3")
    return list(dict.fromkeys(dirs))


@lru_cache(maxsize=1)
def find_engine() -> Path:
    """The PKCS#11 engine library (libp11's ``pkcs11.so``); raises :class:`OpenSSLNotFound`."""
    for folder in _engines_dirs():
        for name in _ENGINE_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise OpenSSLNotFound(
        "OpenSSL's PKCS#11 engine (libp11) is not installed, so openssl cannot use HSM keys.",
        f"Install it with `{engine_install_hint()}` (`./lab setup` does it on Debian/Ubuntu), "
        f"or set {ENV_ENGINES} to the folder holding pkcs11.so.",
    )


def engine_available() -> bool:
    """True when OpenSSL 3 and its PKCS#11 engine are both installed."""
    try:
        find_engine()
        return True
    except OpenSSLNotFound:
        return False


@lru_cache(maxsize=1)
def find_spy() -> Path | None:
    """OpenSC's ``pkcs11-spy`` module (logs every PKCS#11 call), or None if absent."""
    candidates = [
        Path("/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so"),
        Path("/usr/lib/aarch64-linux-gnu/pkcs11/pkcs11-spy.so"),
        Path("/usr/lib64/pkcs11/pkcs11-spy.so"),
        Path("/usr/lib/pkcs11/pkcs11-spy.so"),
    ]
    for prefix in (os.environ.get("CONDA_PREFIX"), sys.prefix, "/opt/homebrew", "/usr/local"):
        if prefix:
            candidates += [
                Path(prefix) / "lib" / "pkcs11" / "pkcs11-spy.so",
                Path(prefix) / "lib" / "pkcs11-spy.so",
                Path(prefix) / "lib" / "pkcs11-spy.dylib",
            ]
    return next((p for p in candidates if p.is_file()), None)


def engine_config(module: Path, pin: str, engine: Path | None = None) -> bytes:
    """An ``openssl.cnf`` that loads the PKCS#11 engine for ``module`` with token PIN ``pin``.

    The PIN goes in the engine's ``PIN`` control command, so it is never on a command line.
    The launcher hands this text to openssl through a pipe (``OPENSSL_CONF=/dev/fd/N``):
    it is never written to disk either. ``init = 0`` leaves initialisation to ``-engine``.
    """
    if any(c in pin for c in "\n\r$\\\"'#"):
        raise ValueError("token PIN contains characters an openssl.cnf value cannot hold")
    lines = [
        "openssl_conf = openssl_init",
        "[openssl_init]",
        "engines = engine_section",
        "[engine_section]",
        f"{ENGINE_ID} = pkcs11_section",
        "[pkcs11_section]",
        f"engine_id = {ENGINE_ID}",
        f"dynamic_path = {engine or find_engine()}",
        f"MODULE_PATH = {module}",
        f"PIN = {pin}",
        "init = 0",
        "",
    ]
    return "\n".join(lines).encode()
