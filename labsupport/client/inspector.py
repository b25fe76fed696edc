"""A read-only look inside one simulated HSM: what objects its token holds.

On AWS nobody can look inside an HSM. The lab can, because an HSM is a SoftHSM token —
but a session on that token could use or wrap out every user's keys, so learners never
get one. :func:`inspect_hsm` opens the token inside the lab, reads only what is safe to
show (labels, handles, classes, key types, public attributes and the protection flags a
user would see), closes the session and returns plain :class:`HsmObject` records::

    for obj in lab.inspect_hsm(hsm_id):
        print(obj.label, obj.object_class.name, obj.sensitive, obj.extractable)

Keys the cluster client synchronized are shown as their users see them (their own
``CKA_ID``, ``CKA_EXTRACTABLE`` …), not with the internal attributes the lab gives the
copies so it can synchronize them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass

from labsupport.client.clusterdata import store_for_hsm
from labsupport.client.keys import KeyRecord, format_ref, id_to_ref
from labsupport.crypto.attributes import PUBLIC_MATERIAL
from labsupport.errors import LabError
from labsupport.hsm.tokens import firmware_session, is_hsm_token, token_store
from labsupport.workspace.home import Workspace

_KEY_CLASSES = (ObjectClass.SECRET_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY)


@dataclass(frozen=True)
class HsmObject:
    """One object on an HSM, as the read-only inspector shows it (no secret material)."""

    handle: int
    label: str
    object_class: ObjectClass
    key_type: KeyType | None
    id: bytes
    sensitive: bool | None = None
    extractable: bool | None = None
    #: The cluster key reference (``0x…``) of a key the client synchronized, else "".
    reference: str = ""
    #: Public attributes only: RSA modulus and exponent, EC parameters and point.
    public: dict[Attribute, Any] = field(default_factory=dict, compare=False)


def _bool(obj: pkcs11.Object, attr: Attribute) -> bool | None:
    try:
        return bool(obj[attr])
    except (pkcs11.AttributeTypeInvalid, pkcs11.AttributeSensitive):
        return None


def _describe(obj: pkcs11.Object, records: dict[int, KeyRecord]) -> HsmObject:
    object_class = ObjectClass(obj[Attribute.CLASS])
    key_type = None
    with contextlib.suppress(pkcs11.AttributeTypeInvalid, ValueError):
        key_type = KeyType(obj[Attribute.KEY_TYPE])
    cka_id = bytes(obj[Attribute.ID]) if object_class in _KEY_CLASSES else b""
    public: dict[Attribute, Any] = {}
    if object_class is ObjectClass.PUBLIC_KEY or (
        object_class is ObjectClass.PRIVATE_KEY and key_type is KeyType.RSA
    ):
        # the modulus and public exponent of an RSA private key are public too
        for attr in PUBLIC_MATERIAL.get(key_type, ()) if key_type else ():
            with contextlib.suppress(pkcs11.AttributeTypeInvalid, pkcs11.AttributeSensitive):
                public[attr] = obj[attr]
    secret = object_class in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY)
    sensitive = _bool(obj, Attribute.SENSITIVE) if secret else None
    extractable = _bool(obj, Attribute.EXTRACTABLE) if secret else None
    reference = ""
    ref = id_to_ref(cka_id)
    rec = records.get(ref) if ref is not None else None
    if rec is not None:
        # A synchronized copy: show what its user sees, not the lab's internal attributes.
        reference = format_ref(rec.ref)
        cka_id = rec.learner_id
        if secret:
            extractable = rec.extractable
            sensitive = rec.sensitive if rec.sensitive is not None else sensitive
    return HsmObject(
        handle=obj.handle,
        label=str(obj[Attribute.LABEL]),
        object_class=object_class,
        key_type=key_type,
        id=cka_id,
        sensitive=sensitive,
        extractable=extractable,
        reference=reference,
        public=public,
    )


def inspect_hsm(hsm_id: str, workspace: Workspace | None = None) -> list[HsmObject]:
    """The objects stored on HSM ``hsm_id``, read-only, sorted by label.

    No session, key object or secret attribute leaves this function: the result is a list
    of :class:`HsmObject` records (labels, handles, classes, public attributes, flags).
    """
    ws = workspace or Workspace.open()
    if not is_hsm_token(hsm_id):
        raise LabError(
            f"{hsm_id!r} is not an HSM id (they look like hsm-abcdefghijk).",
            "Take the id from cloudhsm.describe_clusters()['Clusters'][0]['Hsms'].",
        )
    store = token_store(ws)
    cluster = store_for_hsm(ws, hsm_id)
    records: dict[int, KeyRecord] = {}
    if cluster is not None:
        records = {
            r.ref: r
            for r in (KeyRecord.from_json(k, v) for k, v in cluster.read().get("keys", {}).items())
        }
    session = firmware_session(store, hsm_id, rw=False)
    objects = [_describe(obj, records) for obj in session.get_objects()]
    # Not session.close(): python-pkcs11 logs the token out when the session that logged in
    # closes, and the client's sessions on this token share that login.
    if session.user_type == pkcs11.UserType.NOBODY:
        session.close()
    return sorted(objects, key=lambda o: (o.label, o.handle))


__all__ = ["HsmObject", "inspect_hsm"]
