"""Cluster, HSM and backup records: persistence, the state machine, and a Python view.

All control-plane state of a workspace lives in ``state/cloudhsmv2.json``::

    {"clusters": {cluster_id: {... "hsms": {hsm_id: {...}}}},
     "backups":  {backup_id: {...}}}

A record in a transitional state carries a ``next`` list of ``{"state", "at", "message"}``
steps. :func:`settle` applies the steps that are due on the lab clock. Reads
(:meth:`ControlPlane.view`) settle a *copy* and never write — describe calls stay fast
and two kernels can read while a third writes; writes (:meth:`ControlPlane.change`)
settle under the file lock before changing anything.

The dataclasses :class:`Cluster` and :class:`Hsm` are the read-only view other layers
(the Client SDK simulation) use; see the package docstring for the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from labsupport.controlplane import hardware
from labsupport.controlplane.clock import Step, duration
from labsupport.controlplane.reconcile import reconcile
from labsupport.controlplane.records import (
    BackupRecord,
    ClusterRecord,
    ControlPlaneDocument,
    HsmRecord,
    PkiRecord,
    StepRecord,
    has_intents,
    state_file,
)
from labsupport.controlplane.states import BackupState, ClusterState, HsmState
from labsupport.errors import CorruptStateError, LabError, LessonOrderError
from labsupport.workspace.clock import ClockReading, LabClock
from labsupport.workspace.home import (
    LESSON_TAG,
    WORKSPACE_OWNER,
    Workspace,
    belongs_to,
    current_scope,
)


class ClusterNotFound(LabError):
    """No cluster with that id exists in the workspace."""


# --- ownership ------------------------------------------------------------------------


def owner_from(tags: list[dict[str, str]] | None) -> str:
    """The owner of a new resource: its lesson tag, else ``$CLOUDHSM_LAB_LESSON``, else
    ``"workspace"``."""
    for tag in tags or []:
        if tag.get("Key") == LESSON_TAG and tag.get("Value"):
            return tag["Value"]
    return current_scope()


def record_owner(rec: ClusterRecord | BackupRecord) -> str:
    """The owner of a stored cluster or backup record (a lesson tag added later counts)."""
    for tag in rec.get("tags", []):
        if tag.get("Key") == LESSON_TAG and tag.get("Value"):
            return tag["Value"]
    return rec.get("owner", WORKSPACE_OWNER)


# --- the state machine ------------------------------------------------------------------


def step(state: str, at: float, message: str) -> StepRecord:
    """A scheduled transition to ``state`` at lab time ``at``."""
    return {"state": state, "at": at, "message": message}


def schedule(
    rec: ClusterRecord | HsmRecord | BackupRecord, now: float, *steps: tuple[str, Step, str]
) -> None:
    """Replace ``rec``'s pending transitions with ``steps`` (state, duration kind, message),
    each starting when the previous one ends."""
    at = now
    rec["next"] = []
    for state, kind, message in steps:
        at += duration(kind)
        rec["next"].append(step(state, at, message))


def _settle_record(rec: ClusterRecord | HsmRecord | BackupRecord, now: float) -> None:
    pending = rec.get("next") or []
    while pending and pending[0]["at"] <= now:
        done = pending.pop(0)
        rec["state"] = done["state"]
        rec["state_message"] = done["message"]
        rec["state_since"] = done["at"]
        fields = cast("dict[str, Any]", rec)  # ``set`` names fields of any record kind
        for key, value in done.get("set", {}).items():
            fields[key] = value
    rec["next"] = pending


#: How long (lab seconds) DescribeClusters still lists a DELETED cluster before the
#: state file forgets it (backups follow their own 7-day PENDING_DELETION rule).
KEEP_DELETED_S = 3600.0


def settle(data: ControlPlaneDocument, clock: ClockReading) -> ControlPlaneDocument:
    """Apply every transition due on the lab clock to the state document ``data`` (in place).

    Each record is judged by the clock of the lesson scope that owns it. HSMs that
    reached DELETED disappear from their cluster, as on AWS; DELETED clusters are listed
    for :data:`KEEP_DELETED_S` more, then pruned from the state. A record with an
    ``intent`` (a half-done change another process is making, or that
    :mod:`~labsupport.controlplane.reconcile` will repair) has no steps, so never moves.
    """
    clusters = data.get("clusters", {})
    for cid in list(clusters):
        cluster = clusters[cid]
        now = clock.now(record_owner(cluster))
        _settle_record(cluster, now)
        hsms = cluster.get("hsms", {})
        for hsm in hsms.values():
            _settle_record(hsm, now)
        for hsm_id in [h for h, rec in hsms.items() if rec["state"] == HsmState.DELETED]:
            del hsms[hsm_id]
        if (
            cluster["state"] == ClusterState.DELETED
            and cluster.get("state_since", now) < now - KEEP_DELETED_S
        ):
            del clusters[cid]
    for backup in data.get("backups", {}).values():
        _settle_record(backup, clock.now(record_owner(backup)))
    return data


class ControlPlane:
    """The persisted CloudHSMv2 state of one workspace, with its lab clock."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.clock = LabClock(workspace)
        self.state = state_file(workspace)

    def view(self) -> ControlPlaneDocument:
        """A settled copy of the state (reading never writes).

        If the state shows an intent nobody is working on (its process died), it is
        repaired first — see :mod:`~labsupport.controlplane.reconcile`.
        """
        data = self.state.read()
        if has_intents(data) and reconcile(self.workspace):
            data = self.state.read()
        return settle(cast(ControlPlaneDocument, data), self.clock.reading())

    @contextlib.contextmanager
    def change(self) -> Iterator[ControlPlaneDocument]:
        """Lock, settle, and yield the state for changing; written back atomically.

        Intents found under the lock belong to a dead process: they are repaired first.
        """
        with self.state.locked():
            if has_intents(self.state.read()):
                reconcile(self.workspace, wait=True)
            with self.state.update() as raw:
                data = cast(ControlPlaneDocument, raw)  # validate_state checked its shape
                settle(data, self.clock.reading())
                yield data

    def commit(self, data: ControlPlaneDocument) -> None:
        """Make ``data`` durable now, inside :meth:`change` (records an intent)."""
        self.state.commit(cast("dict[str, Any]", data))


