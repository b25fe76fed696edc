"""SoftHSM tokens of one workspace: create, find, open sessions, delete, reconcile.

Each simulated HSM (and lesson 00's practice token) is one SoftHSMv2 token. Token
PINs are generated here, stored only in the workspace (``state/tokens.json``, mode
0600) and never printed, never put on a command line: tokens are initialised through
PKCS#11 itself (``C_InitToken`` on SoftHSM's free slot, then ``C_Login`` as SO and
``C_InitPIN``), so no PIN ever appears in a process's argv.

PINs are firmware-side. :class:`TokenRecord` (what :meth:`TokenStore.record` returns)
carries no PIN, :meth:`TokenStore.token` and :meth:`TokenStore.open_session` refuse a
token that plays an HSM (:class:`HsmTokenSealed`), and only the layers that play an
HSM's firmware reach an HSM token, through :func:`firmware_session` (a logged-in
session) and :func:`firmware_pin_fd` (the PIN inside a pipe, for a child process such as
lesson 07's OpenSSL engine). What a single-user sandbox cannot hide: the learner owns
``tokens.json`` (plaintext at rest, mode 0600) and the Python process in which the client
layer logs in to the tokens — on AWS the HSMs' secrets never leave the HSMs.

Two stores must agree: ``tokens.json`` and SoftHSM's token directory. Every change
holds the ``tokens.json`` lock from start to end and records its *intent* first (a
record in state ``creating`` or ``deleting``), so a process killed at any moment leaves
something :meth:`TokenStore.reconcile` can finish or roll back: it deletes token
directories whose record never completed, records whose token is gone, and half-deleted
tokens. Token directories the lab knows nothing about (made with ``softhsm2-util`` by
hand) are left alone.

SoftHSM names each token directory after a UUID whose last 16 hex digits are the
token's serial number; the record keeps the serial, which maps record ↔ directory.

python-pkcs11 loads a PKCS#11 module once per process, and SoftHSM reads its token
directory when the library is initialised, so a token created by *another* process
becomes visible only after ``lib.reinitialize()``. That call invalidates every open
session; :attr:`TokenStore.generation` counts reinitialisations so callers holding
sessions (the client layer) know to reopen them.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11.exceptions import UserAlreadyLoggedIn

from labsupport.errors import LabError, SoftHSMNotFound, TokenNotFound
from labsupport.hsm.module import ENV_MODULE, find_module
from labsupport.strenum import StrEnum
from labsupport.workspace.home import Workspace, belongs_to
from labsupport.workspace.repairs import RepairReport, repaired
from labsupport.workspace.statefile import StateShapeError, expect

#: PIN lengths SoftHSMv2 accepts (``ulMinPinLen`` / ``ulMaxPinLen`` of its tokens).
MIN_PIN_LEN = 4
MAX_PIN_LEN = 255
#: A PKCS#11 token label is 32 bytes of UTF-8, blank padded.
MAX_LABEL_BYTES = 32


class TokenStatus(StrEnum):
    """Where a token record is in its life (``creating``/``deleting`` are intents)."""

    CREATING = "creating"
    READY = "ready"
    DELETING = "deleting"


class TokenPurpose(StrEnum):
    """Why a token exists: a simulated HSM (the control plane owns it) or a bare token."""

    TOKEN = "token"
    HSM = "hsm"


#: Tokens that play a simulated HSM are labelled with the HSM's id (``hsm-`` + base32).
HSM_TOKEN_LABEL = re.compile(r"^hsm-[2-7a-zA-Z]{11,16}$")


def is_hsm_token(label: str) -> bool:
    """True if token ``label`` plays an HSM of a simulated cluster (not a practice token)."""
    return bool(HSM_TOKEN_LABEL.match(label))


class TokenDamaged(TokenNotFound):
    """A token's directory is there but SoftHSM cannot read it (``token.object`` damaged).

    The message names the token (and so the HSM), what was lost and how to recover.
    """


class HsmTokenSealed(LabError):
    """Opening a simulated HSM's token directly was refused: no one logs in to one HSM."""


