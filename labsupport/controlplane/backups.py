"""What a cluster backup holds, encrypted at rest, and how a new cluster is restored from it.

A CloudHSM backup is a copy of an HSM's contents: every user (with its password hash),
every token key, who owns each key and whom it is shared with, and the quorum settings.
AWS encrypts it with an *ephemeral backup key* (EBK, AES-256, one per backup) and
encrypts the EBK with a *persistent backup key* (PBK) that never leaves AWS's HSMs; the
lab does the same with ``cryptography``'s AES-GCM:

* the payload (users, key records, quorum settings, wrapped key objects) is encrypted
  under a fresh EBK, with the backup id as associated data;
* the EBK is encrypted under the workspace's PBK (``state/cloudhsm-backup-pbk.json``,
  never printed) and stored next to the payload in ``backups/<backup id>.json``;
* inside the payload, every secret or private key is still wrapped by the HSM itself
  under the cluster sync key (``CKM_AES_KEY_WRAP_PAD``, as :mod:`labsupport.client.sync`
  copies keys between HSMs), and the sync key is wrapped under the EBK inside the HSM —
  so no key material is ever in clear outside a token.

Restoring (``CreateCluster(SourceBackupId=…)``) writes the users and key records of the
new cluster (:func:`restore_cluster_document`) and, when its first HSM is created, puts
the sync key and every key object into that HSM's token (:func:`restore_into_token`);
the client then copies them to the cluster's other HSMs as usual.

Users and key ownership are kept in ``state/client-cluster-<id>.json`` (written by the
client layer, :mod:`labsupport.client.clusterdata`) because SoftHSM has no place for them;
this module reads and writes that file as the HSM's user table, without importing the
layer above it. The lab differs from AWS
in one visible way: a lab backup is taken synchronously when AWS would start one, and
becomes READY on the lab clock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport.controlplane.records import ClusterRecord
from labsupport.crypto.attributes import COPIED_FLAGS, PUBLIC_MATERIAL
from labsupport.errors import LabError
from labsupport.hsm.synckey import (
    SYNC_KEY_LABEL,
    SYNC_KEY_TEMPLATE,
    SYNC_WRAP,
    find_sync_key,
    unwrap_template,
)
from labsupport.hsm.tokens import TokenNotFound, firmware_session, token_store
from labsupport.workspace.home import Workspace
from labsupport.workspace.statefile import StateFile, StateShapeError, expect

PAYLOAD_DIR = "backups"
PBK_STATE = "cloudhsm-backup-pbk"
FORMAT = 1
#: Must match labsupport.client.clusterdata.STATE_PREFIX (tests check both).
CLUSTER_DOCUMENT_PREFIX = "client-cluster-"
REF_BYTES = 8


class BackupUnreadable(LabError):
    """A backup's payload is missing or does not decrypt."""


@dataclass
class BackupContents:
    """The decrypted contents of one backup.

    ``document`` is the cluster's user and key table (the client layer's cluster
    document without its per-HSM sync status); ``objects`` the key objects, each
    ``{"ref", "class", "key_type", "label", "attrs", "blob"}``; ``sync_key`` the cluster
    sync key wrapped under the EBK (None for a cluster that never made a key).
    """

    cluster_id: str
    document: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)
    sync_key: bytes | None = None
    sources: list[str] = field(default_factory=list, repr=False)

    @property
    def users(self) -> list[str]:
        """Names of the users in the backup."""
        return sorted(self.document.get("users", {}))

    @property
    def key_references(self) -> list[str]:
        """References (``0x…``) of the token keys in the backup."""
        return sorted(self.document.get("keys", {}))


# -- encryption at rest ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


