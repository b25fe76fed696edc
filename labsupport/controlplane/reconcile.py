"""Repair what a killed process left half-done between the control plane and SoftHSM.

Two stores must agree: ``state/cloudhsmv2.json`` (clusters and HSMs) and the SoftHSM
tokens that *are* the HSMs (``state/tokens.json`` + the token directory). CreateHsm,
DeleteHsm and a lesson reset therefore work *intent first*, all under the
``cloudhsmv2.json`` lock:

1. record the intent and commit it — the HSM in ``CREATE_IN_PROGRESS`` with
   ``"intent": "create"`` and its token label, or ``DELETE_IN_PROGRESS`` with
   ``"intent": "delete"``, or a cluster with ``"intent": "purge"``;
2. create or delete the token (itself intent-first in ``tokens.json``);
3. commit the completed record (no intent).

A process killed anywhere leaves an intent that nobody holds the lock for. :func:`reconcile`
(run when a ``cloudhsmv2`` client is made, and by any read or write that sees an intent)
takes the lock and repairs it: an interrupted create is **rolled back** (the caller never
got an HsmId), an interrupted delete or purge is **finished**; then tokens of HSMs that
no longer exist are deleted, HSMs whose token vanished are removed ("zombies"), and
leftover temporary files are swept. It says in one line what it repaired.

Lock order is always ``cloudhsmv2.json`` → ``tokens.json``, so nothing deadlocks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from labsupport.controlplane.records import STATE_NAME, has_intents, state_file
from labsupport.controlplane.states import ClusterState, HsmState
from labsupport.hsm.tokens import TokenPurpose, TokenStore, firmware_delete
from labsupport.workspace.home import Workspace
from labsupport.workspace.repairs import RepairReport, counted, repaired
from labsupport.workspace.statefile import StateFile


class ControlPlaneRepaired(RuntimeWarning):
    """The control plane repaired work a killed process had left half-done."""


@dataclass
class Repairs(RepairReport):
    """What :func:`reconcile` did (HSM ids and token labels)."""

    rolled_back_creates: list[str] = repaired("rolled back interrupted CreateHsm of")
    finished_deletes: list[str] = repaired("finished interrupted DeleteHsm of")
    purged_clusters: list[str] = repaired("finished the interrupted reset of")
    zombie_hsms: list[str] = repaired("removed HSMs whose token had vanished:")
    orphan_tokens: list[str] = repaired("deleted tokens of HSMs that no longer exist:")
    token_repairs: list[str] = repaired("repaired token records:")
    temp_files: int = counted("removed {count} leftover temporary file(s)")


def needs_reconcile(workspace: Workspace, state: StateFile | None = None) -> bool:
    """Cheap check (no lock, no PKCS#11): is anything half-done or out of step?"""
    state = state or state_file(workspace)
    store = TokenStore(workspace)
    data = state.read()
    if has_intents(data) or state.leftover_temp_files():
        return True
    if store.needs_reconcile():
        return True
    records = store.records()
    hsms = [h for c in data.get("clusters", {}).values() for h in c.get("hsms", {}).values()]
    hsm_tokens = {h["token"] for h in hsms}
    if any(h["token"] not in records for h in hsms if _keeps_a_token(h)):
        return True  # an HSM whose token is gone
    orphans = {r.label for r in records.values() if r.purpose is TokenPurpose.HSM} - hsm_tokens
    return bool(orphans)


def reconcile(workspace: Workspace, wait: bool = False) -> Repairs:
    """Repair half-done control-plane work (see the module docstring); returns what it did.

    With ``wait`` False it gives up at once if another process holds the lock — that
    process is alive, so its intents are not abandoned.
    """
    repairs = Repairs()
    state = state_file(workspace)
    if not needs_reconcile(workspace, state):
        return repairs
    lock = state.locked() if wait else state.try_locked()
    with lock as got:
        if got is False:
            return repairs
        _reconcile_locked(workspace, state, repairs)
    if repairs:
        warnings.warn(
            f"CloudHSM Lab repaired {STATE_NAME}.json after an interrupted operation: "
            f"{repairs.summary()}.",
            ControlPlaneRepaired,
            stacklevel=3,
        )
    return repairs


def _reconcile_locked(workspace: Workspace, state: StateFile, repairs: Repairs) -> None:
    store = TokenStore(workspace)
    repairs.temp_files += state.sweep_temp_files()
    token_report = store.reconcile(wait=True)
    repairs.token_repairs += token_report.rolled_back + token_report.finished_deletes
    # Read the raw state (no settle, no recursion into reconcile) under the lock.
    data: dict[str, Any] = state.read()
    changed = False
    tokens = store.records()
    for cid in list(data["clusters"]):
        cluster = data["clusters"][cid]
        if cluster.get("intent") == "purge":
            for hsm in cluster["hsms"].values():
                firmware_delete(store, hsm["token"])
            del data["clusters"][cid]
            repairs.purged_clusters.append(cid)
            changed = True
            continue
        for hid in list(cluster["hsms"]):
            hsm = cluster["hsms"][hid]
            intent = hsm.get("intent")
            if intent == "create":
                firmware_delete(store, hsm["token"])
                repairs.rolled_back_creates.append(hid)
            elif intent == "delete":
                firmware_delete(store, hsm["token"])
                repairs.finished_deletes.append(hid)
            elif hsm["token"] not in tokens and _keeps_a_token(hsm):
                repairs.zombie_hsms.append(hid)
            else:
                continue
            del cluster["hsms"][hid]
            changed = True
            if (
                cluster.get("pki", {}).get("csr_hsm") == hid
                and cluster["state"] == ClusterState.UNINITIALIZED
            ):
                cluster["pki"] = {}  # its CSR died with it; the next HSM makes a new one
    live = {h["token"] for c in data["clusters"].values() for h in c["hsms"].values()}
    for label, rec in store.records().items():
        if rec.purpose is TokenPurpose.HSM and label not in live:
            firmware_delete(store, label)
            repairs.orphan_tokens.append(label)
    if changed:
        state.replace(data)


def _keeps_a_token(hsm: dict[str, Any]) -> bool:
    """False for an HSM that DeleteHsm finished with: its token is gone by design while it
    waits out DELETE_IN_PROGRESS on the lab clock (settle then drops it) — not a zombie."""
    return hsm.get("state") != HsmState.DELETE_IN_PROGRESS.value
