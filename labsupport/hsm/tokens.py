"""SoftHSM tokens of one workspace: create, find, open sessions, delete.

Each simulated HSM (and lesson 00's practice token) is one SoftHSMv2 token. Token
PINs are generated here, stored only in the workspace (mode 0600 files) and never
printed: learners log in through the layers above, as they would on CloudHSM.

python-pkcs11 loads a PKCS#11 module once per process, and SoftHSM reads its token
directory when the library is initialised, so a token created by ``softhsm2-util``
becomes visible only after ``lib.reinitialize()``. That call invalidates every open
session; :attr:`TokenStore.generation` counts reinitialisations so callers holding
sessions (the client layer) know to reopen them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pkcs11
from pkcs11.exceptions import UserAlreadyLoggedIn

from labsupport.errors import LabError, TokenNotFound
from labsupport.hsm.module import find_module, find_softhsm_util
from labsupport.workspace.home import Workspace, belongs_to

#: Tokens that play a simulated HSM are labelled with the HSM's id (``hsm-`` + base32).
HSM_TOKEN_LABEL = re.compile(r"^hsm-[2-7a-zA-Z]{11,16}$")


def is_hsm_token(label: str) -> bool:
    """True if token ``label`` plays an HSM of a simulated cluster (not a practice token)."""
    return bool(HSM_TOKEN_LABEL.match(label))


class HsmTokenSealed(LabError):
    """Opening a simulated HSM's token directly was refused: no one logs in to one HSM."""


@dataclass(frozen=True)
class TokenRecord:
    """What the workspace remembers about one token (PINs hidden from ``repr``)."""

    label: str
    owner: str
    created: float
    user_pin: str = field(repr=False)
    so_pin: str = field(repr=False)


class _Library:
    """The process-wide python-pkcs11 library object and its reinitialisation count."""

    def __init__(self) -> None:
        self._lib: pkcs11.lib | None = None
        self._conf: str | None = None
        self.generation = 0
        self.lock = threading.RLock()

    def get(self, conf: Path) -> pkcs11.lib:
        with self.lock:
            if self._lib is None:
                os.environ["SOFTHSM2_CONF"] = str(conf)
                self._lib = pkcs11.lib(str(find_module()))
                self._conf = str(conf)
            elif self._conf != str(conf):
                # Another workspace in the same process (tests do this): point
                # SoftHSM at its config and re-read the token directory.
                os.environ["SOFTHSM2_CONF"] = str(conf)
                self._conf = str(conf)
                self.reinitialize()
            return self._lib

    def reinitialize(self) -> None:
        with self.lock:
            if self._lib is not None:
                self._lib.reinitialize()
                self.generation += 1


_LIBRARY = _Library()


