"""The cluster's key records and the protocol that creates, deletes and shares token keys.

:class:`KeyStore` is the one place that writes key records (in the cluster document of
:mod:`labsupport.client.clusterdata`). Creating a token key follows the sync journal:
record it ``pending``, make it on one HSM, copy it to every other HSM, mark it ``ok``; a
delete marks it ``deleting`` first (see :mod:`labsupport.client.sync` for the replay).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from typing import Any

import pkcs11
from pkcs11 import Attribute
from pkcs11 import exceptions as ckr

from labsupport.client import sync
from labsupport.client.balancer import RequestLog
from labsupport.client.clusterdata import ClusterStore
from labsupport.client.errors import UserError
from labsupport.client.keys import KeyClass, KeyRecord, KeyStatus, format_ref
from labsupport.client.links import HsmLink
from labsupport.client.roles import Role
from labsupport.client.topology import Topology
from labsupport.client.users import UserDirectory, normalize_username
from labsupport.errors import LabError

#: ``make(link, refs, internal)`` creates the key object(s) on ``link``'s HSM with the
#: references ``refs`` as their token CKA_ID and the layer's ``internal`` attributes.
MakeKeys = Callable[[HsmLink, list[int], dict[Attribute, Any]], list[pkcs11.Object]]

_session_counter = itertools.count(1)


class KeyStore:
    """Key records of one cluster (cached until the document changes) and their writers."""

    def __init__(
        self,
        store: ClusterStore,
        topology: Topology,
        users: UserDirectory,
        requests: RequestLog,
    ) -> None:
        self.store = store
        self.topology = topology
        self.users = users
        self.requests = requests
        self._stamp: Any = None
        self._cache: dict[int, KeyRecord] = {}

    # -- reading -----------------------------------------------------------------------

    def records(self) -> dict[int, KeyRecord]:
        """``reference → KeyRecord`` for every token key (cached until the file changes)."""
        stamp = self.store.stamp()
        if stamp != self._stamp:
            data = self.store.read()
            self._cache = {
                r.ref: r
                for r in (KeyRecord.from_json(k, v) for k, v in data.get("keys", {}).items())
            }
            self._stamp = stamp
        return self._cache

    def changed(self) -> None:
        """Records changed: read them again, and let sessions re-resolve their routes."""
        self._stamp = None
        self.topology.bump()

    def update(self, ref: int, **fields: Any) -> None:
        """Change fields of key ``ref``'s record."""
        with self.store.update() as doc:
            doc["keys"][format_ref(ref)].update(fields)
        self.changed()

    @staticmethod
    def new_session_ref() -> int:
        """A reference for a session key (never collides with token keys or other kernels)."""
        return (1 << 62) | ((os.getpid() & 0xFFFFF) << 24) | next(_session_counter)

    # -- audit log ---------------------------------------------------------------------------

    def audit(self, opcode: str, hsm_ids: list[str], actor: str, refs: list[int]) -> None:
        """Write the HSMs' audit-log events for a key command (read through CloudWatch Logs)."""
        from labsupport.aws.inprocess import DEFAULT_REGION
        from labsupport.hsm.audit import Opcode, emit_quietly

        view = self.topology.view
        emit_quietly(
            self.store.workspace,
            self.store.cluster_id,
            Opcode(opcode),
            hsm_ids=hsm_ids,
            owner=self.store.read().get("owner") or view.owner or "workspace",
            region=view.region or DEFAULT_REGION,
            actor=actor,
            keys=[format_ref(r) for r in refs],
        )

    def _audit_created(
        self,
        owner: str,
        classes: list[KeyClass],
        local: bool,
        refs: list[int],
        home: str,
        others: list[str],
    ) -> None:
        if len(classes) == 2:
            opcode = "CN_GENERATE_KEY_PAIR"
        elif classes == [KeyClass.PUBLIC]:
            opcode = "CN_CREATE_OBJECT"
        else:
            opcode = "CN_GENERATE_KEY" if local else "CN_UNWRAP_KEY"
        self.audit(opcode, [home], owner, refs)
        self.audit("CN_INSERT_MASKED_OBJECT_USER", others, owner, refs)

    # -- token keys ------------------------------------------------------------------------

    def create_token_keys(
        self,
        owner: str,
        links: dict[str, HsmLink],
        order: list[str],
        classes: list[KeyClass],
        key_type: Any,
        learner_id: bytes,
        secrecy: tuple[bool, bool],
        make: MakeKeys,
        prefer: str | None,
        local: bool,
        inherit: tuple[bool, bool] | None = None,
    ) -> list[tuple[KeyRecord, pkcs11.Object]]:
        """Create token key(s) on one HSM of ``order`` and copy them to the others.

        ``secrecy`` is (CKA_EXTRACTABLE, CKA_SENSITIVE) as the user asked for them.
        Returns each key's record and its object on the HSM that made it.
        """
        if not order:
            raise LabError(
                "The cluster has no ACTIVE HSM to create the key on.",
                "Create an HSM and wait for it to become ACTIVE.",
            )
        extractable, sensitive = secrecy
        type_name = pkcs11.KeyType(key_type).name if key_type is not None else "UNKNOWN"
        with self.store.locked():
            with self.store.update() as doc:
                refs = []
                for _ in classes:
                    refs.append(doc["next_ref"])
                    doc["next_ref"] += 1
                for i, (ref, key_class) in enumerate(zip(refs, classes, strict=True)):
                    public = key_class is KeyClass.PUBLIC
                    rec = KeyRecord(
                        ref=ref,
                        owner=owner,
                        key_class=key_class,
                        key_type=type_name,
                        learner_id=learner_id,
                        extractable=True if public else extractable,
                        never_extractable=False if public else not extractable,
                        sensitive=None if public else sensitive,
                        local=local,
                        status=KeyStatus.PENDING,
                        pair=refs[1 - i] if len(refs) == 2 else None,
                    )
                    doc["keys"][rec.reference] = rec.to_json()
            if prefer not in links:
                prefer = order[self.topology.next_turn() % len(order)]
            assert prefer is not None
            home = links[prefer]
            # Internal to the layer: every HSM copy is extractable so synchronization can
            # wrap it under the cluster sync key, and a key its user made non-extractable is
            # also sensitive there, so no copy can ever reveal its value. Reads of
            # CKA_EXTRACTABLE / CKA_SENSITIVE answer from the record (what the user asked).
            internal: dict[Attribute, Any] = {}
            if classes != [KeyClass.PUBLIC]:
                internal[Attribute.EXTRACTABLE] = True
                if not extractable:
                    internal[Attribute.SENSITIVE] = True
            objs: list[pkcs11.Object] = []
            try:
                objs = make(home, refs, internal)
                self.requests.record(prefer, "generate")
                for ref, obj in zip(refs, objs, strict=True):
                    home.remember(ref, obj)
                failed = []
                for hsm_id in order:
                    if hsm_id == prefer:
                        continue
                    try:
                        for ref, obj in zip(refs, objs, strict=True):
                            sync.copy_key(home, obj, links[hsm_id], ref)
                    except (pkcs11.PKCS11Error, LabError):
                        failed.append(hsm_id)
                with self.store.update() as doc:
                    for ref, obj in zip(refs, objs, strict=True):
                        rec_json = doc["keys"][format_ref(ref)]
                        rec_json["status"] = KeyStatus.OK.value
                        rec_json["label"] = obj[Attribute.LABEL]
                        rec_json["created_on"] = prefer
                        if rec_json["key_class"] != KeyClass.PUBLIC.value:
                            never, always = secrecy_history(
                                obj, extractable, local, inherit, sensitive
                            )
                            rec_json["never_extractable"] = never
                            rec_json["always_sensitive"] = always
                        try:
                            rec_json["key_type"] = pkcs11.KeyType(obj[Attribute.KEY_TYPE]).name
                        except (pkcs11.PKCS11Error, ValueError):
                            pass
                        if obj[Attribute.CLASS] == pkcs11.ObjectClass.SECRET_KEY:
                            rec_json["extra"] = _secret_extra(obj)
                    for hsm_id in failed:  # resynchronized on the next poll
                        doc.get("hsms", {}).pop(hsm_id, None)
            except BaseException:
                self._abandon(refs, made=bool(objs))
                raise
            made = [
                (KeyRecord.from_json(ref, doc["keys"][format_ref(ref)]), obj)
                for ref, obj in zip(refs, objs, strict=True)
            ]
        self.changed()
        others = [h for h in order if h != prefer and h not in failed]
        self._audit_created(owner, classes, local, refs, prefer, others)
        return made

    def _abandon(self, refs: list[int], made: bool) -> None:
        """A create failed part-way (e.g. an HSM left under it): journal its undoing.

        Records still ``pending`` are dropped if nothing was made, else marked
        ``deleting`` so the next sync destroys whatever copies exist (see
        :func:`labsupport.client.sync.reconcile`); the caller may then create afresh.
        """
        with contextlib.suppress(Exception), self.store.update() as doc:
            keys = doc.get("keys", {})
            for ref in refs:
                rec = keys.get(format_ref(ref))
                if rec is None or rec.get("status") != KeyStatus.PENDING.value:
                    continue
                if made:
                    rec["status"] = KeyStatus.DELETING.value
                else:
                    del keys[format_ref(ref)]
        self.changed()

    def destroy_token_key(self, username: str, ref: int, links: list[HsmLink]) -> None:
        """Delete key ``ref`` from every HSM in ``links`` (owner only)."""
        rec = self.records().get(ref)
        if rec is None:
            raise ckr.KeyHandleInvalid(f"Key {format_ref(ref)} was deleted.")
        rec.require_owner(username, "delete")
        with self.store.locked():
            self.update(ref, status=KeyStatus.DELETING.value)
            sync.destroy_key(links, ref)
            self.topology.forget(ref)
            with self.store.update() as doc:
                doc["keys"].pop(format_ref(ref), None)
        self.changed()
        self.audit("CN_TOMBSTONE_OBJECT", [link.hsm_id for link in links], username, [ref])

    def share(self, actor: str, ref: int, username: str, share: bool) -> None:
        """Share (or unshare) key ``ref`` with crypto user ``username`` (owner only)."""
        rec = self.records().get(ref)
        if rec is None:
            raise ckr.KeyHandleInvalid(f"Key {format_ref(ref)} was deleted.")
        rec.require_owner(actor, "share" if share else "unshare")
        name = normalize_username(username)
        target = self.users.get(name)
        if target.role is not Role.CRYPTO_USER:
            raise UserError(
                f"{name} is an {target.role.value}; keys are shared with crypto users only.",
                "Share with a crypto user.",
            )
        if name == rec.owner:
            raise UserError(f"{name} owns key {rec.reference} already.", "Share with another user.")
        shared = [u for u in rec.shared if u != name] + ([name] if share else [])
        self.update(ref, shared=sorted(shared))
        usable = [h.hsm_id for h in self.topology.view.usable_hsms]
        self.audit("CN_SHARE_OBJECT", usable, actor, [ref])