@dataclass(frozen=True)
class TokenPins:
    """A token's internal PINs (hidden from ``repr``) — firmware-side, never returned by a
    public :class:`TokenStore` method."""

    user_pin: str = field(repr=False)
    so_pin: str = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "record") -> TokenPins:
        """The PINs of a stored record (shape-checked by :meth:`TokenRecord.from_json`)."""
        for name in ("user_pin", "so_pin"):
            expect(data.get(name), str, f"{where}.{name}")
        return cls(user_pin=data["user_pin"], so_pin=data["so_pin"])


@dataclass(frozen=True)
class TokenRecord:
    """What the workspace tells anyone about one token: no PINs (see :class:`TokenPins`)."""

    #: The token label, as ``C_GetTokenInfo`` and ``softhsm2-util --show-slots`` show it.
    label: str
    #: The lesson scope that made it (``"01-lesson"``…): that lesson's reset removes it.
    owner: str
    #: When it was made (Unix time, wall clock).
    created: float
    #: SoftHSM's serial number (16 hex digits), which also names the token's directory.
    serial: str = ""
    #: ``creating``/``deleting`` while a change is under way (an intent a crash may leave).
    status: TokenStatus = TokenStatus.READY
    #: A bare practice token, or the storage of a simulated HSM (sealed).
    purpose: TokenPurpose = TokenPurpose.TOKEN

    def to_json(self, pins: TokenPins) -> dict[str, Any]:
        """The JSON form stored in ``tokens.json`` (the record and its PINs)."""
        out = asdict(self)
        out["status"] = self.status.value
        out["purpose"] = self.purpose.value
        out["user_pin"] = pins.user_pin
        out["so_pin"] = pins.so_pin
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "record") -> TokenRecord:
        """Parse a stored record; raises :class:`StateShapeError` naming what is wrong."""
        expect(data, dict, where)
        for name in ("label", "owner", "user_pin", "so_pin"):
            expect(data.get(name), str, f"{where}.{name}")
        expect(data.get("created"), (int, float), f"{where}.created")
        try:
            status = TokenStatus(data.get("status", TokenStatus.READY.value))
            purpose = TokenPurpose(data.get("purpose", TokenPurpose.TOKEN.value))
        except ValueError as exc:
            raise StateShapeError(f"{where}: {exc}") from None
        return cls(
            label=data["label"],
            owner=data["owner"],
            created=float(data["created"]),
            serial=str(data.get("serial", "")),
            status=status,
            purpose=purpose,
        )

    @property
    def plays_hsm(self) -> bool:
        """True if this token is a simulated HSM (sealed: no public session, no PIN)."""
        return self.purpose is TokenPurpose.HSM or is_hsm_token(self.label)


