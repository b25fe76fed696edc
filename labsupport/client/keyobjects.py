"""Cluster key objects: python-pkcs11 ``SecretKey`` / ``PublicKey`` / ``PrivateKey`` for a cluster.

A :class:`ClusterKey` is the key as its user sees it: its handle is the CloudHSM key
reference, its attributes answer from the key's record where the HSM copies differ (see
:data:`SECRET_VALUE_ATTRS` and the record attributes below), and every operation is routed
to an HSM that holds a copy (round robin, failover on HSM errors). The classes mix in
python-pkcs11's ``EncryptMixin`` / ``SignMixin`` … by the key's capabilities, so
``isinstance(key, pkcs11.SecretKey)`` and friends hold.

Keys are created by a :class:`~labsupport.client.session.ClusterSession`; they use its
routing state (``links``, ``order``, ``stamp`` …) and the client's topology and key store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass, types
from pkcs11 import exceptions as ckr
from pkcs11.attributes import AttributeMapper

from labsupport.client import mechanisms
from labsupport.client.errors import (
    KeyNotExtractable,
    KeyPermissionError,
    NoHsmAvailable,
    NotSupportedByCloudHsm,
    SessionKeyLost,
)
from labsupport.client.gcmiv import AES_GCM, write_hsm_iv
from labsupport.client.keys import (
    KeyClass,
    KeyRecord,
    KeyStatus,
    format_ref,
    ref_to_id,
)
from labsupport.client.links import HsmLink
from labsupport.crypto.keygen import USAGE_ATTRIBUTES
from labsupport.errors import LabError, TokenNotFound
from labsupport.hsm.tokens import _LIBRARY

_monotonic = time.monotonic
#: How the HSM sessions inside the layer pack and unpack attribute values.
_RAW_MAPPER = AttributeMapper()

if TYPE_CHECKING:
    from labsupport.client.interfaces import ClusterSessionLike

#: Errors after which an operation is retried on another HSM (the HSM or its session died).
FAILOVER_ERRORS = (
    ckr.SessionHandleInvalid,
    ckr.SessionClosed,
    ckr.TokenNotPresent,
    ckr.DeviceRemoved,
    ckr.DeviceError,
    ckr.ObjectHandleInvalid,
    ckr.KeyHandleInvalid,
    ckr.GeneralError,
    TokenNotFound,
)

_CAPABILITIES = USAGE_ATTRIBUTES
# Read from the key's record, not from a replica: a copy made by synchronization is an
# unwrapped key, for which SoftHSM reports CKA_ALWAYS_SENSITIVE (and CKA_NEVER_EXTRACTABLE)
# false; every HSM must report what the original reports.
# CKA_EXTRACTABLE and CKA_SENSITIVE too: the HSM copies of a token key are extractable
# (so synchronization can wrap them under the cluster sync key) and, when the user asked
# for a non-extractable key, sensitive — both strictly internal to the layer.
_RECORD_ATTRS = frozenset(
    {
        Attribute.ID,
        Attribute.EXTRACTABLE,
        Attribute.NEVER_EXTRACTABLE,
        Attribute.LOCAL,
        Attribute.ALWAYS_SENSITIVE,
        Attribute.SENSITIVE,
    }
)
_RSA_SECRETS = frozenset(
    {
        Attribute.PRIVATE_EXPONENT,
        Attribute.PRIME_1,
        Attribute.PRIME_2,
        Attribute.EXPONENT_1,
        Attribute.EXPONENT_2,
        Attribute.COEFFICIENT,
    }
)
#: The secret material of secret and private keys: PKCS#11 never reveals it when the key is
#: sensitive *or* not extractable (CKR_ATTRIBUTE_SENSITIVE).
SECRET_VALUE_ATTRS = frozenset(
    {
        Attribute.VALUE,
        Attribute.PRIVATE_EXPONENT,
        Attribute.PRIME_1,
        Attribute.PRIME_2,
        Attribute.EXPONENT_1,
        Attribute.EXPONENT_2,
        Attribute.COEFFICIENT,
    }
)
# SoftHSM 2.6 leaves CKA_VALUE_LEN and CKA_CHECK_VALUE empty on unwrapped copies: the
# record keeps the values read from the HSM that generated the key.
_EXTRA_ATTRS = {Attribute.VALUE_LEN: "value_len", Attribute.CHECK_VALUE: "check_value"}


# =========================================================================================
# keys
# =========================================================================================


class ClusterKey:
    """Base of the cluster's key objects: routing, attributes, ownership.

    Do not create these yourself; they come from a :class:`ClusterSession`
    (``generate_key``, ``get_key`` …). ``key.handle`` is the key reference as an integer
    and ``key.reference`` the same as CloudHSM CLI prints it (``0x…``).
    """

    def __init__(
        self,
        session: ClusterSessionLike,
        ref: int,
        key_class: KeyClass,
        record: KeyRecord | None,
        home: tuple[str, HsmLink, int, pkcs11.Object] | None = None,
    ) -> None:
        self._s = session
        self.ref = ref
        self._class = key_class
        self._record = record
        self._home = home  # session keys: (hsm id, link, link generation, object)
        self._deleted = False  # session keys: destroyed by the user (not lost with an HSM)
        self._stamp = -1
        self._rr = 0
        # the last mechanisms checked against CloudHSM's list (encrypt/decrypt, sign/verify)
        self._enc_ok: Any = None
        self._sign_ok: Any = None
        self._reps: list[tuple[str, pkcs11.Object]] = []

    # -- identity ---------------------------------------------------------------------

    def _identity(self) -> Any:
        return ("ClusterKey", self._s.client.cluster_id, self.ref)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClusterKey):
            return False
        return (other.session.client.cluster_id, other.ref) == self._identity()[1:]

    def __hash__(self) -> int:
        return hash(self._identity())

    @property
    def handle(self) -> int:
        """The key reference as an integer (CloudHSM uses it as the PKCS#11 handle)."""
        return self.ref

    @property
    def reference(self) -> str:
        """The key reference as CloudHSM CLI prints it: ``0x`` + 16 hex digits."""
        return format_ref(self.ref)

    @property
    def session(self) -> ClusterSessionLike:
        """The cluster session this key object belongs to."""
        return self._s

    @property
    def key_class(self) -> KeyClass:
        """The key's class as CloudHSM CLI spells it (secret-key, public-key, private-key)."""
        return self._class

    @property
    def record(self) -> KeyRecord | None:
        """What the cluster records about this key (owner, sharing, protection flags)."""
        return self.current_record() or self._record

    @property
    def is_token_key(self) -> bool:
        """True for token keys (synchronized to every HSM), False for session keys."""
        return self._home is None

    @property
    def owner(self) -> str:
        """The crypto user who owns the key."""
        rec = self.current_record()
        return rec.owner if rec else self._s.username

    @property
    def shared_with(self) -> tuple[str, ...]:
        """The crypto users the owner shared the key with."""
        rec = self.current_record()
        return rec.shared if rec else ()

    @property
    def hsms(self) -> list[str]:
        """The HSMs that hold a copy of this key now (its coverage)."""
        if self._home is not None:
            return [self._home[0]]
        s = self._s
        s.refresh_if_stale()
        return [h for h in s.order if s.links[h].find(self.ref) is not None]

    # -- routing --------------------------------------------------------------------------

    def current_record(self) -> KeyRecord | None:
        if self._home is not None:
            return self._record
        return self._s.client.keys.records().get(self.ref)

    def resolve(self) -> None:
        s = self._s
        client = s.client
        if self._home is not None:
            hsm_id, link, generation, obj = self._home
            if self._deleted:
                raise ckr.KeyHandleInvalid(f"Session key {self.reference} was deleted.")
            if s.links.get(hsm_id) is not link or link.generation != generation or not link.alive:
                raise SessionKeyLost(
                    f"Session key {self.reference} is gone: it lived only on {hsm_id}, and "
                    "that HSM (or this kernel's PKCS#11 session with it) went away.",
                    "Session keys (store=False) live on one HSM and end with the session. "
                    "Use store=True for keys that must survive; in the lab, creating or "
                    "deleting an HSM also restarts the PKCS#11 library, which ends session keys.",
                )
            self._reps = [(hsm_id, obj)]
            self._stamp = s.stamp
            return
        rec = client.keys.records().get(self.ref)
        if rec is None or rec.status is KeyStatus.DELETING:
            raise ckr.KeyHandleInvalid(f"Key {self.reference} was deleted.")
        if not rec.visible_to(s.username):
            raise KeyPermissionError(
                f"Key {self.reference} is no longer shared with {s.username}.",
                f"Ask its owner ({rec.owner}) to share it again.",
            )
        self._record = rec
        reps = []
        for hsm_id in s.order:
            obj = s.links[hsm_id].find(self.ref)
            if obj is not None:
                reps.append((hsm_id, obj))
        if not reps:
            raise NoHsmAvailable(
                f"No ACTIVE HSM holds key {self.reference} right now.",
                "Wait for the HSM(s) to return to ACTIVE, or add an HSM to the cluster "
                "(its keys come from the other HSMs).",
            )
        if len(reps) < 2 and not client.config.disable_key_availability_check:
            client.availability_failure(self.ref, len(reps))
        self._reps = reps
        self._stamp = s.stamp

    def _route(self, operation: str) -> pkcs11.Object:
        # The hot path of every operation: keep it to a few attribute reads.
        s = self._s
        topology = s.topology
        if s.generation != _LIBRARY.generation or s.topology_version != topology.version:
            s.refresh_if_stale()
        if self._stamp != s.stamp:
            self.resolve()
        reps = self._reps
        if len(reps) == 1:
            hsm_id, obj = reps[0]
        else:
            self._rr += 1  # round robin per key
            hsm_id, obj = reps[self._rr % len(reps)]
        log = s.requests
        log.record(hsm_id, operation)
        if not log.total & 31 and _monotonic() >= topology.next_poll:
            topology.poll()  # look for cluster changes now and then (applies from the next call)
        return obj

    def _retry(self, operation: str, call: Callable[[pkcs11.Object], Any]) -> Any:
        """Run ``call`` on a replica; on an HSM failure re-resolve and try another one."""
        last: Exception | None = None
        for _ in range(3):
            self._s.client.poll(force=True)
            self._s.refresh()
            self._stamp = -1
            try:
                return call(self._route(operation))
            except FAILOVER_ERRORS as exc:
                last = exc
        assert last is not None
        raise last

    def replica_on(self, hsm_id: str) -> pkcs11.Object | None:
        s = self._s
        if s.generation != _LIBRARY.generation or s.topology_version != s.client.topology.version:
            s.refresh_if_stale()
        if self._stamp != s.stamp:
            self.resolve()
        return next((obj for h, obj in self._reps if h == hsm_id), None)

    def _read_replica(self) -> pkcs11.Object:
        """The replica attribute reads go to (internal: never returned to learners)."""
        s = self._s
        s.refresh_if_stale()
        if self._stamp != s.stamp:
            self.resolve()
        return self._reps[0][1]

    def _route_for_use(self, operation: str) -> tuple[str, pkcs11.Object]:
        """The HSM and replica for ``operation`` once the session's user may use the key
        (its owner or a user it is shared with: :class:`KeyPermissionError` otherwise)."""
        rec = self.current_record()
        if rec is not None:
            rec.require_use(self._s.username, operation)
        obj = self._route(operation)
        return next(h for h, o in self._reps if o is obj), obj

    def _route_to_make(self, operation: str, store: bool) -> tuple[str, pkcs11.Object]:
        """The HSM and replica that make a new key from this one (unwrap, derive).

        The next replica, as for any use; for a session key (``store=False``) the one on the
        HSM where this session's session keys live, if that HSM holds this key.
        """
        hsm_id, obj = self._route_for_use(operation)
        if not store:
            home = self._s.session_home()
            there = self.replica_on(home) if home else None
            if there is not None:
                return home, there
        return hsm_id, obj

    # -- attributes --------------------------------------------------------------------------

    def _record_attr(self, attr: Attribute) -> Any:
        rec = self.current_record() or self._record
        assert rec is not None
        if attr == Attribute.ID:
            return rec.learner_id
        if attr == Attribute.EXTRACTABLE:
            return rec.extractable
        if attr == Attribute.NEVER_EXTRACTABLE:
            return rec.never_extractable
        if attr == Attribute.ALWAYS_SENSITIVE:
            return rec.always_sensitive  # None (not recorded): read it from an HSM
        if attr == Attribute.SENSITIVE:
            return rec.sensitive  # None for public keys and old records: ask an HSM
        return rec.local

    def _refuse_secret(self, attr: Attribute) -> None:
        """CKR_ATTRIBUTE_SENSITIVE for the material of a sensitive or non-extractable key,
        or of a key the reader does not own (shared users may use a key, not export it).

        Raised bare, as python-pkcs11 raises it for a real token. Attributes the key type
        does not have (CKA_VALUE of an RSA key) are left to the HSM (AttributeTypeInvalid).
        """
        if self._class is KeyClass.PUBLIC:
            return
        rec = self.current_record() or self._record
        if (attr in _RSA_SECRETS) != (rec is not None and rec.key_type == "RSA"):
            return
        if (
            rec is None
            or rec.owner != self._s.username
            or rec.sensitive is not False
            or not rec.extractable
        ):
            raise ckr.AttributeSensitive()

    def _extra_attr(self, attr: Attribute) -> Any:
        if self._home is not None:
            return None
        rec = self.current_record() or self._record
        value = rec.extra.get(_EXTRA_ATTRS[attr]) if rec is not None else None
        if value is None:
            return None
        return bytes.fromhex(value) if attr == Attribute.CHECK_VALUE else value

    def __getitem__(self, attr: Attribute) -> Any:
        value = self._get(attr)
        mapper = self._s.attribute_mapper
        if mapper is _RAW_MAPPER:
            return value
        return mapper.unpack_attributes(attr, _RAW_MAPPER.pack_attribute(attr, value))

    def _get(self, attr: Attribute) -> Any:
        if attr in SECRET_VALUE_ATTRS:
            self._refuse_secret(attr)
        if attr in _RECORD_ATTRS and (self._record is not None or self._home is None):
            value = self._record_attr(attr)
            if value is not None:
                return value
        if attr in _EXTRA_ATTRS:
            value = self._extra_attr(attr)
            if value is not None:
                return value
        return self._read_replica()[attr]

    def get_attributes(self, keys: list[Attribute]) -> dict[Attribute, Any]:
        """Read several attributes at once (as python-pkcs11's ``Object.get_attributes``)."""
        special = [
            k for k in keys if k in _RECORD_ATTRS or k in _EXTRA_ATTRS or k in SECRET_VALUE_ATTRS
        ]
        plain = [k for k in keys if k not in special]
        out = self._read_replica().get_attributes(plain) if plain else {}
        mapper = self._s.attribute_mapper
        if mapper is not _RAW_MAPPER:
            out = {
                k: mapper.unpack_attributes(k, _RAW_MAPPER.pack_attribute(k, v))
                for k, v in out.items()
            }
        refused: list[ckr.PKCS11Error] = []
        for k in special:
            # python-pkcs11's partial success: a sensitive or absent attribute is left out,
            # and the error is raised only when nothing at all could be read
            try:
                out[k] = self[k]
            except (ckr.AttributeSensitive, ckr.AttributeTypeInvalid) as exc:
                refused.append(exc)
        if refused and not out:
            raise refused[0]
        return out

    def __setitem__(self, attr: Attribute, value: Any) -> None:
        s = self._s
        value = s.raw_value(attr, value)
        if self._home is not None:
            self._read_replica()[attr] = value
            if attr == Attribute.SENSITIVE and self._record is not None:
                self._record = replace(self._record, sensitive=bool(value))
            return
        rec = self.current_record()
        assert rec is not None
        rec.require_owner(s.username, "modify")
        if attr == Attribute.SENSITIVE:
            if not value and rec.sensitive is not False:
                raise ckr.AttributeReadOnly("CKA_SENSITIVE cannot go from true to false.")
            if value and rec.sensitive is not True:
                self._set_on_every_hsm(attr, True)
                s.client.keys.update(self.ref, sensitive=True)
            return
        if attr == Attribute.ID:
            s.client.keys.update(self.ref, learner_id=bytes(value).hex())
            return
        if attr == Attribute.EXTRACTABLE:
            if value and not rec.extractable:
                raise ckr.AttributeReadOnly("CKA_EXTRACTABLE cannot go from false to true.")
            s.client.keys.update(self.ref, extractable=bool(value))
            return
        self._set_on_every_hsm(attr, value)
        if attr == Attribute.LABEL:
            s.client.keys.update(self.ref, label=str(value))

    def _set_on_every_hsm(self, attr: Attribute, value: Any) -> None:
        s = self._s
        s.refresh_if_stale()
        for hsm_id in s.order:
            obj = s.links[hsm_id].find(self.ref)
            if obj is not None:
                obj[attr] = value

    def copy(self, attrs: dict[Attribute, Any]) -> Any:
        """Not supported by CloudHSM's PKCS#11 library (C_CopyObject)."""
        raise NotSupportedByCloudHsm(
            "AWS CloudHSM's PKCS#11 library does not implement C_CopyObject "
            "(CKR_FUNCTION_NOT_SUPPORTED).",
            "Generate a new key, or wrap and unwrap this one (if it is extractable).",
        )

    def destroy(self) -> None:
        """Delete the key from every HSM (owner only)."""
        s = self._s
        s.require_open()
        if self._home is not None:
            hsm_id, link, _, obj = self._home
            with contextlib.suppress(ckr.ObjectHandleInvalid, ckr.SessionHandleInvalid):
                obj.destroy()
            s.forget_session_key(self.ref)
            self._home = (hsm_id, link, -2, obj)
            self._deleted = True
            return
        s.destroy_token_key(self.ref)
        self._stamp = -1

    # -- sharing ---------------------------------------------------------------------------------

    def share(self, username: str) -> None:
        """Share the key with crypto user ``username`` (owner only)."""
        self._s.client.keys.share(self._s.username, self.ref, username, share=True)

    def unshare(self, username: str) -> None:
        """Stop sharing the key with ``username`` (owner only)."""
        self._s.client.keys.share(self._s.username, self.ref, username, share=False)


def _routed(
    operation: str, allowed: frozenset, checked: str, doc: str, hsm_makes_iv: bool = False
) -> Callable[..., Any]:
    """The key method ``operation`` (encrypt, decrypt, sign or verify), routed to the HSMs.

    Each call checks the mechanism against CloudHSM's list ``allowed`` — once per
    mechanism: the last one that passed is kept in the key's attribute ``checked``, which
    encrypt/decrypt and sign/verify share, as they share a list — then, with
    ``hsm_makes_iv``, writes the HSM's AES-GCM IV into the caller's parameters
    (:func:`~labsupport.client.gcmiv.write_hsm_iv`), runs python-pkcs11's method of the
    same name on the next replica (round robin) and, on an HSM failure, on another one.
    The one path of the four operations, and the hot path behind the bench ratios: it adds
    no call of its own between the learner's call and the replica's.
    """

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        mechanism = kwargs.get("mechanism")
        if mechanism is not None and mechanism is not getattr(self, checked):
            mechanisms.require(mechanism, allowed, operation)
            setattr(self, checked, mechanism)  # the same mechanism next time: no set lookup
        if hsm_makes_iv and mechanism is AES_GCM:  # python-pkcs11 takes Mechanism members only
            write_hsm_iv(kwargs.get("mechanism_param"))
        try:
            return getattr(self._route(operation), operation)(*args, **kwargs)
        except FAILOVER_ERRORS:
            return self._retry(operation, lambda obj: getattr(obj, operation)(*args, **kwargs))

    run.__name__ = run.__qualname__ = operation
    run.__doc__ = doc
    return run


class _Encrypt(types.EncryptMixin):
    encrypt = _routed(
        "encrypt",
        mechanisms.ENCRYPT,
        "_enc_ok",
        """Encrypt on the next HSM that holds the key (python-pkcs11 ``encrypt``).

        AES-GCM as on CloudHSM: the HSM generates the IV and writes it into
        ``mechanism_param.nonce``, which must be a writable ``bytearray(12)``
        (:mod:`labsupport.client.gcmiv`).
        """,
        hsm_makes_iv=True,
    )


class _Decrypt(types.DecryptMixin):
    decrypt = _routed(
        "decrypt",
        mechanisms.ENCRYPT,
        "_enc_ok",
        """Decrypt on the next HSM that holds the key (python-pkcs11 ``decrypt``).""",
    )


class _Sign(types.SignMixin):
    sign = _routed(
        "sign",
        mechanisms.SIGN,
        "_sign_ok",
        """Sign on the next HSM that holds the key (python-pkcs11 ``sign``).""",
    )


class _Verify(types.VerifyMixin):
    verify = _routed(
        "verify",
        mechanisms.SIGN,
        "_sign_ok",
        """Verify ``signature`` on the next HSM that holds the key (python-pkcs11 ``verify``).""",
    )


class _Wrap(types.WrapMixin):
    def wrap_key(self: Any, key: Any, mechanism: Any = None, mechanism_param: Any = None) -> bytes:
        """Wrap (export) ``key`` under this key. You must own ``key`` and it must be extractable."""
        s: ClusterSessionLike = self._s
        s.require_open()
        mechanisms.require(mechanism, mechanisms.WRAP, "wrap")
        if not isinstance(key, ClusterKey):
            raise LabError(
                "wrap_key needs a key from this cluster session.",
                "Find the key with session.get_key(...) first.",
            )
        if key.is_token_key:
            rec = key.current_record()
            assert rec is not None
            rec.require_owner(s.username, "wrap (export)")
            if not rec.extractable:
                raise KeyNotExtractable(
                    f"Key {key.reference} was created with CKA_EXTRACTABLE false; no one can "
                    "wrap it out of the HSMs.",
                    "Create keys you need to export with template={Attribute.EXTRACTABLE: True}.",
                )
        hsm_id, wrapping = self._route_for_use("wrap")
        target = key.replica_on(hsm_id)
        if target is None:
            # C_WrapKey needs both keys on one HSM: pick one that holds both
            for h, obj in self._reps:
                cand = key.replica_on(h)
                if cand is not None:
                    wrapping, target = obj, cand
                    break
        if target is None:
            raise NoHsmAvailable(
                "No HSM holds both the wrapping key and the key to wrap.",
                "Session keys live on one HSM; wrap them with a token key.",
            )
        return wrapping.wrap_key(target, mechanism=mechanism, mechanism_param=mechanism_param)


class _Unwrap(types.UnwrapMixin):
    def unwrap_key(
        self: Any,
        object_class: ObjectClass,
        key_type: KeyType,
        key_data: bytes,
        id: bytes | None = None,
        label: str | None = None,
        mechanism: Any = None,
        mechanism_param: Any = None,
        store: bool = False,
        capabilities: Any = None,
        template: dict[Attribute, Any] | None = None,
    ) -> Any:
        """Unwrap (import) a key; a token key is then copied to every HSM."""
        s: ClusterSessionLike = self._s
        mechanisms.require(mechanism, mechanisms.WRAP, "unwrap")
        hsm_id, unwrapping = self._route_to_make("unwrap", store)

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            obj = unwrapping.unwrap_key(
                object_class,
                key_type,
                key_data,
                id=ref_to_id(refs[0]),
                label=label,
                mechanism=mechanism,
                mechanism_param=mechanism_param,
                store=store,
                capabilities=capabilities,
                template={**(template or {}), **internal},
            )
            return [obj]

        return s.create_keys(
            [KeyClass.of(object_class)],
            key_type,
            store,
            id,
            template,
            make,
            prefer=hsm_id,
            local=False,
        )[0]


class _Derive(types.DeriveMixin):
    def derive_key(
        self: Any,
        key_type: KeyType,
        key_length: int,
        id: bytes | None = None,
        label: str | None = None,
        store: bool = False,
        capabilities: Any = None,
        mechanism: Any = None,
        mechanism_param: Any = None,
        template: dict[Attribute, Any] | None = None,
    ) -> Any:
        """Derive a key on an HSM that holds this key; a token key is then copied to all."""
        s: ClusterSessionLike = self._s
        mechanisms.require(
            mechanisms.derive_mechanism(mechanism, self[Attribute.KEY_TYPE]),
            mechanisms.DERIVE,
            "derive",
        )
        hsm_id, base = self._route_to_make("derive", store)
        # PKCS#11 (C_DeriveKey): the new key is never-extractable / always-sensitive only if
        # the base key is, so take the base key's values from its record.
        inherit = (bool(self[Attribute.NEVER_EXTRACTABLE]), bool(self[Attribute.ALWAYS_SENSITIVE]))

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            return [
                base.derive_key(
                    key_type,
                    key_length,
                    id=ref_to_id(refs[0]),
                    label=label,
                    store=store,
                    capabilities=capabilities,
                    mechanism=mechanism,
                    mechanism_param=mechanism_param,
                    template={**(template or {}), **internal},
                )
            ]

        return s.create_keys(
            [KeyClass.SECRET],
            key_type,
            store,
            id,
            template,
            make,
            prefer=hsm_id,
            local=False,
            inherit=inherit,
        )[0]


_MIXINS = {
    Attribute.ENCRYPT: _Encrypt,
    Attribute.DECRYPT: _Decrypt,
    Attribute.SIGN: _Sign,
    Attribute.VERIFY: _Verify,
    Attribute.WRAP: _Wrap,
    Attribute.UNWRAP: _Unwrap,
    Attribute.DERIVE: _Derive,
}
_BASES = {
    KeyClass.SECRET: types.SecretKey,
    KeyClass.PUBLIC: types.PublicKey,
    KeyClass.PRIVATE: types.PrivateKey,
}
_CLASS_CACHE: dict[tuple, type] = {}


def _key_class(key_class: KeyClass, capabilities: tuple[Attribute, ...]) -> type:
    cache_key = (key_class, capabilities)
    klass = _CLASS_CACHE.get(cache_key)
    if klass is None:
        base = _BASES[key_class]
        bases = (ClusterKey, base, *(_MIXINS[c] for c in capabilities))
        klass = type(base.__name__, bases, {"__module__": __name__})
        _CLASS_CACHE[cache_key] = klass
    return klass


def _capabilities_of(obj: pkcs11.Object) -> tuple[Attribute, ...]:
    caps = []
    for attr in _CAPABILITIES:
        try:
            if obj[attr]:
                caps.append(attr)
        except (ckr.AttributeTypeInvalid, ckr.AttributeSensitive):
            continue
    return tuple(caps)


__all__ = ["FAILOVER_ERRORS", "SECRET_VALUE_ATTRS", "ClusterKey"]
