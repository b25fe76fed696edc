"""CloudHSM users: roles, name and password rules, activation, login and lockout.

Roles (``user list`` shows them): ``admin`` manages users, ``crypto-user`` creates and
uses keys, ``unactivated-admin`` is the built-in ``admin`` before ``cluster activate``
sets its password, and ``app_user`` (``internal(APPLIANCE_USER)``) belongs to AWS.

Passwords are never stored: each user record keeps a random salt and an scrypt hash.
Five wrong passwords in a row lock the account (CloudHSM's limit for Client SDK 5 on
hsm1); a successful login resets the count; an admin unlocks a user by setting a new
password with ``user change-password``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from labsupport.client.clusterdata import ClusterStore
from labsupport.client.errors import (
    ClusterNotActive,
    LoginFailed,
    NotAuthorized,
    PinFormatError,
    UserError,
    UserLocked,
)
from labsupport.client.roles import Role

MAX_FAILED_LOGINS = 5
USERNAME_MAX = 31
PASSWORD_MIN, PASSWORD_MAX = 7, 32
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class User:
    """A user as ``user list`` shows it (no password material)."""

    username: str
    role: Role
    locked: bool = False
    failed_logins: int = 0

    def to_cli(self) -> dict[str, Any]:
        """The ``user list`` entry (``locked`` is a string, as the real CLI prints it)."""
        return {
            "username": self.username,
            "role": self.role.value,
            "locked": "true" if self.locked else "false",
            "mfa": [],
            "cluster-coverage": "full",
        }


# -- rules -------------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    """Check a username against CloudHSM's rules and return it lowercased.

    At most 31 characters; letters, digits and ``_`` only; case-insensitive (shown
    lowercase).
    """
    if not isinstance(username, str) or not username:
        raise UserError("Username must not be empty.", "Choose a name such as crypto_user1.")
    if len(username) > USERNAME_MAX:
        raise UserError(
            f"Username {username!r} is {len(username)} characters long; the maximum is "
            f"{USERNAME_MAX}.",
            "Choose a shorter name.",
        )
    if not _USERNAME_RE.match(username):
        raise UserError(
            f"Username {username!r} contains characters CloudHSM does not allow.",
            "Use letters, digits and underscore (_) only — underscore is the only special "
            "character allowed.",
        )
    return username.lower()


def check_password(password: str) -> None:
    """Reject passwords CloudHSM would not accept (7 to 32 characters)."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise UserError(
            f"The password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long.",
            "Choose another password (the lab never shows or stores it, only a salted hash).",
        )


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """A salted scrypt hash of ``password`` (what the user record stores)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)
    return {"kdf": "scrypt", "salt": salt.hex(), "hash": digest.hex(), **_SCRYPT}


# Per-process cache of verified logins: (salt, stored hash) → HMAC of the password under a
# key that exists only in this process's memory. A repeated login with the right password
# costs one HMAC instead of scrypt; a wrong password never matches and pays the full scrypt,
# so guessing stays slow. Nothing of it is written anywhere.
_PROCESS_KEY = secrets.token_bytes(32)
_VERIFIED: dict[tuple[str, str], bytes] = {}


def _tag(password: str) -> bytes:
    return hmac.new(_PROCESS_KEY, password.encode("utf-8"), hashlib.sha256).digest()


def forget_verified_logins() -> None:
    """Empty this process's cache of verified logins: the next login runs scrypt again."""
    _VERIFIED.clear()


def verify_password(password: str, rec: dict[str, Any]) -> bool:
    """True if ``password`` matches the stored hash (constant-time comparison).

    The first success in a process runs scrypt; later logins with the same password and
    the same stored hash are answered from a per-process cache of HMAC tags.
    """
    if "hash" not in rec:
        return False
    cache_key = (rec["salt"], rec["hash"])
    tag = _tag(password)
    known = _VERIFIED.get(cache_key)
    if known is not None and hmac.compare_digest(known, tag):
        return True
    params = {k: rec[k] for k in ("n", "r", "p", "dklen")}
    digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(rec["salt"]), **params)
    if hmac.compare_digest(digest.hex(), rec["hash"]):
        _VERIFIED[cache_key] = tag
        return True
    return False


