"""The OpenSSL launcher's request log: which HSM made each private-key operation.

When OpenSC's ``pkcs11-spy`` module is installed, the launcher loads it between the
engine and SoftHSM. The spy writes every PKCS#11 call of the openssl process to a pipe
that only the launcher reads; :class:`SpyParser` keeps just the private-key operations
(``C_Sign``, ``C_Decrypt`` …), their mechanism, key and result, and the launcher appends
one JSON line per operation to ``…/cloudhsm/<scope>/run/cloudhsm-openssl.jsonl``.

Everything else the spy reports — including ``C_Login``, whose PIN it dumps — is read
and dropped inside the launcher: nothing but the fields of :class:`EngineRequest` is
ever stored. :func:`read_requests` reads the log back::

    from labsupport.openssl import read_requests
    for r in read_requests()[-3:]:
        print(r.hsm_id, r.operation, r.mechanism, r.result)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from labsupport.workspace.home import Workspace

LOG_NAME = "cloudhsm-openssl.jsonl"

#: PKCS#11 calls that use the private key; the log records one line per call.
PRIVATE_KEY_CALLS = frozenset({"C_Sign", "C_SignFinal", "C_Decrypt", "C_DecryptFinal"})
_INIT_CALLS = {"C_SignInit": "sign", "C_DecryptInit": "decrypt"}

_CALL = re.compile(r"^\d+: (C_\w+)\s*$")
_MECHANISM = re.compile(r"pMechanism->type\s*=\s*(CKM_\w+)")
_HKEY = re.compile(r"^\[in\] hKey = (0x[0-9a-fA-F]+)")
_HOBJECT = re.compile(r"^\[in\] hObject = (0x[0-9a-fA-F]+)")
_RETURNED = re.compile(r"^Returned:\s+\d+\s+(CKR_\w+)")
_HEX_ROW = re.compile(r"^\s+00000000\s+((?:[0-9A-Fa-f]{2} ){8})")


@dataclass(frozen=True)
class EngineRequest:
    """One line of the launcher's log: an event or a private-key operation on an HSM.

    ``operation`` is ``start`` / ``failover`` / ``stop`` for launcher events and the
    PKCS#11 call (``C_Sign`` …) for operations; ``result`` is ``CKR_OK`` or the error.
    """

    time: str
    pid: int
    command: str
    hsm_id: str
    key: str
    operation: str
    mechanism: str = ""
    result: str = ""

    def __str__(self) -> str:
        what = f"{self.operation} {self.mechanism}".strip()
        tail = f" → {self.result}" if self.result else ""
        return f"[{self.command} pid {self.pid}] {what} with key {self.key} on {self.hsm_id}{tail}"


def requests_path(workspace: Workspace | None = None) -> Path:
    """The request log of the current lesson scope's client machine."""
    from labsupport.client.config import log_path  # the client layer, loaded only when needed

    return log_path(workspace or Workspace.open()).parent / LOG_NAME


def now() -> str:
    """A UTC timestamp as the client logs print it."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append_request(path: Path, request: EngineRequest) -> None:
    """Append one request to the log (one ``write`` of a whole line: safe across processes)."""
    line = json.dumps(asdict(request), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_requests(
    workspace: Workspace | None = None, pid: int | None = None
) -> list[EngineRequest]:
    """Every logged request, oldest first (only launcher process ``pid``'s when given)."""
    path = requests_path(workspace)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            request = EngineRequest(**json.loads(line))
        except (ValueError, TypeError):
            continue  # a line cut short by a killed process
        if pid is None or request.pid == pid:
            out.append(request)
    return out


class SpyParser:
    """Turns ``pkcs11-spy`` output, line by line, into private-key operations.

    ``emit(operation, mechanism, cka_id, result)`` is called once per completed
    private-key call; ``cka_id`` is the key's ``CKA_ID`` when the spy showed it (the
    engine reads it before using a key), else None. Only call names, mechanism names,
    object handles, 8-byte ``CKA_ID`` values and return codes are looked at.
    """

    def __init__(self, emit: Callable[[str, str, bytes | None, str], None]) -> None:
        self._emit = emit
        self._call = ""
        self._mechanism = ""
        self._init_key: str | None = None
        self._op_key: str | None = None
        self._op_mechanism = ""
        self._object: str | None = None
        self._want_id = False
        self._ids: dict[str, bytes] = {}

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Parse many lines."""
        for line in lines:
            self.feed(line)

    def feed(self, line: str) -> None:
        """Parse one line of spy output."""
        line = line.rstrip("\n")
        match = _CALL.match(line)
        if match:
            self._call = match.group(1)
            self._mechanism = ""
            self._object = None
            self._want_id = False
            return
        if self._call == "C_GetAttributeValue":
            self._attribute_line(line)
        elif self._call in _INIT_CALLS:
            if m := _MECHANISM.search(line):
                self._mechanism = m.group(1)
            elif m := _HKEY.match(line):
                self._init_key = m.group(1)
        match = _RETURNED.match(line)
        if not match:
            return
        result = match.group(1)
        if self._call in _INIT_CALLS and result == "CKR_OK":
            self._op_key, self._op_mechanism = self._init_key, self._mechanism
        elif self._call in PRIVATE_KEY_CALLS:
            cka_id = self._ids.get(self._op_key or "")
            self._emit(self._call, self._op_mechanism, cka_id, result)
        self._call = ""

    def _attribute_line(self, line: str) -> None:
        if m := _HOBJECT.match(line):
            self._object = m.group(1)
        elif line.startswith("[out]"):
            self._want_id = False
        elif line.lstrip().startswith("CKA_ID ") and line.rstrip().endswith("/ 8"):
            self._want_id = True
        elif self._want_id and (m := _HEX_ROW.match(line)):
            if self._object is not None:
                self._ids[self._object] = bytes.fromhex(m.group(1).replace(" ", ""))
            self._want_id = False
