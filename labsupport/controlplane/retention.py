"""Backup housekeeping on the lab clock: the daily backup and the retention policy.

AWS backs up every cluster at least once every 24 hours and deletes backups older than
the cluster's ``BackupRetentionPolicy`` (7-379 days, default 90) — except a backup with
``NeverExpires`` and the cluster's most recent backup, which are kept. A backup deleted
with ``DeleteBackup`` stays restorable for 7 days (PENDING_DELETION), then is gone.

The lab does this lazily: :func:`housekeeping` runs when backups are listed
(``DescribeBackups``) and catches up with the lab clock — move the clock with
``LabClock(ws).advance(days * 86400)`` and the missed daily backups appear, each dated
when AWS would have taken it (their contents are read when they are listed), and
backups past the retention period become DELETED. Each cluster and backup is judged by
the lab clock of the lesson scope that owns it. A catch-up makes only the daily backups
that are still inside the retention period (older ones AWS would already have deleted).
"""

from __future__ import annotations

from labsupport.controlplane import backups
from labsupport.controlplane.cluster import record_backup, record_owner, settle
from labsupport.controlplane.records import BackupRecord, ClusterRecord, ControlPlaneDocument
from labsupport.controlplane.states import BackupState, ClusterState
from labsupport.workspace.clock import ClockReading
from labsupport.workspace.home import Workspace

DAY = 24 * 3600.0
#: At most this many missed daily backups are made in one catch-up (a bit over a year).
MAX_CATCH_UP = 380
_BACKED_UP = (ClusterState.ACTIVE.value, ClusterState.DEGRADED.value)


def _own_backups(data: ControlPlaneDocument, cluster: ClusterRecord) -> list[BackupRecord]:
    return [
        b
        for b in data.get("backups", {}).values()
        if b["cluster_id"] == cluster["id"]
        and b["region"] == cluster["region"]
        and not b.get("source_region")
    ]


def _next_daily(data: ControlPlaneDocument, cluster: ClusterRecord) -> float | None:
    if cluster["state"] not in _BACKED_UP:
        return None
    own = _own_backups(data, cluster)
    if not own:
        return None
    return max(b["created"] for b in own) + DAY


def _expired(data: ControlPlaneDocument, backup: BackupRecord, now: float) -> int | None:
    """The retention period (days) ``backup`` has outlived, or None if it is kept."""
    if backup["state"] != BackupState.READY or backup.get("never_expires"):
        return None
    days = backup.get("retention_days")
    cluster = data.get("clusters", {}).get(backup["cluster_id"])
    if cluster is not None and cluster["region"] == backup["region"]:
        days = int(cluster["retention"]["Value"])
        newest = max(
            (b["created"] for b in _own_backups(data, cluster) if b["state"] == BackupState.READY),
            default=None,
        )
        if newest == backup["created"]:
            return None  # the most recent backup of a cluster is never deleted
    if days is not None and now - backup["created"] > float(days) * DAY:
        return int(days)
    return None


def _retention_days(cluster: ClusterRecord) -> int:
    return int(cluster.get("retention", {}).get("Value", 90))


def due(data: ControlPlaneDocument, clock: ClockReading) -> bool:
    """True if a daily backup or an expiry is due (a cheap check on a settled view)."""
    for cluster in data.get("clusters", {}).values():
        at = _next_daily(data, cluster)
        if at is not None and at <= clock.now(record_owner(cluster)):
            return True
    for backup in data.get("backups", {}).values():
        if _expired(data, backup, clock.now(record_owner(backup))) is not None:
            return True
        if backup["state"] == BackupState.DELETED and backup.get("contents"):
            return True
    return False


def housekeeping(
    workspace: Workspace, data: ControlPlaneDocument, clock: ClockReading
) -> dict[str, list[str]]:
    """Take the missed daily backups and apply retention (caller holds the state lock).

    Returns the ids of the backups made (``"daily"``) and expired (``"expired"``).
    """
    made: list[str] = []
    expired: list[str] = []
    for cluster in list(data.get("clusters", {}).values()):
        now = clock.now(record_owner(cluster))
        at = _next_daily(data, cluster)
        if at is None or at > now:
            continue
        # Days AWS would already have deleted again are skipped: keep the retention window.
        oldest_kept = now - _retention_days(cluster) * DAY
        missed = int((now - at) // DAY) + 1
        skip = max(0, int((oldest_kept - at) // DAY) + 1) if oldest_kept > at else 0
        for day in range(min(skip, missed), min(missed, skip + MAX_CATCH_UP)):
            backup = record_backup(data, cluster, at + day * DAY, workspace)
            backup["owner"] = record_owner(cluster)
            made.append(backup["id"])
    if made:
        settle(data, clock)  # backups dated in the past are READY by now
    for backup in data.get("backups", {}).values():
        days = _expired(data, backup, clock.now(record_owner(backup)))
        if days is not None:
            backup["state"] = BackupState.DELETED.value
            backup["state_message"] = (
                f"Deleted by the cluster's backup retention policy ({days} days)."
            )
            backup["next"] = []
            expired.append(backup["id"])
        if backup["state"] == BackupState.DELETED and backup.get("contents"):
            backups.delete_payload(workspace, backup["id"])
            backup["contents"] = None
    return {"daily": made, "expired": expired}
