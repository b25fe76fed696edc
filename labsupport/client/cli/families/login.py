"""``login`` and ``logout``."""

from __future__ import annotations

from typing import Any

from labsupport.client.cli.families.user import PASSWORD
from labsupport.client.cli.grammar import Args, Flag, Need, command
from labsupport.client.roles import CLI_ROLES
from labsupport.client.users import Role


@command(
    "login",
    "Login to your cluster",
    Need.NOTHING,
    Flag("--username", "Username to access the Cluster", required=True),
    Flag("--role", "Role the user has in the Cluster", required=True, choices=CLI_ROLES),
    PASSWORD,
)
def login(cli: Any, args: Args) -> dict[str, str]:
    """Log in; five wrong passwords lock the user."""
    user = cli.log_in(args.username, Role(args.role), cli.password(args))
    return {"username": user.username, "role": user.role.value}


@command("logout", "Logout of your cluster", Need.ANY_USER)
def logout(cli: Any, args: Args) -> str:
    """Log out (session keys of a crypto user disappear)."""
    cli.log_out()
    return "Logout successful"