def validate_pbk(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``cloudhsm-backup-pbk.json``: none yet, or 64 hex digits (never echoed)."""
    if "pbk" in data:
        value = expect(data["pbk"], str, "pbk")
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise StateShapeError("pbk must be 64 hex digits (an AES-256 key)")
    return data


def _pbk(workspace: Workspace) -> bytes:
    """The workspace's persistent backup key (made on first use; never shown)."""
    state = workspace.state(PBK_STATE, {}, validate_pbk)
    key = state.read().get("pbk")
    if key is None:
        with state.update() as data:
            if "pbk" not in data:
                data["pbk"] = AESGCM.generate_key(bit_length=256).hex()
            key = data["pbk"]
        with contextlib.suppress(OSError):
            os.chmod(state.path, 0o600)
    return bytes.fromhex(key)


def payload_path(workspace: Workspace, backup_id: str) -> Path:
    """Where the encrypted payload of ``backup_id`` is stored."""
    return workspace.root / PAYLOAD_DIR / f"{backup_id}.json"


def _encrypt(
    workspace: Workspace, backup_id: str, plaintext: bytes, ebk: bytes | None = None
) -> dict[str, Any]:
    ebk = ebk or AESGCM.generate_key(bit_length=256)
    nonce, ebk_nonce = secrets.token_bytes(12), secrets.token_bytes(12)
    aad = backup_id.encode()
    return {
        "format": FORMAT,
        "backup_id": backup_id,
        "cipher": "AES-256-GCM",
        "ebk_encrypted_under_pbk": {
            "nonce": _b64(ebk_nonce),
            "ciphertext": _b64(AESGCM(_pbk(workspace)).encrypt(ebk_nonce, ebk, b"ebk:" + aad)),
        },
        "nonce": _b64(nonce),
        "ciphertext": _b64(AESGCM(ebk).encrypt(nonce, plaintext, aad)),
        "sha256": hashlib.sha256(plaintext).hexdigest(),
    }


def _decrypt(workspace: Workspace, backup_id: str) -> tuple[bytes, bytes]:
    """``(plaintext, ebk)`` of a stored backup."""
    path = payload_path(workspace, backup_id)
    try:
        box = json.loads(path.read_text())
        aad = backup_id.encode()
        wrapped = box["ebk_encrypted_under_pbk"]
        ebk = AESGCM(_pbk(workspace)).decrypt(
            _unb64(wrapped["nonce"]), _unb64(wrapped["ciphertext"]), b"ebk:" + aad
        )
        plaintext = AESGCM(ebk).decrypt(_unb64(box["nonce"]), _unb64(box["ciphertext"]), aad)
    except FileNotFoundError:
        raise BackupUnreadable(
            f"The contents of backup {backup_id} are gone from this workspace.",
            "Restore from another backup (describe_backups lists them).",
        ) from None
    except Exception:  # a damaged file or a wrong key: the same answer, no detail
        raise BackupUnreadable(
            f"Backup {backup_id} does not decrypt: its file was changed or its key is gone.",
            "Restore from another backup (describe_backups lists them).",
        ) from None
    return plaintext, ebk


def _write(workspace: Workspace, backup_id: str, box: dict[str, Any]) -> None:
    path = payload_path(workspace, backup_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(box))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def delete_payload(workspace: Workspace, backup_id: str) -> None:
    """Remove the stored contents of a backup (no error if already gone)."""
    with contextlib.suppress(FileNotFoundError):
        payload_path(workspace, backup_id).unlink()


def delete_all_payloads(workspace: Workspace) -> None:
    """Remove every stored backup payload (a whole-workspace reset)."""
    shutil.rmtree(workspace.root / PAYLOAD_DIR, ignore_errors=True)


# -- capture ------------------------------------------------------------------------------------


def _document_state(workspace: Workspace, cluster_id: str) -> StateFile:
    """The cluster's user and key table, as the Client SDK layer keeps it.

    The file is the interface (``state/client-cluster-<id>.json``, written by
    :class:`labsupport.client.clusterdata.ClusterStore`): the control plane sits below the
    client layer and may not import it.
    """
    return workspace.state(f"{CLUSTER_DOCUMENT_PREFIX}{cluster_id}")


def _cluster_document(workspace: Workspace, cluster: ClusterRecord) -> dict[str, Any]:
    # An empty document: nobody connected yet, the HSM holds only its built-in users.
    doc = json.loads(json.dumps(_document_state(workspace, cluster["id"]).read() or {}))
    doc.pop("hsms", None)
    if "keys" in doc:
        doc["keys"] = {r: k for r, k in doc["keys"].items() if k.get("status", "ok") == "ok"}
    return doc


def _source_tokens(cluster: ClusterRecord, last_resort: str | None = None) -> list[str]:
    """Tokens of the cluster's HSMs to read from: ACTIVE ones first, ``last_resort`` last."""
    order = {"ACTIVE": 0, "DEGRADED": 1, "CREATE_IN_PROGRESS": 2}
    hsms = [h for h in cluster.get("hsms", {}).values() if h["state"] in order]
    hsms.sort(key=lambda h: (h["id"] == last_resort, order[h["state"]], h["created"]))
    return [h["token"] for h in hsms]


def _export_object(obj: pkcs11.Object, ref: int, sync_key: pkcs11.SecretKey) -> dict[str, Any]:
    object_class = ObjectClass(obj[Attribute.CLASS])
    key_type = KeyType(obj[Attribute.KEY_TYPE])
    names = list(COPIED_FLAGS[object_class])
    if object_class == ObjectClass.PUBLIC_KEY:
        names += PUBLIC_MATERIAL.get(key_type, ())
    attrs = {}
    for attr in names:
        with contextlib.suppress(pkcs11.PKCS11Error):
            value = obj[attr]
            attrs[str(int(attr))] = _b64(value) if isinstance(value, bytes) else bool(value)
    out = {
        "ref": ref,
        "class": int(object_class),
        "key_type": int(key_type),
        "label": obj[Attribute.LABEL],
        "attrs": attrs,
    }
    if object_class != ObjectClass.PUBLIC_KEY:
        out["blob"] = _b64(sync_key.wrap_key(obj, mechanism=SYNC_WRAP))
    return out


@contextlib.contextmanager
def _ebk_in(session: pkcs11.Session, ebk: bytes) -> Iterator[Any]:
    """The backup's EBK as a session key in the token (wrap/unwrap only), destroyed after."""
    obj = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.TOKEN: False,
            Attribute.VALUE: ebk,
            Attribute.WRAP: True,
            Attribute.UNWRAP: True,
            Attribute.EXTRACTABLE: False,
        }
    )
    try:
        yield obj
    finally:
        obj.destroy()


