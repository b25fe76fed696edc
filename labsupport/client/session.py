"""Cluster sessions and keys: python-pkcs11 ``Session`` and ``Key`` objects for a cluster.

``client.login("alice:password")`` returns a :class:`ClusterSession`. It *is* a
``pkcs11.Session`` (it derives from python-pkcs11's ``Session`` type) and its keys are
``pkcs11.SecretKey`` / ``PublicKey`` / ``PrivateKey`` objects with the usual mixins
(``EncryptMixin``, ``SignMixin`` …), so code written here runs unchanged against the
real ``libcloudhsm_pkcs11.so`` through ``pkcs11.lib(...).get_token(...).open(...)``.

**How operations are routed.** A python-pkcs11 session talks to one token, and one
SoftHSM token plays one HSM. A cluster session therefore holds one real session per
HSM. Each operation on a key goes to the next HSM that holds the key (round robin) and
is executed there by python-pkcs11 on SoftHSM; which HSM served it is recorded in
``client.requests``. When the cluster changes (an HSM is deleted, degraded, or added
and synchronized), the next operation sees it and routes around it.

**What follows CloudHSM rules.** Token keys (``store=True``) are created on one HSM and
copied to every other HSM before the call returns (see :mod:`labsupport.client.sync`);
using one that is on fewer than two HSMs fails with ``CKR_FUNCTION_FAILED`` ("does not
meet the availability requirements") unless the check is disabled. Session keys
(``store=False``) live on the one HSM that made them. Only the owner may delete, wrap,
share or modify a key; users it is shared with may only use it.

**Where the simulation differs.** SoftHSM only sees a new token after the PKCS#11
library is re-initialized, which closes every session in the kernel: creating or
deleting a simulated HSM therefore also ends the *session* keys of this kernel (token
keys are unaffected — the client reopens its sessions). Multi-part operations
(streaming ``encrypt`` of an iterator) stay on one HSM for their whole length.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass, types
from pkcs11 import exceptions as ckr
from pkcs11.attributes import AttributeMapper
from pkcs11.defaults import DEFAULT_GENERATE_MECHANISMS

from labsupport.client import mechanisms, sync
from labsupport.client.errors import (
    AttributeNotSupported,
    KeyNotExtractable,
    KeyPermissionError,
    KeySizeNotSupported,
    NoHsmAvailable,
    NotLoggedIn,
    NotSupportedByCloudHsm,
    ObjectClassNotSupported,
    SessionClosedError,
    SessionKeyLost,
)
from labsupport.client.keys import (
    KeyClass,
    KeyRecord,
    KeyStatus,
    format_ref,
    id_to_ref,
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
    from labsupport.client.client import Client
    from labsupport.client.users import User

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
        session: ClusterSession,
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
        self._reps: list[tuple[str, pkcs11.Object]] = []

    # -- identity ---------------------------------------------------------------------

    def _identity(self) -> Any:
        return ("ClusterKey", self._s._client.cluster_id, self.ref)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterKey) and self._identity() == other._identity()

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
    def session(self) -> ClusterSession:
        """The cluster session this key object belongs to."""
        return self._s

    @property
    def is_token_key(self) -> bool:
        """True for token keys (synchronized to every HSM), False for session keys."""
        return self._home is None

    @property
    def owner(self) -> str:
        """The crypto user who owns the key."""
        rec = self._current_record()
        return rec.owner if rec else self._s.username

    @property
    def shared_with(self) -> tuple[str, ...]:
        """The crypto users the owner shared the key with."""
        rec = self._current_record()
        return rec.shared if rec else ()

    @property
    def hsms(self) -> list[str]:
        """The HSMs that hold a copy of this key now (its coverage)."""
        if self._home is not None:
            return [self._home[0]]
        s = self._s
        s._fresh()
        return [h for h in s._order if s._links[h].find(self.ref) is not None]

    # -- routing --------------------------------------------------------------------------

    def _current_record(self) -> KeyRecord | None:
        if self._home is not None:
            return self._record
        return self._s._client._records().get(self.ref)

    def _resolve(self) -> None:
        s = self._s
        client = s._client
        if self._home is not None:
            hsm_id, link, generation, obj = self._home
            if self._deleted:
                raise ckr.KeyHandleInvalid(f"Session key {self.reference} was deleted.")
            if s._links.get(hsm_id) is not link or link.generation != generation or not link.alive:
                raise SessionKeyLost(
                    f"Session key {self.reference} is gone: it lived only on {hsm_id}, and "
                    "that HSM (or this kernel's PKCS#11 session with it) went away.",
                    "Session keys (store=False) live on one HSM and end with the session. "
                    "Use store=True for keys that must survive; in the lab, creating or "
                    "deleting an HSM also restarts the PKCS#11 library, which ends session keys.",
                )
            self._reps = [(hsm_id, obj)]
            self._stamp = s._stamp
            return
        rec = client._records().get(self.ref)
        if rec is None or rec.status is KeyStatus.DELETING:
            raise ckr.KeyHandleInvalid(f"Key {self.reference} was deleted.")
        if not rec.visible_to(s.username):
            raise KeyPermissionError(
                f"Key {self.reference} is no longer shared with {s.username}.",
                f"Ask its owner ({rec.owner}) to share it again.",
            )
        self._record = rec
        reps = []
        for hsm_id in s._order:
            obj = s._links[hsm_id].find(self.ref)
            if obj is not None:
                reps.append((hsm_id, obj))
        if not reps:
            raise NoHsmAvailable(
                f"No ACTIVE HSM holds key {self.reference} right now.",
                "Wait for the HSM(s) to return to ACTIVE, or add an HSM to the cluster "
                "(its keys come from the other HSMs).",
            )
        if len(reps) < 2 and not client.config.disable_key_availability_check:
            client._availability_failure(self.ref, len(reps))
        self._reps = reps
        self._stamp = s._stamp

    def _route(self, operation: str) -> pkcs11.Object:
        # The hot path of every operation: keep it to a few attribute reads.
        s = self._s
        client = s._client
        if s._gen != _LIBRARY.generation or s._topo != client._topo_version:
            s._fresh()
        if self._stamp != s._stamp:
            self._resolve()
        reps = self._reps
        if len(reps) == 1:
            hsm_id, obj = reps[0]
        else:
            self._rr += 1  # round robin per key
            hsm_id, obj = reps[self._rr % len(reps)]
        log = client.requests
        log.total += 1
        log._items.append((log.total, hsm_id, operation))
        if not log.total & 31 and _monotonic() >= client._next_poll:
            client.poll()  # look for cluster changes now and then (applies from the next call)
        return obj

    def _retry(self, operation: str, call: Callable[[pkcs11.Object], Any]) -> Any:
        """Run ``call`` on a replica; on an HSM failure re-resolve and try another one."""
        last: Exception | None = None
        for _ in range(3):
            self._s._client.poll(force=True)
            self._s._refresh()
            self._stamp = -1
            try:
                return call(self._route(operation))
            except FAILOVER_ERRORS as exc:
                last = exc
        assert last is not None
        raise last

    def _replica_on(self, hsm_id: str) -> pkcs11.Object | None:
        s = self._s
        if s._gen != _LIBRARY.generation or s._topo != s._client._topo_version:
            s._fresh()
        if self._stamp != s._stamp:
            self._resolve()
        return next((obj for h, obj in self._reps if h == hsm_id), None)

    def _read_replica(self) -> pkcs11.Object:
        """The replica attribute reads go to (internal: never returned to learners)."""
        s = self._s
        s._fresh()
        if self._stamp != s._stamp:
            self._resolve()
        return self._reps[0][1]

    # -- attributes --------------------------------------------------------------------------

    def _record_attr(self, attr: Attribute) -> Any:
        rec = self._current_record() or self._record
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
        rec = self._current_record() or self._record
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
        rec = self._current_record() or self._record
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
        for k in special:
            out[k] = self[k]
        return out

    def __setitem__(self, attr: Attribute, value: Any) -> None:
        s = self._s
        value = s._raw_value(attr, value)
        if self._home is not None:
            self._read_replica()[attr] = value
            if attr == Attribute.SENSITIVE and self._record is not None:
                self._record = replace(self._record, sensitive=bool(value))
            return
        rec = self._current_record()
        assert rec is not None
        rec.require_owner(s.username, "modify")
        if attr == Attribute.SENSITIVE:
            if not value and rec.sensitive is not False:
                raise ckr.AttributeReadOnly("CKA_SENSITIVE cannot go from true to false.")
            if value and rec.sensitive is not True:
                self._set_on_every_hsm(attr, True)
                s._client._update_record(self.ref, sensitive=True)
            return
        if attr == Attribute.ID:
            s._client._update_record(self.ref, learner_id=bytes(value).hex())
            return
        if attr == Attribute.EXTRACTABLE:
            if value and not rec.extractable:
                raise ckr.AttributeReadOnly("CKA_EXTRACTABLE cannot go from false to true.")
            s._client._update_record(self.ref, extractable=bool(value))
            return
        self._set_on_every_hsm(attr, value)
        if attr == Attribute.LABEL:
            s._client._update_record(self.ref, label=str(value))

    def _set_on_every_hsm(self, attr: Attribute, value: Any) -> None:
        s = self._s
        s._fresh()
        for hsm_id in s._order:
            obj = s._links[hsm_id].find(self.ref)
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
        s._require_open()
        if self._home is not None:
            hsm_id, link, _, obj = self._home
            with contextlib.suppress(ckr.ObjectHandleInvalid, ckr.SessionHandleInvalid):
                obj.destroy()
            s._session_keys.pop(self.ref, None)
            self._home = (hsm_id, link, -2, obj)
            self._deleted = True
            return
        s._client._destroy_token_key(s, self.ref)
        self._stamp = -1

    # -- sharing ---------------------------------------------------------------------------------

    def share(self, username: str) -> None:
        """Share the key with crypto user ``username`` (owner only)."""
        self._s._client._share(self._s.username, self.ref, username, share=True)

    def unshare(self, username: str) -> None:
        """Stop sharing the key with ``username`` (owner only)."""
        self._s._client._share(self._s.username, self.ref, username, share=False)


class _Encrypt(types.EncryptMixin):
    def encrypt(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        """Encrypt on the next HSM that holds the key (python-pkcs11 ``encrypt``)."""
        mechanism = kwargs.get("mechanism")
        if mechanism is not None and mechanism not in mechanisms.ENCRYPT:
            mechanisms.require(mechanism, mechanisms.ENCRYPT, "encrypt")
        try:
            return self._route("encrypt").encrypt(data, *args, **kwargs)
        except FAILOVER_ERRORS:
            return self._retry("encrypt", lambda obj: obj.encrypt(data, *args, **kwargs))


class _Decrypt(types.DecryptMixin):
    def decrypt(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        """Decrypt on the next HSM that holds the key (python-pkcs11 ``decrypt``)."""
        mechanism = kwargs.get("mechanism")
        if mechanism is not None and mechanism not in mechanisms.ENCRYPT:
            mechanisms.require(mechanism, mechanisms.ENCRYPT, "decrypt")
        try:
            return self._route("decrypt").decrypt(data, *args, **kwargs)
        except FAILOVER_ERRORS:
            return self._retry("decrypt", lambda obj: obj.decrypt(data, *args, **kwargs))


class _Sign(types.SignMixin):
    def sign(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        """Sign on the next HSM that holds the key (python-pkcs11 ``sign``)."""
        mechanism = kwargs.get("mechanism")
        if mechanism is not None and mechanism not in mechanisms.SIGN:
            mechanisms.require(mechanism, mechanisms.SIGN, "sign")
        try:
            return self._route("sign").sign(data, *args, **kwargs)
        except FAILOVER_ERRORS:
            return self._retry("sign", lambda obj: obj.sign(data, *args, **kwargs))


class _Verify(types.VerifyMixin):
    def verify(self: Any, data: Any, signature: Any, *args: Any, **kwargs: Any) -> Any:
        """Verify on the next HSM that holds the key (python-pkcs11 ``verify``)."""
        mechanism = kwargs.get("mechanism")
        if mechanism is not None and mechanism not in mechanisms.SIGN:
            mechanisms.require(mechanism, mechanisms.SIGN, "verify")
        try:
            return self._route("verify").verify(data, signature, *args, **kwargs)
        except FAILOVER_ERRORS:
            return self._retry("verify", lambda obj: obj.verify(data, signature, *args, **kwargs))


class _Wrap(types.WrapMixin):
    def wrap_key(self: Any, key: Any, mechanism: Any = None, mechanism_param: Any = None) -> bytes:
        """Wrap (export) ``key`` under this key. You must own ``key`` and it must be extractable."""
        s: ClusterSession = self._s
        s._require_open()
        mechanisms.require(mechanism, mechanisms.WRAP, "wrap")
        if not isinstance(key, ClusterKey):
            raise LabError(
                "wrap_key needs a key from this cluster session.",
                "Find the key with session.get_key(...) first.",
            )
        if key._home is None:
            rec = key._current_record()
            assert rec is not None
            rec.require_owner(s.username, "wrap (export)")
            if not rec.extractable:
                raise KeyNotExtractable(
                    f"Key {key.reference} was created with CKA_EXTRACTABLE false; no one can "
                    "wrap it out of the HSMs.",
                    "Create keys you need to export with template={Attribute.EXTRACTABLE: True}.",
                )
        own = self._current_record()
        if own is not None:
            own.require_use(s.username, "wrap")
        wrapping = self._route("wrap")
        hsm_id = next(h for h, obj in self._reps if obj is wrapping)
        target = key._replica_on(hsm_id)
        if target is None:
            # C_WrapKey needs both keys on one HSM: pick one that holds both
            for h, obj in self._reps:
                cand = key._replica_on(h)
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
        s: ClusterSession = self._s
        mechanisms.require(mechanism, mechanisms.WRAP, "unwrap")
        rec = self._current_record()
        if rec is not None:
            rec.require_use(s.username, "unwrap")
        unwrapping = self._route("unwrap")
        hsm_id = next(h for h, obj in self._reps if obj is unwrapping)
        if not store:  # a session key: make it where this session's session keys live
            home = s._session_home()
            there = self._replica_on(home) if home else None
            if there is not None:
                unwrapping, hsm_id = there, home

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

        return s._create(
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
        s: ClusterSession = self._s
        mechanisms.require(
            mechanisms.derive_mechanism(mechanism, self[Attribute.KEY_TYPE]),
            mechanisms.DERIVE,
            "derive",
        )
        rec = self._current_record()
        if rec is not None:
            rec.require_use(s.username, "derive")
        # PKCS#11 (C_DeriveKey): the new key is never-extractable / always-sensitive only if
        # the base key is, so take the base key's values from its record.
        inherit = (bool(self[Attribute.NEVER_EXTRACTABLE]), bool(self[Attribute.ALWAYS_SENSITIVE]))
        base = self._route("derive")
        hsm_id = next(h for h, obj in self._reps if obj is base)
        if not store:  # a session key: make it where this session's session keys live
            home = s._session_home()
            there = self._replica_on(home) if home else None
            if there is not None:
                base, hsm_id = there, home

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

        return s._create(
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


# =========================================================================================
# domain parameters (EC key pairs)
# =========================================================================================


class ClusterDomainParameters(types.LocalDomainParameters):
    """Domain parameters held in Python (``local=True``) for generating EC/DH/DSA key pairs."""

    def __init__(self, session: ClusterSession, key_type: KeyType, params: dict[Attribute, Any]):
        super().__init__(session, {Attribute.KEY_TYPE: key_type, **params})
        self._key_type = key_type

    def generate_keypair(
        self,
        id: bytes | None = None,
        label: str | None = None,
        store: bool = False,
        capabilities: Any = None,
        mechanism: Any = None,
        mechanism_param: Any = None,
        public_template: dict[Attribute, Any] | None = None,
        private_template: dict[Attribute, Any] | None = None,
    ) -> tuple[Any, Any]:
        """Generate a key pair on one HSM; token keys are then copied to every HSM."""
        s: ClusterSession = self._session  # type: ignore[assignment]
        s._check_generate(self._key_type, None, mechanism, public_template, private_template)
        params = {k: v for k, v in self.params.items() if k != Attribute.KEY_TYPE}
        key_type = self._key_type

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            real = link.session.create_domain_parameters(key_type, params, local=True)
            pub, priv = real.generate_keypair(
                label=label,
                store=store,
                capabilities=capabilities,
                mechanism=mechanism,
                mechanism_param=mechanism_param,
                public_template={**(public_template or {}), Attribute.ID: ref_to_id(refs[0])},
                private_template={
                    **(private_template or {}),
                    **internal,
                    Attribute.ID: ref_to_id(refs[1]),
                },
            )
            return [pub, priv]

        template = dict(private_template or {})
        pub, priv = s._create(
            [KeyClass.PUBLIC, KeyClass.PRIVATE], key_type, store, id, template, make
        )
        return pub, priv


# =========================================================================================
# the session
# =========================================================================================


class ClusterSession(types.Session):
    """A PKCS#11 session on the whole cluster, logged in as one crypto user.

    Use it exactly like a python-pkcs11 session: ``generate_key``, ``generate_keypair``,
    ``create_domain_parameters(...).generate_keypair``, ``get_key``, ``get_objects``,
    ``create_object`` (import), ``generate_random``, ``digest``; keys have ``encrypt``,
    ``decrypt``, ``sign``, ``verify``, ``wrap_key``, ``unwrap_key``, ``derive_key`` and
    ``destroy``. It only finds keys the user owns or that were shared with them (plus
    public keys). Close it with ``close()`` or a ``with`` block.
    """

    def __init__(self, client: Client, user: User | None, rw: bool) -> None:
        self._client = client
        self._user = user
        #: The logged-in crypto user ("" for a public session: it sees public keys only).
        self.username = user.username if user is not None else ""
        self._rw = rw
        self._closed = False
        self._tokens = client.tokens
        self._links: dict[str, HsmLink] = {}
        self._order: list[str] = []
        self._gen = -1
        self._topo = -1
        self._stamp = 0
        self._keys: dict[int, ClusterKey] = {}
        self._session_keys: dict[int, ClusterKey] = {}
        self._home_hsm: str | None = None  # where this session's session keys live
        #: python-pkcs11's attribute mapper (``token.open(attribute_mapper=...)``): how
        #: attribute values are packed and unpacked for this session's caller.
        self.attribute_mapper: AttributeMapper = _RAW_MAPPER
        self._refresh()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._order)} HSM(s)"
        return f"<ClusterSession {self._client.cluster_id} user={self.username} {state}>"

    def _identity(self) -> Any:
        return ("ClusterSession", id(self))

    # -- python-pkcs11 Session API -------------------------------------------------------

    @property
    def token(self) -> Any:
        """The cluster's token (one PKCS#11 slot represents the whole cluster)."""
        return self._client.token

    @property
    def closed(self) -> bool:
        """True once the session was closed."""
        return self._closed

    @property
    def rw(self) -> bool:
        """True for a read/write session (needed to create token keys)."""
        return self._rw

    @property
    def user(self) -> User | None:
        """The logged-in crypto user (None for a public session)."""
        return self._user

    @property
    def user_type(self) -> pkcs11.UserType:
        """``UserType.USER`` when a crypto user is logged in, ``NOBODY`` for a public session."""
        return pkcs11.UserType.USER if self._user is not None else pkcs11.UserType.NOBODY

    def close(self) -> None:
        """Log out and close the session (session keys disappear)."""
        if self._closed:
            return
        self._closed = True
        for link in self._links.values():
            link.close()
        self._links.clear()
        self._client._session_closed(self)

    def reaffirm_credentials(self, pin: str | bytes) -> None:
        """Not used by CloudHSM."""
        raise ckr.FunctionNotSupported("CloudHSM does not use C_Login with CKU_CONTEXT_SPECIFIC.")

    def get_objects(self, attrs: dict[Attribute, Any] | None = None) -> Iterator[Any]:
        """Search the keys this user may see (owned, shared, public), like ``C_FindObjects``."""
        self._require_open()
        self._fresh()
        attrs = dict(attrs or {})
        want_id = attrs.pop(Attribute.ID, None)
        records = self._client._records()
        found: dict[int, tuple[str, pkcs11.Object]] = {}
        for hsm_id in self._order:
            link = self._links[hsm_id]
            for obj in link.session.get_objects(attrs):
                try:
                    ref = id_to_ref(obj[Attribute.ID])
                except (ckr.AttributeTypeInvalid, ckr.AttributeSensitive):
                    continue
                if ref is not None and ref not in found:
                    found[ref] = (hsm_id, obj)
        results = []
        for ref in sorted(found):
            key = self._session_keys.get(ref)
            if key is None:
                rec = records.get(ref)
                if rec is None or rec.status is not KeyStatus.OK:
                    continue
                if not rec.visible_to(self.username):
                    continue
                key = self._token_key(rec, found[ref][1])
            else:
                try:
                    key._resolve()
                except SessionKeyLost:
                    continue
            if want_id is not None and key[Attribute.ID] != bytes(want_id):
                continue
            results.append(key)
        return iter(results)

    def create_object(self, attrs: dict[Attribute, Any]) -> Any:
        """Import a key object (secret, public or private); a token key is copied to all HSMs."""
        attrs = dict(self._raw_template(attrs) or {})
        object_class = attrs.get(Attribute.CLASS)
        if object_class not in (
            ObjectClass.SECRET_KEY,
            ObjectClass.PUBLIC_KEY,
            ObjectClass.PRIVATE_KEY,
        ):
            raise ObjectClassNotSupported(
                f"The cluster stores keys only, not {object_class!s} objects "
                "(CKR_ATTRIBUTE_VALUE_INVALID). CloudHSM stores certificates only on hsm2m.medium "
                "clusters with certificate storage enabled in the client configuration, which "
                "the lab does not simulate.",
                "Keep certificates and data objects outside the HSM, as CloudHSM clients do.",
            )
        _refuse_always_authenticate(attrs)
        self._require_user("create keys")
        store = bool(attrs.get(Attribute.TOKEN, False))
        learner_id = attrs.pop(Attribute.ID, None)
        key_type = attrs.get(Attribute.KEY_TYPE)

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            return [
                link.session.create_object({**attrs, **internal, Attribute.ID: ref_to_id(refs[0])})
            ]

        return self._create(
            [KeyClass.of(object_class)],
            key_type,
            store,
            learner_id,
            attrs,
            make,
            local=False,
            default_sensitive=False,
        )[0]

    def create_domain_parameters(
        self,
        key_type: KeyType,
        attrs: dict[Attribute, Any],
        local: bool = False,
        store: bool = False,
    ) -> ClusterDomainParameters:
        """Domain parameters for key-pair generation (always held locally, in Python)."""
        return ClusterDomainParameters(self, key_type, dict(attrs))

    def generate_domain_parameters(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported by CloudHSM (no DSA/DH parameter generation mechanism)."""
        raise mechanisms.MechanismNotSupported(
            "AWS CloudHSM's PKCS#11 library has no DSA or DH parameter generation mechanism "
            "(CKR_MECHANISM_INVALID).",
            "Use EC keys (create_domain_parameters with a named curve) or RSA.",
        )

    def generate_key(
        self,
        key_type: KeyType,
        key_length: int | None = None,
        id: bytes | None = None,
        label: str | None = None,
        store: bool = False,
        capabilities: Any = None,
        mechanism: Any = None,
        mechanism_param: Any = None,
        template: dict[Attribute, Any] | None = None,
    ) -> Any:
        """Generate a secret key. ``store=True`` makes a token key, copied to every HSM."""
        self._check_generate(key_type, key_length, mechanism, template)
        template = self._raw_template(template)

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            return [
                link.session.generate_key(
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

        return self._create([KeyClass.SECRET], key_type, store, id, template, make)[0]

    def _generate_keypair(
        self,
        key_type: KeyType,
        key_length: int | None = None,
        id: bytes | None = None,
        label: str | None = None,
        store: bool = False,
        capabilities: Any = None,
        mechanism: Any = None,
        mechanism_param: Any = None,
        public_template: dict[Attribute, Any] | None = None,
        private_template: dict[Attribute, Any] | None = None,
    ) -> tuple[Any, Any]:
        self._check_generate(key_type, key_length, mechanism, public_template, private_template)
        public_template = self._raw_template(public_template)
        private_template = self._raw_template(private_template)

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            pub, priv = link.session.generate_keypair(
                key_type,
                key_length,
                label=label,
                store=store,
                capabilities=capabilities,
                mechanism=mechanism,
                mechanism_param=mechanism_param,
                public_template={**(public_template or {}), Attribute.ID: ref_to_id(refs[0])},
                private_template={
                    **(private_template or {}),
                    **internal,
                    Attribute.ID: ref_to_id(refs[1]),
                },
            )
            return [pub, priv]

        pub, priv = self._create(
            [KeyClass.PUBLIC, KeyClass.PRIVATE], key_type, store, id, private_template, make
        )
        return pub, priv

    def generate_random(self, nbits: int) -> bytes:
        """Random bytes from one of the HSMs' generators."""
        return self._any_link("random").session.generate_random(nbits)

    def seed_random(self, seed: bytes) -> None:
        """Not supported by CloudHSM's PKCS#11 library (C_SeedRandom)."""
        raise NotSupportedByCloudHsm(
            "AWS CloudHSM's PKCS#11 library does not implement C_SeedRandom "
            "(CKR_FUNCTION_NOT_SUPPORTED): the HSMs seed their own generators.",
            "Call generate_random() without seeding.",
        )

    def _digest(self, data: bytes, mechanism: Any = None, mechanism_param: Any = None) -> bytes:
        mechanisms.require(mechanism, mechanisms.DIGEST, "digest")
        return self._any_link("digest").session.digest(
            data, mechanism=mechanism, mechanism_param=mechanism_param
        )

    def _digest_generator(self, data: Any, mechanism: Any = None, mechanism_param: Any = None):
        mechanisms.require(mechanism, mechanisms.DIGEST, "digest")
        parts = list(data)
        if any(isinstance(part, types.Key) for part in parts):
            raise NotSupportedByCloudHsm(
                "AWS CloudHSM's PKCS#11 library does not implement C_DigestKey "
                "(CKR_FUNCTION_NOT_SUPPORTED): a key cannot be fed into a digest.",
                "Digest data, or compare keys by their check value (CKA_CHECK_VALUE).",
            )
        return self._any_link("digest").session.digest(
            iter(parts), mechanism=mechanism, mechanism_param=mechanism_param
        )

    def set_pin(self, old_pin: str | bytes, new_pin: str | bytes) -> None:
        """Change the user's password (PIN format ``user:password`` for both)."""
        self._client._set_pin(self, old_pin, new_pin)

    def init_pin(self, pin: str | bytes) -> None:
        """Not supported by CloudHSM's PKCS#11 library (C_InitPIN)."""
        raise NotSupportedByCloudHsm(
            "AWS CloudHSM's PKCS#11 library does not implement C_InitPIN "
            "(CKR_FUNCTION_NOT_SUPPORTED).",
            "Admins create users and set passwords with CloudHSM CLI: `user create` / "
            "`user change-password`.",
        )

    # -- helpers for learners ------------------------------------------------------------------

    def list_keys(self) -> list[Any]:
        """Every key this user can see (owned, shared, public), by reference."""
        return list(self.get_objects())

    # -- internals ---------------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise SessionClosedError(
                "This cluster session is closed.", "Log in again: session = client.login(...)."
            )

    def _fresh(self) -> None:
        self._require_open()
        client = self._client
        if self._gen != self._tokens.generation:
            # The library was re-initialized: most likely an HSM (token) was created or
            # deleted in this kernel. Look at the cluster again before routing.
            client.poll(force=True)
        elif time.monotonic() >= client._next_poll:
            client.poll()
        if self._gen != self._tokens.generation or self._topo != client._topo_version:
            self._refresh()

    def _refresh(self) -> None:
        client = self._client
        for _ in range(5):
            routable = client._routable()
            wanted = {h.hsm_id: h for h in routable}
            for hsm_id in list(self._links):
                if hsm_id not in wanted:
                    self._links.pop(hsm_id).close()
            dead = []
            for hsm_id, endpoint in wanted.items():
                link = self._links.get(hsm_id)
                if link is None:
                    link = self._links[hsm_id] = HsmLink(self._tokens, endpoint)
                try:
                    link.session  # noqa: B018 - open now: a missing token is a dead HSM
                except (TokenNotFound, ckr.TokenNotPresent, ckr.SlotIDInvalid):
                    dead.append(hsm_id)
            if dead:
                client._mark_down(dead)
                continue
            generation = self._tokens.generation
            if any(link.generation != generation for link in self._links.values()):
                continue  # opening a session re-initialized the library: open them again
            break
        self._order = [h.hsm_id for h in routable if h.hsm_id in self._links]
        self._gen = self._tokens.generation
        self._topo = client._topo_version
        self._stamp += 1

    def _any_link(self, operation: str) -> HsmLink:
        self._fresh()
        if not self._order:
            raise NoHsmAvailable(
                "The cluster has no ACTIVE HSM to serve this request.",
                "Create an HSM (cloudhsm.create_hsm(...)) and wait for it to become ACTIVE.",
            )
        client = self._client
        client._rr += 1
        hsm_id = self._order[client._rr % len(self._order)]
        client.requests.record(hsm_id, operation)
        return self._links[hsm_id]

    def _raw_value(self, attr: Attribute, value: Any) -> Any:
        """``value`` as the layer's HSM sessions expect it (the caller may use a custom mapper)."""
        if self.attribute_mapper is _RAW_MAPPER or value is pkcs11.DEFAULT:
            return value
        return _RAW_MAPPER.unpack_attributes(
            attr, self.attribute_mapper.pack_attribute(attr, value)
        )

    def _raw_template(self, template: dict[Attribute, Any] | None) -> dict[Attribute, Any] | None:
        if template is None or self.attribute_mapper is _RAW_MAPPER:
            return template
        return {k: self._raw_value(k, v) for k, v in template.items()}

    def _raw_id(self, learner_id: Any) -> bytes:
        """The caller's CKA_ID as bytes (a custom mapper may let it be a str)."""
        if learner_id is None:
            return b""
        return bytes(self.attribute_mapper.pack_attribute(Attribute.ID, learner_id))

    def _require_user(self, action: str) -> None:
        if self._user is None:
            raise NotLoggedIn(
                f"This is a public session (no user logged in); it cannot {action} "
                "(CKR_USER_NOT_LOGGED_IN).",
                "Open the session with a crypto user's PIN: "
                "token.open(rw=True, user_pin='<username>:<password>').",
            )

    def _check_generate(
        self,
        key_type: Any,
        key_length: int | None,
        mechanism: Any,
        *templates: dict[Attribute, Any] | None,
    ) -> None:
        """Refuse what CloudHSM's C_GenerateKey / C_GenerateKeyPair refuse."""
        self._require_user("generate keys")
        for template in templates:
            _refuse_always_authenticate(template)
        effective = mechanism
        if effective is None:
            effective = DEFAULT_GENERATE_MECHANISMS.get(key_type)
        mechanisms.require(effective, mechanisms.GENERATE, "key generation")
        if key_type == KeyType.RSA and key_length is not None and key_length < 2048:
            raise KeySizeNotSupported(
                f"AWS CloudHSM generates RSA keys of 2048 bits or more; {key_length} is too "
                "small (CKR_KEY_SIZE_RANGE).",
                "Use key_length=2048 (or 3072, 4096).",
            )

    def _session_home(self) -> str | None:
        """The HSM this session keeps its session keys on (chosen once, round robin).

        CloudHSM: session keys live on one HSM. Keeping all of a session's session keys on
        one HSM lets C_WrapKey / C_DeriveKey use any two of them together.
        """
        self._fresh()
        if self._home_hsm not in self._links:
            if not self._order:
                return None
            client = self._client
            client._rr += 1
            self._home_hsm = self._order[client._rr % len(self._order)]
        return self._home_hsm

    def _token_key(self, rec: KeyRecord, obj: pkcs11.Object | None = None) -> ClusterKey:
        key = self._keys.get(rec.ref)
        if key is None:
            if obj is None:
                obj = self._any_holder(rec.ref)
            klass = _key_class(rec.key_class, _capabilities_of(obj))
            key = klass(self, rec.ref, rec.key_class, rec)
            self._keys[rec.ref] = key
        return key

    def _any_holder(self, ref: int) -> pkcs11.Object:
        for hsm_id in self._order:
            obj = self._links[hsm_id].find(ref)
            if obj is not None:
                return obj
        raise NoHsmAvailable(
            f"No ACTIVE HSM holds key {format_ref(ref)}.", "Wait for an HSM to return."
        )

    def key_by_reference(self, reference: str | int) -> Any:
        """The key with CloudHSM key reference ``reference`` (``0x…`` text or int)."""
        from labsupport.client.keys import parse_ref

        ref = parse_ref(reference)
        self._require_open()
        self._fresh()
        if ref in self._session_keys:
            return self._session_keys[ref]
        rec = self._client._records().get(ref)
        if rec is None or rec.status is not KeyStatus.OK or not rec.visible_to(self.username):
            raise ckr.NoSuchKey(f"No key {format_ref(ref)} visible to {self.username}.")
        return self._token_key(rec)

    def _create(
        self,
        classes: list[KeyClass],
        key_type: Any,
        store: bool,
        learner_id: bytes | None,
        template: dict[Attribute, Any] | None,
        make: Callable[[HsmLink, list[int], dict[Attribute, Any]], list[pkcs11.Object]],
        prefer: str | None = None,
        local: bool = True,
        inherit: tuple[bool, bool] | None = None,
        default_sensitive: bool = True,
    ) -> list[ClusterKey]:
        """Create key object(s) with ``make`` on one HSM; for token keys copy them to all.

        ``local`` is False for keys made outside this HSM's generator (unwrapped, imported,
        derived); ``inherit`` is a derived key's base (never_extractable, always_sensitive).
        ``default_sensitive`` is CKA_SENSITIVE when the template is silent (python-pkcs11's
        templates set it true; C_CreateObject leaves the token's default, false).
        """
        self._require_open()
        self._require_user("create keys")
        self._fresh()
        template = template or {}
        _refuse_always_authenticate(template)
        requested_extractable = bool(template.get(Attribute.EXTRACTABLE, True))
        requested_sensitive = bool(template.get(Attribute.SENSITIVE, default_sensitive))
        if not store:
            home = prefer if prefer in self._links else self._session_home()
            if home is None:
                raise NoHsmAvailable(
                    "The cluster has no ACTIVE HSM to create the key on.",
                    "Create an HSM (cloudhsm.create_hsm(...)) and wait for it to become ACTIVE.",
                )
            link = self._links[home]
            self._client.requests.record(home, "generate")
            refs = [self._client._session_ref() for _ in classes]
            # PKCS#11: CKA_EXTRACTABLE belongs to private and secret keys only (SoftHSM
            # rejects it on a public key with CKR_ATTRIBUTE_TYPE_INVALID).
            public_only = classes == [KeyClass.PUBLIC]
            internal = {} if public_only else {Attribute.EXTRACTABLE: requested_extractable}
            objs = make(link, refs, internal)
            keys = []
            for ref, key_class, obj in zip(refs, classes, objs, strict=True):
                public = key_class is KeyClass.PUBLIC
                never, always = secrecy_history(
                    obj, requested_extractable, local, inherit, requested_sensitive
                )
                rec = KeyRecord(
                    ref=ref,
                    owner=self.username,
                    key_class=key_class,
                    key_type=_key_type_name(key_type, obj),
                    label=obj[Attribute.LABEL],
                    learner_id=self._raw_id(learner_id),
                    extractable=True if public else requested_extractable,
                    never_extractable=False if public else never,
                    always_sensitive=None if public else always,
                    sensitive=None if public else requested_sensitive,
                    local=local,
                    status=KeyStatus.OK,
                    created_on=link.hsm_id,
                )
                klass = _key_class(key_class, _capabilities_of(obj))
                key = klass(self, ref, key_class, rec, (link.hsm_id, link, link.generation, obj))
                self._session_keys[ref] = key
                keys.append(key)
            return keys
        if not self._rw:
            raise ckr.SessionReadOnly(
                "This is a read-only session; token keys (store=True) need a read/write "
                "session: client.login(pin) or token.open(rw=True, user_pin=pin)."
            )
        return self._client._create_token_keys(
            self,
            classes,
            key_type,
            self._raw_id(learner_id),
            (requested_extractable, requested_sensitive),
            make,
            prefer,
            local,
            inherit,
        )


def _refuse_always_authenticate(template: dict[Attribute, Any] | None) -> None:
    """CloudHSM's PKCS#11 library does not support CKA_ALWAYS_AUTHENTICATE (AWS's
    "Supported key attributes" page lists no such attribute): refuse it at creation instead
    of making a key no one can use."""
    if template and template.get(Attribute.ALWAYS_AUTHENTICATE):
        raise AttributeNotSupported(
            "AWS CloudHSM's PKCS#11 library does not support CKA_ALWAYS_AUTHENTICATE "
            "(CKR_ATTRIBUTE_TYPE_INVALID).",
            "Leave it out; protect the key with ownership, sharing and (for admins) quorum.",
        )


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


def _key_type_name(key_type: Any, obj: pkcs11.Object) -> str:
    try:
        return KeyType(obj[Attribute.KEY_TYPE]).name
    except (ckr.PKCS11Error, ValueError):
        return KeyType(key_type).name if key_type is not None else "UNKNOWN"


__all__ = ["ClusterDomainParameters", "ClusterKey", "ClusterSession", "sync"]
