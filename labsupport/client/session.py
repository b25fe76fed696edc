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

import functools
import inspect
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass, types
from pkcs11 import exceptions as ckr
from pkcs11.attributes import AttributeMapper
from pkcs11.defaults import DEFAULT_GENERATE_MECHANISMS

from labsupport.client import mechanisms
from labsupport.client.errors import (
    AttributeNotSupported,
    BadArgument,
    ClusterChanging,
    InvalidKeyReference,
    KeySizeNotSupported,
    NoHsmAvailable,
    NotLoggedIn,
    NotSupportedByCloudHsm,
    ObjectClassNotSupported,
    SessionClosedError,
    SessionKeyLost,
)
from labsupport.client.keyobjects import (
    _RAW_MAPPER,
    ClusterKey,
    _capabilities_of,
    _key_class,
)
from labsupport.client.keys import (
    KeyClass,
    KeyRecord,
    KeyStatus,
    format_ref,
    id_to_ref,
    ref_to_id,
)
from labsupport.client.keystore import secrecy_history
from labsupport.client.links import HsmLink
from labsupport.errors import TokenNotFound

if TYPE_CHECKING:
    from labsupport.client.interfaces import ClusterClient
    from labsupport.client.users import User

#: How often creating a token key is tried while other processes create or delete HSMs.
CREATE_ATTEMPTS = 3

# =========================================================================================
# domain parameters (EC key pairs)
# =========================================================================================


