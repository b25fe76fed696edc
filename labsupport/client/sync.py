"""Key synchronization across the cluster's HSMs, and the replay that makes it crash-safe.

**How a key reaches every HSM.** Each HSM holds the same *cluster sync key* (AES-256,
label ``cloudhsm-lab:cluster-sync-key``). A secret or private key is copied by wrapping
it under the sync key on an HSM that has it (``CKM_AES_KEY_WRAP_PAD``) and unwrapping
the blob on the HSM that lacks it; a public key is copied attribute by attribute. The
key material never leaves PKCS#11 in clear.

**How a new HSM gets the sync key.** Both HSMs generate an ephemeral EC P-256 key pair,
derive the same AES key with ECDH (``CKM_ECDH1_DERIVE``), and the old HSM wraps the sync
key under it for the new one. (A production design would add a KDF and authenticate the
peer with the HSM certificates; the lab keeps the exchange minimal.)

**Crash safety.** The cluster document records a key as ``pending`` *before* it is
created and ``deleting`` before it is destroyed (see
:mod:`labsupport.client.clusterdata`). :func:`reconcile` — run on every connect and
whenever an HSM joins — rolls every half-done change forward when any HSM holds the key
(copies it to the HSMs that lack it) and back when none does (the call never returned,
so nobody has the key). Copying is idempotent: a key is found by its reference, and
duplicate copies from an interrupted unwrap are removed.

SoftHSM stores every token object as a file and rewrites it once per attribute, so a
copy costs a few milliseconds of disk I/O — the figure ``python -m labsupport bench``
reports as sync time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pkcs11
from pkcs11 import KDF, Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.client.clusterdata import ClusterStore
from labsupport.client.errors import ClusterChanging
from labsupport.client.keys import KeyRecord, KeyStatus, format_ref, ref_to_id
from labsupport.client.links import HsmLink
from labsupport.crypto.attributes import COPIED_FLAGS, PUBLIC_MATERIAL
from labsupport.hsm.synckey import SYNC_KEY_LABEL, SYNC_KEY_TEMPLATE, SYNC_WRAP, unwrap_template

# -- the sync key -------------------------------------------------------------------------


def create_sync_key(link: HsmLink) -> pkcs11.SecretKey:
    """Generate the cluster sync key on ``link``'s HSM (first HSM of a new cluster)."""
    key = link.session.generate_key(
        KeyType.AES, 256, label=SYNC_KEY_LABEL, store=True, template=SYNC_KEY_TEMPLATE
    )
    link.set_sync_key(key)
    return key


def _ephemeral_ec(session: pkcs11.Session) -> tuple[pkcs11.PublicKey, pkcs11.PrivateKey]:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    return params.generate_keypair(store=False)


def transfer_sync_key(source: HsmLink, target: HsmLink) -> pkcs11.SecretKey:
    """Give ``target`` the sync key of ``source`` through an ECDH key agreement."""
    src_key = source.sync_key()
    if src_key is None:
        raise ClusterChanging(
            f"HSM {source.hsm_id} has no cluster sync key to give to {target.hsm_id}.",
            "Retry: the client synchronizes new HSMs when it next looks at the cluster.",
        )
    pub_a, priv_a = _ephemeral_ec(source.session)
    pub_b, priv_b = _ephemeral_ec(target.session)
    template = {
        Attribute.TOKEN: False,
        Attribute.WRAP: True,
        Attribute.UNWRAP: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SENSITIVE: True,
    }
    kek_a = priv_a.derive_key(
        KeyType.AES,
        256,
        mechanism_param=(KDF.NULL, None, pub_b[Attribute.EC_POINT]),
        template=template,
    )
    kek_b = priv_b.derive_key(
        KeyType.AES,
        256,
        mechanism_param=(KDF.NULL, None, pub_a[Attribute.EC_POINT]),
        template=template,
    )
    try:
        blob = kek_a.wrap_key(src_key, mechanism=SYNC_WRAP)
        key = kek_b.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            blob,
            label=SYNC_KEY_LABEL,
            store=True,
            mechanism=SYNC_WRAP,
            template=SYNC_KEY_TEMPLATE,
        )
    finally:
        for obj in (kek_a, kek_b, pub_a, priv_a, pub_b, priv_b):
            with contextlib.suppress(pkcs11.PKCS11Error):
                obj.destroy()
    target.set_sync_key(key)
    return key


def ensure_sync_keys(links: list[HsmLink], cluster_has_keys: bool = False) -> None:
    """Make sure every HSM in ``links`` holds the cluster sync key (caller holds the lock).

    A new sync key is made only for a cluster without token keys. If the cluster has keys
    but none of ``links`` (the usable HSMs) holds the sync key — every HSM that does is
    DEGRADED, say, and a new one joined — a second sync key would split the cluster: HSMs
    could no longer copy keys to each other once the others return. That is refused with
    :class:`ClusterChanging` until an HSM that holds the key is ACTIVE again. (On AWS a new
    HSM is cloned from the cluster's HSMs or its latest backup and always has the keys.)
    """
    if not links:
        return
    holders = [link for link in links if link.sync_key() is not None]
    if not holders:
        if cluster_has_keys:
            raise ClusterChanging(
                "No ACTIVE HSM holds this cluster's keys right now: every HSM that does is "
                f"DEGRADED or gone, and {', '.join(link.hsm_id for link in links)} joined "
                "since and has none yet.",
                "Wait until an HSM that holds the keys is ACTIVE again (describe_clusters() "
                "shows the states), then connect again: the client copies every key to the "
                "new HSM. If those HSMs are gone for good, restore the cluster from a backup.",
            )
        create_sync_key(links[0])
        holders = [links[0]]
    for link in links:
        if link.sync_key() is None:
            transfer_sync_key(holders[0], link)


