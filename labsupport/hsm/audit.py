"""CloudHSM audit log events: what each HSM writes, in the format AWS documents.

The HSM layer writes them (the Client SDK simulation calls :func:`emit` for every command
an HSM runs); the simulated CloudWatch Logs (:mod:`labsupport.logs`) serves them.

Each HSM of a cluster keeps an audit log of the management commands it receives and
AWS ships it to CloudWatch Logs: log group ``/aws/cloudhsm/<cluster id>``, one log
stream per HSM id. An event looks like this (AWS "audit log reference" and "audit log
examples" pages)::

    Time: 12/01/26 15:04:05.123456, usecs:1796137445123456
    Sequence No : 0x1a
    Reboot counter : 0x3e
    Command Type(hex) : CN_MGMT_CMD (0x0)
    Opcode : CN_CREATE_USER (0x3)
    Session Handle : 0x2010003
    Response : 0:HSM Return: SUCCESS
    Log type : MGMT_USER_DETAILS_LOG (2)
    User Name : alice
    User Type : CN_CRYPTO_USER (1)

What the lab models: ``Time``/``usecs`` (the lab clock), a per-HSM ``Sequence No``
that counts up with no gaps, a per-HSM ``Reboot counter`` (fixed — simulated HSMs do not
reboot), the ``Opcode`` names of AWS's table (with the hex values AWS publishes:
CN_CREATE_USER 0x3, CN_LOGIN 0xd, CN_LOGOUT 0xe, CN_DESTROY_OBJECT 0x11,
CN_GENERATE_KEY_PAIR 0x19; the others are printed without one), a ``Session Handle``
shared by every command of one login (so a CN_CREATE_USER event leads to the CN_LOGIN
of the admin who ran it), ``Response`` (success, or the HSM error name), and the user or
key details. Not modelled: the exact numeric codes AWS does not publish, and the
events of AWS-internal users.

Management commands go to every HSM (one event per stream); a key is generated on one
HSM (CN_GENERATE_KEY…) and arrives on the others as CN_INSERT_MASKED_OBJECT_USER, the
cluster synchronization AWS logs. Crypto operations are not logged.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import json
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from labsupport.workspace.clock import LabClock
from labsupport.workspace.home import Workspace, belongs_to

LOG_DIR = "logs"
GROUP_PREFIX = "/aws/cloudhsm/"


class Opcode(str, enum.Enum):
    """HSM command opcodes as AWS's audit log reference names them."""

    CN_LOGIN = "CN_LOGIN"
    CN_LOGOUT = "CN_LOGOUT"
    CN_CREATE_USER = "CN_CREATE_USER"
    CN_CREATE_CO = "CN_CREATE_CO"
    CN_DELETE_USER = "CN_DELETE_USER"
    CN_CHANGE_PSWD = "CN_CHANGE_PSWD"
    CN_SET_M_VALUE = "CN_SET_M_VALUE"
    CN_APPROVE_TOKEN = "CN_APPROVE_TOKEN"
    CN_DELETE_TOKEN = "CN_DELETE_TOKEN"
    CN_GET_TOKEN = "CN_GET_TOKEN"
    CN_GENERATE_KEY = "CN_GENERATE_KEY"
    CN_GENERATE_KEY_PAIR = "CN_GENERATE_KEY_PAIR"
    CN_CREATE_OBJECT = "CN_CREATE_OBJECT"
    CN_DESTROY_OBJECT = "CN_DESTROY_OBJECT"
    CN_TOMBSTONE_OBJECT = "CN_TOMBSTONE_OBJECT"
    CN_SHARE_OBJECT = "CN_SHARE_OBJECT"
    CN_UNWRAP_KEY = "CN_UNWRAP_KEY"
    CN_INSERT_MASKED_OBJECT_USER = "CN_INSERT_MASKED_OBJECT_USER"
    CN_BACKUP_BEGIN = "CN_BACKUP_BEGIN"

    @property
    def text(self) -> str:
        """``NAME (0xN)`` when AWS publishes the value, else the name."""
        code = _PUBLISHED_CODES.get(self)
        return f"{self.value} ({code})" if code else self.value