class TokenStore:
    """The SoftHSM tokens of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._state = workspace.state("tokens")

    # -- library ---------------------------------------------------------------------

    @property
    def lib(self) -> pkcs11.lib:
        """The python-pkcs11 library, configured for this workspace's token directory."""
        return _LIBRARY.get(self.workspace.softhsm_conf)

    @property
    def generation(self) -> int:
        """How many times the library was reinitialised (open sessions die each time)."""
        return _LIBRARY.generation

    def refresh(self) -> None:
        """Re-read the token directory (sees tokens other processes made; closes sessions)."""
        self.lib  # noqa: B018 - make sure the library is loaded for this workspace
        _LIBRARY.reinitialize()

    # -- records -----------------------------------------------------------------------

    def records(self) -> dict[str, TokenRecord]:
        """All tokens this workspace knows, by label."""
        return {label: TokenRecord(**rec) for label, rec in self._state.read().items()}

    def record(self, label: str) -> TokenRecord:
        """The record of token ``label``; raises :class:`TokenNotFound`."""
        rec = self._state.read().get(label)
        if rec is None:
            raise TokenNotFound(
                f"There is no lab token called {label!r} in this workspace.",
                "Run the lesson from the top (its first cell prepares the tokens it needs).",
            )
        return TokenRecord(**rec)

    # -- lifecycle -------------------------------------------------------------------

    def create(self, label: str, owner: str, user_pin: str | None = None) -> TokenRecord:
        """Initialise a new SoftHSM token called ``label`` belonging to ``owner``.

        If a token with that label exists it is deleted first, so a lesson can
        always start from a clean token.
        """
        if label in self._state.read():
            self.delete(label)
        rec = TokenRecord(
            label=label,
            owner=owner,
            created=time.time(),
            user_pin=user_pin or secrets.token_hex(8),
            so_pin=secrets.token_hex(8),
        )
        self._util(
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            rec.user_pin,
            "--so-pin",
            rec.so_pin,
        )
        with self._state.update() as data:
            data[label] = asdict(rec)
        self.refresh()
        return rec

    def delete(self, label: str) -> None:
        """Delete token ``label`` and forget it (no error if it is already gone)."""
        with contextlib.suppress(LabError):
            self._util("--delete-token", "--token", label, check=False)
        with self._state.update() as data:
            data.pop(label, None)
        self.refresh()

    def delete_owned_by(self, owner: str | None) -> None:
        """Delete every token whose owner :func:`belongs_to` ``owner`` (all when None)."""
        labels = [r.label for r in self.records().values() if belongs_to(r.owner, owner)]
        for label in labels:
            self.delete(label)

    # -- access ---------------------------------------------------------------------------

    def token(self, label: str) -> pkcs11.Token:
        """The python-pkcs11 ``Token`` called ``label``."""
        self.record(label)
        found = self._find(label)
        if found is None:
            self.refresh()  # made by another process since we loaded the library
            found = self._find(label)
        if found is None:
            raise TokenNotFound(
                f"The workspace lists token {label!r}, but SoftHSM does not have it.",
                "The token directory was changed outside the lab; reset this lesson "
                "(`python -m labsupport reset LESSON`) and run it again.",
            )
        return found

    def _find(self, label: str) -> pkcs11.Token | None:
        # Not lib.get_token(): it stops at the first slot whose C_GetTokenInfo fails,
        # and SoftHSM answers CKR_GENERAL_ERROR for a token whose files another
        # process is deleting or rewriting at that moment. Skip such slots instead.
        for slot in self.lib.get_slots(token_present=True):
            try:
                token = slot.get_token()
            except (pkcs11.GeneralError, pkcs11.TokenNotPresent, pkcs11.SlotIDInvalid):
                continue
            if token.label == label:
                return token
        return None

    def open_session(self, label: str, rw: bool = True) -> pkcs11.Session:
        """Open a session on practice token ``label``, logged in with its internal PIN.

        A token that plays a cluster's HSM is refused (:class:`HsmTokenSealed`): on AWS no
        one logs in to one HSM with its own PIN, and such a session could read or wrap out
        every user's keys. Look inside an HSM with
        :func:`labsupport.hsm.inspector.inspect_hsm` (read-only) and use its keys through
        the cluster client.

        Beware: python-pkcs11's ``Session.close()`` calls ``C_Logout`` when that session
        did the login, and a PKCS#11 login is shared by every session of the token in
        the process — closing the first session logs the others out too.
        """
        if is_hsm_token(label):
            raise HsmTokenSealed(
                f"Token {label} plays an HSM of a cluster; the lab does not open it with its "
                "internal PIN (on AWS nobody logs in to a single HSM, and such a session "
                "could read or wrap out every user's keys).",
                f"Look at it read-only with lab.inspect_hsm({label!r}), and use keys through "
                "the cluster client: chsm.connect().login('user:password').",
            )
        return firmware_session(self, label, rw)

    # -- internals -------------------------------------------------------------------

    def _util(self, *args: str, check: bool = True) -> None:
        env = dict(os.environ, SOFTHSM2_CONF=str(self.workspace.softhsm_conf))
        proc = subprocess.run(
            [str(find_softhsm_util()), *args], env=env, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            # softhsm2-util echoes no PINs in its errors, but keep only its last line.
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabError(
                f"softhsm2-util {args[0]} failed: {detail[0]}",
                "Run `python -m labsupport doctor` to check SoftHSM and the workspace.",
            )


def firmware_session(store: TokenStore, label: str, rw: bool = True) -> pkcs11.Session:
    """A session on any token, logged in with its internal PIN — for the layers that play
    the HSM's firmware only (the client's HSM links, the control plane's provisioning,
    the read-only inspector). Never hand such a session to learner code.
    """
    token = store.token(label)
    try:
        return token.open(rw=rw, user_pin=store.record(label).user_pin)
    except UserAlreadyLoggedIn:
        # PKCS#11 logins are per token and process: a new session shares it.
        return token.open(rw=rw)


def token_store(workspace: Workspace | None = None) -> TokenStore:
    """The token store of ``workspace`` (default: the learner's workspace)."""
    return TokenStore(workspace or Workspace.open())


def reset_tokens(workspace: Workspace, lesson: str | None) -> None:
    TokenStore(workspace).delete_owned_by(lesson)
