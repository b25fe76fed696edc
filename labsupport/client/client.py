"""The Client SDK entry point: ``connect()`` → :class:`Client` → ``login("user:password")``.

::

    from labsupport import client as chsm
    chsm.install_trust_anchor(ca_pem)              # /opt/cloudhsm/etc/customerCA.crt
    chsm.configure(hsm_ip="10.0.1.23")             # configure-pkcs11 -a 10.0.1.23
    cl = chsm.connect()                            # verifies the HSMs against the anchor
    cl.cli.run("cluster activate", password=...)   # CloudHSM CLI: set the admin password
    session = cl.login("alice:secret-pw")          # PKCS#11 C_Login with user:password
    key = session.generate_key(KeyType.AES, 256, store=True, label="k1")

A :class:`Client` is what the PKCS#11 library is inside an application process: it
knows the cluster's HSMs, checks their certificate, keeps token keys synchronized,
balances requests and fails over. The cluster's HSMs are SoftHSM tokens; the
token PINs stay inside the lab and are never shown.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import time
from collections.abc import Callable
from typing import Any

import pkcs11
from pkcs11 import Attribute, SlotFlag, TokenFlag, types

from labsupport.client import config as _config
from labsupport.client import mechanisms, resolver, sync
from labsupport.client.balancer import RequestLog
from labsupport.client.clusterdata import ClusterStore
from labsupport.client.endpoints import ClusterView, HsmEndpoint
from labsupport.client.errors import (
    KeyAvailabilityError,
    NoHsmAvailable,
    NotSupportedByCloudHsm,
    UserError,
    WrongRole,
)
from labsupport.client.keys import KeyClass, KeyRecord, KeyStatus, format_ref
from labsupport.client.library import ClusterLibrary
from labsupport.client.links import HsmLink
from labsupport.client.session import ClusterKey, ClusterSession, secrecy_history
from labsupport.client.users import Role, User, UserDirectory, normalize_username, split_pin
from labsupport.errors import LabError, TokenNotFound
from labsupport.hsm.tokens import TokenStore, token_store
from labsupport.workspace.home import Workspace

#: How often (seconds) a busy client re-reads the cluster's HSM list and states.
POLL_INTERVAL = 0.5

AVAILABILITY_MESSAGE = (
    "Key {handle} does not meet the availability requirements - The key must be available "
    "on at least 2 HSMs before being used."
)

_session_counter = itertools.count(1)


class ClusterSlot(types.Slot):
    """The one PKCS#11 slot that represents the whole cluster (``token.slot``).

    As with CloudHSM's PKCS#11 library, one slot represents the cluster, not one HSM.
    ``get_mechanisms()`` returns the mechanisms every ACTIVE HSM supports (the ones any
    request can be routed with); ``get_mechanism_info(mechanism)`` asks one of the HSMs
    (they are identical), as do the version properties.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _identity(self) -> Any:
        return ("ClusterSlot", self._client.cluster_id)

    def _hsm_slots(self) -> list[types.Slot]:
        client = self._client
        client.poll(force=True)
        slots = []
        for endpoint in client._routable():
            try:
                slots.append(client._link(endpoint).session.token.slot)
            except (TokenNotFound, pkcs11.PKCS11Error):
                continue  # an HSM that went away: the next poll routes around it
        if not slots:
            raise NoHsmAvailable(
                "The cluster has no ACTIVE HSM to answer for the slot.",
                "Create an HSM (cloudhsm.create_hsm(...)) and wait for it to become ACTIVE.",
            )
        return slots

    @property
    def slot_id(self) -> int:  # type: ignore[override]
        """The slot id (the lab's cluster client has one slot)."""
        return 0

    @property
    def slot_description(self) -> str:  # type: ignore[override]
        """Which cluster this slot represents."""
        return f"CloudHSM cluster {self._client.cluster_id}"

    @property
    def manufacturer_id(self) -> str:  # type: ignore[override]
        """Who made this slot (the lab's simulation)."""
        return "CloudHSM Lab (simulated)"

    @property
    def flags(self) -> SlotFlag:  # type: ignore[override]
        """Slot flags: a token is present."""
        return SlotFlag.TOKEN_PRESENT

    @property
    def hardware_version(self) -> tuple[int, int]:  # type: ignore[override]
        """Hardware version, as one HSM reports it."""
        return self._hsm_slots()[0].hardware_version

    @property
    def firmware_version(self) -> tuple[int, int]:  # type: ignore[override]
        """Firmware version, as one HSM reports it."""
        return self._hsm_slots()[0].firmware_version

    @property
    def cryptoki_version(self) -> tuple[int, int]:  # type: ignore[override]
        """PKCS#11 API version, as one HSM reports it."""
        return self._hsm_slots()[0].cryptoki_version

    def get_token(self) -> ClusterToken:
        """The cluster's token."""
        return self._client.token

    def get_mechanisms(self) -> set[Any]:
        """CloudHSM's Client SDK 5 mechanisms that every ACTIVE HSM can run
        (``C_GetMechanismList``); see :mod:`labsupport.client.mechanisms` for the ones
        SoftHSM cannot run."""
        common: set[Any] = set(mechanisms.CLOUDHSM_MECHANISMS)
        for slot in self._hsm_slots():
            common &= set(slot.get_mechanisms())
        return common

    def get_mechanism_info(self, mechanism: Any) -> Any:
        """Key sizes and flags of ``mechanism``, from one of the HSMs (``C_GetMechanismInfo``)."""
        mechanisms.require(mechanism, self.get_mechanisms(), "cluster")
        return self._hsm_slots()[0].get_mechanism_info(mechanism)

    def __repr__(self) -> str:
        return f"<ClusterSlot {self._client.cluster_id}>"