def validate_tokens_state(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``tokens.json``: ``{label: TokenRecord JSON}``."""
    for label, rec in data.items():
        TokenRecord.from_json(rec, f"token {label!r}")
    return data


@dataclass
class ReconcileReport(RepairReport):
    """What :meth:`TokenStore.reconcile` repaired (labels and token directory names)."""

    rolled_back: list[str] = repaired("rolled back the interrupted creation of tokens")
    finished_deletes: list[str] = repaired("finished deleting tokens")
    lost_tokens: list[str] = repaired("forgot tokens whose directory is gone:")
    orphan_dirs: list[str] = repaired("removed token directories nobody recorded:")


def serial_of_dir(name: str) -> str | None:
    """The token serial SoftHSM derives from a token directory's UUID name, or None."""
    parts = name.split("-")
    if len(parts) != 5 or [len(p) for p in parts] != [8, 4, 4, 4, 12]:
        return None
    return parts[3] + parts[4]


class _Library:
    """The process-wide python-pkcs11 library object and its reinitialisation count."""

    def __init__(self) -> None:
        self._lib: pkcs11.lib | None = None
        self._raw: ctypes.CDLL | None = None
        self._conf: str | None = None
        self.generation = 0
        self.lock = threading.RLock()

    def get(self, conf: Path) -> pkcs11.lib:
        with self.lock:
            if self._lib is None:
                os.environ["SOFTHSM2_CONF"] = str(conf)
                self._lib = _load(find_module())
                self._conf = str(conf)
            elif self._conf != str(conf):
                # Another workspace in the same process (tests do this): point
                # SoftHSM at its config and re-read the token directory.
                os.environ["SOFTHSM2_CONF"] = str(conf)
                self._conf = str(conf)
                self.reinitialize()
            return self._lib

    def raw(self) -> ctypes.CDLL:
        """The same module through ctypes, for ``C_InitToken`` (python-pkcs11 lacks it)."""
        with self.lock:
            if self._raw is None:
                raw = ctypes.CDLL(str(find_module()))
                raw.C_InitToken.argtypes = [
                    ctypes.c_ulong,
                    ctypes.c_char_p,
                    ctypes.c_ulong,
                    ctypes.c_char_p,
                ]
                raw.C_InitToken.restype = ctypes.c_ulong
                self._raw = raw
            return self._raw

    def reinitialize(self) -> None:
        with self.lock:
            if self._lib is not None:
                self._lib.reinitialize()
                self.generation += 1


def _load(path: Path) -> pkcs11.lib:
    try:
        return pkcs11.lib(str(path))
    except Exception as exc:  # python-pkcs11 raises RuntimeError/OSError/PKCS11Error kinds
        raise SoftHSMNotFound(
            f"{path} is not a usable PKCS#11 module ({type(exc).__name__}).",
            f"Point {ENV_MODULE} at libsofthsm2.so (or unset it so the lab finds SoftHSMv2), "
            "then restart the kernel. `python -m labsupport doctor` checks the result.",
        ) from None


_LIBRARY = _Library()


class TokenStore:
    """The SoftHSM tokens of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._state = workspace.state("tokens", validate=validate_tokens_state)
        self._trash = workspace.root / ".trash"

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

    def _all(self) -> dict[str, TokenRecord]:
        return {
            label: TokenRecord.from_json(rec, f"token {label!r}")
            for label, rec in self._state.read().items()
        }

    def records(self) -> dict[str, TokenRecord]:
        """All usable (``ready``) tokens this workspace knows, by label."""
        return {k: r for k, r in self._all().items() if r.status is TokenStatus.READY}

    def record(self, label: str) -> TokenRecord:
        """The record of token ``label``; raises :class:`TokenNotFound`."""
        rec = self.records().get(label)
        if rec is None:
            raise TokenNotFound(
                f"There is no lab token called {label!r} in this workspace.",
                "Run the lesson from the top (its first cell prepares the tokens it needs).",
            )
        return rec

    # -- lifecycle -------------------------------------------------------------------

    def create(
        self,
        label: str,
        owner: str,
        user_pin: str | None = None,
        purpose: TokenPurpose = TokenPurpose.TOKEN,
    ) -> TokenRecord:
        """Initialise a new SoftHSM token called ``label`` belonging to ``owner``.

        ``user_pin`` is the learner's PIN for a bare token (4-255 characters); None
        makes a random internal PIN (simulated HSMs, whose PINs learners never see).
        If a token with that label exists it is deleted first, so a lesson can always
        start from a clean token. Crash-safe: see the module docstring.

        Tokens that play a cluster's HSM are made by the control plane only
        (:func:`firmware_create`); asking for one here raises :class:`HsmTokenSealed`.
        """
        purpose = TokenPurpose(purpose)
        if purpose is TokenPurpose.HSM or is_hsm_token(str(label)):
            raise _sealed_lifecycle(str(label), "create")
        return self._create(label, owner, user_pin, purpose)

    def _create(
        self, label: str, owner: str, user_pin: str | None, purpose: TokenPurpose
    ) -> TokenRecord:
        _check_label(label)
        if user_pin is not None:
            _check_pin(user_pin)
        rec = TokenRecord(
            label=label,
            owner=owner,
            created=time.time(),
            status=TokenStatus.CREATING,
            purpose=purpose,
        )
        pins = TokenPins(
            user_pin=user_pin if user_pin is not None else secrets.token_hex(8),
            so_pin=secrets.token_hex(8),
        )
        with self._state.locked():
            self._repair_dead_intents()
            if label in self._state.read():
                self._delete_locked(label)
            with self._state.update() as data:  # the intent, durable before SoftHSM changes
                data[label] = rec.to_json(pins)
            serial = self._init_token(rec, pins)
            rec = replace(rec, serial=serial, status=TokenStatus.READY)
            with self._state.update() as data:
                data[label] = rec.to_json(pins)
        # The new token is usable in this process already, but the client layer learns of
        # HSM changes through `generation` (it reopens its sessions and re-reads the
        # cluster), so re-read the token directory as every other change does.
        self.refresh()
        return rec

    def delete(self, label: str) -> None:
        """Delete token ``label`` and forget it (no error if it is already gone).

        A token that plays a cluster's HSM is removed by the control plane only (DeleteHsm,
        :func:`firmware_delete`); asking for it here raises :class:`HsmTokenSealed`.
        """
        rec = self._all().get(label)
        if is_hsm_token(str(label)) or (rec is not None and rec.plays_hsm):
            raise _sealed_lifecycle(str(label), "delete")
        self._delete(label)

    def _delete(self, label: str) -> None:
        with self._state.locked():
            self._repair_dead_intents()
            self._delete_locked(label)
        self.refresh()

    def delete_owned_by(self, owner: str | None) -> None:
        """Delete every token whose owner :func:`belongs_to` ``owner`` (all when None)."""
        labels = [r.label for r in self._all().values() if belongs_to(r.owner, owner)]
        if not labels:
            return
        with self._state.locked():
            self._repair_dead_intents()
            for label in labels:
                self._delete_locked(label)
        self.refresh()

    def reconcile(self, wait: bool = False) -> ReconcileReport:
        """Make ``tokens.json`` and the token directory agree again after a crash.

        Rolls back creates that never completed (record and any directory they made),
        finishes deletes, forgets tokens whose directory is gone, and removes directories
        of tokens the lab was creating or deleting. Skips (returns an empty report) when
        another process holds the lock and ``wait`` is False: that process is alive and
        its change is not half-done.
        """
        report = ReconcileReport()
        if not self.needs_reconcile():
            return report
        lock = self._state.locked() if wait else self._state.try_locked()
        with lock as got:
            if got is False:
                return report
            self._reconcile_locked(report)
        if report:
            self.refresh()
        return report

    def needs_reconcile(self) -> bool:
        """Cheap check: intents left behind, temp files, or a recorded token gone."""
        if self._state.leftover_temp_files() or self._trash_entries():
            return True
        dirs = self._dirs_by_serial()
        for rec in self._all().values():
            if rec.status is not TokenStatus.READY:
                return True
            if rec.serial and rec.serial not in dirs:
                return True
        return False

    # -- access ---------------------------------------------------------------------------

    def token(self, label: str) -> pkcs11.Token:
        """The python-pkcs11 ``Token`` of practice token ``label``.

        A token that plays a cluster's HSM is refused (:class:`HsmTokenSealed`), like
        :meth:`open_session`: PKCS#11 logins are per process, so a ``Token`` of an HSM the
        client layer is logged in to would open logged-in sessions without a PIN.
        """
        if self.record(label).plays_hsm:
            raise _sealed(label)
        return self._token(label)

    def _token(self, label: str) -> pkcs11.Token:
        """Any token's python-pkcs11 ``Token`` (firmware-side: no HSM check)."""
        self.record(label)
        found = self._find(label)
        if found is None:
            self.refresh()  # made by another process since we loaded the library
            found = self._find(label)
        if found is None:
            damaged = self.damage(label)
            if damaged is not None:
                raise damaged
            raise TokenNotFound(
                f"The workspace lists token {label!r}, but SoftHSM does not have it.",
                "The token directory was changed outside the lab; reset this lesson "
                "(`python -m labsupport reset LESSON`) and run it again.",
            )
        return found

    def damage(self, label: str) -> TokenDamaged | None:
        """Why ready token ``label`` is missing from SoftHSM although its directory exists.

        SoftHSM skips a token directory whose ``token.object`` (label, serial, PINs) it
        cannot parse: the token and every key object in it are unusable, and nothing else
        says so. Returns None when the token is fine, or gone altogether (the reconcilers
        handle a vanished directory). Call it on an error path: it may reinitialise PKCS#11.
        """
        rec = self.records().get(label)
        if rec is None or not rec.serial:
            return None
        directory = self._dirs_by_serial().get(rec.serial)
        if directory is None or self._find(label) is not None:
            return None
        self.refresh()  # another process may have just made or rewritten it
        if self._find(label) is not None:
            return None
        meta = directory / "token.object"
        size = meta.stat().st_size if meta.exists() else None
        objects = sum(1 for p in directory.glob("*.object") if p.name != "token.object")
        what = "is missing" if size is None else f"is damaged ({size} bytes SoftHSM cannot parse)"
        lost = f"{objects} key object file(s)" if objects else "no key objects"
        if is_hsm_token(label):
            fix = (
                f"Delete HSM {label} (delete_hsm) and create a new one (create_hsm): the client "
                "copies every key that another HSM still holds into the new HSM. Keys that were "
                "only on this HSM come back only from a backup (create_cluster(SourceBackupId="
                "…)). To start over, reset the lesson (`python -m labsupport reset LESSON`)."
            )
            whose = f"HSM {label}'s token"
        else:
            fix = (
                "Reset the lesson that made it (`python -m labsupport reset LESSON`) and run "
                "it again; the keys in this token are lost."
            )
            whose = f"Token {label!r}"
        return TokenDamaged(
            f"{whose} is unreadable: {meta} {what}, so SoftHSM skips the token and the "
            f"{lost} in {directory.name}/ can no longer be used.",
            fix,
        )

    def _find(self, label: str) -> pkcs11.Token | None:
        return next(self._labelled(label), None)

    def _labelled(self, label: str) -> Iterator[pkcs11.Token]:
        """The initialized tokens SoftHSM shows with ``label``."""
        # Not lib.get_token(): it stops at the first slot whose C_GetTokenInfo fails,
        # and SoftHSM answers CKR_GENERAL_ERROR for a token whose files another
        # process is deleting or rewriting at that moment. Skip such slots instead.
        for slot in self.lib.get_slots(token_present=True):
            try:
                token = slot.get_token()
            except (pkcs11.GeneralError, pkcs11.TokenNotPresent, pkcs11.SlotIDInvalid):
                continue
            if token.label == label and token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                yield token

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
        if self.record(label).plays_hsm:
            raise _sealed(label)
        return firmware_session(self, label, rw)

    # -- internals -------------------------------------------------------------------

    def _pins(self, label: str) -> TokenPins:
        """The PINs of ready token ``label`` (firmware-side; see :func:`firmware_session`)."""
        self.record(label)
        return TokenPins.from_json(self._state.read()[label], f"token {label!r}")

    def _init_token(self, rec: TokenRecord, pins: TokenPins) -> str:
        """``C_InitToken`` on SoftHSM's free slot, then set the user PIN; returns the serial."""
        with _LIBRARY.lock:
            lib = self.lib
            free = None
            for slot in lib.get_slots():
                try:
                    token = slot.get_token()
                except (pkcs11.GeneralError, pkcs11.TokenNotPresent, pkcs11.SlotIDInvalid):
                    continue
                if not token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                    free = slot
                    break
            if free is None:
                raise LabError(
                    "SoftHSM offers no free slot to create a token in.",
                    "Run `python -m labsupport doctor` to check SoftHSM and the workspace.",
                )
            so_pin = pins.so_pin.encode()
            label = rec.label.encode().ljust(MAX_LABEL_BYTES, b" ")
            rv = _LIBRARY.raw().C_InitToken(free.slot_id, so_pin, len(so_pin), label)
            if rv != 0:
                raise LabError(
                    f"SoftHSM could not create token {rec.label!r} (C_InitToken returned "
                    f"0x{rv:08X}).",
                    "Run `python -m labsupport doctor` to check SoftHSM and the workspace.",
                )
            token = free.get_token()
            with token.open(rw=True, so_pin=pins.so_pin) as session:
                session.init_pin(pins.user_pin)
            return token.serial.decode() if isinstance(token.serial, bytes) else token.serial

    def _dirs_by_serial(self) -> dict[str, Path]:
        try:
            names = os.listdir(self.workspace.token_dir)
        except FileNotFoundError:
            return {}
        out = {}
        for name in names:
            serial = serial_of_dir(name)
            if serial is not None:
                out[serial] = self.workspace.token_dir / name
        return out

    def _trash_entries(self) -> list[Path]:
        try:
            return list(self._trash.iterdir())
        except FileNotFoundError:
            return []

    def _remove_dir(self, path: Path) -> None:
        """Move a token directory out of SoftHSM's sight (atomic), then delete it."""
        self._trash.mkdir(exist_ok=True, mode=0o700)
        target = self._trash / f"{path.name}.{secrets.token_hex(4)}"
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return
        shutil.rmtree(target, ignore_errors=True)

    def _serials_labelled(self, label: str) -> list[str]:
        """Serials of tokens SoftHSM shows with ``label`` (after re-reading the directory)."""
        _LIBRARY.reinitialize()
        serials = (token.serial for token in self._labelled(label))
        return [s.decode() if isinstance(s, bytes) else s for s in serials]

    def _delete_locked(self, label: str) -> None:
        raw = self._state.read().get(label)
        if raw is None:
            return
        rec = TokenRecord.from_json(raw, f"token {label!r}")
        with self._state.update() as data:  # intent first
            data[label] = {**raw, "status": TokenStatus.DELETING.value}
        serials = [rec.serial] if rec.serial else self._serials_labelled(label)
        dirs = self._dirs_by_serial()
        for serial in serials:
            if serial in dirs:
                self._remove_dir(dirs[serial])
        with self._state.update() as data:
            data.pop(label, None)

    def _repair_dead_intents(self) -> None:
        """Under the lock, an intent in ``tokens.json`` belongs to a dead process: repair it."""
        if any(r.status is not TokenStatus.READY for r in self._all().values()):
            self._reconcile_locked(ReconcileReport())

    def _reconcile_locked(self, report: ReconcileReport) -> None:
        self._state.sweep_temp_files()
        for entry in self._trash_entries():
            shutil.rmtree(entry, ignore_errors=True)
        records = self._all()
        dirs = self._dirs_by_serial()
        known = {r.serial for r in records.values() if r.serial}
        pending = [r for r in records.values() if r.status is not TokenStatus.READY]
        if pending:
            # Directories nobody recorded, made by an interrupted create: SoftHSM shows
            # their label (or cannot read them if the kill came mid-C_InitToken).
            _LIBRARY.reinitialize()
            labels = self._labels_by_serial()
            since = min(r.created for r in pending) - 1.0
            pending_labels = {r.label for r in pending}
            for serial, path in dirs.items():
                if serial in known:
                    continue
                label = labels.get(serial)
                ours = label in pending_labels if label is not None else _mtime(path) >= since
                if ours:
                    self._remove_dir(path)
                    report.orphan_dirs.append(path.name)
        for rec in pending:
            if rec.serial and rec.serial in dirs:
                self._remove_dir(dirs[rec.serial])
            if rec.status is TokenStatus.CREATING:
                report.rolled_back.append(rec.label)
            else:
                report.finished_deletes.append(rec.label)
        lost = [
            r.label
            for r in records.values()
            if r.status is TokenStatus.READY and r.serial and r.serial not in dirs
        ]
        report.lost_tokens.extend(lost)
        if pending or lost:
            with self._state.update() as data:
                for rec in pending:
                    data.pop(rec.label, None)
                for label in lost:
                    data.pop(label, None)

    def _labels_by_serial(self) -> dict[str, str]:
        out = {}
        for slot in self.lib.get_slots(token_present=True):
            try:
                token = slot.get_token()
            except (pkcs11.GeneralError, pkcs11.TokenNotPresent, pkcs11.SlotIDInvalid):
                continue
            if token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                serial = token.serial
                out[serial.decode() if isinstance(serial, bytes) else serial] = token.label
        return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _check_label(label: Any) -> None:
    if not isinstance(label, str) or not label.strip():
        raise LabError(
            f"A token label must be a non-empty string, not {label!r}.",
            "Pass a short name such as create_token('lab00', user_pin=...).",
        )
    if len(label.encode()) > MAX_LABEL_BYTES:
        raise LabError(
            f"The token label {label!r} is {len(label.encode())} bytes; PKCS#11 labels are at "
            f"most {MAX_LABEL_BYTES} bytes of UTF-8.",
            "Use a shorter label.",
        )