_PUBLISHED_CODES = {
    Opcode.CN_CREATE_USER: "0x3",
    Opcode.CN_LOGIN: "0xd",
    Opcode.CN_LOGOUT: "0xe",
    Opcode.CN_DESTROY_OBJECT: "0x11",
    Opcode.CN_GENERATE_KEY_PAIR: "0x19",
}
_USER_TYPES = {"crypto-user": "CN_CRYPTO_USER (1)", "admin": "CN_CRYPTO_OFFICER (2)"}
_KEY_OPCODES = {
    Opcode.CN_GENERATE_KEY,
    Opcode.CN_GENERATE_KEY_PAIR,
    Opcode.CN_CREATE_OBJECT,
    Opcode.CN_DESTROY_OBJECT,
    Opcode.CN_TOMBSTONE_OBJECT,
    Opcode.CN_SHARE_OBJECT,
    Opcode.CN_UNWRAP_KEY,
    Opcode.CN_INSERT_MASKED_OBJECT_USER,
}


@dataclass(frozen=True)
class AuditEvent:
    """One stored event: its stream (HSM id), time (ms), ingestion time (ms), text."""

    stream: str
    timestamp: int
    ingestion: int
    message: str
    index: int

    @property
    def opcode(self) -> str:
        """The event's opcode name (e.g. ``CN_LOGIN``)."""
        return self.field("Opcode").split(" ")[0]

    def field(self, name: str) -> str:
        """The value of one ``Name : value`` line of the message ('' if absent)."""
        for line in self.message.splitlines():
            key, sep, value = line.partition(" : ")
            if sep and key.strip() == name:
                return value.strip()
        return ""


def log_group_name(cluster_id: str) -> str:
    """The CloudWatch Logs group of a cluster: ``/aws/cloudhsm/<cluster id>``."""
    return GROUP_PREFIX + cluster_id


def _root(workspace: Workspace) -> Path:
    return workspace.root / LOG_DIR


def group_dir(workspace: Workspace, cluster_id: str) -> Path:
    """Where the log group of ``cluster_id`` is stored."""
    return _root(workspace) / cluster_id


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(folder / ".lock")):
        yield


def _read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return default


def _lab_now(workspace: Workspace, scope: str) -> float:
    return LabClock(workspace).now(scope)


def _format(
    when: float,
    seq: int,
    reboot: int,
    opcode: Opcode,
    handle: int,
    response: str,
    user: str | None,
    role: str | None,
    keys: tuple[str, ...],
) -> str:
    stamp = _dt.datetime.fromtimestamp(when, tz=_dt.timezone.utc)
    lines = [
        f"Time: {stamp:%m/%d/%y %H:%M:%S.%f}, usecs:{int(when * 1_000_000)}",
        f"Sequence No : {seq:#x}",
        f"Reboot counter : {reboot:#x}",
        "Command Type(hex) : CN_MGMT_CMD (0x0)",
        f"Opcode : {opcode.text}",
        f"Session Handle : {handle:#x}",
        f"Response : {response}",
    ]
    if opcode in _KEY_OPCODES:
        lines.append("Log type : MGMT_KEY_DETAILS_LOG (1)")
        lines.append(f"Priv/Secret Key Handle : {keys[0] if keys else '0x0'}")
        if len(keys) > 1:
            lines.append(f"Public Key Handle : {keys[1]}")
    elif user is not None:
        lines.append("Log type : MGMT_USER_DETAILS_LOG (2)")
        lines.append(f"User Name : {user}")
        lines.append(f"User Type : {_USER_TYPES.get(role or '', 'CN_CRYPTO_USER (1)')}")
    return "\n".join(lines)


