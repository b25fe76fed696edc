#!/usr/bin/env python3
"""Several learners at once on one machine: wall time, peak memory, and no cross-talk.

Each learner is a separate process with its own ``CLOUDHSM_LAB_HOME`` (as on a shared server
or JupyterHub) that runs the lesson notebooks top to bottom in a fresh kernel. Before the
lessons a cell creates a token named after the learner; after them a cell lists every token
the learner's SoftHSM can see. The run passes only if every learner sees its own marker
token and no other learner's, and no learner's workspace mentions another learner.

    .venv/bin/python scripts/load_test.py                 # N = 1, 5, 10, all lessons
    .venv/bin/python scripts/load_test.py -n 2 --notebooks notebooks/00_setup_check.ipynb

Peak memory per learner is the maximum resident set size of its worker process and of its
notebook kernel (``getrusage``), in MiB. Exit status 1 on any failure or cross-talk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "who-"

FIRST_CELL = """\
from labsupport.hsm import token_store
from labsupport.workspace import Workspace
token_store(Workspace.open()).create({label!r}, owner="load")
"""
LAST_CELL = """\
import json
from labsupport.hsm import token_store
from labsupport.workspace import Workspace
store = token_store(Workspace.open())
store.refresh()
print("TOKENS=" + json.dumps(sorted(t.label for t in store.lib.get_tokens())))
"""


@dataclass
class Result:
    """One learner's run."""

    learner: str
    ok: bool
    seconds: float
    worker_mib: float
    kernel_mib: float
    tokens: list[str]
    error: str = ""


def worker(learner: str, home: Path, notebooks: list[Path], timeout: int) -> int:
    """Run the notebooks for one learner (in this process's own workspace); JSON on stdout."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["CLOUDHSM_LAB_HOME"] = str(home)
    start = time.monotonic()
    tokens: list[str] = []
    error = ""
    try:
        for i, path in enumerate(notebooks):
            nb = nbformat.read(path, as_version=4)
            if i == 0:
                label = f"{MARK}{learner}"
                nb.cells.insert(0, nbformat.v4.new_code_cell(FIRST_CELL.format(label=label)))
            if i == len(notebooks) - 1:
                nb.cells.append(nbformat.v4.new_code_cell(LAST_CELL))
            client = NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            client.execute()
        for out in nb.cells[-1].outputs:
            for line in out.get("text", "").splitlines():
                if line.startswith("TOKENS="):
                    tokens = json.loads(line[len("TOKENS=") :])
    except Exception as exc:  # report, never hide: the parent prints it
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    seconds = time.monotonic() - start
    kib = 1 if sys.platform != "darwin" else 1024
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib / 1024
    kernel = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib / 1024
    print(
        json.dumps(
            {"seconds": seconds, "worker": me, "kernel": kernel, "tokens": tokens, "error": error}
        )
    )
    return 0


def mentions_other_learner(home: Path, me: str, learners: list[str]) -> list[str]:
    """Files in ``home`` whose name or text names another learner's marker token."""
    others = [f"{MARK}{lr}".encode() for lr in learners if lr != me]
    hits = []
    for f in home.rglob("*"):
        if not f.is_file():
            continue
        blob = f.name.encode() + b"\0" + f.read_bytes()
        if any(o in blob for o in others):
            hits.append(str(f.relative_to(home)))
    return hits


def run_class(
    n: int, notebooks: list[Path], base: Path, timeout: int
) -> tuple[float, list[Result]]:
    """Start ``n`` learners at once; wall time of the whole class and one Result per learner."""
    learners = [f"learner{i:02d}" for i in range(n)]
    procs = {}
    start = time.monotonic()
    for lr in learners:
        home = base / f"n{n}" / lr
        procs[lr] = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                lr,
                "--home",
                str(home),
                "--timeout",
                str(timeout),
                "--notebooks",
                *map(str, notebooks),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = []
    for lr, proc in procs.items():
        out, err = proc.communicate()
        try:
            data = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            data = {"seconds": 0, "worker": 0, "kernel": 0, "tokens": [], "error": err[-300:]}
        error = data["error"]
        own = f"{MARK}{lr}"
        foreign = [t for t in data["tokens"] if t.startswith(MARK) and t != own]
        if not error and own not in data["tokens"]:
            error = f"own marker token missing; sees {data['tokens']}"
        if foreign:
            error = f"CROSS-TALK: sees {foreign}"
        hits = mentions_other_learner(base / f"n{n}" / lr, lr, learners)
        if hits:
            error = f"CROSS-TALK: workspace files name other learners: {hits[:3]}"
        results.append(
            Result(
                lr,
                not error,
                data["seconds"],
                data["worker"],
                data["kernel"],
                data["tokens"],
                error,
            )
        )
    return time.monotonic() - start, results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run each class size and print a report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, nargs="+", default=[1, 5, 10], help="class sizes")
    p.add_argument(
        "--notebooks", type=Path, nargs="+", default=sorted((ROOT / "notebooks").glob("*.ipynb"))
    )
    p.add_argument("--timeout", type=int, default=600, help="per cell, seconds")
    p.add_argument("--keep", action="store_true", help="keep the workspaces (printed)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    notebooks = [nb.resolve() for nb in args.notebooks]
    if args.worker:
        return worker(args.worker, args.home, notebooks, args.timeout)

    print(f"notebooks: {', '.join(nb.name for nb in notebooks)}; cores: {os.cpu_count()}")
    tmp = tempfile.TemporaryDirectory(prefix="cloudhsm-load-")
    base = Path(tmp.name)
    failed = False
    for n in args.n:
        wall, results = run_class(n, notebooks, base, args.timeout)
        secs = [r.seconds for r in results]
        peak = [max(r.worker_mib, r.kernel_mib) for r in results]
        print(
            f"\nN={n}: wall {wall:.1f} s for the class; per learner "
            f"{min(secs):.1f}-{max(secs):.1f} s, peak RSS {min(peak):.0f}-{max(peak):.0f} MiB"
        )
        print(
            f"  {'learner':<10} {'status':<6} {'seconds':>8} {'worker MiB':>11} "
            f"{'kernel MiB':>11}  tokens"
        )
        for r in results:
            status = "ok" if r.ok else "FAIL"
            print(
                f"  {r.learner:<10} {status:<6} {r.seconds:8.1f} {r.worker_mib:11.0f} "
                f"{r.kernel_mib:11.0f}  {len(r.tokens)}" + (f"  {r.error}" if r.error else "")
            )
            failed |= not r.ok
    print("\ncross-talk: none" if not failed else "\nFAILED (see above)")
    if args.keep:
        print(f"workspaces kept in {base}")
        tmp._finalizer.detach()  # type: ignore[attr-defined]
    else:
        tmp.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
