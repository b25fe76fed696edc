"""``cloudhsm-openssl``: run the real ``openssl`` with a cluster key that stays in the HSM.

CloudHSM's OpenSSL Dynamic Engine reads the crypto user's credentials from
``CLOUDHSM_PIN=<user>:<password>`` and signs or decrypts inside the HSMs. This launcher
does the same for the lab's cluster::

    export CLOUDHSM_PIN=alice:her-password
    cloudhsm-openssl s_server -accept 127.0.0.1:8443 -cert server.crt -key cloudhsm:tls-key
    python -m labsupport openssl dgst -sha256 -sign cloudhsm:release-key -out app.sig app.tar

``cloudhsm:<label>`` (or ``cloudhsm:0x<key reference>``) names a private key. The
launcher

1. logs the user in to the cluster (the client layer checks the password and counts
   failures toward the lockout; only crypto users may use keys);
2. finds the key among those the user owns or that were shared with them, and the
   ACTIVE HSMs that hold it (the key-availability rule applies);
3. runs ``openssl`` with the PKCS#11 engine and a ``pkcs11:`` URI addressing that key on
   the SoftHSM token of one of those HSMs. The token's internal PIN reaches openssl in
   an ``openssl.cnf`` read through a pipe (``OPENSSL_CONF=/dev/fd/N``): it is on no
   command line, in no environment variable and in no file;
4. for ``s_server``, watches the cluster and restarts openssl on another HSM holding the
   key when its HSM leaves (fails over).

Keys are usable, never exportable: subcommands that write private keys (``pkey``,
``rsa``, ``ec``, ``pkcs8``, ``pkcs12`` …) are refused for HSM keys, ``pkcs11:`` URIs and
``-engine`` / ``-keyform engine`` are the launcher's alone, and the token objects stay
``CKA_SENSITIVE`` as the cluster made them.

Where the lab differs from AWS: one SoftHSM token plays one HSM, and a ``pkcs11:`` URI
addresses one token, so the lab fails over by restarting openssl on another HSM; AWS's
engine talks to the whole cluster and fails over inside the running process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import pkcs11
from pkcs11 import KeyType, ObjectClass
from pkcs11 import exceptions as ckr

from labsupport.errors import LabError
from labsupport.hsm.module import find_module
from labsupport.hsm.tokens import firmware_pin_fd, token_store
from labsupport.openssl.engine import (
    ENGINE_ID,
    engine_config,
    find_engine,
    find_openssl,
    find_spy,
)
from labsupport.openssl.requests import (
    EngineRequest,
    SpyParser,
    append_request,
    now,
    requests_path,
)
from labsupport.workspace.home import Workspace

if TYPE_CHECKING:
    from labsupport.client import Client

#: The variable CloudHSM's OpenSSL Dynamic Engine reads: ``<username>:<password>``.
ENV_PIN = "CLOUDHSM_PIN"
#: Client SDK 3's name for the same credentials; never passed on to openssl either.
_ENV_PIN_SDK3 = "n3fips_password"
#: How a command line names a cluster key: ``cloudhsm:<label>`` or ``cloudhsm:0x<reference>``.
KEY_SCHEME = "cloudhsm:"

#: Options that take a private key, and the option that tells openssl its form.
KEY_OPTIONS: dict[str, str] = {
    "-key": "-keyform",
    "-inkey": "-keyform",
    "-sign": "-keyform",
    "-prverify": "-keyform",
    "-signkey": "-keyform",
    "-keyfile": "-keyform",
    "-CAkey": "-CAkeyform",
    "-dkey": "-dkeyform",
}
#: Subcommands that write or convert private keys: refused for HSM keys.
EXPORT_SUBCOMMANDS = frozenset({"pkey", "rsa", "ec", "dsa", "pkcs8", "pkcs12", "storeutl"})
#: Subcommands that keep running; the launcher fails them over to another HSM.
SERVER_SUBCOMMANDS = frozenset({"s_server"})
#: Options whose key openssl also needs the *public* half of (it compares it with a
#: certificate or writes it into one).
NEEDS_PUBLIC_HALF = frozenset(
    {
        ("s_server", "-key"),
        ("s_server", "-dkey"),
        ("req", "-key"),
        ("x509", "-signkey"),
        ("x509", "-CAkey"),
        ("ca", "-keyfile"),
    }
)
#: How often a server's HSM is checked (seconds).
WATCH_INTERVAL = 0.2


class LauncherError(LabError):
    """The command line or credentials cannot be used with the cluster's keys."""


