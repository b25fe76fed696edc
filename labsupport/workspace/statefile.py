"""JSON state files written atomically under a file lock.

Two kernels may touch the same workspace at once, and a kernel may be killed in
the middle of a write. Every update therefore takes an exclusive lock, writes a
temporary file, fsyncs it and renames it over the old one; the previous good
version is kept as ``<name>.bak`` so a damaged file (edited by hand, truncated
disk) is recovered instead of losing the learner's progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from labsupport.errors import CorruptStateError, WorkspaceError


class StateFile:
    """One JSON document in the workspace, e.g. ``state/cloudhsmv2.json``.

    Use :meth:`read` for a snapshot and ``with state.update() as data:`` to change
    it: the block runs under the lock and the result is written atomically when
    the block ends without an exception.
    """

    def __init__(self, path: Path, default: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.backup = self.path.with_name(self.path.name + ".bak")
        self._lock = FileLock(str(self.path.with_name(self.path.name + ".lock")), timeout=30)
        self._default = default if default is not None else {}
        # Cache keyed on the file's (mtime_ns, size, inode): reads do no JSON work
        # when nothing changed, which keeps describe-style calls fast.
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None

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

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's exclusive lock (re-entrant within one process)."""
        try:
            with self._lock:
                yield
        except PermissionError as exc:
            raise WorkspaceError(
                f"Cannot lock {self.path.parent}: permission denied.",
                "Make the workspace writable or point CLOUDHSM_LAB_HOME at a directory you own.",
            ) from exc

    def replace(self, data: dict[str, Any]) -> None:
        """Overwrite the whole document atomically."""
        with self.locked():
            self._write(data)

    # -- internals -----------------------------------------------------------------

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, Any]:
        stamp = self._stamp()
        if stamp is None:
            return json.loads(json.dumps(self._default))
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            data = self._recover(exc)
            stamp = self._stamp()
        if stamp is not None:
            self._cache = (stamp, data)
        return data

    def _recover(self, exc: Exception) -> dict[str, Any]:
        """Quarantine a damaged file and fall back to the last good backup."""
        quarantine = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        with self.locked():
            if self.path.exists():
                os.replace(self.path, quarantine)
            try:
                data = json.loads(self.backup.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("top level is not an object")
            except FileNotFoundError:
                data = None
            except ValueError:
                data = None
            if data is None:
                raise CorruptStateError(
                    f"The state file {self.path.name} was damaged ({exc}) and has no usable "
                    f"backup. The damaged copy was kept as {quarantine.name}.",
                    "Run `python -m labsupport reset` (or lab.reset() in the notebook) to start "
                    "this part of the lab again from a clean state.",
                ) from exc
            self._write(data, keep_backup=False)
        warnings.warn(
            f"{self.path.name} was damaged ({exc}); restored the last good version "
            f"(damaged copy kept as {quarantine.name}).",
            RuntimeWarning,
            stacklevel=3,
        )
        return data

    def _write(self, data: dict[str, Any], keep_backup: bool = True) -> None:
        payload = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o600)
                if keep_backup and self.path.exists():
                    # Hard-link the current (known-good) version as the backup, so the
                    # main file never disappears for a reader that holds no lock.
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.backup)
                    os.link(self.path, self.backup)
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
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
        self._cache = (self._stamp() or (0, 0, 0), json.loads(payload))
