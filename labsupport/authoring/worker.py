"""Run one assembled notebook and report the learner's answer values (grader's subprocess).

Started by :mod:`labsupport.authoring.sandbox` as ``python -I -m
labsupport.authoring.worker JOBDIR`` in its own session, with a clean environment. It
reads a per-run secret from stdin (never from argv or the environment, which the
notebook's kernel could read), runs the notebook in a fresh kernel, and after each
graded cell asks the kernel for the *value* of each graded expression through a
silent ``execute_request``'s ``user_expressions`` — a reply on the shell channel,
not an output, so nothing the notebook prints can pose as one. Each result line is
authenticated with HMAC-SHA256 under the secret; the grader drops the run if a line
does not verify. The worker never judges an answer: the grader does, in its own
process, against the hashes it loaded before any learner code ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

MAX_REPR = 100_000  # characters of an answer's repr the grader will look at

# Runs in the kernel: the answer's repr, with numpy-like scalars turned into plain numbers.
_REPR = "(lambda v: repr(v.item() if hasattr(v, 'item') and callable(v.item) else v))({})"


def sign(secret: bytes, record: dict[str, Any]) -> str:
    """One authenticated JSON line: the record plus ``mac`` over its canonical form."""
    body = json.dumps(record, sort_keys=True, ensure_ascii=True)
    mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"record": record, "mac": mac}, ensure_ascii=True)


def verify(secret: bytes, line: str) -> dict[str, Any] | None:
    """The record of a line written by :func:`sign`, or None if it was not."""
    try:
        outer = json.loads(line)
        record = outer["record"]
        body = json.dumps(record, sort_keys=True, ensure_ascii=True)
        mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        return record if hmac.compare_digest(mac, str(outer["mac"])) else None
    except (ValueError, KeyError, TypeError):
        return None


def _peak_kib(km: Any) -> int:
    """The kernel process's peak resident memory so far (VmHWM, KiB; 0 if unknown)."""
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _GradingClient(NotebookClient):
    """A NotebookClient that, after each graded cell, collects the graded expressions."""

    def __init__(self, nb: nbformat.NotebookNode, job: dict[str, Any], emit: Any, **kw: Any):
        super().__init__(nb, **kw)
        self.graded = {int(k): v for k, v in job["graded"].items()}
        self.emit = emit
        self.peak_kib = 0

    async def async_execute_cell(  # type: ignore[override]
        self,
        cell: Any,
        cell_index: int,
        execution_count: int | None = None,
        store_history: bool = True,
    ) -> Any:
        result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self.peak_kib = max(self.peak_kib, _peak_kib(self.km))
        if cell_index in self.graded:
            await self._collect(cell, cell_index)
        return result

    async def _collect(self, cell: Any, cell_index: int) -> None:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        record: dict[str, Any] = {"type": "cell", "cell": cell_index, "answers": {}}
        if errors:
            record["status"] = "error"
            record["ename"] = str(errors[0].get("ename", ""))[:200]
            record["evalue"] = (
                str(errors[0].get("evalue", "")).splitlines()[0][:300]
                if errors[0].get("evalue")
                else ""
            )
        else:
            record["status"] = "ok"
            exprs = {q["qid"]: _REPR.format(q["expression"]) for q in self.graded[cell_index]}
            msg_id = await ensure_async(
                self.kc.execute(
                    "",
                    silent=True,
                    store_history=False,
                    user_expressions=exprs,
                    allow_stdin=False,
                )
            )
            reply = await self._reply(msg_id)
            values = reply.get("content", {}).get("user_expressions", {}) if reply else {}
            for q in self.graded[cell_index]:
                got = values.get(q["qid"], {})
                if got.get("status") == "ok":
                    text = got.get("data", {}).get("text/plain", "")
                    record["answers"][q["qid"]] = {"ok": True, "repr": str(text)[: MAX_REPR + 4]}
                else:
                    record["answers"][q["qid"]] = {
                        "ok": False,
                        "ename": str(got.get("ename", "no value"))[:200],
                    }
        self.emit(record)

    async def _reply(self, msg_id: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + (self.timeout or 60)
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(
                    self.kc.shell_channel.get_msg(timeout=deadline - time.monotonic())
                )
            except Exception:  # queue.Empty or a closed channel
                return None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg
        return None


def main(argv: list[str]) -> int:
    """``worker JOBDIR``: run JOBDIR/notebook.ipynb, append signed lines to JOBDIR/result.jsonl."""
    jobdir = Path(argv[0])
    secret = bytes.fromhex(sys.stdin.readline().strip())
    sys.stdin.close()
    job = json.loads((jobdir / "job.json").read_text(encoding="utf-8"))
    nb = nbformat.read(jobdir / "notebook.ipynb", as_version=4)
    out = (jobdir / "result.jsonl").open("a", encoding="utf-8")
    seq = 0

    def emit(record: dict[str, Any]) -> None:
        nonlocal seq
        record["seq"] = seq
        seq += 1
        out.write(sign(secret, record) + "\n")
        out.flush()

    emit({"type": "start"})
    client = _GradingClient(
        nb,
        job,
        emit,
        timeout=int(job["timeout"]),
        kernel_name=job.get("kernel", "python3"),
        allow_errors=True,
        resources={"metadata": {"path": job["cwd"]}},
    )
    status, detail = "ok", ""
    try:
        client.execute()
    except CellTimeoutError:
        status, detail = "timeout", "a cell ran longer than the time limit"
    except DeadKernelError as exc:
        status, detail = "dead", f"the kernel died ({str(exc).splitlines()[0][:200]})"
    except Exception as exc:  # anything else stopping the run is reported, not raised
        status, detail = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    emit({"type": "done", "status": status, "detail": detail, "peak_kib": client.peak_kib})
    out.close()
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    sys.exit(main(sys.argv[1:]))