def _read_token(
    workspace: Workspace, label: str, refs: list[int], ebk: bytes
) -> tuple[list[dict[str, Any]], bytes | None]:
    """Key objects ``refs`` of one HSM token, and its sync key wrapped under ``ebk``."""
    store = token_store(workspace)
    with firmware_session(store, label, rw=True) as session:
        sync_key = find_sync_key(session)
        if sync_key is None:
            return [], None
        with _ebk_in(session, ebk) as ebk_obj:
            wrapped_sync = ebk_obj.wrap_key(sync_key, mechanism=SYNC_WRAP)
        objects = []
        for ref in refs:
            found = list(session.get_objects({Attribute.ID: ref.to_bytes(REF_BYTES, "big")}))
            for obj in found[:1]:
                objects.append(_export_object(obj, ref, sync_key))  # type: ignore[arg-type]
        return objects, wrapped_sync


def capture(
    workspace: Workspace, cluster: ClusterRecord, last_resort: str | None = None
) -> BackupContents:
    """What the cluster holds now: its user and key table, and where to read the keys.

    The key objects are read when the backup is sealed (:func:`seal`), from one HSM that
    has them (ACTIVE first; ``last_resort``, an HSM being deleted, only if no other can).
    """
    doc = _cluster_document(workspace, cluster)
    return BackupContents(cluster["id"], doc, sources=_source_tokens(cluster, last_resort))


def seal(workspace: Workspace, backup_id: str, contents: BackupContents) -> dict[str, int]:
    """Read the key objects, encrypt everything as backup ``backup_id``; returns counts.

    Keys that no HSM holds are left out of the backup (and out of its key table).
    """
    ebk = AESGCM.generate_key(bit_length=256)
    doc = dict(contents.document)
    refs = [int(r, 16) for r in doc.get("keys", {})]
    objects: list[dict[str, Any]] = []
    wrapped_sync: bytes | None = None
    if refs:
        for label in contents.sources:
            try:
                objects, wrapped_sync = _read_token(workspace, label, refs, ebk)
            except (TokenNotFound, pkcs11.PKCS11Error):
                continue
            if wrapped_sync is not None:
                break
    held = {o["ref"] for o in objects}
    if "keys" in doc:
        doc["keys"] = {r: k for r, k in doc["keys"].items() if int(r, 16) in held}
    payload = {
        "cluster_id": contents.cluster_id,
        "document": doc,
        "objects": objects,
        "sync_key": _b64(wrapped_sync) if wrapped_sync else None,
    }
    _write(workspace, backup_id, _encrypt(workspace, backup_id, json.dumps(payload).encode(), ebk))
    return {"users": len(doc.get("users", {})), "keys": len(doc.get("keys", {}))}