class KeyNotVisible(LauncherError):
    """No private key by that name is owned by, or shared with, the logged-in user."""


class KeyExportRefused(LauncherError):
    """The command would write a private key out of the HSM."""


@dataclass(frozen=True)
class HsmKey:
    """A private key named on the command line, as the cluster resolved it."""

    name: str
    reference: str
    ref: int
    label: str
    owner: str
    hsms: tuple[str, ...]


@dataclass(frozen=True)
class KeySlot:
    """Where a ``cloudhsm:`` key appears in argv: its position, option and name."""

    index: int
    option: str
    name: str


def key_uri(token_label: str, ref: int) -> str:
    """The RFC 7512 ``pkcs11:`` URI of key ``ref`` (its ``CKA_ID``) on one HSM's token."""
    token = quote(token_label, safe="")
    cka_id = "".join(f"%{b:02x}" for b in ref.to_bytes(8, "big"))
    return f"pkcs11:token={token};id={cka_id};type=private"


def parse_command(argv: Sequence[str]) -> list[KeySlot]:
    """Check an openssl command line and return where it names cluster keys.

    Raises :class:`LauncherError` for options the launcher reserves (``-engine``,
    ``…form engine``, ``pkcs11:`` URIs), a ``cloudhsm:`` key after an option that does
    not take a private key, and :class:`KeyExportRefused` for key-export subcommands.
    """
    if not argv or argv[0].startswith("-"):
        raise LauncherError(
            "Give an openssl subcommand first, e.g. `cloudhsm-openssl dgst -sha256 -sign "
            "cloudhsm:my-key -out file.sig file`.",
            "Run `openssl help` for the list of subcommands.",
        )
    subcommand = argv[0]
    slots: list[KeySlot] = []
    for i, arg in enumerate(argv):
        low = arg.lower()
        if low in ("-engine", "-provider", "-provider-path", "-config"):
            raise LauncherError(
                f"The launcher chooses OpenSSL's engine and configuration itself; remove {arg}.",
                "Name HSM keys as cloudhsm:<label> and let the launcher add the PKCS#11 engine.",
            )
        if low.endswith("form") and i + 1 < len(argv) and argv[i + 1].lower() == "engine":
            raise LauncherError(
                f"{arg} engine is added by the launcher for cloudhsm: keys; remove it.",
                "Write the key as cloudhsm:<label>.",
            )
        if "pkcs11:" in low or "org.openssl.engine:" in low:
            raise LauncherError(
                "pkcs11: URIs reach a token directly, past the cluster's users and key "
                "ownership; the launcher does not accept them.",
                "Name the key as cloudhsm:<label> (a key you own or that is shared with you).",
            )
        if arg.startswith(KEY_SCHEME):
            option = argv[i - 1] if i > 0 else ""
            if subcommand in EXPORT_SUBCOMMANDS:
                raise KeyExportRefused(
                    f"`openssl {subcommand}` reads or writes private keys; an HSM key "
                    "cannot leave the HSM (it is non-extractable through this launcher "
                    "and CKA_SENSITIVE in the HSM).",
                    "Use the key where it is: sign (dgst -sign, pkeyutl -sign), decrypt "
                    "(pkeyutl -decrypt), serve TLS (s_server -key), issue certificates (x509 "
                    "-CAkey, req -key). Export only the public key, from the cluster session.",
                )
            if option not in KEY_OPTIONS:
                raise LauncherError(
                    f"{arg} follows {option or 'nothing'}, which does not take a private key.",
                    f"Use cloudhsm: keys after one of {', '.join(sorted(KEY_OPTIONS))}.",
                )
            name = arg[len(KEY_SCHEME) :]
            if not name:
                raise LauncherError("cloudhsm: needs a key label or reference.", "cloudhsm:my-key")
            slots.append(KeySlot(i, option, name))
    return slots


def split_env_pin(environ: dict[str, str] | os._Environ[str]) -> str:
    """The ``<user>:<password>`` from ``CLOUDHSM_PIN`` (error with the fix if unset)."""
    pin = environ.get(ENV_PIN) or environ.get(_ENV_PIN_SDK3)
    if not pin:
        raise LauncherError(
            f"{ENV_PIN} is not set: the launcher needs a crypto user's credentials, as "
            "CloudHSM's OpenSSL Dynamic Engine does.",
            f"Set {ENV_PIN}=<username>:<password> in the command's environment (not on "
            "its command line).",
        )
    return pin


