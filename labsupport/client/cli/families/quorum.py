"""``quorum token-sign generate|list|list-quorum-values|set-quorum-value|delete`` and
``user change-quorum token-sign register`` — quorum (M of N) authentication.

The logic lives in :mod:`labsupport.client.quorum`; these handlers parse the flags and
write the HSMs' audit events (CN_GET_TOKEN, CN_SET_M_VALUE, CN_DELETE_TOKEN). A token
file is JSON with ``approval_data``, ``token`` (its SHA-256) and ``signatures``; approvers
sign the token bytes outside the HSM (``openssl pkeyutl -sign -pkeyopt digest:sha256``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labsupport.client.cli.grammar import REGISTRY, Args, Flag, Need, command
from labsupport.client.quorum import Quorum, QuorumService
from labsupport.client.users import Role
from labsupport.errors import LabError

REGISTRY.category("quorum", "Quorum authentication commands")
REGISTRY.category("quorum token-sign", "Quorum token-sign commands")
REGISTRY.category("user change-quorum", "Change a user's quorum authentication strategy")
REGISTRY.category("user change-quorum token-sign", "Register a user's token-sign public key")

SERVICES = tuple(s.value for s in QuorumService)
SERVICE = Flag("--service", "Service the token is for", required=True, choices=SERVICES)


def _quorum(cli: Any) -> Quorum:
    return Quorum(cli.client.store)


def _audit(cli: Any, opcode: str) -> None:
    me = cli.user
    cli.client.users.audit(opcode, actor=me.username, user=me.username, role=me.role.value)


@command(
    "quorum token-sign generate",
    "Generate a quorum token",
    Need.ANY_USER,
    SERVICE,
    Flag("--token", "Filepath where the unsigned token file will be written", required=True),
    modelled="approval_data is lab data (version, time, nonce, user, service), not AWS's layout",
)
def token_generate(cli: Any, args: Args) -> dict[str, str]:
    """One active token per user and service; it expires after 600 s on the lab clock.

    Answers ``{"filepath": …}`` (the path as given), as AWS documents."""
    path = _quorum(cli).generate(cli.user.username, args.service, args.token)
    _audit(cli, "CN_GET_TOKEN")
    return {"filepath": str(path)}  # AWS's field name (cloudhsm_cli-qm-token-gen)


@command("quorum token-sign list", "List quorum tokens", Need.ANY_USER)
def token_list(cli: Any, args: Args) -> dict[str, Any]:
    """The outstanding tokens, with the approvals each needs and its time left."""
    return {"tokens": [t.to_cli() for t in _quorum(cli).tokens()]}


@command("quorum token-sign list-quorum-values", "List quorum values", Need.ANY_USER)
def list_values(cli: Any, args: Args) -> dict[str, int]:
    """The quorum value (M) of each service."""
    return _quorum(cli).values()


@command(
    "quorum token-sign set-quorum-value",
    "Set a quorum value",
    Need.ADMIN,
    Flag("--service", "Service to set", required=True, choices=("user", "quorum")),
    Flag("--value", "Quorum value (M), 1 to 8", required=True),
    Flag("--approval", "Filepath of signed quorum token file (quorum service)"),
)
def set_value(cli: Any, args: Args) -> str:
    """Needs the ``quorum`` service's approvals when its own M is above 1."""
    if not str(args.value).isdigit():
        raise LabError("--value must be a whole number (M).", "e.g. --value 2")
    _quorum(cli).set_value(cli.user.username, args.service, int(args.value), args.approval)
    _audit(cli, "CN_SET_M_VALUE")
    return "Set quorum value successful"


@command(
    "quorum token-sign delete",
    "Delete quorum tokens",
    Need.ANY_USER,
    Flag(
        "--scope",
        "Delete your tokens (user) or everyone's (all)",
        required=True,
        choices=("user", "all"),
    ),
)
def token_delete(cli: Any, args: Args) -> str:
    """``--scope all`` is for admins."""
    if args.scope == "all" and cli.user.role is not Role.ADMIN:
        raise LabError("Only admins delete every user's tokens.", "Use --scope user.")
    count = _quorum(cli).delete_tokens(None if args.scope == "all" else cli.user.username)
    _audit(cli, "CN_DELETE_TOKEN")
    return f"Deleted {count} token(s) successfully"


@command(
    "user change-quorum token-sign register",
    "Register a user for quorum authentication with a public key",
    Need.ADMIN,
    Flag("--public-key", "Filepath to public key PEM file", required=True),
    Flag("--signed-token", "Filepath with token signed by user private key", required=True),
)
def register(cli: Any, args: Args) -> dict[str, str]:
    """The signed token is a ``--service registration`` token signed with the new key."""
    pem = Path(args.public_key).read_text()
    _quorum(cli).register(cli.user.username, pem, args.signed_token)
    return {"username": cli.user.username, "role": cli.user.role.value}
