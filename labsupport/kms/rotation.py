"""KMS key rotation, simulated: automatic (every N days) and on demand.

What AWS does: rotating a symmetric KMS key gives it **new key material**; the key id, ARN,
policy and aliases stay. New encryptions use the newest material; every older material is
kept, so ciphertexts made before the rotation still decrypt (KMS finds the material from
the ciphertext). Automatic rotation runs every ``RotationPeriodInDays`` (90-2560, default
365); ``RotateKeyOnDemand`` rotates now (at most 25 times per key). A key with **imported**
material (``Origin=EXTERNAL``) cannot rotate automatically: you rotate it yourself —
AWS's newer on-demand rotation with freshly imported material is not simulated here, so
the lab answers ``UnsupportedOperationException`` and says so.

The lab keeps each key's rotation history and older materials in
``state/kms-rotation.json`` (the simulated service's secrets, like ``state/kms.json``),
on the lab clock (:mod:`labsupport.workspace.clock`): ``advance_clock(days=366)`` makes a
due automatic rotation happen on the next call. The ciphertext blob does not name the
material version; Decrypt tries the newest material first, then the older ones (AES-GCM
authentication tells them apart).
"""

from __future__ import annotations

import secrets
import warnings
from typing import Any

from labsupport.aws.inprocess import AwsServiceError
from labsupport.kms import ciphertext, model
from labsupport.kms.model import list_page
from labsupport.workspace.home import Workspace
from labsupport.workspace.statefile import StateFile, expect

STATE_NAME = "kms-rotation"
DAY = 86400.0
DEFAULT_PERIOD_DAYS = 365
MIN_PERIOD_DAYS, MAX_PERIOD_DAYS = 90, 2560
MAX_ON_DEMAND = 25


class KmsRepaired(RuntimeWarning):
    """The simulated KMS repaired what an interrupted process left between its two files."""


