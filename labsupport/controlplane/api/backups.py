"""The backup operations: DescribeBackups (runs the daily backups and retention first),
DeleteBackup, RestoreBackup, ModifyBackupAttributes, CopyBackupToRegion; and the resource
policies AWS attaches to backups only (Get/Put/DeleteResourcePolicy)."""

from __future__ import annotations

import json
from typing import Any

from labsupport.aws.validation import known_regions
from labsupport.controlplane import backups, ids, retention
from labsupport.controlplane.api.base import CloudHsmV2Base
from labsupport.controlplane.api.inputs import (
    BACKUP_FILTERS,
    check_tags,
    invalid,
    not_found,
    page_of,
    parse_filters,
)
from labsupport.controlplane.api.shapes import backup_to_api
from labsupport.controlplane.clock import Step
from labsupport.controlplane.cluster import schedule
from labsupport.controlplane.records import BackupRecord, ControlPlaneDocument
from labsupport.controlplane.states import BackupState


class BackupOperations(CloudHsmV2Base):
    """The backup operations and the backups' resource policies."""

    def DescribeBackups(self, params: dict[str, Any]) -> dict[str, Any]:
        """List backups (filters: backupIds, sourceBackupIds, clusterIds, states, neverExpires)."""
        filters = parse_filters(params, BACKUP_FILTERS, BackupState)
        if retention.due(self.plane.view(), self.plane.clock.reading()):
            with self.plane.change() as data:
                retention.housekeeping(self.workspace, data, self.plane.clock.reading())
        if params.get("Shared"):
            return page_of(
                "DescribeBackups", [], params, 50, "Backups"
            )  # nobody shares backups with the lab
        backups = [b for b in self.plane.view()["backups"].values() if b["region"] == self.region]
        for name, field_name in (
            ("backupIds", "id"),
            ("sourceBackupIds", "source_backup"),
            ("clusterIds", "cluster_id"),
            ("states", "state"),
        ):
            if name in filters:
                backups = [b for b in backups if b.get(field_name) in filters[name]]
        if "neverExpires" in filters:
            wanted = {v.lower() == "true" for v in filters["neverExpires"]}
            backups = [b for b in backups if bool(b.get("never_expires")) in wanted]
        backups.sort(key=lambda b: b["created"], reverse=not params.get("SortAscending", False))
        return page_of(
            "DescribeBackups", [backup_to_api(b) for b in backups], params, 50, "Backups"
        )

    def DeleteBackup(self, params: dict[str, Any]) -> dict[str, Any]:
        """Mark a READY backup for deletion (restorable for 7 days)."""
        now = self._now()
        with self.plane.change() as data:
            rec = self._backup(data, params["BackupId"])
            if rec["state"] != BackupState.READY:
                raise invalid(
                    f"Backup {rec['id']} is {rec['state']}; only a READY backup can be deleted."
                )
            rec["state"] = BackupState.PENDING_DELETION.value
            rec["deleted_at"] = now
            schedule(rec, now, (BackupState.DELETED.value, Step.BACKUP_EXPIRE, ""))
            return {"Backup": backup_to_api(rec)}

    def RestoreBackup(self, params: dict[str, Any]) -> dict[str, Any]:
        """Undo DeleteBackup for a backup in PENDING_DELETION."""
        with self.plane.change() as data:
            rec = self._backup(data, params["BackupId"])
            if rec["state"] != BackupState.PENDING_DELETION:
                raise invalid(
                    f"Backup {rec['id']} is {rec['state']}; only a backup in "
                    "PENDING_DELETION can be restored."
                )
            rec["state"] = BackupState.READY.value
            rec["deleted_at"] = None
            rec["next"] = []
            return {"Backup": backup_to_api(rec)}

    def ModifyBackupAttributes(self, params: dict[str, Any]) -> dict[str, Any]:
        """Exempt a backup from the retention policy (NeverExpires) or not."""
        with self.plane.change() as data:
            rec = self._backup(data, params["BackupId"])
            rec["never_expires"] = bool(params["NeverExpires"])
            return {"Backup": backup_to_api(rec)}

    def CopyBackupToRegion(self, params: dict[str, Any]) -> dict[str, Any]:
        """Copy a READY backup to another region (to create a cluster there)."""
        dest = params["DestinationRegion"]
        if dest not in known_regions("cloudhsmv2"):
            raise invalid(
                f"DestinationRegion {dest!r} is not a region where CloudHSM exists; e.g. us-west-2."
            )
        if dest == self.region:
            raise invalid(f"The backup is already in {dest}; choose a different DestinationRegion.")
        tags = params.get("TagList") or []
        check_tags(tags)
        now = self._now()
        with self.plane.change() as data:
            src = self._backup(data, params["BackupId"])
            if src["state"] != BackupState.READY:
                raise invalid(
                    f"Backup {src['id']} is {src['state']}; only a READY backup can be copied."
                )
            copy: BackupRecord = {
                **src,  # its ``next`` steps are replaced by schedule() below
                "id": ids.backup_id(),
                "region": dest,
                "state": BackupState.CREATE_IN_PROGRESS.value,
                "created": now,
                "copied": now,
                "source_region": self.region,
                "source_backup": src["id"],
                "source_cluster": src["cluster_id"],
                "never_expires": False,
                "deleted_at": None,
                "tags": [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags],
            }
            if src.get("contents"):
                try:
                    backups.copy_payload(self.workspace, src["id"], copy["id"])
                except backups.BackupUnreadable as exc:
                    raise invalid(f"{exc.problem} {exc.fix}") from None
            schedule(copy, now, (BackupState.READY.value, Step.BACKUP_CREATE, ""))
            data["backups"][copy["id"]] = copy
            return {
                "DestinationBackup": {
                    "CreateTimestamp": src["created"],
                    "SourceRegion": self.region,
                    "SourceBackup": src["id"],
                    "SourceCluster": src["cluster_id"],
                }
            }

    # -- resource policies (backups only, as on AWS) ---------------------------------------

    def _policy_target(self, data: ControlPlaneDocument, arn: Any) -> BackupRecord:
        match = ids.RESOURCE_ARN.match(arn) if isinstance(arn, str) else None
        if not match:
            raise invalid(
                f"Invalid ResourceArn {arn!r}: use a backup ARN such as "
                f"{ids.arn(self.region, 'backup', 'backup-ro5c4er4aac')}."
            )
        if match.group("kind") != "backup":
            raise invalid("Resource policies can be attached to backups only.")
        if match.group("account") != ids.ACCOUNT_ID or match.group("region") != self.region:
            raise not_found(f"Backup {match.group('id')} not found in this account and region.")
        return self._backup(data, match.group("id"))

    def GetResourcePolicy(self, params: dict[str, Any]) -> dict[str, Any]:
        """The resource policy of a backup (absent if it has none)."""
        rec = self._policy_target(self.plane.view(), params.get("ResourceArn"))
        return {"Policy": rec["policy"]} if rec.get("policy") else {}

    def PutResourcePolicy(self, params: dict[str, Any]) -> dict[str, Any]:
        """Attach a resource policy (JSON) to a backup, e.g. to share it."""
        policy = params.get("Policy") or ""
        try:
            json.loads(policy)
        except ValueError:
            raise invalid("Policy is not valid JSON.") from None
        with self.plane.change() as data:
            rec = self._policy_target(data, params.get("ResourceArn"))
            rec["policy"] = policy
            return {"ResourceArn": params["ResourceArn"], "Policy": policy}

    def DeleteResourcePolicy(self, params: dict[str, Any]) -> dict[str, Any]:
        """Remove the resource policy of a backup."""
        with self.plane.change() as data:
            rec = self._policy_target(data, params.get("ResourceArn"))
            policy = rec.pop("policy", None)
            out: dict[str, Any] = {"ResourceArn": params["ResourceArn"]}
            if policy:
                out["Policy"] = policy
            return out