def split_pin(pin: str | bytes) -> tuple[str, str]:
    """Split a PKCS#11 PIN ``<username>:<password>`` into its parts."""
    if isinstance(pin, bytes):
        pin = pin.decode("utf-8", "replace")
    if not isinstance(pin, str) or ":" not in pin:
        raise PinFormatError(
            "A CloudHSM PIN has the form <username>:<password>; this one has no ':'.",
            "Log in with user_pin=f'{username}:{password}', e.g. for the crypto user you "
            "created with `user create`.",
        )
    username, password = pin.split(":", 1)
    return username, password


def _user(name: str, rec: dict[str, Any]) -> User:
    return User(name, Role(rec["role"]), bool(rec.get("locked")), int(rec.get("failed", 0)))


def _with_role(data: dict[str, Any], name: str, role: Role | str) -> dict[str, Any]:
    """The record of user ``name`` in ``data`` (the cluster document), if its role is ``role``;
    :class:`UserError` otherwise (CloudHSM CLI names a user by name and role)."""
    rec = data["users"].get(name)
    if rec is None or Role(rec["role"]) is not Role(role):
        raise UserError(
            f"User {name} with role {Role(role).value} does not exist.",
            "Check the name and role with `user list`.",
        )
    return rec


# -- the directory ---------------------------------------------------------------------------


