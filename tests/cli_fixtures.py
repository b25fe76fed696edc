"""A cluster made with boto3 as lesson 02 teaches, and helpers to drive the CloudHSM CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
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
    out = []
    for chunk in stdout.split(PROMPT)[1:]:
        chunk = re.sub(r"^(Enter password:|Confirm password:)+", "", chunk).strip()
        if chunk.startswith("{"):
            out.append(json.loads(chunk))
        elif chunk:
            out.append({"text": chunk})
    return out