class ClusterToken(types.Token):
    """The one PKCS#11 token (in one slot) that represents the whole cluster.

    ``token.open(user_pin="alice:password", rw=True)`` is the same as
    ``client.login("alice:password", rw=True)``. Its label is the cluster id.
    ``token.slot`` is a :class:`ClusterSlot`: one PKCS#11 slot represents the cluster, and
    ``token.slot.get_mechanisms()`` lists what every ACTIVE HSM supports.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._slot = ClusterSlot(client)

    def _identity(self) -> Any:
        return ("ClusterToken", self._client.cluster_id)

    @property
    def label(self) -> str:  # type: ignore[override]
        """The cluster id."""
        return self._client.cluster_id

    @property
    def serial(self) -> bytes:  # type: ignore[override]
        """The cluster id, as bytes."""
        return self._client.cluster_id.encode()

    @property
    def manufacturer_id(self) -> str:  # type: ignore[override]
        """Who made this token (the lab's simulation)."""
        return "CloudHSM Lab (simulated)"

    @property
    def model(self) -> str:  # type: ignore[override]
        """The simulated model."""
        return "cluster"

    @property
    def flags(self) -> TokenFlag:
        """Token flags: login required, RNG, initialized."""
        return TokenFlag.LOGIN_REQUIRED | TokenFlag.RNG | TokenFlag.TOKEN_INITIALIZED

    @property
    def slot(self) -> ClusterSlot:  # type: ignore[override]
        """The slot: one PKCS#11 slot represents the whole cluster."""
        return self._slot

    def open(
        self,
        rw: bool = False,
        user_pin: str | bytes | None = None,
        so_pin: str | None = None,
        user_type: Any = None,
        attribute_mapper: Any = None,
        **_: Any,
    ) -> ClusterSession:
        """Open a session: logged in with ``user_pin`` (``<username>:<password>``), or a
        public session (no PIN) that can digest, generate random data and use public keys.

        ``attribute_mapper`` (python-pkcs11) is honoured for the attribute values the
        session's keys read and write. A security-officer login (``so_pin``) is refused
        with ``FunctionNotSupported``: CloudHSM's PKCS#11 library logs in crypto users only.
        """
        if so_pin is not None or (user_type is not None and user_type == pkcs11.UserType.SO):
            raise NotSupportedByCloudHsm(
                "AWS CloudHSM's PKCS#11 library has no security officer (CKU_SO) login "
                "(CKR_FUNCTION_NOT_SUPPORTED); it logs in crypto users only.",
                "Pass user_pin='<username>:<password>'; admins manage users with CloudHSM CLI "
                "(client.cli).",
            )
        if user_pin is None:
            session = self._client.open_public(rw=rw)
        else:
            session = self._client.login(user_pin, rw=rw)
        if attribute_mapper is not None:
            session.attribute_mapper = attribute_mapper
        return session

    def __repr__(self) -> str:
        return f"<ClusterToken {self.label}>"


class Client:
    """A configured, connected Client SDK: the cluster seen as one PKCS#11 token.

    Create it with :func:`connect`. Attributes learners use:

    * ``hsms`` — the cluster's HSMs (:class:`HsmEndpoint`) and their states;
    * ``login(pin)`` / ``token.open(user_pin=pin, rw=True)`` — a :class:`ClusterSession`;
    * ``cli`` — CloudHSM CLI (activate the cluster, manage users, list keys);
    * ``requests`` — which HSM served each request (``requests.plot()``);
    * ``reconcile()`` — synchronize keys now (it also runs on connect and whenever an HSM
      joins).
    """

    def __init__(
        self, workspace: Workspace, config: _config.ClientConfig, view: ClusterView
    ) -> None:
        self.workspace = workspace
        self.config = config
        self.cluster_id = view.cluster_id
        self.tokens: TokenStore = token_store(workspace)
        self.store = ClusterStore(workspace, view.cluster_id)
        self.users = UserDirectory(self.store)
        self.requests = RequestLog()
        self.token = ClusterToken(self)
        #: The cluster as a loaded PKCS#11 library (``lib.get_token(...)``, ``get_slots()``).
        self.lib = ClusterLibrary(self)
        self._view = view
        self._next_poll = 0.0
        self._topo_version = 0
        self._signature: Any = None
        self._rr = 0
        self._links: dict[str, HsmLink] = {}
        self._down: set[str] = set()
        self._sessions: list[ClusterSession] = []
        self._rec_stamp: Any = None
        self._rec_cache: dict[int, KeyRecord] = {}
        self._cli: Any = None
        self.store.ensure(owner=config.owner or view.owner)

    def __repr__(self) -> str:
        active = sum(1 for h in self._view.hsms if h.usable)
        return (
            f"<Client {self.cluster_id}: {len(self._view.hsms)} HSM(s), {active} ACTIVE, "
            f"cluster {self._view.state}>"
        )

    # -- what learners look at ---------------------------------------------------------------

    @property
    def hsms(self) -> tuple[HsmEndpoint, ...]:
        """The cluster's HSMs as last seen (refreshed every half second while in use)."""
        self.poll()
        return self._view.hsms

    @property
    def cluster_state(self) -> str:
        """The cluster state (``INITIALIZED``, ``ACTIVE`` …)."""
        self.poll(force=True)
        return self._view.state

    @property
    def cli(self) -> Any:
        """CloudHSM CLI bound to this cluster (``cli.run("user list")``)."""
        if self._cli is None:
            from labsupport.client.cli import CloudHsmCli

            self._cli = CloudHsmCli(self)
        return self._cli

    def login(self, pin: str | bytes, rw: bool = True) -> ClusterSession:
        """Log in a crypto user with the PKCS#11 PIN ``<username>:<password>``.

        Wrong passwords count toward the lockout (five lock the user). Returns a
        :class:`ClusterSession` — a python-pkcs11 session on the whole cluster.
        """
        username, password = split_pin(pin)
        user = self.users.authenticate(username, password)
        if user.role is not Role.CRYPTO_USER:
            raise WrongRole(
                f"{user.username} is an {user.role.value}; the PKCS#11 library logs in crypto "
                "users only (admins manage users and cannot use keys).",
                "Create a crypto user with the CloudHSM CLI (`user create --role crypto-user`) "
                "and log in as that user.",
            )
        session = ClusterSession(self, user, rw)
        self._sessions.append(session)
        return session

    def open_public(self, rw: bool = False) -> ClusterSession:
        """A public (not logged-in) session: digest, random, public keys only."""
        session = ClusterSession(self, None, rw)
        self._sessions.append(session)
        return session

    def open(self, rw: bool = False, user_pin: str | bytes | None = None) -> ClusterSession:
        """Same as ``client.token.open(rw=..., user_pin=...)``."""
        return self.token.open(rw=rw, user_pin=user_pin)

    def open_sessions(self) -> list[ClusterSession]:
        """The sessions opened through this client and not closed yet."""
        return [s for s in self._sessions if not s.closed]

    def logged_in_users(self) -> set[str]:
        """Users with an open session through this client."""
        return {s.username for s in self.open_sessions() if s.username}

    def close(self) -> None:
        """Close every session and the client's own HSM connections."""
        for session in list(self._sessions):
            session.close()
        for link in self._links.values():
            link.close()
        self._links.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cluster view, sync ----------------------------------------------------------------------

    def _describe(self) -> ClusterView:
        try:
            return resolver.describe(self.workspace, self.cluster_id)
        except resolver.ClusterNotFound:
            return ClusterView(self.cluster_id, "DELETED", ())

    def _routable(self) -> list[HsmEndpoint]:
        in_sync = self.store.read().get("hsms", {})
        return [
            h
            for h in self._view.hsms
            if h.usable and h.hsm_id in in_sync and h.hsm_id not in self._down
        ]

    def poll(self, force: bool = False) -> None:
        """Re-read the cluster's HSMs; synchronize HSMs that joined; reroute around gone ones."""
        now = time.monotonic()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + POLL_INTERVAL
        view = self._describe()
        self._view = view
        self._down &= {h.hsm_id for h in view.hsms}
        usable = {h.hsm_id for h in view.usable_hsms} - self._down
        in_sync = set(self.store.read().get("hsms", {}))
        if usable != in_sync:
            self._reconcile(view)
        signature = (
            tuple((h.hsm_id, h.state) for h in view.hsms),
            frozenset(self.store.read().get("hsms", {})),
            frozenset(self._down),
            self.store.stamp(),
        )
        if signature != self._signature:
            self._signature = signature
            self._topo_version += 1

    def _mark_down(self, hsm_ids: list[str]) -> None:
        """HSMs whose token is gone: stop routing to them until they leave the cluster."""
        self._down.update(hsm_ids)
        with self.store.update() as doc:
            for hsm_id in hsm_ids:
                doc.get("hsms", {}).pop(hsm_id, None)
        self._bump()

    def _bump(self) -> None:
        self._rec_stamp = None
        self._topo_version += 1

    def _link(self, endpoint: HsmEndpoint) -> HsmLink:
        link = self._links.get(endpoint.hsm_id)
        if link is None:
            link = self._links[endpoint.hsm_id] = HsmLink(self.tokens, endpoint)
        return link

    def _reconcile(self, view: ClusterView, progress: Any = None) -> sync.SyncReport:
        for hsm_id in [h for h in self._links if view.hsm(h) is None]:
            self._links.pop(hsm_id).close()
        while True:
            links = []
            for endpoint in view.usable_hsms:
                if endpoint.hsm_id in self._down:
                    continue
                link = self._link(endpoint)
                try:
                    link.session  # noqa: B018 - open now: a missing token means a dead HSM
                except (TokenNotFound, pkcs11.PKCS11Error):
                    self._down.add(endpoint.hsm_id)
                    continue
                links.append(link)
            try:
                with self.store.locked():
                    report = sync.reconcile(self.store, links, progress)
                break
            except (pkcs11.SessionHandleInvalid, pkcs11.SessionClosed):
                continue  # the library was re-initialized under us: reopen and retry
        self._bump()
        return report

    def reconcile(self, progress: bool | Callable[[int, int], None] = True) -> sync.SyncReport:
        """Synchronize the cluster now: finish half-done changes, copy keys to every HSM.

        Runs on connect and whenever a new HSM becomes ACTIVE. ``progress=True`` shows a
        progress bar when many keys are copied. Returns a
        :class:`~labsupport.client.sync.SyncReport`.
        """
        self._down.clear()
        view = self._describe()
        self._view = view
        callback = _SyncProgress() if progress is True else (progress or None)
        try:
            return self._reconcile(view, callback)
        finally:
            if hasattr(callback, "close"):
                callback.close()

    # -- key records ------------------------------------------------------------------------------

    def _records(self) -> dict[int, KeyRecord]:
        stamp = self.store.stamp()
        if stamp != self._rec_stamp:
            data = self.store.read()
            self._rec_cache = {
                r.ref: r
                for r in (KeyRecord.from_json(k, v) for k, v in data.get("keys", {}).items())
            }
            self._rec_stamp = stamp
        return self._rec_cache

    def _update_record(self, ref: int, **fields: Any) -> None:
        with self.store.update() as doc:
            doc["keys"][format_ref(ref)].update(fields)
        self._bump()

    def _session_ref(self) -> int:
        return (1 << 62) | ((os.getpid() & 0xFFFFF) << 24) | next(_session_counter)

    def _availability_failure(self, ref: int, copies: int) -> None:
        message = AVAILABILITY_MESSAGE.format(handle=ref)
        self._log("ERROR", message)
        raise KeyAvailabilityError(
            f"{message} (CKR_FUNCTION_FAILED; the key is on {copies} ACTIVE HSM now)",
            "Add a second HSM — AWS recommends at least two in different Availability Zones — "
            "or, for development only, configure(..., disable_key_availability_check=True).",
        )

    def _log(self, level: str, message: str) -> None:
        path = self.config.log_file or _config.log_path(self.workspace)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"[{stamp}] [ {os.getpid()} ] [{level}] {message}\n")

    def _create_token_keys(
        self,
        session: ClusterSession,
        classes: list[KeyClass],
        key_type: Any,
        learner_id: bytes | None,
        secrecy: tuple[bool, bool],
        make: Callable[[HsmLink, list[int], dict[Attribute, Any]], list[pkcs11.Object]],
        prefer: str | None,
        local: bool,
        inherit: tuple[bool, bool] | None = None,
    ) -> list[ClusterKey]:
        if not session._order:
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
                        owner=session.username,
                        key_class=key_class,
                        key_type=type_name,
                        learner_id=bytes(learner_id or b""),
                        extractable=True if public else extractable,
                        never_extractable=False if public else not extractable,
                        sensitive=None if public else sensitive,
                        local=local,
                        status=KeyStatus.PENDING,
                        pair=refs[1 - i] if len(refs) == 2 else None,
                    )
                    doc["keys"][rec.reference] = rec.to_json()
            if prefer not in session._links:
                self._rr += 1
                prefer = session._order[self._rr % len(session._order)]
            assert prefer is not None
            home = session._links[prefer]
            # Internal to the layer: every HSM copy is extractable so synchronization can
            # wrap it under the cluster sync key, and a key its user made non-extractable is
            # also sensitive there, so no copy can ever reveal its value. Reads of
            # CKA_EXTRACTABLE / CKA_SENSITIVE answer from the record (what the user asked).
            internal: dict[Attribute, Any] = {}
            if classes != [KeyClass.PUBLIC]:
                internal[Attribute.EXTRACTABLE] = True
                if not extractable:
                    internal[Attribute.SENSITIVE] = True
            objs = make(home, refs, internal)
            self.requests.record(prefer, "generate")
            for ref, obj in zip(refs, objs, strict=True):
                home.remember(ref, obj)
            failed = []
            for hsm_id in session._order:
                if hsm_id == prefer:
                    continue
                try:
                    for ref, obj in zip(refs, objs, strict=True):
                        sync.copy_key(home, obj, session._links[hsm_id], ref)
                        if sync.after_copy_hook is not None:
                            sync.after_copy_hook(ref, hsm_id)
                except (pkcs11.PKCS11Error, LabError):
                    failed.append(hsm_id)
            with self.store.update() as doc:
                for ref, obj in zip(refs, objs, strict=True):
                    rec = doc["keys"][format_ref(ref)]
                    rec["status"] = KeyStatus.OK.value
                    rec["label"] = obj[Attribute.LABEL]
                    rec["created_on"] = prefer
                    if rec["key_class"] != KeyClass.PUBLIC.value:
                        never, always = secrecy_history(obj, extractable, local, inherit, sensitive)
                        rec["never_extractable"] = never
                        rec["always_sensitive"] = always
                    try:
                        rec["key_type"] = pkcs11.KeyType(obj[Attribute.KEY_TYPE]).name
                    except (pkcs11.PKCS11Error, ValueError):
                        pass
                    if obj[Attribute.CLASS] == pkcs11.ObjectClass.SECRET_KEY:
                        rec["extra"] = _secret_extra(obj)
                for hsm_id in failed:  # resynchronized on the next poll
                    doc.get("hsms", {}).pop(hsm_id, None)
            records = {ref: KeyRecord.from_json(ref, doc["keys"][format_ref(ref)]) for ref in refs}
        self._bump()
        return [session._token_key(records[ref], obj) for ref, obj in zip(refs, objs, strict=True)]

    def _destroy_token_key(self, session: ClusterSession, ref: int) -> None:
        rec = self._records().get(ref)
        if rec is None:
            raise pkcs11.exceptions.KeyHandleInvalid(f"Key {format_ref(ref)} was deleted.")
        rec.require_owner(session.username, "delete")
        session._fresh()
        with self.store.locked():
            self._update_record(ref, status=KeyStatus.DELETING.value)
            sync.destroy_key([session._links[h] for h in session._order], ref)
            for link in self._links.values():
                link.forget(ref)
            with self.store.update() as doc:
                doc["keys"].pop(format_ref(ref), None)
        session._keys.pop(ref, None)
        self._bump()

    def _share(self, actor: str, ref: int, username: str, share: bool) -> None:
        rec = self._records().get(ref)
        if rec is None:
            raise pkcs11.exceptions.KeyHandleInvalid(f"Key {format_ref(ref)} was deleted.")
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
        self._update_record(ref, shared=sorted(shared))

    def _session_closed(self, session: ClusterSession) -> None:
        if session in self._sessions:
            self._sessions.remove(session)

    def _set_pin(self, session: ClusterSession, old_pin: str | bytes, new_pin: str | bytes) -> None:
        old_user, old_password = split_pin(old_pin)
        new_user, new_password = split_pin(new_pin)
        if normalize_username(old_user) != session.username or normalize_username(new_user) != (
            session.username
        ):
            raise UserError(
                "set_pin changes the logged-in user's own password.",
                "Use '<you>:<old password>' and '<you>:<new password>'.",
            )
        user = self.users.authenticate(old_user, old_password)
        self.users.change_password(user, user.username, user.role, new_password)

    def token_labels(self, hsm_id: str) -> list[str]:
        """Labels of the key objects stored on one HSM's token (what `pkcs11-tool -O` lists)."""
        endpoint = self._describe().hsm(hsm_id)
        if endpoint is None:
            raise LabError(f"The cluster has no HSM {hsm_id}.", "Check client.hsms.")
        link = self._link(endpoint)
        link.invalidate()
        return sorted(objs[0][Attribute.LABEL] for objs in link.index().values())


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


class _SyncProgress:
    """A progress bar for key synchronization (shown only when 50 or more keys are copied)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc="synchronizing keys", unit="key", disable=total < 50)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Close the bar, if one was started."""
        if self._bar is not None:
            self._bar.close()


def connect(workspace: Workspace | None = None) -> Client:
    """Connect to the configured cluster, as an application loading the PKCS#11 library.

    Reads ``cloudhsm-pkcs11.cfg``, finds the cluster behind the configured address(es),
    verifies the HSMs' certificate against ``customerCA.crt`` (the trust anchor), then
    synchronizes the cluster (replaying anything a killed kernel left half done).
    """
    ws = workspace or Workspace.open()
    config = _config.load_config(ws)
    view = resolver.resolve(ws, config.cluster_id, config.enabled_ips)
    _config.verify_hsm_certificate(config.hsm_ca_file, view.hsm_certificate_pem, view.cluster_id)
    client = Client(ws, config, view)
    # Another kernel may have written token objects this process has not seen yet:
    # re-initialize the library so the replay below sees the tokens as they are.
    client.tokens.refresh()
    client.reconcile()
    client.poll(force=True)
    return client


__all__ = ["Client", "ClusterSlot", "ClusterToken", "User", "connect"]