class UserDirectory:
    """The users of one cluster (stored in its :class:`ClusterStore`)."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store

    def audit(self, opcode: str, **fields: Any) -> None:
        """Write the HSMs' audit-log event for a user command (sent to every HSM)."""
        from labsupport.aws.inprocess import DEFAULT_REGION
        from labsupport.client import resolver
        from labsupport.controlplane.cluster import ClusterNotFound
        from labsupport.hsm.audit import Opcode, emit_quietly

        ws, cluster_id = self.store.workspace, self.store.cluster_id
        try:
            view = resolver.describe(ws, cluster_id)
        except ClusterNotFound:
            return
        owner = self.store.read().get("owner") or view.owner or "workspace"
        hsm_ids = [h.hsm_id for h in view.usable_hsms]
        emit_quietly(
            ws,
            cluster_id,
            Opcode(opcode),
            hsm_ids=hsm_ids,
            owner=owner,
            region=view.region or DEFAULT_REGION,
            **fields,
        )

    def list(self) -> list[User]:
        """All users, in creation order."""
        return [_user(n, r) for n, r in self.store.read().get("users", {}).items()]

    def get(self, username: str) -> User:
        """The user called ``username``; raises :class:`UserError` if there is none."""
        name = normalize_username(username)
        rec = self.store.read().get("users", {}).get(name)
        if rec is None:
            raise UserError(f"User {name} does not exist.", "List the users with `user list`.")
        return _user(name, rec)

    @property
    def activated(self) -> bool:
        """True once ``cluster activate`` set the admin password."""
        return bool(self.store.read().get("activated"))

    # -- activation -----------------------------------------------------------------------

    def activate(self, password: str) -> None:
        """Set the built-in admin's password: unactivated-admin → admin."""
        check_password(password)
        with self.store.update() as data:
            if data.get("activated"):
                raise UserError(
                    "Cluster has already been activated",
                    "Log in as admin with the password you set at activation.",
                )
            data["users"]["admin"] = {
                "role": Role.ADMIN.value,
                "failed": 0,
                "locked": False,
                **hash_password(password),
            }
            data["activated"] = True

    def _require_active(self) -> None:
        if not self.activated:
            raise ClusterNotActive(
                "The cluster is not activated yet, so only the unactivated admin exists and "
                "nobody can log in.",
                "Run `cluster activate` (cli.run('cluster activate', password=...)) to set "
                "the admin password first.",
            )

    # -- login --------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, role: Role | str | None = None) -> User:
        """Check a login; count wrong passwords and lock the user after five.

        Raises :class:`LoginFailed` (CKR_PIN_INCORRECT) or :class:`UserLocked`
        (CKR_PIN_LOCKED). ``role``, when given, must match the user's role.
        """
        self._require_active()
        try:
            name = normalize_username(username)
        except UserError:
            # Never echo it: a PIN typed <password>:<username> puts the password here.
            raise LoginFailed(
                "Login failed: the part of the PIN before ':' is not a valid user name.",
                "The PIN is <username>:<password>, user name first; check the order.",
            ) from None
        # Fast path, no write: a user in good standing with the right password (the count
        # of failures is already zero, so there is nothing to record).
        known = self.store.read().get("users", {}).get(name)
        refused: tuple[str, str] | None = None  # the stored hash scrypt just refused
        if (
            known is not None
            and Role(known["role"]) not in (Role.APPLIANCE, Role.UNACTIVATED_ADMIN)
            and (role is None or Role(role) is Role(known["role"]))
            and not known.get("locked")
            and not int(known.get("failed", 0))
        ):
            if verify_password(password, known):
                user: User | None = _user(name, known)
                self.audit("CN_LOGIN", user=name, role=user.role.value, login=True)
                return user
            refused = (known.get("salt", ""), known.get("hash", ""))
        with self.store.update() as data:
            rec = data["users"].get(name)
            if rec is None or Role(rec["role"]) in (Role.APPLIANCE, Role.UNACTIVATED_ADMIN):
                # Not named either: an unknown "user" may be a password typed first.
                raise LoginFailed(
                    "Login failed: no such user or wrong password.",
                    "Check the user name with `user list`; the PIN is <username>:<password>, "
                    "user name first.",
                )
            if role is not None and Role(role) is not Role(rec["role"]):
                raise LoginFailed(
                    f"Login failed: {name} is a {rec['role']}, not a {Role(role).value}.",
                    f"Log in with --role {rec['role']}.",
                )
            if rec.get("locked"):
                raise UserLocked(
                    f"User {name} is locked after {MAX_FAILED_LOGINS} wrong passwords; even the "
                    "right password is refused now.",
                    "An admin must set a new password: log in as admin and run "
                    f"`user change-password --username {name} --role {rec['role']}`.",
                )
            # One scrypt per wrong password: not again if the record is the one just refused.
            if refused != (rec.get("salt", ""), rec.get("hash", "")) and verify_password(
                password, rec
            ):
                rec["failed"] = 0
                user = _user(name, rec)
            else:
                user = None
                rec["failed"] = int(rec.get("failed", 0)) + 1
                left = MAX_FAILED_LOGINS - rec["failed"]
                if left <= 0:
                    rec["locked"] = True
                    problem = (
                        f"Wrong password for {name}. That was wrong login number "
                        f"{MAX_FAILED_LOGINS}: the user is now locked."
                    )
                    fix = (
                        "An admin must reset the password with `user change-password` before "
                        f"{name} can log in again."
                    )
                else:
                    more = (
                        "1 more wrong password locks"
                        if left == 1
                        else f"{left} more wrong passwords lock"
                    )
                    problem = f"Wrong password for {name} ({more} the account)."
                    fix = "Check the password; the PIN format is <username>:<password>."
                error = LoginFailed(problem, fix)
        if user is not None:
            self.audit("CN_LOGIN", user=name, role=user.role.value, login=True)
            return user
        self.audit("CN_LOGIN", user=name, role=rec["role"], response="RET_USER_LOGIN_FAILURE")
        # raised after the block so the failure count is written
        raise error

    # -- management (admins) --------------------------------------------------------------

    def _require_admin(self, actor: User | None, action: str) -> None:
        if actor is None:
            raise NotAuthorized(
                f"{action} needs a logged-in admin.",
                "Log in first: `login --username admin --role admin`.",
            )
        if actor.role is not Role.ADMIN:
            raise NotAuthorized(
                f"{action} is an admin operation; {actor.username} is a {actor.role.value}.",
                "Log in as an admin user to manage users.",
            )

    def _require_quorum(self, actor: User, approval: Any) -> None:
        from labsupport.client.quorum import Quorum

        Quorum(self.store).require(actor.username, "user", approval)
        if approval is not None:
            self.audit("CN_APPROVE_TOKEN", actor=actor.username, user=actor.username, role="admin")

    def create(
        self,
        actor: User | None,
        username: str,
        role: Role | str,
        password: str,
        approval: Any = None,
    ) -> User:
        """Create a user (admins only; with the ``user`` service's quorum, ``approval`` is
        the signed token file)."""
        self._require_active()
        self._require_admin(actor, "user create")
        name = normalize_username(username)
        role = Role(role)
        if role not in (Role.ADMIN, Role.CRYPTO_USER):
            raise UserError(
                f"Role {role.value} cannot be created.", "Use --role crypto-user or --role admin."
            )
        check_password(password)
        if name in self.store.read().get("users", {}):
            raise UserError(
                f"User already exists: {name}",
                "Pick another name, or `user delete` the old one first.",
            )
        self._require_quorum(actor, approval)  # type: ignore[arg-type]
        with self.store.update() as data:
            if name in data["users"]:
                raise UserError(
                    f"User already exists: {name}",
                    "Pick another name, or `user delete` the old one first.",
                )
            data["users"][name] = {
                "role": role.value,
                "failed": 0,
                "locked": False,
                **hash_password(password),
            }
        opcode = "CN_CREATE_CO" if role is Role.ADMIN else "CN_CREATE_USER"
        self.audit(opcode, actor=actor.username, user=name, role=role.value)  # type: ignore[union-attr]
        return User(name, role)

    def delete(
        self,
        actor: User | None,
        username: str,
        role: Role | str,
        logged_in: set[str] = frozenset(),
        approval: Any = None,
    ) -> User:
        """Delete a user (admins only; not a logged-in user, not a key owner; quorum as for
        :meth:`create`)."""
        self._require_active()
        self._require_admin(actor, "user delete")
        name = normalize_username(username)
        self._require_quorum(actor, approval)  # type: ignore[arg-type]
        with self.store.update() as data:
            rec = _with_role(data, name, role)
            if Role(rec["role"]) is Role.APPLIANCE or name == "admin":
                raise UserError(
                    f"User {name} is built in and cannot be deleted.", "Delete users you created."
                )
            if name in logged_in or (actor is not None and actor.username == name):
                raise UserError(
                    f"User {name} is logged in and cannot be deleted.",
                    f"Log {name} out (close its sessions) first.",
                )
            owned = [r for r, k in data.get("keys", {}).items() if k.get("owner") == name]
            if owned:
                raise UserError(
                    f"User {name} owns {len(owned)} key(s) and cannot be deleted.",
                    "Delete the user's keys first (they would become unusable).",
                )
            del data["users"][name]
            for key in data.get("keys", {}).values():
                if name in key.get("shared", []):
                    key["shared"] = [u for u in key["shared"] if u != name]
        self.audit("CN_DELETE_USER", actor=actor.username, user=name, role=rec["role"])  # type: ignore[union-attr]
        return _user(name, rec)

    def change_password(
        self,
        actor: User | None,
        username: str,
        role: Role | str,
        new_password: str,
        approval: Any = None,
    ) -> User:
        """Set a new password (an admin for anyone, a user for themself); unlocks the user.

        An admin changing a password needs the ``user`` service's quorum (``approval``)."""
        self._require_active()
        if actor is None:
            raise NotAuthorized("user change-password needs a logged-in user.", "Log in first.")
        name = normalize_username(username)
        if actor.role is not Role.ADMIN and actor.username != name:
            raise NotAuthorized(
                f"{actor.username} may change only their own password.",
                "Ask an admin to change another user's password.",
            )
        check_password(new_password)
        if actor.role is Role.ADMIN:
            self._require_quorum(actor, approval)
        with self.store.update() as data:
            rec = _with_role(data, name, role)
            rec.update(hash_password(new_password))
            rec["failed"] = 0
            rec["locked"] = False
        self.audit("CN_CHANGE_PSWD", actor=actor.username, user=name, role=rec["role"])
        return _user(name, rec)
