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
import os
from collections.abc import Callable
from typing import Any

from pkcs11 import Attribute
from pkcs11 import exceptions as ckr

from labsupport.client import config as _config
from labsupport.client import resolver, sync
from labsupport.client.balancer import RequestLog
from labsupport.client.clusterdata import ClusterStore
from labsupport.client.clustertoken import ClusterSlot, ClusterToken
from labsupport.client.endpoints import ClusterView, HsmEndpoint
from labsupport.client.errors import (
    KeyAvailabilityError,
    LoginFailed,
    UserError,
    WrongRole,
)
from labsupport.client.keystore import KeyStore
from labsupport.client.library import ClusterLibrary
from labsupport.client.session import ClusterSession
from labsupport.client.topology import Topology
from labsupport.client.users import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    Role,
    User,
    UserDirectory,
    normalize_username,
    split_pin,
)
from labsupport.errors import LabError
from labsupport.hsm.tokens import TokenStore, token_store
from labsupport.workspace.home import Workspace

AVAILABILITY_MESSAGE = (
    "Key {handle} does not meet the availability requirements - The key must be available "
    "on at least 2 HSMs before being used."
)


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
        #: The cluster's HSMs, the client's links to them and its routing version.
        self.topology = Topology(workspace, self.tokens, self.store, view)
        #: Key records and the token-key protocol (create, delete, share).
        self.keys = KeyStore(self.store, self.topology, self.users, self.requests)
        self.token = ClusterToken(self)
        #: The cluster as a loaded PKCS#11 library (``lib.get_token(...)``, ``get_slots()``).
        self.lib = ClusterLibrary(self)
        self._sessions: list[ClusterSession] = []
        self._cli: Any = None
        self.store.ensure(owner=config.owner or view.owner)

    def __repr__(self) -> str:
        view = self.topology.view
        active = sum(1 for h in view.hsms if h.usable)
        return (
            f"<Client {self.cluster_id}: {len(view.hsms)} HSM(s), {active} ACTIVE, "
            f"cluster {view.state}>"
        )

    # -- what learners look at ---------------------------------------------------------------

    @property
    def hsms(self) -> tuple[HsmEndpoint, ...]:
        """The cluster's HSMs as last seen (refreshed every half second while in use)."""
        self.poll()
        return self.topology.view.hsms

    @property
    def cluster_state(self) -> str:
        """The cluster state (``INITIALIZED``, ``ACTIVE`` …)."""
        self.poll(force=True)
        return self.topology.view.state

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
        return self.open_session_for(user, rw)

    def open_session_for(self, user: User, rw: bool = True) -> ClusterSession:
        """A session for ``user``, already authenticated (the CloudHSM CLI's login)."""
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
        self.topology.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cluster view, sync ----------------------------------------------------------------------

    def poll(self, force: bool = False) -> None:
        """Re-read the cluster's HSMs; synchronize HSMs that joined; reroute around gone ones."""
        self.topology.poll(force)

    def reconcile(self, progress: bool | Callable[[int, int], None] = True) -> sync.SyncReport:
        """Synchronize the cluster now: finish half-done changes, copy keys to every HSM.

        Runs on connect and whenever a new HSM becomes ACTIVE. ``progress=True`` shows a
        progress bar when many keys are copied. Returns a
        :class:`~labsupport.client.sync.SyncReport`.
        """
        callback = _SyncProgress() if progress is True else (progress or None)
        try:
            return self.topology.reconcile(callback)
        finally:
            if hasattr(callback, "close"):
                callback.close()

    # -- what sessions ask the client for ------------------------------------------------------

    def availability_failure(self, ref: int, copies: int) -> None:
        """Log and raise CloudHSM's key-availability error for key ``ref``."""
        message = AVAILABILITY_MESSAGE.format(handle=ref)
        self._log("ERROR", message)
        for endpoint in self.topology.view.usable_hsms:
            # An HSM the cluster lists as ACTIVE but whose token SoftHSM cannot read is the
            # honest reason, not "too few HSMs": name it and how to recover.
            damaged = self.tokens.damage(endpoint.token_label)
            if damaged is not None:
                raise KeyAvailabilityError(
                    f"{message} (CKR_FUNCTION_FAILED; the key is on {copies} ACTIVE HSM now). "
                    f"{damaged.problem}",
                    damaged.fix,
                )
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

    def session_closed(self, session: ClusterSession) -> None:
        """A session of this client closed: forget it."""
        if session in self._sessions:
            self._sessions.remove(session)

    def set_pin(self, username: str, old_pin: str | bytes, new_pin: str | bytes) -> None:
        """Change ``username``'s own password (``C_SetPIN`` with ``user:password`` PINs)."""
        if old_pin is None or new_pin is None:  # as python-pkcs11 fails on a real library
            raise AttributeError("set_pin needs both PINs ('<user>:<password>')")
        if not new_pin:
            raise ckr.PinLenRange("The new PIN is empty (CKR_PIN_LEN_RANGE).")
        if ":" not in (old_pin.decode() if isinstance(old_pin, bytes) else old_pin):
            raise LoginFailed(
                "The old PIN is not this user's '<username>:<password>' (CKR_PIN_INCORRECT).",
                "Pass your current PIN as the first argument.",
            )
        old_user, old_password = split_pin(old_pin)
        new_user, new_password = split_pin(new_pin)
        if not PASSWORD_MIN <= len(new_password) <= PASSWORD_MAX:
            raise ckr.PinLenRange(
                f"CloudHSM passwords are {PASSWORD_MIN} to {PASSWORD_MAX} characters "
                "(CKR_PIN_LEN_RANGE)."
            )
        if normalize_username(old_user) != username or normalize_username(new_user) != username:
            raise UserError(
                "set_pin changes the logged-in user's own password.",
                "Use '<you>:<old password>' and '<you>:<new password>'.",
            )
        user = self.users.authenticate(old_user, old_password)
        self.users.change_password(user, user.username, user.role, new_password)

    def token_labels(self, hsm_id: str) -> list[str]:
        """Labels of the key objects stored on one HSM's token (what `pkcs11-tool -O` lists)."""
        endpoint = self.topology.describe().hsm(hsm_id)
        if endpoint is None:
            raise LabError(f"The cluster has no HSM {hsm_id}.", "Check client.hsms.")
        link = self.topology.link(endpoint)
        link.invalidate()
        return sorted(objs[0][Attribute.LABEL] for objs in link.index().values())


class _SyncProgress:
    """A progress bar for key synchronization (shown only when 50 or more keys are copied)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            import sys

            # Plain tqdm on stdout, as the waiters: tqdm.auto warns "IProgress not found" into
            # a stderr output box when ipywidgets is absent, and Jupyter shows stderr in pink.
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc="synchronizing keys",
                unit="key",
                disable=total < 50,
                file=sys.stdout,
            )
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


__all__ = ["AVAILABILITY_MESSAGE", "Client", "ClusterSlot", "ClusterToken", "User", "connect"]