# --- Python view for other layers ---------------------------------------------------------


@dataclass(frozen=True)
class Hsm:
    """One HSM of a cluster, as the rest of labsupport sees it.

    ``token_label`` is the SoftHSM token that *is* this HSM (open it with
    ``labsupport.hsm.tokens.firmware_session(store, token_label)``, inside the lab only;
    learners see it through ``labsupport.client.inspector.inspect_hsm``).
    """

    hsm_id: str
    cluster_id: str
    availability_zone: str
    subnet_id: str
    eni_id: str
    eni_ip: str
    state: HsmState
    state_message: str
    hsm_type: str
    token_label: str
    serial: str
    holds_cluster_key: bool
    aws_hardware_certificate: str = field(repr=False)
    manufacturer_hardware_certificate: str = field(repr=False)


@dataclass(frozen=True)
class Cluster:
    """A CloudHSM cluster and its HSMs (a snapshot; call :func:`describe_cluster` again
    for fresh state). Certificates are PEM text or None."""

    cluster_id: str
    region: str
    state: ClusterState
    state_message: str
    hsm_type: str
    mode: str
    vpc_id: str
    security_group: str
    subnet_mapping: dict[str, str]
    hsms: tuple[Hsm, ...]
    owner: str
    created: float
    cluster_csr: str | None = field(default=None, repr=False)
    hsm_certificate: str | None = field(default=None, repr=False)
    aws_hardware_certificate: str | None = field(default=None, repr=False)
    manufacturer_hardware_certificate: str | None = field(default=None, repr=False)
    cluster_certificate: str | None = field(default=None, repr=False)
    trust_anchor: str | None = field(default=None, repr=False)

    @property
    def active_hsms(self) -> tuple[Hsm, ...]:
        """The HSMs in state ACTIVE (the ones a client can use)."""
        return tuple(h for h in self.hsms if h.state is HsmState.ACTIVE)

    @property
    def eni_ips(self) -> tuple[str, ...]:
        """ENI IPs of the ACTIVE HSMs (what ``configure --cluster-id`` discovers)."""
        return tuple(h.eni_ip for h in self.active_hsms)

    @property
    def initialized(self) -> bool:
        """True once InitializeCluster has completed (INITIALIZED, ACTIVE or DEGRADED)."""
        return self.state in (ClusterState.INITIALIZED, ClusterState.ACTIVE, ClusterState.DEGRADED)


