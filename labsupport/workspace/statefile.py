"""JSON state files written atomically under a file lock.

Two kernels may touch the same workspace at once, and a kernel may be killed in
the middle of a write. Every update therefore takes an exclusive lock, writes a
temporary file, fsyncs it and renames it over the old one (a reader never sees half a
file), then keeps a second copy of what it just committed as ``<name>.bak``. A file
damaged later (edited by hand, truncated disk, wrong shape) is quarantined and the
last *committed* state is restored from that copy, with one line saying so.

The owner of a state file may pass ``validate``: a function that checks the shape of
the parsed document (raising :class:`StateShapeError` naming the bad path) and may fill
in missing top-level defaults. A document of the wrong shape is treated like a damaged
one, so no raw ``KeyError`` ever reaches a boto3 caller.

Whoever holds the lock writes who they are into ``<name>.lock.owner``; a caller that
waits too long gets a :class:`~labsupport.errors.LockTimeout` naming that process and
how to recover, never a raw ``filelock.Timeout``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from labsupport.errors import CorruptStateError, LockTimeout, WorkspaceError

#: How long a caller waits for another process's lock before it is told who holds it.
LOCK_TIMEOUT_S = 30.0

Validator = Callable[[dict[str, Any]], dict[str, Any]]


class StateShapeError(ValueError):
    """The document parsed as JSON but does not have the shape its owner expects."""


class StateRestored(RuntimeWarning):
    """A damaged state file was replaced by its last committed version."""


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """Return ``value`` if it is a ``kind``; else raise :class:`StateShapeError` at ``where``."""
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise StateShapeError(f"{where} must be a number, not a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise StateShapeError(f"{where} must be {_json_name(names)}, not {type(value).__name__}")
    return value


def _json_name(py: str) -> str:
    return {"dict": "an object", "list": "a list", "str": "a string"}.get(py, py)


def _process_name() -> str:
    argv = " ".join(sys.argv[:3]) if sys.argv and sys.argv[0] else "python"
    return argv[:120]


_LOCKS: dict[str, FileLock] = {}


def _lock_for(path: Path, timeout: float) -> FileLock:
    # One FileLock object per lock file and process, so that nested updates through two
    # StateFile objects for the same file re-enter the lock instead of waiting for it.
    key = os.path.abspath(path)
    lock = _LOCKS.get(key)
    if lock is None:
        lock = _LOCKS[key] = FileLock(key, timeout=timeout)
    return lock


class StateFile:
    """One JSON document in the workspace, e.g. ``state/cloudhsmv2.json``.

    Use :meth:`read` for a snapshot and ``with state.update() as data:`` to change
    it: the block runs under the lock and the result is written atomically when
    the block ends without an exception. Inside the block, :meth:`commit` makes an
    intermediate version durable (an *intent* recorded before touching another store).
    """

    def __init__(
        self,
        path: Path,
        default: dict[str, Any] | None = None,
        validate: Validator | None = None,
        timeout: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.backup = self.path.with_name(self.path.name + ".bak")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.owner_path = self.path.with_name(self.path.name + ".lock.owner")
        self._lock = _lock_for(self.lock_path, timeout)
        self._timeout = timeout
        self._default = default if default is not None else {}
        self._validate = validate
        # Cache keyed on the file's bytes: a read costs one small read(2) and no JSON or
        # shape work when nothing changed, which keeps describe-style calls fast. Not keyed
        # on (mtime, size, inode): ext4 stamps files with a coarse clock and reuses a
        # replaced file's inode, so another process's quick rewrite of the same size could
        # look unchanged and a locked update would write a stale copy back.
        self._cache: tuple[bytes, dict[str, Any]] | None = None

    def read(self) -> dict[str, Any]:
        """Return the current contents (a fresh copy the caller may change)."""
        return json.loads(json.dumps(self._load()))

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Lock, yield the contents for changing, then write them back atomically."""
        with self.locked():
            data = self.read()
            yield data
            self._write(data)

    def commit(self, data: dict[str, Any]) -> None:
        """Write ``data`` now, inside an :meth:`update` block (the lock must be held)."""
        if not self._lock.is_locked:
            raise RuntimeError("StateFile.commit() needs the lock: call it inside update()")
        self._write(data)

    @contextlib.contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the file's exclusive lock (re-entrant within one process).

        Raises :class:`~labsupport.errors.LockTimeout` (naming the holder) if another
        process keeps it longer than ``timeout`` seconds (default 30).
        """
        outermost = not self._lock.is_locked
        wait = self._timeout if timeout is None else timeout
        try:
            self._lock.acquire(timeout=wait)
        except Timeout:
            raise self._lock_timeout(wait) from None
        except PermissionError as exc:
            raise WorkspaceError(
                f"Cannot lock {self.path.parent}: permission denied.",
                "Make the workspace writable or point CLOUDHSM_LAB_HOME at a directory you own.",
            ) from exc
        try:
            if outermost:
                self._write_owner()
            yield
        finally:
            self._lock.release()

    def try_locked(self) -> contextlib.AbstractContextManager[bool]:
        """``with state.try_locked() as got:`` — take the lock only if it is free right now."""
        return _TryLock(self)

    def replace(self, data: dict[str, Any]) -> None:
        """Overwrite the whole document atomically."""
        with self.locked():
            self._write(data)

    def leftover_temp_files(self) -> list[Path]:
        """Temporary files of this state file left by a process killed mid-write."""
        prefix = f".{self.path.name}."
        try:
            names = os.listdir(self.path.parent)
        except FileNotFoundError:
            return []
        return [self.path.parent / n for n in names if n.startswith(prefix)]

    def sweep_temp_files(self) -> int:
        """Remove leftover temporary files (under the lock: no live writer owns them)."""
        with self.locked():
            found = self.leftover_temp_files()
            for path in found:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            return len(found)

    # -- internals -----------------------------------------------------------------

    def _write_owner(self) -> None:
        info = {"pid": os.getpid(), "process": _process_name(), "since": time.time()}
        with contextlib.suppress(OSError):
            self.owner_path.write_text(json.dumps(info), encoding="utf-8")

    def _lock_timeout(self, waited: float) -> LockTimeout:
        try:
            info = json.loads(self.owner_path.read_text(encoding="utf-8"))
            pid, process, since = int(info["pid"]), str(info["process"]), float(info["since"])
        except (OSError, ValueError, KeyError, TypeError):
            return LockTimeout(
                f"{self.path.name} is locked by another process (its owner is not recorded) "
                f"and stayed locked for {waited:.0f} s.",
                "Let the other kernel finish its cell (or interrupt it), then run this cell "
                "again. A lock dies with its process, so restarting that kernel always frees it.",
            )
        held = time.strftime("%H:%M:%S", time.localtime(since))
        return LockTimeout(
            f"{self.path.name} is locked by process {pid} ({process}) since {held}; "
            f"waited {waited:.0f} s for it.",
            f"Let that kernel finish its cell or interrupt it (a kernel paused in a debugger "
            f"holds the lock). If it is stuck, restart that kernel or `kill {pid}`: the lock "
            "dies with its process, and the next lab call finishes or rolls back its half-done "
            "work.",
        )

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _parse(self, text: str) -> dict[str, Any]:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise StateShapeError("the top level is not a JSON object")
        if self._validate is not None:
            data = self._validate(data)
        return data

    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return json.loads(json.dumps(self._default))
        if self._cache is not None and self._cache[0] == raw:
            return self._cache[1]
        try:
            data = self._parse(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            data = self._recover(exc)
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return data
        self._cache = (raw, data)
        return data

    def _recover(self, exc: Exception) -> dict[str, Any]:
        """Quarantine a damaged file and restore the last committed version."""
        reason = str(exc).splitlines()[0][:160]
        with self.locked():
            # Another process may have repaired it while we waited for the lock.
            try:
                return self._parse(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                pass
            try:
                data = self._parse(self.backup.read_text(encoding="utf-8"))
                saved = time.strftime("%H:%M:%S", time.localtime(self.backup.stat().st_mtime))
            except (OSError, ValueError, UnicodeDecodeError):
                data = None
            stamp = self._stamp()
            quarantine = self.path.with_name(
                f"{self.path.name}.corrupt-{stamp[0] // 10**9 if stamp else int(time.time())}"
            )
            if data is None:
                # Keep the damaged file where it is: every call says the same until a reset
                # (never silently continue with an empty state).
                if self.path.exists() and not quarantine.exists():
                    shutil.copyfile(self.path, quarantine)
                raise CorruptStateError(
                    f"The state file {self.path.name} is damaged ({reason}) and has no usable "
                    f"copy of its last committed version. The damaged file was kept as "
                    f"{quarantine.name}.",
                    "Run `python -m labsupport reset` (or lab.reset() in the notebook) to start "
                    "this part of the lab again from a clean state.",
                ) from exc
            if self.path.exists():
                os.replace(self.path, quarantine)
            self._write(data)
        warnings.warn(
            f"{self.path.name} was damaged ({reason}); restored its last committed version "
            f"(saved {saved}). Only edits made to the file outside the lab since then are lost; "
            f"the damaged copy is {quarantine.name}.",
            StateRestored,
            stacklevel=4,
        )
        return data

    def _write(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # The file first (readers see the new version), then the copy of this commit.
            self._atomic(self.path, payload)
            self._atomic(self.backup, payload)
        except PermissionError as exc:
            raise WorkspaceError(
                f"Cannot write {self.path}: permission denied.",
                "Make the workspace writable or point CLOUDHSM_LAB_HOME at a directory you own.",
            ) from exc
        except OSError as exc:
            raise WorkspaceError(
                f"Cannot write {self.path}: {exc.strerror}.",
                "Free some disk space or choose another CLOUDHSM_LAB_HOME.",
            ) from exc
        self._cache = (payload, json.loads(payload))

    def _atomic(self, target: Path, payload: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class _TryLock:
    """Non-blocking lock attempt; yields True when the lock was taken."""

    def __init__(self, state: StateFile) -> None:
        self._state = state
        self._cm: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> bool:
        cm = self._state.locked(timeout=0)
        try:
            cm.__enter__()
        except LockTimeout:
            return False
        self._cm = cm
        return True

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)