def load(workspace: Workspace, backup_id: str) -> BackupContents:
    """Decrypt backup ``backup_id`` (what a restore reads)."""
    plaintext, _ = _decrypt(workspace, backup_id)
    payload = json.loads(plaintext)
    sync_key = payload.get("sync_key")
    return BackupContents(
        cluster_id=payload["cluster_id"],
        document=payload["document"],
        objects=payload["objects"],
        sync_key=_unb64(sync_key) if sync_key else None,
    )


def copy_payload(workspace: Workspace, source_id: str, target_id: str) -> None:
    """Re-encrypt backup ``source_id`` under a new EBK as ``target_id`` (CopyBackupToRegion).

    The sync key inside stays wrapped under the source's EBK, which travels with it
    encrypted under the PBK.
    """
    plaintext, ebk = _decrypt(workspace, source_id)
    payload = json.loads(plaintext)
    payload["source_ebk"] = _b64(AESGCM(_pbk(workspace)).encrypt(b"\0" * 12, ebk, b"copy"))
    _write(workspace, target_id, _encrypt(workspace, target_id, json.dumps(payload).encode()))


def _sync_wrapping_key(workspace: Workspace, backup_id: str) -> bytes:
    """The EBK that wrapped the sync key in ``backup_id`` (the source's, for a copy)."""
    plaintext, ebk = _decrypt(workspace, backup_id)
    source = json.loads(plaintext).get("source_ebk")
    if source:
        return AESGCM(_pbk(workspace)).decrypt(b"\0" * 12, _unb64(source), b"copy")
    return ebk


# -- restore ----------------------------------------------------------------------------------


def restore_cluster_document(
    workspace: Workspace, backup_id: str, cluster_id: str, owner: str
) -> BackupContents:
    """Write the new cluster's users, key records and quorum settings from the backup.

    A backup of a cluster nobody had connected to holds only the built-in users; the
    client then creates them on its first connection, as for a new cluster.
    """
    contents = load(workspace, backup_id)
    if contents.document:
        doc = dict(contents.document, cluster_id=cluster_id, owner=owner, hsms={})
        with _document_state(workspace, cluster_id).update() as data:
            data.clear()
            data.update(doc)
    return contents


def restore_into_token(workspace: Workspace, backup_id: str, token_label: str) -> int:
    """Put the backup's sync key and key objects into a new HSM's token; returns the count."""
    contents = load(workspace, backup_id)
    if contents.sync_key is None or not contents.objects:
        return 0
    ebk = _sync_wrapping_key(workspace, backup_id)
    store = token_store(workspace)
    restored = 0
    with firmware_session(store, token_label, rw=True) as session:
        with _ebk_in(session, ebk) as ebk_obj:
            sync_key = ebk_obj.unwrap_key(
                ObjectClass.SECRET_KEY,
                KeyType.AES,
                contents.sync_key,
                label=SYNC_KEY_LABEL,
                store=True,
                mechanism=SYNC_WRAP,
                template=SYNC_KEY_TEMPLATE,
            )
        for item in contents.objects:
            _restore_object(session, sync_key, item)
            restored += 1
    return restored


def _restore_object(session: pkcs11.Session, sync_key: Any, item: dict[str, Any]) -> None:
    object_class = ObjectClass(item["class"])
    key_type = KeyType(item["key_type"])
    attrs = {
        Attribute(int(k)): (_unb64(v) if isinstance(v, str) else v)
        for k, v in item["attrs"].items()
    }
    cka_id = int(item["ref"]).to_bytes(REF_BYTES, "big")
    if object_class == ObjectClass.PUBLIC_KEY:
        attrs.update(
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: key_type,
                Attribute.TOKEN: True,
                Attribute.ID: cka_id,
                Attribute.LABEL: item["label"],
            }
        )
        session.create_object(attrs)
        return
    attrs = unwrap_template(object_class, attrs)  # as the client's key sync does
    sync_key.unwrap_key(
        object_class,
        key_type,
        _unb64(item["blob"]),
        id=cka_id,
        label=item["label"],
        store=True,
        mechanism=SYNC_WRAP,
        template=attrs,
    )