def _err(code: str, message: str) -> AwsServiceError:
    return AwsServiceError(code, message)


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``state/kms-rotation.json``: key id → rotation entry."""
    for key_id, entry in data.items():
        expect(entry, dict, key_id)
        expect(entry.get("older", []), list, f"{key_id}.older")
        expect(entry.get("rotations", []), list, f"{key_id}.rotations")
        if entry.get("current") is not None:
            expect(entry["current"], str, f"{key_id}.current")
    return data


def state_file(workspace: Workspace) -> StateFile:
    """``state/kms-rotation.json``: rotation settings, history and older materials per key."""
    return workspace.state(STATE_NAME, validate=validate)


def drop_orphans(workspace: Workspace) -> list[str]:
    """Drop the rotation state of keys ``state/kms.json`` no longer has; return their ids.

    Two files must agree: ``kms.json`` (the keys) and ``kms-rotation.json`` (their rotated
    materials). A key is committed to ``kms.json`` before any rotation state is written
    for it, and removed from ``kms.json`` before its rotation state is dropped — so a
    process killed between the two writes (a reset, the end of a deletion waiting period)
    can only leave rotation state *without* a key: older materials of a deleted key, a
    secret nobody can use. This runs whenever a KMS client is made and after deletions.
    The keys are re-read while the rotation file's lock is held, so an entry another
    process is adding (its key already committed) is never taken for an orphan.
    """
    state = state_file(workspace)
    if not state.path.exists():
        return []
    keys = model.state_file(workspace)
    if not set(state.read()) - set(keys.read().get("keys", {})):
        return []  # the usual case: no lock taken
    with state.update() as data:
        live = set(keys.read().get("keys", {}))
        gone = sorted(k for k in data if k not in live)
        for key_id in gone:
            del data[key_id]
    return gone


def reconcile(workspace: Workspace) -> list[str]:
    """Repair what a killed process left in KMS's two files, in one :class:`KmsRepaired` line.

    Drops rotation state whose key is gone (:func:`drop_orphans`) and the temporary files
    of writes that never finished (swept under each file's lock). Returns the dropped ids.
    """
    gone = drop_orphans(workspace)
    swept = 0
    for state in (model.state_file(workspace), state_file(workspace)):
        if state.leftover_temp_files():
            swept += state.sweep_temp_files()
    parts = []
    if gone:
        parts.append(
            f"dropped the rotation history of {len(gone)} key(s) that no longer exist (a "
            "reset or key deletion had been interrupted): " + ", ".join(gone)
        )
    if swept:
        parts.append(f"removed {swept} temporary file(s) of interrupted writes")
    if parts:
        warnings.warn("The simulated KMS " + "; ".join(parts) + ".", KmsRepaired, stacklevel=2)
    return gone


def _apply_due(entry: dict[str, Any], now: float) -> None:
    """Run the automatic rotations due by ``now`` (in place)."""
    while entry.get("enabled") and entry.get("next") is not None and entry["next"] <= now:
        _rotate(entry, entry["next"], "AUTOMATIC")
        entry["next"] += entry["period"] * DAY


def _rotate(entry: dict[str, Any], when: float, kind: str) -> None:
    current = entry.get("current")
    entry.setdefault("older", [])
    if current:
        entry["older"].insert(0, current)
    entry["current"] = secrets.token_bytes(32).hex()
    entry.setdefault("rotations", []).append({"date": when, "type": kind})


def current_material(workspace: Workspace, key_id: str, original: bytes, now: float) -> bytes:
    """The material new encryptions use at lab time ``now``: the newest rotated one, else
    ``original`` (automatic rotations that are due happen first)."""
    state = state_file(workspace)
    entry = state.read().get(key_id)
    if not entry:
        return original
    if entry.get("enabled") and entry.get("next") is not None and entry["next"] <= now:
        with state.update() as data:
            entry = data.setdefault(key_id, {})
            _apply_due(entry, now)
    return bytes.fromhex(entry["current"]) if entry.get("current") else original


def materials(workspace: Workspace, key_id: str, original: bytes, now: float) -> list[bytes]:
    """Every material of the key, newest first (the original material last)."""
    current = current_material(workspace, key_id, original, now)
    entry = state_file(workspace).read().get(key_id) or {}
    older = [bytes.fromhex(m) for m in entry.get("older", [])]
    out = [current, *older]
    if original not in out:
        out.append(original)
    return out


def open_any(
    workspace: Workspace,
    key_id: str,
    original: bytes,
    parsed: ciphertext.ParsedBlob,
    context: dict[str, str] | None,
    now: float,
) -> bytes:
    """Decrypt with whichever of the key's materials made the blob (newest first)."""
    for material in materials(workspace, key_id, original, now):
        try:
            return ciphertext.open_blob(parsed, material, context)
        except ciphertext.CiphertextError:
            continue
    raise ciphertext.CiphertextError("no material of this key opens the blob")


def forget_all_but(workspace: Workspace, key_ids: set[str]) -> None:
    """Drop the rotation state (and older materials) of every key not in ``key_ids``."""
    state = state_file(workspace)
    if not state.path.exists():
        return
    with state.update() as data:
        for key_id in list(data):
            if key_id not in key_ids:
                del data[key_id]


class RotationOperations:
    """The rotation operations, mixed into :class:`~labsupport.kms.service.KmsService`."""

    workspace: Workspace

    def _read_key(self, key_ref: Any) -> tuple[Any, float]:  # provided by KmsService
        raise NotImplementedError

    def _rotatable(self, params: dict[str, Any], action: str) -> Any:
        rec, now = self._read_key(params.get("KeyId"))
        state = rec.state(now).value
        if rec.origin == "EXTERNAL":
            raise _err(
                "UnsupportedOperationException",
                f"{rec.arn} has imported key material (Origin=EXTERNAL): KMS cannot {action} "
                "it. Rotate it yourself: create a new key, import new material, move your "
                "aliases and re-encrypt. (AWS can also rotate on demand with new imported "
                "material; the lab does not simulate that.)",
            )
        if state != "Enabled":
            raise _err("KMSInvalidStateException", f"{rec.arn} is {state.lower()}.")
        return rec, now

    def EnableKeyRotation(self, params: dict[str, Any]) -> dict[str, Any]:
        """Turn on automatic rotation (every RotationPeriodInDays, default 365)."""
        rec, now = self._rotatable(params, "rotate automatically")
        period = params.get("RotationPeriodInDays", DEFAULT_PERIOD_DAYS)
        if not MIN_PERIOD_DAYS <= period <= MAX_PERIOD_DAYS:
            raise _err(
                "ValidationException",
                f"RotationPeriodInDays must be between {MIN_PERIOD_DAYS} and {MAX_PERIOD_DAYS}.",
            )
        with state_file(self.workspace).update() as data:
            entry = data.setdefault(rec.key_id, {})
            _apply_due(entry, now)
            entry.update({"enabled": True, "period": period, "next": now + period * DAY})
        return {}

    def DisableKeyRotation(self, params: dict[str, Any]) -> dict[str, Any]:
        """Turn off automatic rotation (older materials are kept)."""
        rec, now = self._rotatable(params, "rotate automatically")
        with state_file(self.workspace).update() as data:
            entry = data.setdefault(rec.key_id, {})
            _apply_due(entry, now)
            entry.update({"enabled": False, "next": None})
        return {}

    def GetKeyRotationStatus(self, params: dict[str, Any]) -> dict[str, Any]:
        """Whether automatic rotation is on, its period and the next rotation date."""
        rec, now = self._read_key(params.get("KeyId"))
        with state_file(self.workspace).update() as data:
            entry = data.get(rec.key_id) or {}
            _apply_due(entry, now)
        out: dict[str, Any] = {"KeyRotationEnabled": bool(entry.get("enabled")), "KeyId": rec.arn}
        if entry.get("enabled"):
            out["RotationPeriodInDays"] = entry["period"]
            out["NextRotationDate"] = entry["next"]
        return out

    def RotateKeyOnDemand(self, params: dict[str, Any]) -> dict[str, Any]:
        """Rotate now: new material for new encryptions, older ones kept for Decrypt."""
        rec, now = self._rotatable(params, "rotate on demand")
        with state_file(self.workspace).update() as data:
            entry = data.setdefault(rec.key_id, {})
            _apply_due(entry, now)
            done = sum(1 for r in entry.get("rotations", []) if r["type"] == "ON_DEMAND")
            if done >= MAX_ON_DEMAND:
                raise _err(
                    "LimitExceededException",
                    f"{rec.arn} was rotated on demand {MAX_ON_DEMAND} times, the limit per key.",
                )
            _rotate(entry, now, "ON_DEMAND")
        return {"KeyId": rec.arn}

    def ListKeyRotations(self, params: dict[str, Any]) -> dict[str, Any]:
        """Completed rotations, oldest first (Limit / Marker pagination)."""
        rec, now = self._read_key(params.get("KeyId"))
        if rec.origin == "EXTERNAL":
            raise _err(
                "UnsupportedOperationException",
                f"{rec.arn} has imported key material; KMS keeps no rotation history for it "
                "in the lab (see RotateKeyOnDemand).",
            )
        with state_file(self.workspace).update() as data:
            entry = data.get(rec.key_id) or {}
            _apply_due(entry, now)
        rotations = [
            {"KeyId": rec.arn, "RotationDate": r["date"], "RotationType": r["type"]}
            for r in entry.get("rotations", [])
        ]
        return list_page("ListKeyRotations", rotations, params, "Rotations")
