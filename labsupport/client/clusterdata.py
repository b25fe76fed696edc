"""What the cluster's HSMs remember about users and keys, kept in the workspace.

On CloudHSM the user accounts and each key's owner and shared users are stored on every
HSM and synchronized with the keys. SoftHSM has no place for them, so the lab keeps one
JSON document per cluster, ``state/client-cluster-<cluster id>.json``::

    {"cluster_id": …, "owner": "03", "activated": false,
     "users": {"admin": {"role": "unactivated-admin", …}, …},
     "keys":  {"0x0000000000100001": {"owner": "alice", "status": "ok", …}, …},
     "next_ref": 1048578,
     "hsms":  {"hsm-…": "in-sync"}}

The document doubles as the **sync journal**: a key is recorded as ``pending`` before it
is created on any HSM and becomes ``ok`` once every HSM has a copy; a delete marks it
``deleting`` first. Whoever connects next replays what a killed kernel left half done
(:func:`labsupport.client.sync.reconcile`), so the cluster stays consistent.

All writes happen under the file's lock; one :class:`~labsupport.workspace.StateFile`
object per file and process keeps that lock re-entrant for nested updates.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from labsupport.client.roles import Role
from labsupport.workspace.home import Workspace, belongs_to
from labsupport.workspace.statefile import StateFile

STATE_PREFIX = "client-cluster-"
FIRST_REF = 0x100001

_FILES: dict[str, StateFile] = {}
_FILES_LOCK = threading.Lock()


def _statefile(workspace: Workspace, cluster_id: str) -> StateFile:
    path = workspace.state_dir / f"{STATE_PREFIX}{cluster_id}.json"
    with _FILES_LOCK:
        sf = _FILES.get(str(path))
        if sf is None:
            sf = _FILES[str(path)] = StateFile(path, {})
        return sf


def initial_document(cluster_id: str, owner: str) -> dict[str, Any]:
    """A fresh cluster: the unactivated ``admin`` and the AWS-managed ``app_user``."""
    return {
        "cluster_id": cluster_id,
        "owner": owner,
        "activated": False,
        "users": {
            "admin": {"role": Role.UNACTIVATED_ADMIN.value, "failed": 0, "locked": False},
            "app_user": {"role": Role.APPLIANCE.value, "failed": 0, "locked": False},
        },
        "keys": {},
        "next_ref": FIRST_REF,
        "hsms": {},
    }


class ClusterStore:
    """The per-cluster document of users, key metadata, sync journal and HSM sync status."""

    def __init__(self, workspace: Workspace, cluster_id: str) -> None:
        self.workspace = workspace
        self.cluster_id = cluster_id
        self._sf = _statefile(workspace, cluster_id)

    @property
    def path(self):
        """The JSON file behind this store."""
        return self._sf.path

    def exists(self) -> bool:
        """True once the document was created (first connect)."""
        return self._sf.path.exists()

    def ensure(self, owner: str) -> None:
        """Create the document for a new cluster (no-op when it exists)."""
        if self.exists():
            return
        with self._sf.update() as data:
            if not data:
                data.update(initial_document(self.cluster_id, owner))

    def read(self) -> dict[str, Any]:
        """A snapshot of the document (a copy; cached until the file changes)."""
        return self._sf.read()

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Lock, yield the document for changing, write it back atomically."""
        with self._sf.update() as data:
            yield data

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cluster lock (serializes key creation, deletion and sync)."""
        with self._sf.locked():
            yield

    def stamp(self) -> tuple[int, int]:
        """Cheap change detector: the file's (mtime_ns, inode)."""
        try:
            st = os.stat(self._sf.path)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_ino)


def store_for_hsm(workspace: Workspace, hsm_id: str) -> ClusterStore | None:
    """The store of the cluster whose HSMs include ``hsm_id`` (as last synchronized)."""
    for path in sorted(workspace.state_dir.glob(f"{STATE_PREFIX}*.json")):
        cluster_id = path.name[len(STATE_PREFIX) : -len(".json")]
        store = ClusterStore(workspace, cluster_id)
        with contextlib.suppress(Exception):  # a damaged document is no one's
            if hsm_id in store.read().get("hsms", {}):
                return store
    return None


def _gone(workspace: Workspace, cluster_id: str) -> bool:
    from labsupport.client import resolver

    try:
        resolver.describe(workspace, cluster_id)
    except resolver.ClusterNotFound:
        return True
    return False


def reset_cluster_data(workspace: Workspace, lesson: str | None) -> None:
    for path in workspace.state_dir.glob(f"{STATE_PREFIX}*.json"):
        cluster_id = path.name[len(STATE_PREFIX) : -len(".json")]
        try:
            owner = ClusterStore(workspace, cluster_id).read().get("owner") or ""
        except Exception:  # a damaged file is removed with the rest
            owner = ""
        if lesson is None or (owner and belongs_to(owner, lesson)) or _gone(workspace, cluster_id):
            for suffix in ("", ".bak", ".lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(str(path) + suffix)
            with _FILES_LOCK:
                _FILES.pop(str(path), None)
