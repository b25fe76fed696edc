"""`python -m labsupport bench --smoke --json` prints one JSON object with every section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labsupport.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def test_bench_json_has_ratios_sync_and_cluster_figures(workspace: Workspace) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "labsupport", "bench", "--smoke", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["bench_size"] == "smoke"
    assert set(result["ratios"]) == {"aes_gcm_1k_encrypt", "rsa2048_sign", "ec_p256_sign"}
    assert all(ratio > 0 for ratio in result["ratios"].values())
    assert result["sync_seconds"] and all(s > 0 for s in result["sync_seconds"].values())
    assert set(result["login_ms"]) == {"first", "repeat_median"}
    assert all(ms > 0 for ms in result["login_ms"].values())
    assert result["cluster_setup_s"] > 0 and result["describe_clusters_per_s"] > 0
    # Benchmarks run in a scratch workspace: the learner's lab is left untouched.
    assert not any(workspace.token_dir.iterdir())