def emit(
    workspace: Workspace,
    cluster_id: str,
    opcode: Opcode,
    *,
    hsm_ids: Iterable[str],
    owner: str,
    region: str,
    actor: str | None = None,
    user: str | None = None,
    role: str | None = None,
    keys: Iterable[str] = (),
    response: str = "SUCCESS",
    login: bool = False,
) -> int:
    """Write one audit event to the stream of each HSM in ``hsm_ids``.

    ``owner`` is the lesson scope of the cluster (its lab clock dates the event; a reset
    of that scope removes the log group) and ``region`` the cluster's region. ``actor``
    is who ran the command (its session handle is that user's last login);
    ``login=True`` starts a new session handle for ``user``. ``user``/``role`` are the
    user the event is about; ``keys`` the key references. ``response`` is ``SUCCESS``
    or an HSM error name. Returns the number of events written.
    """
    hsms = list(hsm_ids)
    if not hsms:
        return 0
    folder = group_dir(workspace, cluster_id)
    status = "0:HSM Return: SUCCESS" if response == "SUCCESS" else f"1:HSM Error: {response}"
    with _locked(folder):
        # One small JSON file per group holds the session handles and every stream's
        # counters, so an event costs one read, one append per HSM and one write — a
        # login (which emits CN_LOGIN) stays cheap.
        group_path = folder / "group.json"
        group = _read_json(group_path, {})
        now = _lab_now(workspace, owner)
        if not group:
            group = {"created": int(now * 1000), "owner": owner, "region": region, "sessions": {}}
        sessions = group.setdefault("sessions", {})
        counters = group.setdefault("streams", {})
        if login and user is not None:
            sessions[user] = 0x2000000 | secrets.randbits(20)
        handle = sessions.get(actor or user or "", 0)
        written = 0
        for hsm_id in hsms:
            # Workspaces made before counters moved into group.json kept a meta file.
            meta = counters.get(hsm_id) or _read_json(folder / f"{hsm_id}.meta.json", {})
            if not meta:
                meta = {"created": int(now * 1000), "seq": 0, "reboot": 1 + secrets.randbelow(200)}
            message = _format(
                now, meta["seq"], meta["reboot"], opcode, handle, status, user, role, tuple(keys)
            )
            with open(folder / f"{hsm_id}.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"t": int(now * 1000), "i": int(now * 1000), "m": message}))
                fh.write("\n")
            meta["seq"] += 1
            meta["last"] = int(now * 1000)
            counters[hsm_id] = meta
            written += 1
        group_path.write_text(json.dumps(group))
    return written


def emit_quietly(workspace: Workspace, cluster_id: str, opcode: Opcode, **fields: Any) -> None:
    """:func:`emit`, but a failure to write the log never fails the HSM command."""
    with contextlib.suppress(OSError, ValueError):
        emit(workspace, cluster_id, opcode, **fields)


# -- reading (the CloudWatch Logs simulator uses these) ------------------------------------------


def groups(workspace: Workspace) -> list[dict[str, Any]]:
    """Every stored log group: ``{"cluster_id", "created", "owner", "region"}``."""
    out = []
    root = _root(workspace)
    if not root.exists():
        return out
    for folder in sorted(root.iterdir()):
        meta = _read_json(folder / "group.json", {})
        if meta:
            meta.pop("streams", None)
            out.append({"cluster_id": folder.name, **meta})
    return out


def streams(workspace: Workspace, cluster_id: str) -> list[dict[str, Any]]:
    """The streams of one group: ``{"name", "created", "last", "events", "bytes"}``."""
    folder = group_dir(workspace, cluster_id)
    counters = {  # older workspaces: one meta file per stream
        path.name[: -len(".meta.json")]: _read_json(path, {}) for path in folder.glob("*.meta.json")
    }
    counters.update(_read_json(folder / "group.json", {}).get("streams", {}))
    out = []
    for name in sorted(counters):
        meta = counters[name]
        data = folder / f"{name}.jsonl"
        out.append(
            {
                "name": name,
                "created": meta.get("created", 0),
                "last": meta.get("last", meta.get("created", 0)),
                "events": meta.get("seq", 0),
                "bytes": data.stat().st_size if data.exists() else 0,
            }
        )
    return out


def read_events(workspace: Workspace, cluster_id: str, stream: str) -> list[AuditEvent]:
    """Every event of one stream, oldest first."""
    path = group_dir(workspace, cluster_id) / f"{stream}.jsonl"
    events = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for i, line in enumerate(lines):
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            events.append(AuditEvent(stream, rec["t"], rec["i"], rec["m"], i))
    return events


def delete_groups_owned_by(workspace: Workspace, lesson: str | None) -> None:
    """Remove the log groups whose cluster belonged to ``lesson`` (all when None)."""
    for group in groups(workspace):
        if lesson is None or belongs_to(group.get("owner", ""), lesson):
            shutil.rmtree(group_dir(workspace, group["cluster_id"]), ignore_errors=True)