def secrecy_history(
    obj: pkcs11.Object,
    extractable: bool,
    local: bool,
    inherit: tuple[bool, bool] | None,
    sensitive: bool | None = None,
) -> tuple[bool, bool]:
    """CKA_NEVER_EXTRACTABLE and CKA_ALWAYS_SENSITIVE a real HSM reports for a new key.

    ``obj`` is the key as first made (on the HSM that made it, possibly with
    CKA_EXTRACTABLE forced true so it can be synchronized); ``extractable`` is what the
    caller asked for. PKCS#11: a generated key (CKA_LOCAL true) is never-extractable when
    created non-extractable; an unwrapped or imported key is neither never-extractable nor
    always-sensitive; a derived key is only if its base key is (``inherit``).
    ``sensitive`` is CKA_SENSITIVE as the caller asked for it (the copy may have been made
    sensitive by the layer); None reads it from ``obj``.
    """
    try:
        raw_sensitive = bool(obj[Attribute.SENSITIVE])
        always = bool(obj[Attribute.ALWAYS_SENSITIVE])
    except (ckr.AttributeTypeInvalid, ckr.AttributeSensitive):
        raw_sensitive = always = False
    sensitive = raw_sensitive if sensitive is None else sensitive and raw_sensitive
    always = always and sensitive
    if inherit is not None:
        return inherit[0] and not extractable, inherit[1] and sensitive
    if not local:
        return False, False
    return not extractable, always


def _secret_extra(obj: pkcs11.Object) -> dict[str, Any]:
    """CKA_VALUE_LEN and CKA_CHECK_VALUE of a secret key (lost by SoftHSM on unwrap)."""
    extra: dict[str, Any] = {}
    try:
        if obj[Attribute.VALUE_LEN]:
            extra["value_len"] = int(obj[Attribute.VALUE_LEN])
        kcv = obj[Attribute.CHECK_VALUE]
        if kcv:
            extra["check_value"] = bytes(kcv).hex()
    except pkcs11.PKCS11Error:
        pass
    return extra


__all__ = ["KeyStore", "MakeKeys", "secrecy_history"]
