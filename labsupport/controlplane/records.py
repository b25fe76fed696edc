"""The control plane's state file ``state/cloudhsmv2.json``: its records, shape and intents.

The on-disk format is declared once, as typed records (:class:`ClusterRecord`,
:class:`HsmRecord`, :class:`BackupRecord`, :class:`PkiRecord`, :class:`StepRecord`):
``TypedDict``s, because the state machine settles and changes the records in place inside
one locked read-modify-write (:meth:`~labsupport.controlplane.cluster.ControlPlane.change`)
and the JSON must stay exactly what earlier versions wrote. The load-time shape check
(:func:`validate_state`) is derived from the same declarations: the required keys of each
record and their types.

Kept apart from :mod:`~labsupport.controlplane.cluster` (the state machine and views) so
that :mod:`~labsupport.controlplane.reconcile` can repair the file without importing the
module that calls it.
"""

from __future__ import annotations

import typing
from typing import Any, TypedDict

from labsupport.workspace.home import Workspace
from labsupport.workspace.statefile import StateFile, StateShapeError, expect

STATE_NAME = "cloudhsmv2"


class _StepKeys(TypedDict):
    state: str
    at: float
    message: str


class StepRecord(_StepKeys, total=False):
    """A scheduled transition (an entry of ``next``): to ``state`` at lab time ``at``,
    also setting the fields in ``set``."""

    set: dict[str, Any]


class Tag(TypedDict):
    """A resource tag, as the API spells it."""

    Key: str
    Value: str


class PkiRecord(TypedDict, total=False):
    """A cluster's certificates (PEM): the first HSM's CSR and chain while UNINITIALIZED,
    then the signed cluster certificate and the trust anchor."""

    csr: str | None
    csr_hsm: str  # the HSM that made the CSR
    hsm_cert: str | None
    aws_hw_cert: str
    mfr_hw_cert: str
    cluster_cert: str
    trust_anchor: str


class _HsmKeys(TypedDict):
    id: str
    az: str
    subnet: str
    eni_id: str
    eni_ip: str
    hsm_type: str
    state: str  # an HsmState value
    created: float
    token: str  # the label of the SoftHSM token that is this HSM


class HsmRecord(_HsmKeys, total=False):
    """One HSM of a cluster (``clusters.<id>.hsms.<hsm id>``)."""

    state_message: str
    state_since: float
    next: list[StepRecord]
    intent: str  # "create" / "delete": a change in progress on the token store
    serial: str
    holds_cluster_key: bool
    aws_hw_cert: str
    mfr_hw_cert: str
    restored_objects: int
    restored_from: str


class _ClusterKeys(TypedDict):
    id: str
    region: str
    hsm_type: str  # an HsmType value
    mode: str  # a ClusterMode value
    state: str  # a ClusterState value
    created: float
    vpc_id: str
    security_group: str
    subnets: dict[str, str]  # AZ → subnet id
    retention: dict[str, str]  # the BackupRetentionPolicy
    hsms: dict[str, HsmRecord]
    pki: PkiRecord


class ClusterRecord(_ClusterKeys, total=False):
    """One cluster (``clusters.<cluster id>``)."""

    owner: str  # the lesson scope; a lesson tag added later wins (record_owner)
    state_message: str
    state_since: float
    next: list[StepRecord]
    intent: str  # "purge": a reset in progress
    tags: list[Tag]
    source_backup: str
    rollback_expiration: float


class _BackupKeys(TypedDict):
    id: str
    region: str
    cluster_id: str
    state: str  # a BackupState value
    created: float


class BackupRecord(_BackupKeys, total=False):
    """One backup (``backups.<backup id>``); its contents are in ``backups/<id>.json``."""

    owner: str
    state_message: str
    state_since: float
    next: list[StepRecord]
    hsm_type: str
    mode: str
    never_expires: bool
    tags: list[Tag]
    pki: PkiRecord
    contents: dict[str, int] | None  # what the payload holds (users, keys); None once expired
    retention_days: int
    copied: float
    source_region: str
    source_backup: str
    source_cluster: str
    deleted_at: float | None
    policy: str


class ControlPlaneDocument(TypedDict):
    """The whole of ``cloudhsmv2.json``."""

    clusters: dict[str, ClusterRecord]
    backups: dict[str, BackupRecord]


def state_file(workspace: Workspace) -> StateFile:
    """The control plane's :class:`StateFile` (shape-checked on load)."""
    return workspace.state(STATE_NAME, {"clusters": {}, "backups": {}}, validate_state)


def has_intents(data: dict[str, Any] | ControlPlaneDocument) -> bool:
    """True if a cluster or HSM in ``data`` carries an unfinished intent."""
    for cluster in data.get("clusters", {}).values():
        if cluster.get("intent"):
            return True
        if any(h.get("intent") for h in cluster.get("hsms", {}).values()):
            return True
    return False


def _runtime_type(hint: Any) -> type | tuple[type, ...]:
    """What ``isinstance`` checks for a record field of type ``hint``."""
    if hint is float:
        return (int, float)  # JSON has one number type
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, dict):  # dict[...] and TypedDicts
        return dict
    return origin  # type: ignore[no-any-return]


def required_keys(record: type) -> dict[str, type | tuple[type, ...]]:
    """The keys every ``record`` (a TypedDict) must hold, in declaration order, with the
    type each value must have."""
    hints = typing.get_type_hints(record)
    required = record.__required_keys__  # type: ignore[attr-defined]
    return {key: _runtime_type(hints[key]) for key in hints if key in required}


_CLUSTER_KEYS = required_keys(ClusterRecord)
_HSM_KEYS = required_keys(HsmRecord)
_BACKUP_KEYS = required_keys(BackupRecord)


def validate_state(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``cloudhsmv2.json`` (missing top-level tables become empty).

    Checks the required keys of every :class:`ClusterRecord`, :class:`HsmRecord` and
    :class:`BackupRecord`. Raises :class:`~labsupport.workspace.statefile.StateShapeError`
    naming the first bad path, so the state file layer restores the last committed
    version instead of letting a ``KeyError`` escape from a boto3 call.
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