def _hsm_view(rec: HsmRecord, cluster_id: str) -> Hsm:
    return Hsm(
        hsm_id=rec["id"],
        cluster_id=cluster_id,
        availability_zone=rec["az"],
        subnet_id=rec["subnet"],
        eni_id=rec["eni_id"],
        eni_ip=rec["eni_ip"],
        state=HsmState(rec["state"]),
        state_message=rec.get("state_message", ""),
        hsm_type=rec["hsm_type"],
        token_label=rec["token"],
        serial=rec.get("serial", ""),
        holds_cluster_key=bool(rec.get("holds_cluster_key")),
        aws_hardware_certificate=rec.get("aws_hw_cert", ""),
        manufacturer_hardware_certificate=rec.get("mfr_hw_cert", ""),
    )


def cluster_view(rec: ClusterRecord) -> Cluster:
    """The :class:`Cluster` dataclass of a settled cluster record."""
    pki = rec.get("pki", {})
    return Cluster(
        cluster_id=rec["id"],
        region=rec["region"],
        state=ClusterState(rec["state"]),
        state_message=rec.get("state_message", ""),
        hsm_type=rec["hsm_type"],
        mode=rec["mode"],
        vpc_id=rec["vpc_id"],
        security_group=rec["security_group"],
        subnet_mapping=dict(rec["subnets"]),
        hsms=tuple(
            _hsm_view(h, rec["id"])
            for h in sorted(rec["hsms"].values(), key=lambda h: h["created"])
        ),
        owner=record_owner(rec),
        created=rec["created"],
        cluster_csr=pki.get("csr"),
        hsm_certificate=pki.get("hsm_cert"),
        aws_hardware_certificate=pki.get("aws_hw_cert"),
        manufacturer_hardware_certificate=pki.get("mfr_hw_cert"),
        cluster_certificate=pki.get("cluster_cert"),
        trust_anchor=pki.get("trust_anchor"),
    )


def _ws(workspace: Workspace | None) -> Workspace:
    return workspace or Workspace.open()


def describe_cluster(workspace: Workspace | None, cluster_id: str) -> Cluster:
    """The cluster ``cluster_id`` (any region) with its HSMs and certificates.

    Raises :class:`ClusterNotFound` if the workspace has no such cluster.
    """
    rec = ControlPlane(_ws(workspace)).view()["clusters"].get(cluster_id)
    if rec is None:
        raise ClusterNotFound(
            f"There is no cluster {cluster_id} in this lab workspace.",
            "List your clusters with aws.client('cloudhsmv2').describe_clusters(), or run "
            "lesson 02 (or controlplane.quickstart.initialized_cluster) to create one.",
        )
    return cluster_view(rec)


def list_clusters(
    workspace: Workspace | None = None,
    region: str | None = None,
    owner: str | None = None,
    include_deleted: bool = False,
) -> list[Cluster]:
    """All clusters of the workspace, oldest first, optionally filtered."""
    clusters = []
    for rec in ControlPlane(_ws(workspace)).view()["clusters"].values():
        if region and rec["region"] != region:
            continue
        if owner is not None and record_owner(rec) != owner:
            continue
        if not include_deleted and rec["state"] in (
            ClusterState.DELETED,
            ClusterState.DELETE_IN_PROGRESS,
        ):
            continue
        clusters.append(cluster_view(rec))
    return sorted(clusters, key=lambda c: c.created)


def cluster_for_ip(workspace: Workspace | None, eni_ip: str) -> Cluster:
    """The cluster that has an HSM with ENI IP ``eni_ip`` (as ``configure -a`` needs)."""
    for cluster in list_clusters(workspace):
        if any(h.eni_ip == eni_ip for h in cluster.hsms):
            return cluster
    raise ClusterNotFound(
        f"No HSM in this lab workspace has the IP address {eni_ip}.",
        "Use an EniIp from describe_clusters()['Clusters'][0]['Hsms'].",
    )


