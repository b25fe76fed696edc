"""Run one learner notebook isolated from the instructor and from the other learners.

What each run gets (see docs/instructors.md, "What grading isolates"):

* its own session and process group (``start_new_session``), and the kernel its own;
  when the run ends — finished, timed out or killed — every process carrying the run's
  marker and every process group it started are killed, and at the end of grading every
  leftover descendant of the grader too (the grader is a Linux *child subreaper*, so a
  process that double-forks is still its descendant);
* a fresh ``HOME``, ``TMPDIR`` and ``CLOUDHSM_LAB_HOME`` in a scratch folder, deleted after;
* a clean environment: only ``PATH``, locale and the SoftHSM module path pass through —
  no AWS credentials, no ``CLOUDHSM_LAB_USE_AWS``, no instructor settings;
* a fresh copy of the ``labsupport`` package made from an in-memory snapshot taken before
  any learner code ran, without the answer hashes, first on ``PYTHONPATH``;
* a wall-clock limit per notebook;
* optionally (``--run-as USER`` when grading as root) another Unix user, which also keeps
  the notebook away from the instructor's files and processes.

Without a separate user or a container, a notebook runs with the grader's permissions: it
can read what the grader can read. The course package folder is checked after every run
and restored if a notebook changed it; nothing a notebook changes affects the grades,
which the grader computes from hashes it loaded before running anything.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labsupport.authoring.course import PACKAGE_DIR

ENV_RUN = "CLOUDHSM_LAB_GRADE_RUN"
#: Variables a notebook's environment keeps (everything else is dropped).
PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PKCS11_MODULE", "CONDA_PREFIX")
_GRACE_S = 10  # kernel start-up and shutdown on top of the notebook's own time limit
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class ProcInfo:
    """A process as seen in /proc."""

    pid: int
    ppid: int
    pgid: int
    sid: int


def processes() -> dict[int, ProcInfo]:
    """Every process visible in /proc (empty where there is no /proc)."""
    found: dict[int, ProcInfo] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        found[int(entry.name)] = ProcInfo(int(entry.name), int(rest[1]), int(rest[2]), int(rest[3]))
    return found


def descendants(root: int, table: dict[int, ProcInfo] | None = None) -> set[int]:
    """Pids below ``root`` in the process tree."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def kill_run(run_id: str, leader: int | None = None) -> int:
    """SIGKILL the run's session leader's group and every process (and its group) whose
    environment carries the run marker. Returns how many processes were signalled."""
    marker = f"{ENV_RUN}={run_id}".encode()
    killed = 0
    for _ in range(3):  # a process may fork while we look: look again
        table = processes()
        targets = {p.pid for p in table.values() if _has_marker(p.pid, marker)}
        groups = {table[p].pgid for p in targets if p in table}
        if leader is not None:
            groups.add(leader)
            targets |= {p.pid for p in table.values() if p.sid == leader or p.pgid == leader}
        targets.discard(os.getpid())
        groups.discard(os.getpgid(0))
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        if not targets:
            break
        time.sleep(0.05)
    return killed