class ClusterDomainParameters(types.LocalDomainParameters):
    """Domain parameters held in Python (``local=True``) for generating EC/DH/DSA key pairs."""

    def __init__(self, session: ClusterSession, key_type: KeyType, params: dict[Attribute, Any]):
        super().__init__(session, {Attribute.KEY_TYPE: key_type, **params})
        self._key_type = key_type

    def generate_keypair(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Generate a key pair on one HSM; token keys are then copied to every HSM.

        Takes python-pkcs11's arguments (``id``, ``label``, ``store``, ``capabilities``,
        ``mechanism``, ``mechanism_param``, ``public_template``, ``private_template``; its
        signature is the one shown) and passes them on to
        :meth:`ClusterSession.create_keypair` with these parameters' curve.
        """
        s: ClusterSession = self._session  # type: ignore[assignment]
        params = {k: v for k, v in self.params.items() if k != Attribute.KEY_TYPE}
        return s.create_keypair(self._key_type, None, *args, domain_params=params, **kwargs)

    generate_keypair.__signature__ = inspect.signature(  # type: ignore[attr-defined]
        types.LocalDomainParameters.generate_keypair
    )


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

    def __init__(self, client: ClusterClient, user: User | None, rw: bool) -> None:
        self.client = client
        self._user = user
        #: The logged-in crypto user ("" for a public session: it sees public keys only).
        self.username = user.username if user is not None else ""
        self._rw = rw
        self._closed = False
        self._tokens = client.tokens
        #: The client's topology and request log (read on every routed operation).
        self.topology = client.topology
        self.requests = client.requests
        self.links: dict[str, HsmLink] = {}
        self.order: list[str] = []
        self.generation = -1
        self.topology_version = -1
        self.stamp = 0
        self._keys: dict[int, ClusterKey] = {}
        self._session_keys: dict[int, ClusterKey] = {}
        self._home_hsm: str | None = None  # where this session's session keys live
        #: python-pkcs11's attribute mapper (``token.open(attribute_mapper=...)``): how
        #: attribute values are packed and unpacked for this session's caller.
        self.attribute_mapper: AttributeMapper = _RAW_MAPPER
        self.refresh()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.order)} HSM(s)"
        return f"<ClusterSession {self.client.cluster_id} user={self.username} {state}>"

    def _identity(self) -> Any:
        return ("ClusterSession", id(self))

    # -- python-pkcs11 Session API -------------------------------------------------------

    @property
    def token(self) -> Any:
        """The cluster's token (one PKCS#11 slot represents the whole cluster)."""
        return self.client.token

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
        for link in self.links.values():
            link.close()
        self.links.clear()
        self.client.session_closed(self)

    def reaffirm_credentials(self, pin: str | bytes) -> None:
        """Not used by CloudHSM."""
        raise ckr.FunctionNotSupported("CloudHSM does not use C_Login with CKU_CONTEXT_SPECIFIC.")

    def get_objects(self, attrs: dict[Attribute, Any] | None = None) -> Iterator[Any]:
        """Search the keys this user may see (owned, shared, public), like ``C_FindObjects``."""
        self.require_open()
        self.refresh_if_stale()
        attrs = dict(attrs or {})
        want_id = attrs.pop(Attribute.ID, None)
        records = self.client.keys.records()
        found: dict[int, tuple[str, pkcs11.Object]] = {}
        for hsm_id in self.order:
            link = self.links[hsm_id]
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
                key = self.token_key(rec, found[ref][1])
            else:
                try:
                    key.resolve()
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

        return self.create_keys(
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
        self.check_generate(key_type, key_length, mechanism, template)
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

        return self.create_keys([KeyClass.SECRET], key_type, store, id, template, make)[0]

    def create_keypair(
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
        *,
        domain_params: dict[Attribute, Any] | None = None,
    ) -> tuple[Any, Any]:
        """Generate a key pair on one HSM; token keys are then copied to every HSM.

        The one path of ``session.generate_keypair`` (python-pkcs11 calls it as
        ``_generate_keypair``; RSA: ``key_length``) and of domain parameters'
        ``generate_keypair`` (EC: ``domain_params``, the curve).
        """
        self.check_generate(key_type, key_length, mechanism, public_template, private_template)
        public_template = self._raw_template(public_template)
        private_template = self._raw_template(private_template)

        def make(link: HsmLink, refs: list[int], internal: dict[Attribute, Any]) -> list:
            if domain_params is None:
                generate = functools.partial(link.session.generate_keypair, key_type, key_length)
            else:
                real = link.session.create_domain_parameters(key_type, domain_params, local=True)
                generate = real.generate_keypair
            pub, priv = generate(
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

        pub, priv = self.create_keys(
            [KeyClass.PUBLIC, KeyClass.PRIVATE], key_type, store, id, private_template, make
        )
        return pub, priv

    _generate_keypair = create_keypair  # python-pkcs11's Session.generate_keypair calls it

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
        self.client.set_pin(self.username, old_pin, new_pin)

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

    def require_open(self) -> None:
        if self._closed:
            raise SessionClosedError(
                "This cluster session is closed.", "Log in again: session = client.login(...)."
            )

    def refresh_if_stale(self) -> None:
        self.require_open()
        client = self.client
        if self.generation != self._tokens.generation:
            # The library was re-initialized: most likely an HSM (token) was created or
            # deleted in this kernel. Look at the cluster again before routing.
            client.poll(force=True)
        elif time.monotonic() >= client.topology.next_poll:
            client.poll()
        stale = self.generation != self._tokens.generation
        if stale or self.topology_version != client.topology.version:
            self.refresh()

    def refresh(self) -> None:
        client = self.client
        for _ in range(5):
            routable = client.topology.routable()
            wanted = {h.hsm_id: h for h in routable}
            for hsm_id in list(self.links):
                if hsm_id not in wanted:
                    self.links.pop(hsm_id).close()
            dead = []
            for hsm_id, endpoint in wanted.items():
                link = self.links.get(hsm_id)
                if link is None:
                    link = self.links[hsm_id] = HsmLink(self._tokens, endpoint)
                try:
                    link.session  # noqa: B018 - open now: a missing token is a dead HSM
                except (TokenNotFound, ckr.TokenNotPresent, ckr.SlotIDInvalid):
                    dead.append(hsm_id)
            if dead:
                client.topology.mark_down(dead)
                continue
            generation = self._tokens.generation
            if any(link.generation != generation for link in self.links.values()):
                continue  # opening a session re-initialized the library: open them again
            break
        self.order = [h.hsm_id for h in routable if h.hsm_id in self.links]
        self.generation = self._tokens.generation
        self.topology_version = client.topology.version
        self.stamp += 1

    def _any_link(self, operation: str) -> HsmLink:
        self.refresh_if_stale()
        if not self.order:
            raise NoHsmAvailable(
                "The cluster has no ACTIVE HSM to serve this request.",
                "Create an HSM (cloudhsm.create_hsm(...)) and wait for it to become ACTIVE.",
            )
        client = self.client
        hsm_id = self.order[client.topology.next_turn() % len(self.order)]
        client.requests.record(hsm_id, operation)
        return self.links[hsm_id]

    def raw_value(self, attr: Attribute, value: Any) -> Any:
        """``value`` as the layer's HSM sessions expect it (the caller may use a custom mapper)."""
        if self.attribute_mapper is _RAW_MAPPER or value is pkcs11.DEFAULT:
            return value
        return _RAW_MAPPER.unpack_attributes(
            attr, self.attribute_mapper.pack_attribute(attr, value)
        )

    def _raw_template(self, template: dict[Attribute, Any] | None) -> dict[Attribute, Any] | None:
        if template is None or self.attribute_mapper is _RAW_MAPPER:
            return template
        return {k: self.raw_value(k, v) for k, v in template.items()}

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

    def check_generate(
        self,
        key_type: Any,
        key_length: int | None,
        mechanism: Any,
        *templates: dict[Attribute, Any] | None,
    ) -> None:
        """Refuse what CloudHSM's C_GenerateKey / C_GenerateKeyPair refuse."""
        self._require_user("generate keys")
        if not isinstance(key_type, KeyType):
            raise BadArgument(
                f"key_type must be a pkcs11.KeyType, not {key_type!r}.",
                "Pass e.g. KeyType.AES (generate_key) or KeyType.RSA / KeyType.EC "
                "(generate_keypair).",
            )
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
        if key_type == KeyType.AES and key_length not in (None, 128, 192, 256):
            raise KeySizeNotSupported(
                f"AES keys are 128, 192 or 256 bits; key_length={key_length!r} is not "
                "(CKR_KEY_SIZE_RANGE).",
                "Use key_length=256 (or 128, 192).",
            )

    def session_home(self) -> str | None:
        """The HSM this session keeps its session keys on (chosen once, round robin).

        CloudHSM: session keys live on one HSM. Keeping all of a session's session keys on
        one HSM lets C_WrapKey / C_DeriveKey use any two of them together.
        """
        self.refresh_if_stale()
        if self._home_hsm not in self.links:
            if not self.order:
                return None
            self._home_hsm = self.order[self.client.topology.next_turn() % len(self.order)]
        return self._home_hsm

    def token_key(self, rec: KeyRecord, obj: pkcs11.Object | None = None) -> ClusterKey:
        key = self._keys.get(rec.ref)
        if key is None:
            if obj is None:
                obj = self._any_holder(rec.ref)
            klass = _key_class(rec.key_class, _capabilities_of(obj))
            key = klass(self, rec.ref, rec.key_class, rec)
            self._keys[rec.ref] = key
        return key

    def _any_holder(self, ref: int) -> pkcs11.Object:
        for hsm_id in self.order:
            obj = self.links[hsm_id].find(ref)
            if obj is not None:
                return obj
        raise NoHsmAvailable(
            f"No ACTIVE HSM holds key {format_ref(ref)}.", "Wait for an HSM to return."
        )

    def key_by_reference(self, reference: str | int) -> Any:
        """The key with CloudHSM key reference ``reference`` (``0x…`` text or int)."""
        from labsupport.client.keys import REF_BYTES, parse_ref

        try:
            ref = None if isinstance(reference, bool) else parse_ref(reference)
        except (ValueError, TypeError):
            ref = None
        if ref is None or not 0 <= ref < 1 << (8 * REF_BYTES):
            raise InvalidKeyReference(
                f"{reference!r} is not a key reference.",
                "Pass the reference as CloudHSM CLI prints it, e.g. '0x000000000000001f' "
                "(key list), or key.ref of a key you hold.",
            )
        self.require_open()
        self.refresh_if_stale()
        if ref in self._session_keys:
            return self._session_keys[ref]
        rec = self.client.keys.records().get(ref)
        if rec is None or rec.status is not KeyStatus.OK or not rec.visible_to(self.username):
            raise ckr.NoSuchKey(f"No key {format_ref(ref)} visible to {self.username}.")
        return self.token_key(rec)

    def create_keys(
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
        self.require_open()
        self._require_user("create keys")
        self.refresh_if_stale()
        template = template or {}
        _refuse_always_authenticate(template)
        requested_extractable = bool(template.get(Attribute.EXTRACTABLE, True))
        requested_sensitive = bool(template.get(Attribute.SENSITIVE, default_sensitive))
        if not store:
            home = prefer if prefer in self.links else self.session_home()
            if home is None:
                raise NoHsmAvailable(
                    "The cluster has no ACTIVE HSM to create the key on.",
                    "Create an HSM (cloudhsm.create_hsm(...)) and wait for it to become ACTIVE.",
                )
            link = self.links[home]
            self.client.requests.record(home, "generate")
            refs = [self.client.keys.new_session_ref() for _ in classes]
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
        last: Exception | None = None
        for _ in range(CREATE_ATTEMPTS):
            generation = self._tokens.generation
            links = list(self.links.values())
            try:
                made = self.client.keys.create_token_keys(
                    self.username,
                    self.links,
                    self.order,
                    classes,
                    key_type,
                    self._raw_id(learner_id),
                    (requested_extractable, requested_sensitive),
                    make,
                    prefer,
                    local,
                    inherit,
                )
                return [self.token_key(rec, obj) for rec, obj in made]
            except (ckr.PKCS11Error, TokenNotFound) as exc:
                # Another process created or deleted an HSM under this create (a new token
                # re-initializes PKCS#11 here; a deleted one fails its calls). The half-made
                # key was journalled for deletion: sync (which destroys it), then retry.
                if not self.client.topology.changed_since(links, generation):
                    raise  # a real error (template, mechanism, …), as it is
                last = exc
                self.client.topology.reconcile()
                self.refresh()
        raise ClusterChanging(
            f"The cluster's HSMs changed {CREATE_ATTEMPTS} times while this key was being "
            "created (HSMs created or deleted by another process or kernel; last: "
            f"{type(last).__name__}). No key was created.",
            "Retry when the other process's create_hsm/delete_hsm calls are done.",
        ) from last

    def forget_key(self, ref: int) -> None:
        """Drop cached objects of key ``ref`` (its capabilities changed: list it again)."""
        self._keys.pop(ref, None)
        for link in self.links.values():
            link.forget(ref)

    def forget_session_key(self, ref: int) -> None:
        """A session key of this session was destroyed."""
        self._session_keys.pop(ref, None)

    def destroy_token_key(self, ref: int) -> None:
        """Delete token key ``ref`` from every HSM (owner only)."""
        self.refresh_if_stale()
        links = [self.links[h] for h in self.order]
        self.client.keys.destroy_token_key(self.username, ref, links)
        self._keys.pop(ref, None)


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


def _key_type_name(key_type: Any, obj: pkcs11.Object) -> str:
    try:
        return KeyType(obj[Attribute.KEY_TYPE]).name
    except (ckr.PKCS11Error, ValueError):
        return KeyType(key_type).name if key_type is not None else "UNKNOWN"


__all__ = ["ClusterDomainParameters", "ClusterKey", "ClusterSession"]