def activate_cluster(workspace: Workspace | None, cluster_id: str) -> Cluster:
    """Mark an INITIALIZED cluster ACTIVE — what ``cluster activate`` in CloudHSM CLI does.

    The Client SDK simulation calls this after setting the admin password; AWS takes a
    backup of the cluster when it is activated, so one is recorded here too.
    """
    ws = _ws(workspace)
    plane = ControlPlane(ws)
    with plane.change() as data:
        rec = data["clusters"].get(cluster_id)
        if rec is None:
            describe_cluster(ws, cluster_id)  # raises ClusterNotFound
            raise AssertionError("unreachable")
        state = ClusterState(rec["state"])
        if state is ClusterState.ACTIVE:
            return cluster_view(rec)
        if state is not ClusterState.INITIALIZED:
            raise LessonOrderError(
                f"Cluster {cluster_id} is {state.value}; only an INITIALIZED cluster can be "
                "activated.",
                "Sign the cluster CSR, call initialize_cluster, and wait for INITIALIZED first "
                "(lesson 02).",
            )
        rec["state"] = ClusterState.ACTIVE.value
        rec["state_message"] = "Cluster is active."
        rec["next"] = []
        now = plane.clock.now()
        record_backup(data, rec, now, ws)
        return cluster_view(rec)


def record_backup(
    data: ControlPlaneDocument,
    cluster: ClusterRecord,
    now: float,
    workspace: Workspace | None = None,
    last_resort: str | None = None,
) -> BackupRecord:
    """Add an automatic backup of ``cluster`` to the state (CREATE_IN_PROGRESS → READY).

    With ``workspace``, the HSMs' users and keys are captured and stored encrypted
    (:mod:`labsupport.controlplane.backups`); ``last_resort`` names an HSM being deleted,
    read only if no other HSM holds the keys.
    """
    from labsupport.controlplane import backups, ids

    pki, kept = cluster.get("pki", PkiRecord()), PkiRecord()  # a backup keeps the signed cert
    if "cluster_cert" in pki:
        kept["cluster_cert"] = pki["cluster_cert"]
    if "trust_anchor" in pki:
        kept["trust_anchor"] = pki["trust_anchor"]
    backup: BackupRecord = {
        "id": ids.backup_id(),
        "region": cluster["region"],
        "cluster_id": cluster["id"],
        "owner": record_owner(cluster),
        "state": BackupState.CREATE_IN_PROGRESS.value,
        "state_message": "",
        "created": now,
        "hsm_type": cluster["hsm_type"],
        "mode": cluster["mode"],
        "never_expires": False,
        "tags": [],
        "pki": kept,
    }
    if workspace is not None:
        contents = backups.capture(workspace, cluster, last_resort)
        backup["contents"] = backups.seal(workspace, backup["id"], contents)
        backup["retention_days"] = int(cluster.get("retention", {}).get("Value", 90))
    schedule(backup, now, (BackupState.READY.value, Step.BACKUP_CREATE, ""))
    data["backups"][backup["id"]] = backup
    return backup


# --- reset -------------------------------------------------------------------------------------


def delete_clusters_owned_by(workspace: Workspace, lesson: str | None) -> list[str]:
    """Remove at once every cluster (and backup) owned by ``lesson`` (all when None).

    Deletes the HSMs' tokens and forgets the records — no DELETE_IN_PROGRESS, no waiting.
    Crash-safe: the clusters are marked ``intent: purge`` (committed) before any token is
    deleted, so an interrupted reset is finished by the next reconcile.
    Returns the ids of the removed clusters.
    """
    from labsupport.controlplane import backups

    plane = ControlPlane(workspace)
    try:
        view = plane.view()
    except CorruptStateError:
        if lesson is not None:
            raise  # which clusters are the lesson's is unknown: its fix is a whole reset
        # A whole-workspace reset with a damaged state file (already kept as .corrupt-*):
        # the token step removed every HSM token, the file goes with state/, and the
        # backup payloads go here — so the reset the error message names always works.
        backups.delete_all_payloads(workspace)
        return []
    if not any(belongs_to(record_owner(r), lesson) for r in view["clusters"].values()) and not any(
        belongs_to(record_owner(r), lesson) for r in view["backups"].values()
    ):
        return []
    removed: list[str] = []
    with plane.change() as data:
        doomed = [
            cid for cid, rec in data["clusters"].items() if belongs_to(record_owner(rec), lesson)
        ]
        for cid in doomed:
            data["clusters"][cid]["intent"] = "purge"
        if doomed:
            plane.commit(data)
        for cid in doomed:
            for hsm in data["clusters"][cid]["hsms"].values():
                hardware.decommission_hsm(workspace, hsm["token"])
            del data["clusters"][cid]
            removed.append(cid)
        for bid, rec in list(data["backups"].items()):
            if belongs_to(record_owner(rec), lesson):
                del data["backups"][bid]
                backups.delete_payload(workspace, bid)
    return removed