def reap(pids: set[int]) -> None:
    """Collect the exit status of orphans that were re-parented to this process."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def kill_descendants(keep: set[int]) -> int:
    """SIGKILL every descendant of this process not in ``keep`` (end of grading)."""
    victims = descendants(os.getpid()) - keep
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.05)
    reap(victims)
    return len(victims)


@dataclass
class PackageSnapshot:
    """The course package as it was before any learner code ran (bytes and mtimes)."""

    root: Path
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)

    @classmethod
    def take(cls, root: Path = PACKAGE_DIR) -> PackageSnapshot:
        """Read every file of the package (``__pycache__`` included, for fast imports)."""
        snap = cls(root)
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                snap.files[path.relative_to(root).as_posix()] = (path.read_bytes(), st.st_mtime_ns)
        return snap

    def _tracked(self) -> dict[str, tuple[bytes, int]]:
        return {k: v for k, v in self.files.items() if "__pycache__" not in k}

    def materialize(self, dest: Path, without_answers: bool = True) -> Path:
        """Write a copy to ``dest/labsupport`` (without ``questions/*.json``); returns dest."""
        pkg = dest / self.root.name
        for rel, (data, mtime) in self.files.items():
            if without_answers and rel.startswith("pedagogy/questions/") and rel.endswith(".json"):
                continue
            target = pkg / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, ns=(mtime, mtime))
        return dest

    def changed(self) -> list[str]:
        """Source files of the real package that differ from the snapshot (or were added)."""
        tracked = self._tracked()
        out = []
        for rel, (data, _) in tracked.items():
            path = self.root / rel
            try:
                if hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(data).digest():
                    out.append(rel)
            except OSError:
                out.append(rel)
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and "__pycache__" not in rel and rel not in tracked:
                out.append(rel)
        return sorted(out)

    def restore(self, rels: list[str], keep: Path) -> None:
        """Put the listed files back as they were (removing files a notebook added); the
        changed versions are moved to ``keep`` first, in case it was you editing the course."""
        for rel in rels:
            path = self.root / rel
            if path.is_file():
                aside = keep / rel
                aside.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, aside)
            if rel in self.files:
                data, mtime = self.files[rel]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                os.utime(path, ns=(mtime, mtime))
            else:
                path.unlink(missing_ok=True)


def check_run_as(run_as: str) -> str:
    """ "" if user ``run_as`` can start this Python and import labsupport, else why not."""
    try:
        pw = pwd.getpwnam(run_as)
    except KeyError:
        return f"there is no user {run_as!r} on this machine"
    probe = "import labsupport.authoring.worker"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", probe],
            user=pw.pw_uid,
            group=pw.pw_gid,
            extra_groups=[],
            cwd="/",
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    except OSError as exc:
        return f"user {run_as} cannot start {sys.executable} ({exc.strerror})"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"user {run_as} cannot import labsupport with {sys.executable} ({last})"
    return ""


def clean_env(scratch: Path, run_id: str) -> dict[str, str]:
    """The whole environment a graded notebook sees."""
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "HOME": str(scratch / "home"),
            "TMPDIR": str(scratch / "tmp"),
            "CLOUDHSM_LAB_HOME": str(scratch / "lab"),
            "PYTHONPATH": str(scratch / "pkg"),
            "PYTHONNOUSERSITE": "1",
            "MPLBACKEND": "Agg",
            "CLOUDHSM_LAB_GRADING": "1",
            # Nobody watches a graded run: the control plane's simulated waits (seconds per
            # cluster or HSM, there only to show learners that AWS takes minutes) are due at
            # once, and a class is graded that much sooner. States still pass through
            # CREATE_IN_PROGRESS (see labsupport.controlplane.clock).
            "CLOUDHSM_LAB_CLOCK": "fast",
            ENV_RUN: run_id,
        }
    )
    return env


@dataclass
class RunOutput:
    """What came back from one run: verified records, how it ended, and its log tail."""

    records: list[dict[str, Any]]
    ended: str  # "ok", "timeout", "dead", "killed", "failed", "tampered"
    detail: str
    seconds: float
    peak_mib: float = 0.0  # the kernel's peak resident memory (0 if unknown)


def run_isolated(
    jobdir: Path,
    snapshot: PackageSnapshot,
    timeout: int,
    run_as: str | None = None,
) -> RunOutput:
    """Run the job prepared in ``jobdir`` (``job.json`` + ``notebook.ipynb``) in a worker
    process; always kills everything the run started before returning."""
    from labsupport.authoring.worker import verify

    run_id = secrets.token_hex(8)
    secret = secrets.token_bytes(32)
    for sub in ("home", "tmp", "lab", "work", "pkg"):
        (jobdir / sub).mkdir(parents=True, exist_ok=True)
    snapshot.materialize(jobdir / "pkg")
    user: dict[str, Any] = {}
    if run_as:
        pw = pwd.getpwnam(run_as)
        for path in [jobdir, *jobdir.rglob("*")]:
            os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    log = (jobdir / "worker.log").open("wb")
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labsupport.authoring.worker", str(jobdir)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=jobdir / "work",
            env=clean_env(jobdir, run_id),
            start_new_session=True,
            close_fds=True,
            **user,
        )
    except OSError as exc:
        log.close()
        return RunOutput([], "failed", f"the grading process did not start ({exc})", 0.0)
    timed_out = False
    try:
        assert proc.stdin is not None
        proc.stdin.write(secret.hex().encode() + b"\n")
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=timeout + _GRACE_S)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_run(run_id, leader=proc.pid)
        proc.wait()
        log.close()
    seconds = time.monotonic() - started
    records: list[dict[str, Any]] = []
    tampered = False
    result = jobdir / "result.jsonl"
    lines = (
        result.read_text(encoding="utf-8", errors="replace").splitlines() if result.exists() else []
    )
    for n, line in enumerate(lines):
        rec = verify(secret, line)
        if rec is None or rec.get("seq") != n:
            tampered = True
            break
        records.append(rec)
    done = next((r for r in records if r.get("type") == "done"), None)
    if tampered:
        return RunOutput([], "tampered", "its result file was altered by the notebook", seconds)
    if timed_out:
        return RunOutput(records, "timeout", f"timed out after {timeout} s", seconds)
    if done is not None:
        status = str(done.get("status"))
        peak = int(done.get("peak_kib", 0) or 0) / 1024
        if status == "timeout":
            detail = f"timed out: a cell ran longer than {timeout} s"
            return RunOutput(records, "timeout", detail, seconds, peak)
        return RunOutput(records, status, str(done.get("detail", "")), seconds, peak)
    if proc.returncode is not None and proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return RunOutput(
            records,
            "killed",
            f"its grading process was killed by {name} from inside the notebook",
            seconds,
        )
    tail = (jobdir / "worker.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
    return RunOutput(
        records,
        "failed",
        f"the grading process stopped (exit {proc.returncode}) {tail[0][:200]}",
        seconds,
    )


def remove_scratch(path: Path) -> None:
    """Delete a run's scratch folder (files a notebook made read-only included)."""

    def onerror(func: Any, p: str, _exc: Any) -> None:
        try:
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)
