"""A cluster made with boto3 as lesson 02 teaches, and helpers to drive the CloudHSM CLI."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labsupport.controlplane.quickstart import initialized_cluster
from labsupport.workspace import Workspace

BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
PROMPT = "aws-cloudhsm > "


def tool(name: str) -> str:
    """Path of an installed console script (``./lab setup`` puts them in .venv/bin)."""
    found = BIN / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    assert which, f"{name} is not installed: run ./lab setup"
    return which


@dataclass
class Cluster:
    """An INITIALIZED cluster (two HSMs) and its trust anchor, in the test's workspace."""

    workspace: Workspace
    cluster_id: str
    ca: Path


@pytest.fixture(name="cluster")
def cluster_fixture(workspace: Workspace) -> Cluster:
    """Lesson 02 through boto3 (create, HSMs, sign the CSR, initialize)."""
    made = initialized_cluster(workspace, owner="workspace")
    return Cluster(workspace, made.cluster_id, Path(made.customer_ca_cert))


def run_tool(
    *argv: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a console script with ``stdin`` piped in (no terminal, as in CI)."""
    return subprocess.run(
        [tool(argv[0]), *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def answers(stdout: str) -> list[dict[str, Any]]:
    """The JSON answers of an interactive session, in order (prompts stripped)."""
    return [_parse(chunk) for chunk in stdout.split(PROMPT)[1:] if _parse(chunk) != {"text": ""}]


def _parse(chunk: str) -> dict[str, Any]:
    chunk = re.sub(r"^(Enter password:|Confirm password:)+", "", chunk).strip()
    return json.loads(chunk) if chunk.startswith("{") else {"text": chunk}


class Interactive:
    """One ``cloudhsm-cli interactive`` process driven a line at a time through pipes.

    ``send(line)`` writes the line and reads up to the next ``aws-cloudhsm > `` prompt, so a
    test can act between commands (sign a token file the CLI just wrote) in one process.
    Hints go to a file (a full stderr pipe would block the CLI).
    """

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 120) -> None:
        self.timeout = timeout
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [tool("cloudhsm-cli"), "interactive"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={**os.environ, **(env or {})},
        )
        self._read_to_prompt()

    def _read_to_prompt(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        got = bytearray()
        end = PROMPT.encode()
        while not got.endswith(end):
            ready, _, _ = select.select([fd], [], [], self.timeout)
            assert ready, f"no prompt within {self.timeout}s; so far: {got.decode()!r}"
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"cloudhsm-cli ended: {got.decode()!r}\n{self.errors()}")
            got += chunk
        return got[: -len(end)].decode()

    def send(self, line: str) -> dict[str, Any]:
        """Run one command line; its parsed JSON answer (``{"text": …}`` for help)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return _parse(self._read_to_prompt())

    def errors(self) -> str:
        """What the CLI wrote to standard error so far (lab hints, tracebacks)."""
        self.stderr.seek(0)
        return self.stderr.read()

    def close(self) -> int:
        """Send ``quit``; the exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.close()
        code = self.proc.wait(timeout=self.timeout)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code
