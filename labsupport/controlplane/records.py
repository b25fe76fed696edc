"""The control plane's state file ``state/cloudhsmv2.json``: its shape and its intents.

Kept apart from :mod:`~labsupport.controlplane.cluster` (the state machine and views) so
that :mod:`~labsupport.controlplane.reconcile` can repair the file without importing the
module that calls it.
"""

from __future__ import annotations

from typing import Any

from labsupport.workspace.home import Workspace
from labsupport.workspace.statefile import StateFile, StateShapeError, expect

STATE_NAME = "cloudhsmv2"


def state_file(workspace: Workspace) -> StateFile:
    """The control plane's :class:`StateFile` (shape-checked on load)."""
    return workspace.state(STATE_NAME, {"clusters": {}, "backups": {}}, validate_state)


def has_intents(data: dict[str, Any]) -> bool:
    """True if a cluster or HSM in ``data`` carries an unfinished intent."""
    for cluster in data.get("clusters", {}).values():
        if cluster.get("intent"):
            return True
        if any(h.get("intent") for h in cluster.get("hsms", {}).values()):
            return True
    return False


_CLUSTER_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "region": str,
    "hsm_type": str,
    "mode": str,
    "state": str,
    "created": (int, float),
    "vpc_id": str,
    "security_group": str,
    "subnets": dict,
    "retention": dict,
    "hsms": dict,
    "pki": dict,
}
_HSM_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "az": str,
    "subnet": str,
    "eni_id": str,
    "eni_ip": str,
    "hsm_type": str,
    "state": str,
    "created": (int, float),
    "token": str,
}
_BACKUP_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "region": str,
    "cluster_id": str,
    "state": str,
    "created": (int, float),
}


def validate_state(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``cloudhsmv2.json`` (missing top-level tables become empty).

    Raises :class:`~labsupport.workspace.statefile.StateShapeError` naming the first bad
    path, so the state file layer restores the last committed version instead of letting
    a ``KeyError`` escape from a boto3 call.
    """
    data.setdefault("clusters", {})
    data.setdefault("backups", {})
    for cid, cluster in expect(data["clusters"], dict, "clusters").items():
        where = f"clusters.{cid}"
        expect_keys(cluster, _CLUSTER_KEYS, where)
        for hid, hsm in cluster["hsms"].items():
            expect_keys(hsm, _HSM_KEYS, f"{where}.hsms.{hid}")
    for bid, backup in expect(data["backups"], dict, "backups").items():
        expect_keys(backup, _BACKUP_KEYS, f"backups.{bid}")
    return data


def expect_keys(rec: Any, keys: dict[str, type | tuple[type, ...]], where: str) -> dict[str, Any]:
    """Check that ``rec`` is an object holding each of ``keys`` with a value of its type.

    Raises :class:`~labsupport.workspace.statefile.StateShapeError` naming the first bad
    path (``where`` + key); returns ``rec``.
    """
    expect(rec, dict, where)
    for key, kind in keys.items():
        if key not in rec:
            raise StateShapeError(f"{where} has no {key!r}")
        expect(rec[key], kind, f"{where}.{key}")
    return rec
