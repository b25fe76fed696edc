"""What the cluster session, token and library need from the client (a structural type).

:class:`labsupport.client.client.Client` provides it. Typing against this protocol keeps the
modules below the client from importing it (no import cycle client ↔ session ↔ token).
"""

from __future__ import annotations

from typing import Any, Protocol

from labsupport.client.balancer import RequestLog
from labsupport.client.config import ClientConfig
from labsupport.client.keystore import KeyStore
from labsupport.client.topology import Topology
from labsupport.hsm.tokens import TokenStore


class ClusterClient(Protocol):
    """A connected client, as its sessions, token and library use it."""

    cluster_id: str
    config: ClientConfig
    tokens: TokenStore
    topology: Topology
    keys: KeyStore
    requests: RequestLog
    token: Any

    def poll(self, force: bool = False) -> None:
        """Re-read the cluster (at most every half second unless ``force``)."""

    def login(self, pin: str | bytes, rw: bool = True) -> Any:
        """A session logged in as a crypto user."""

    def open_public(self, rw: bool = False) -> Any:
        """A public (not logged-in) session."""

    def open_sessions(self) -> list[Any]:
        """Sessions opened through the client and still open."""

    def availability_failure(self, ref: int, copies: int) -> None:
        """Raise CloudHSM's key-availability error for key ``ref``."""

    def session_closed(self, session: Any) -> None:
        """A session closed."""

    def set_pin(self, username: str, old_pin: str | bytes, new_pin: str | bytes) -> None:
        """Change a user's own password."""


__all__ = ["ClusterClient", "ClusterSessionLike"]


class ClusterSessionLike(Protocol):
    """A cluster session, as its key objects use it (routing state and key creation)."""

    client: ClusterClient
    topology: Topology
    requests: RequestLog
    username: str
    links: dict[str, Any]
    order: list[str]
    stamp: int
    generation: int
    topology_version: int
    attribute_mapper: Any

    def refresh_if_stale(self) -> None:
        """Re-read routes if the cluster or the library changed."""

    def refresh(self) -> None:
        """Re-read routes now."""

    def require_open(self) -> None:
        """Raise if the session is closed."""

    def create_keys(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Create key objects (session or token keys)."""

    def session_home(self) -> str | None:
        """The HSM this session keeps its session keys on."""

    def raw_value(self, attr: Any, value: Any) -> Any:
        """``value`` as the HSM sessions expect it."""

    def forget_session_key(self, ref: int) -> None:
        """A session key was destroyed."""

    def destroy_token_key(self, ref: int) -> None:
        """Delete a token key from every HSM."""
