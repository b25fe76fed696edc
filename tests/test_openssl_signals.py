"""The OpenSSL launcher and its openssl child live and die together.

Ctrl-C or SIGTERM (a Jupyter interrupt, ``kill``) reaches openssl and the launcher exits
with 128 + the signal; a SIGKILLed launcher (a killed kernel) takes openssl with it, so no
orphan ``s_server`` keeps serving or holds its port. Needs only the ``openssl`` binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

if shutil.which("openssl") is None:
    pytest.skip("the openssl binary is not installed", allow_module_level=True)

SERVER = [sys.executable, "-m", "labsupport.openssl", "s_server", "-nocert", "-accept"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in "ZX"  # a zombie nobody reaped (no init in a container) is dead


def _child(pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise AssertionError("the launcher started no openssl process")


@pytest.mark.parametrize(
    ("signum", "status"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM),
        (signal.SIGINT, 128 + signal.SIGINT),
        (signal.SIGKILL, -signal.SIGKILL),
    ],
)
def test_a_signalled_launcher_takes_openssl_with_it(
    signum: signal.Signals, status: int, workspace: object
) -> None:
    server = subprocess.Popen(
        [*SERVER, "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if "ACCEPT" in line:
                break
        openssl = _child(server.pid)
        assert _alive(openssl)
        os.kill(server.pid, signum)  # the launcher only, not its process group
        assert server.wait(timeout=10) == status
        deadline = time.monotonic() + 5
        while _alive(openssl) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(openssl), "openssl outlived its launcher"
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=10)