def _check_pin(pin: Any) -> None:
    # Never echo the PIN itself: only its length.
    if not isinstance(pin, str):
        raise LabError(
            f"The user PIN must be a string, not {type(pin).__name__}.",
            "Pass the PIN as text, e.g. user_pin='1234-lab'.",
        )
    if not MIN_PIN_LEN <= len(pin.encode()) <= MAX_PIN_LEN:
        what = "empty" if not pin else f"{len(pin.encode())} bytes long"
        raise LabError(
            f"The user PIN is {what}; SoftHSM (like the PKCS#11 tokens it stands in for) "
            f"accepts PINs of {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes. The token was not created.",
            f"Choose a PIN of at least {MIN_PIN_LEN} characters and call create_token again.",
        )


def _sealed(label: str) -> HsmTokenSealed:
    return HsmTokenSealed(
        f"Token {label} plays an HSM of a cluster; the lab does not open it with its "
        "internal PIN (on AWS nobody logs in to a single HSM, and such a session "
        "could read or wrap out every user's keys).",
        f"Look at it read-only with lab.inspect_hsm({label!r}), and use keys through "
        "the cluster client: chsm.connect().login('user:password').",
    )


def _sealed_lifecycle(label: str, verb: str) -> HsmTokenSealed:
    return HsmTokenSealed(
        f"Token {label} plays an HSM of a cluster (or is named like one); the lab does "
        f"not {verb} it on request: on AWS an HSM's storage comes and goes only with the "
        "HSM itself (CreateHsm / DeleteHsm).",
        "Add or remove the HSM through the control plane: cloudhsm.create_hsm(...) or "
        "cloudhsm.delete_hsm(...); for a practice token choose a label not starting with 'hsm-'.",
    )