class Launcher:
    """One ``openssl`` run with cluster keys: log in, resolve, run, watch, fail over."""

    def __init__(
        self,
        argv: Sequence[str],
        environ: dict[str, str] | None = None,
        workspace: Workspace | None = None,
        stdout: IO[Any] | None = None,
        stderr: IO[Any] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.environ = dict(os.environ if environ is None else environ)
        self.workspace = workspace or Workspace.open()
        self.stdout = stdout
        self.stderr = stderr
        self.slots = parse_command(self.argv)
        self.subcommand = self.argv[0]
        self.client: Client | None = None
        self.session: Any = None
        self.keys: list[HsmKey] = []
        self.hsm_id = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        #: The signal that stopped the launcher (SIGTERM, SIGINT), if one did.
        self.stopped_by: int | None = None
        self._readers: list[threading.Thread] = []
        self._log = requests_path(self.workspace)

    # -- cluster side -------------------------------------------------------------------

    def login(self) -> None:
        """Connect to the configured cluster and log the ``CLOUDHSM_PIN`` user in."""
        # Imported here: a refused command line is answered before the client layer
        # (and boto3 behind the control plane) is loaded.
        from labsupport.client import connect

        pin = split_env_pin(self.environ)
        self.client = connect(self.workspace)
        # Password check, failure count and lockout, crypto-user role: the client layer's.
        self.session = self.client.login(pin, rw=False)

    def resolve(self) -> list[HsmKey]:
        """Find every named key among the user's own and shared private keys."""
        assert self.session is not None, "login() first"
        keys = []
        for slot in self.slots:
            keys.append(self._resolve_one(slot.name))
        self.keys = keys
        return keys

    def _check_engine_can_use(self, key: Any, slot: KeySlot) -> None:
        # SoftHSM/libp11 difference: libp11 reads an EC key's public point from a
        # public-key object with the *same* CKA_ID on the token. The lab's cluster gives
        # each half of a pair its own key reference (its CKA_ID on the tokens), so openssl
        # would stop with "unknown key type". RSA private keys carry their modulus and work.
        if key.key_type == KeyType.EC and (self.subcommand, slot.option) in NEEDS_PUBLIC_HALF:
            raise LauncherError(
                f"openssl {self.subcommand} {slot.option} needs the public half of EC key "
                f"{slot.name!r}, which the lab's PKCS#11 engine cannot find next to it (on "
                "AWS, CloudHSM's engine can). Signing with EC keys (dgst -sign, pkeyutl "
                "-sign) works.",
                "Use an RSA key here (generate_keypair(KeyType.RSA, 2048, ...)), or build "
                "the certificate with cryptography and labsupport.crypto.x509.token_private_key.",
            )

    def _resolve_one(self, name: str) -> HsmKey:
        session = self.session
        user = session.username
        try:
            if name.lower().startswith("0x"):
                key = session.key_by_reference(name)
                if not isinstance(key, pkcs11.PrivateKey):
                    raise ckr.NoSuchKey(name)
            else:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=name)
        except ckr.NoSuchKey:
            raise KeyNotVisible(
                f"{user} has no private key {name!r}: no such key is owned by {user} or "
                f"shared with {user}. CloudHSM shows each crypto user only their own keys "
                "and the keys shared with them.",
                f"List {user}'s keys (CloudHSM CLI `key list`), or ask the key's owner to "
                f"share it: `key share --filter attr.label={name} --username {user} "
                "--role crypto-user`.",
            ) from None
        except ckr.MultipleObjectsReturned:
            raise LauncherError(
                f"{user} can see several private keys labelled {name!r}.",
                "Name the key by its reference instead: cloudhsm:0x… (CloudHSM CLI `key list`).",
            ) from None
        for slot in self.slots:
            if slot.name == name:
                self._check_engine_can_use(key, slot)
        hsms = tuple(key.hsms)
        if len(hsms) < 2 and not self.client.config.disable_key_availability_check:
            from labsupport.client import AVAILABILITY_MESSAGE, KeyAvailabilityError

            raise KeyAvailabilityError(
                AVAILABILITY_MESSAGE.format(handle=key.handle) + " (CKR_FUNCTION_FAILED)",
                "Add an HSM to the cluster (the key is copied to it), or, for development "
                "only, configure the client with disable_key_availability_check.",
            )
        return HsmKey(name, key.reference, key.handle, key.label, key.owner, hsms)

    def choose_hsm(self, exclude: frozenset[str] = frozenset()) -> str:
        """An ACTIVE HSM that holds every named key (first in the client's order)."""
        assert self.client is not None
        active = [h.hsm_id for h in self.client.hsms if h.usable and h.hsm_id not in exclude]
        holders = [h for h in active if all(h in k.hsms for k in self.keys)]
        if not holders:
            raise LauncherError(
                "No ACTIVE HSM holds the key(s) any more.",
                "Wait for the cluster's HSMs to be ACTIVE again, or add an HSM.",
            )
        return holders[0]

    def _token_label(self, hsm_id: str) -> str:
        assert self.client is not None
        for endpoint in self.client.hsms:
            if endpoint.hsm_id == hsm_id:
                return endpoint.token_label
        raise LauncherError(f"HSM {hsm_id} left the cluster.", "Run the command again.")

    # -- openssl side -------------------------------------------------------------------

    def command(self, hsm_id: str) -> list[str]:
        """The openssl argv for ``hsm_id``: keys as ``pkcs11:`` URIs, ``-engine pkcs11``."""
        args = list(self.argv)
        if not self.slots:
            return [str(find_openssl()), *args]
        token = self._token_label(hsm_id)
        extra: list[str] = []
        for slot, key in zip(self.slots, self.keys, strict=True):
            args[slot.index] = key_uri(token, key.ref)
            form = KEY_OPTIONS[slot.option]
            if form not in extra:
                extra += [form, "engine"]
        return [str(find_openssl()), args[0], "-engine", ENGINE_ID, *extra, *args[1:]]

    def _spawn(self, hsm_id: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in self.environ.items() if k not in (ENV_PIN, _ENV_PIN_SDK3)}
        pass_fds: list[int] = []
        close_after: list[int] = []
        spy_read: int | None = None
        if self.slots:
            softhsm = find_module()
            spy = find_spy()
            module = spy or softhsm
            engine = find_engine()
            # The engine logs in to one HSM's token itself, with that token's internal PIN:
            # firmware-side, handed over inside a pipe (never argv, env or a file). On AWS
            # the engine would log in to the cluster as the crypto user instead.
            conf_r = firmware_pin_fd(
                token_store(self.workspace),
                self._token_label(hsm_id),
                lambda pin: engine_config(module, pin, engine),  # < 1 KiB: fits the pipe
            )
            env["OPENSSL_CONF"] = f"/dev/fd/{conf_r}"
            env["SOFTHSM2_CONF"] = str(self.workspace.softhsm_conf)
            pass_fds.append(conf_r)
            close_after.append(conf_r)
            if spy is not None:
                spy_read, spy_write = os.pipe()
                env["PKCS11SPY"] = str(softhsm)
                env["PKCS11SPY_OUTPUT"] = f"/dev/fd/{spy_write}"
                pass_fds.append(spy_write)
                close_after.append(spy_write)
        try:
            proc = subprocess.Popen(
                _dies_with_parent(self.command(hsm_id)),
                env=env,
                pass_fds=pass_fds,
                stdout=self.stdout,
                stderr=self.stderr,
            )
        finally:
            for fd in close_after:
                os.close(fd)
        if spy_read is not None:
            reader = threading.Thread(target=self._read_spy, args=(spy_read, hsm_id), daemon=True)
            reader.start()
            self._readers.append(reader)
        return proc

    def _drain(self) -> None:
        """Wait until every spy reader has logged what its openssl process reported."""
        for reader in self._readers:
            reader.join(timeout=10)  # ends at EOF, right after its openssl process exits
        self._readers = [r for r in self._readers if r.is_alive()]

    def _read_spy(self, fd: int, hsm_id: str) -> None:
        by_id = {k.ref.to_bytes(8, "big"): k for k in self.keys}

        def emit(operation: str, mechanism: str, cka_id: bytes | None, result: str) -> None:
            key = by_id.get(cka_id or b"") or (self.keys[0] if len(self.keys) == 1 else None)
            self._record(hsm_id, key.reference if key else "?", operation, mechanism, result)

        parser = SpyParser(emit)
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parser.feed(line)

    def _record(
        self, hsm_id: str, key: str, operation: str, mechanism: str = "", result: str = ""
    ) -> None:
        append_request(
            self._log,
            EngineRequest(
                now(), os.getpid(), self.subcommand, hsm_id, key, operation, mechanism, result
            ),
        )

    def _say(self, message: str) -> None:
        print(f"cloudhsm-openssl: {message}", file=sys.stderr, flush=True)

    def run(self) -> int:
        """Log in, resolve the keys, run openssl; returns openssl's exit status."""
        if self.slots:
            self.login()
            self.resolve()
            self.hsm_id = self.choose_hsm()
            names = ", ".join(f"{k.label or k.name} ({k.reference})" for k in self.keys)
            self._say(f"{self.session.username} uses {names} on {self.hsm_id}")
            self._record(self.hsm_id, self.keys[0].reference, "start")
        self.process = self._spawn(self.hsm_id)
        if self.subcommand in SERVER_SUBCOMMANDS and self.slots:
            return self._watch()
        status = self.process.wait()
        self._drain()
        return status

    def _watch(self) -> int:
        """Wait for the server; when its HSM stops being ACTIVE, restart on another one."""
        assert self.client is not None and self.process is not None
        gone: set[str] = set()
        while True:
            try:
                status = self.process.wait(timeout=WATCH_INTERVAL)
                self._drain()
                return status
            except subprocess.TimeoutExpired:
                pass
            if self._stopping:
                continue
            usable = {h.hsm_id for h in self.client.hsms if h.usable}
            if self.hsm_id in usable:
                continue
            gone.add(self.hsm_id)
            self._stop_child()
            # Refresh which HSMs hold the keys (the session re-reads the cluster).
            self.keys = [self._resolve_one(k.name) for k in self.keys]
            old, self.hsm_id = self.hsm_id, self.choose_hsm(frozenset(gone))
            self._say(f"{old} is no longer ACTIVE: restarting {self.subcommand} on {self.hsm_id}")
            self._record(self.hsm_id, self.keys[0].reference, "failover", result=f"from {old}")
            self.process = self._spawn(self.hsm_id)

    def _stop_child(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def forward_signal(self, signum: int) -> None:
        """Pass SIGTERM/SIGINT on to openssl; :meth:`run` then returns when it has exited.

        Called from the signal handler, which may interrupt ``Popen.wait()`` while it holds
        the Popen's (non-reentrant) wait lock: so only ``os.kill`` here, never ``wait``.
        Before openssl is started there is nothing to wait for: the launcher exits at once.
        """
        self._stopping = True
        self.stopped_by = signum
        proc = self.process
        if proc is None or proc.returncode is not None:
            raise SystemExit(128 + signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signum)

    def stop(self) -> None:
        """Stop openssl if it still runs and close the cluster connection (at exit)."""
        self._stopping = True
        self._stop_child()
        self._drain()
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()


def _dies_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel kills it if the launcher dies (even by SIGKILL).

    A SIGKILLed launcher (a killed Jupyter kernel's ``!cloudhsm-openssl s_server``) would
    otherwise leave openssl serving, holding its port. ``setpriv --pdeathsig`` (util-linux,
    in every Debian) sets the parent-death signal and execs openssl, so the process the
    launcher waits on and signals is openssl itself. (``preexec_fn`` could set it too, but
    is unsafe once the launcher runs its spy-reader threads.) Without setpriv: as before.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``cloudhsm-openssl`` (also ``python -m labsupport openssl``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        launcher = Launcher(args)
    except LabError as err:
        print(f"cloudhsm-openssl: error: {err}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        launcher.forward_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        status = launcher.run()
        return 128 + launcher.stopped_by if launcher.stopped_by else status
    except LabError as err:
        print(f"cloudhsm-openssl: error: {err}", file=sys.stderr)
        return 1
    finally:
        launcher.stop()


class OutputWatcher:
    """Collect a running process's output lines in the background and wait for one.

    For servers started with ``subprocess.Popen(..., stdout=PIPE, stderr=STDOUT,
    text=True)``: ``watcher.wait_for("ACCEPT")`` returns once the server listens.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        if process.stdout is None:
            raise ValueError("start the process with stdout=subprocess.PIPE, text=True")
        self.process = process
        self.lines: list[str] = []
        self._done = False
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 15.0, start: int = 0) -> str:
        """The first line from index ``start`` containing ``text``; raises on timeout/exit."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                if self._done:
                    raise LabError(
                        f"The process exited ({self.process.wait()}) before printing "
                        f"{text!r}. Its output:\n" + "\n".join(self.lines[-15:]),
                        "Read the output above for openssl's or the launcher's error.",
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(
                        f"No {text!r} after {timeout:.0f} s. Output so far:\n"
                        + "\n".join(self.lines[-15:]),
                        "Check the command line; stop the process with .terminate().",
                    )
                self._cond.wait(min(left, 0.1))

    def count(self, text: str) -> int:
        """How many lines so far contain ``text``."""
        with self._cond:
            return sum(text in line for line in self.lines)