# -- copying one key ------------------------------------------------------------------------


def copy_key(source: HsmLink, obj: pkcs11.Object, target: HsmLink, ref: int) -> pkcs11.Object:
    """Copy key object ``obj`` (on ``source``) to ``target``'s token, keeping reference ``ref``."""
    object_class = obj[Attribute.CLASS]
    key_type = obj[Attribute.KEY_TYPE]
    label = obj[Attribute.LABEL]
    if object_class == ObjectClass.PUBLIC_KEY:
        material = PUBLIC_MATERIAL.get(key_type)
        if material is None:
            raise NotImplementedError(f"cannot copy {key_type!s} public keys")
        attrs = obj.get_attributes([*material, *COPIED_FLAGS[ObjectClass.PUBLIC_KEY]])
        attrs.update(
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: key_type,
                Attribute.TOKEN: True,
                Attribute.ID: ref_to_id(ref),
                Attribute.LABEL: label,
            }
        )
        new = target.session.create_object(attrs)
    else:
        flags = obj.get_attributes(list(COPIED_FLAGS[ObjectClass(object_class)]))
        template = unwrap_template(ObjectClass(object_class), flags)
        src_key, dst_key = source.sync_key(), target.sync_key()
        if src_key is None or dst_key is None:
            # An HSM that joined (or was replaced) since the caller looked: the sync that
            # runs when the client sees it gives it the sync key.
            missing = source.hsm_id if src_key is None else target.hsm_id
            raise ClusterChanging(
                f"HSM {missing} has no cluster sync key yet (it joined the cluster just now).",
                "Retry: the client synchronizes new HSMs when it next looks at the cluster.",
            )
        blob = src_key.wrap_key(obj, mechanism=SYNC_WRAP)
        new = dst_key.unwrap_key(
            ObjectClass(object_class),
            key_type,
            blob,
            id=ref_to_id(ref),
            label=label,
            store=True,
            mechanism=SYNC_WRAP,
            template=template,
        )
    target.remember(ref, new)
    return new


def destroy_key(links: list[HsmLink], ref: int) -> int:
    """Destroy every copy of key ``ref`` on ``links``; return how many objects went."""
    removed = 0
    for link in links:
        for obj in link.index().get(ref, []):
            with contextlib.suppress(pkcs11.ObjectHandleInvalid):
                obj.destroy()
                removed += 1
        link.forget(ref)
    return removed


# -- reconcile -------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What :func:`reconcile` did."""

    hsms: list[str] = field(default_factory=list)
    copied: int = 0
    rolled_forward: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    duplicates_removed: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """True if anything was repaired or copied."""
        return bool(
            self.copied
            or self.rolled_forward
            or self.rolled_back
            or self.deleted
            or self.duplicates_removed
        )


def reconcile(
    store: ClusterStore,
    links: list[HsmLink],
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Bring every HSM in ``links`` (the usable ones) to the same set of keys.

    Replays the journal (pending → forward or back, deleting → finish), copies each key
    to the HSMs that lack it, removes duplicate copies, and records the HSMs as in sync.
    The caller holds ``store.locked()``.
    """
    started = time.perf_counter()
    report = SyncReport(hsms=[link.hsm_id for link in links])
    data = store.read()
    ensure_sync_keys(links, cluster_has_keys=bool(data.get("keys")))
    records = {
        r.ref: r for r in (KeyRecord.from_json(k, v) for k, v in data.get("keys", {}).items())
    }
    for link in links:
        link.invalidate()  # list every token afresh: other sessions and kernels add keys
    index = {link.hsm_id: link.index() for link in links}
    by_id = {link.hsm_id: link for link in links}
    holders = {ref: [h for h in by_id if index[h].get(ref)] for ref in records}

    drop: set[int] = set()
    for ref, rec in records.items():
        if rec.status is KeyStatus.DELETING:
            drop.add(ref)
        elif rec.status is KeyStatus.PENDING:
            partner = records.get(rec.pair) if rec.pair is not None else None
            half_made = (
                partner is not None
                and partner.status is KeyStatus.PENDING
                and not (holders.get(partner.ref))
            )
            if not holders[ref] or half_made:
                drop.add(ref)
    for ref in drop:
        destroy_key(links, ref)
        if records[ref].status is KeyStatus.DELETING:
            report.deleted.append(format_ref(ref))
        else:
            report.rolled_back.append(format_ref(ref))

    todo: list[tuple[int, str, list[str]]] = []
    for ref, rec in records.items():
        if ref in drop or not holders[ref]:
            continue  # an OK key no usable HSM holds: unavailable until its HSM returns
        for h in holders[ref]:
            extra = index[h][ref][1:]
            for obj in extra:
                with contextlib.suppress(pkcs11.PKCS11Error):
                    obj.destroy()
                    report.duplicates_removed += 1
            del index[h][ref][1:]
        missing = [h for h in by_id if h not in holders[ref]]
        if missing:
            todo.append((ref, holders[ref][0], missing))
        if rec.status is KeyStatus.PENDING:
            report.rolled_forward.append(format_ref(ref))

    total = sum(len(m) for _, _, m in todo)
    done = 0
    for ref, src, missing in todo:
        obj = index[src][ref][0]
        for h in missing:
            copy_key(by_id[src], obj, by_id[h], ref)
            done += 1
            report.copied += 1
            if progress is not None:
                progress(done, total)

    with store.update() as doc:
        keys = doc.setdefault("keys", {})
        for ref in drop:
            keys.pop(format_ref(ref), None)
        for text in report.rolled_forward:
            if text in keys:
                keys[text]["status"] = KeyStatus.OK.value
        doc["hsms"] = {link.hsm_id: "in-sync" for link in links}
    report.seconds = time.perf_counter() - started
    return report