def firmware_create(store: TokenStore, label: str, owner: str) -> TokenRecord:
    """Initialise the SoftHSM token that plays HSM ``label`` — for the control plane's
    CreateHsm (and the tests' cluster double, ``tests/localcluster.py``) only; its PINs
    stay internal."""
    return store._create(label, owner, None, TokenPurpose.HSM)


def firmware_delete(store: TokenStore, label: str) -> None:
    """Remove the token that plays HSM ``label`` (no error if gone) — for DeleteHsm and
    the control plane's reconcile only."""
    store._delete(label)


def firmware_session(store: TokenStore, label: str, rw: bool = True) -> pkcs11.Session:
    """A session on any token, logged in with its internal PIN — for the layers that play
    the HSM's firmware only (the client's HSM links, the control plane's provisioning,
    the read-only inspector). Never hand such a session to learner code.
    """
    token = store._token(label)
    try:
        return token.open(rw=rw, user_pin=store._pins(label).user_pin)
    except UserAlreadyLoggedIn:
        # PKCS#11 logins are per token and process: a new session shares it.
        return token.open(rw=rw)


def firmware_pin_fd(store: TokenStore, label: str, render: Callable[[str], bytes]) -> int:
    """The read end of a pipe holding ``render(<internal user PIN of token label>)``.

    Firmware-side, for a child process that must log in to one HSM's token itself (lesson
    07's OpenSSL engine reads its config, PIN included, from ``/dev/fd/N``): the PIN goes
    from ``tokens.json`` into the pipe and never into a return value, argv or environment.
    The caller passes the fd to the child (``pass_fds``) and closes it afterwards.
    ``render``'s output must fit the pipe buffer (64 KiB on Linux; a config is < 1 KiB).
    """
    data = render(store._pins(label).user_pin)
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(write_fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        os.close(read_fd)
        raise
    return read_fd


def token_store(workspace: Workspace | None = None) -> TokenStore:
    """The token store of ``workspace`` (default: the learner's workspace)."""
    return TokenStore(workspace or Workspace.open())


def reset_tokens(workspace: Workspace, lesson: str | None) -> None:
    TokenStore(workspace).delete_owned_by(lesson)
