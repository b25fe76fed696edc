"""``user list|create|delete|change-password|change-mfa``.

Rules (user guide): only admins create and delete users and change other users'
passwords; any user may change their own password; the password of a user who is logged
in (elsewhere) cannot be changed; a logged-in user or a user who owns keys cannot be
deleted; usernames have at most 31 characters, ``_`` is the only special character, and
they are case-insensitive (shown lowercase).
"""

from __future__ import annotations

from typing import Any

from labsupport.client.cli.grammar import REGISTRY, Args, Flag, Kind, Need, command
from labsupport.client.errors import NotAuthorized, UserError
from labsupport.client.roles import CLI_ROLES
from labsupport.client.users import Role, normalize_username
from labsupport.errors import LabError

REGISTRY.category("user", "User management commands")
REGISTRY.category("user change-mfa", "Change a user's Multi-Factor Authentication (MFA) strategy")

USERNAME = Flag("--username", "Username of the user", required=True)
ROLE = Flag("--role", "Role the user has in the cluster", required=True, choices=CLI_ROLES)
PASSWORD = Flag(
    "--password",
    "Optional: Plaintext user's password. If you do not include this argument you will be "
    "prompted for it",
    secret=True,
)
APPROVAL = Flag("--approval", "Filepath of signed quorum token file to approve operation")


def _shown(user: Any) -> dict[str, str]:
    return {"username": user.username, "role": user.role.value}


@command("user list", "List the users in your cluster", Need.NOTHING)
def user_list(cli: Any, args: Args) -> dict[str, Any]:
    """Every user (no login needed); ``locked`` is the string "true"/"false"."""
    return {"users": [u.to_cli() for u in cli.client.users.list()]}


@command("user create", "Create a new user", Need.ADMIN, USERNAME, ROLE, PASSWORD, APPROVAL)
def user_create(cli: Any, args: Args) -> dict[str, str]:
    """Create a user (admins); prompts ``Enter password:`` / ``Confirm password:``."""
    normalize_username(args.username)  # refuse a bad name before asking for a password
    password = cli.password(args, confirm=True)
    user = cli.client.users.create(cli.user, args.username, args.role, password, args.approval)
    return _shown(user)


@command("user delete", "Delete a user", Need.ADMIN, USERNAME, ROLE, APPROVAL)
def user_delete(cli: Any, args: Args) -> dict[str, str]:
    """Delete a user (admins); not a logged-in user, not a user who owns keys."""
    logged_in = set(cli.client.logged_in_users())
    user = cli.client.users.delete(cli.user, args.username, args.role, logged_in, args.approval)
    return _shown(user)


@command(
    "user change-password",
    "Change a user's password",
    Need.ANY_USER,
    USERNAME,
    ROLE,
    PASSWORD,
    APPROVAL,
    Flag("--deregister-mfa", "Deregister a user's MFA", kind=Kind.SWITCH),
    Flag("--deregister-quorum", "Deregister a user's quorum public key", kind=Kind.SWITCH),
    modelled="'logged in' means logged in through this lab client (this process)",
)
def change_password(cli: Any, args: Args) -> dict[str, str]:
    """Admins for anyone, users for themselves; refused while the target is logged in."""
    name = normalize_username(args.username)
    me = cli.user
    if me.role is not Role.ADMIN and me.username != name:
        raise NotAuthorized(
            f"{me.username} may change only their own password.",
            "Ask an admin to change another user's password.",
        )
    if name != me.username and name in cli.client.logged_in_users():
        raise UserError(
            f"User {name} is logged in; CloudHSM cannot change the password of a user who is "
            "currently logged in to the cluster.",
            f"Have {name} log out (close their sessions) first.",
        )
    password = cli.password(args, confirm=True)
    return _shown(cli.client.users.change_password(me, name, args.role, password, args.approval))


@command(
    "user change-mfa token-sign",
    "Register or deregister a user's MFA token-sign strategy",
    Need.ANY_USER,
    USERNAME,
    ROLE,
    Flag("--token", "Filepath where the unsigned token file will be written"),
    Flag("--deregister", "Deregister the MFA public key, if present", kind=Kind.SWITCH),
    Flag("--change-password", "Plaintext password of the user (changed at the same time)"),
    Flag(
        "--change-quorum", "Change the quorum public key along with the MFA key", kind=Kind.SWITCH
    ),
    APPROVAL,
    modelled="MFA registration is not simulated: --deregister succeeds (no user has MFA "
    "here), --token is refused",
)
def change_mfa(cli: Any, args: Args) -> dict[str, str]:
    """``--deregister`` (no-op: lab users have no MFA key); ``--token`` is refused."""
    if args.approval is not None:
        raise LabError(
            "Quorum approval of change-mfa is not simulated (MFA is not part of the lab).",
            "Run the command without --approval.",
        )
    name = normalize_username(args.username)
    if cli.user.role is not Role.ADMIN and cli.user.username != name:
        raise NotAuthorized(
            f"{cli.user.username} may change only their own MFA.",
            "Ask an admin to deregister another user's MFA.",
        )
    if args.token is not None and args.deregister:
        raise LabError("--token and --deregister cannot be used together.", "Use one of them.")
    if args.token is None and not args.deregister:
        raise LabError(
            "user change-mfa token-sign needs --token <file> (register) or --deregister.",
            "Add one of the two flags.",
        )
    user = cli.client.users.get(name)
    if user.role is not Role(args.role):
        raise UserError(f"User {name} with role {args.role} does not exist.", "Check `user list`.")
    if args.token is not None:
        raise LabError(
            "MFA registration (token-sign) is not simulated by the lab. On CloudHSM the CLI "
            "writes an unsigned token to that file, you sign it with your own RSA-2048 key "
            "and give the signed file and your public key; every later login then needs a "
            "signed token.",
            "Read the flow in the user guide (cloudhsm_cli-user-change-mfa); in the lab, "
            "users log in with a password only.",
        )
    return _shown(user)
