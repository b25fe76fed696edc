"""What the CLI needs from the lab's Client SDK that its public API does not offer yet.

Everything here reads a key record, a coverage count or an HSM's token through the client
layer's internals; it is kept in this one module so that a change in
:mod:`labsupport.client` (session/client split, key records) means one edit here.
"""

from __future__ import annotations

from typing import Any

from labsupport.client.keys import KeyRecord


def record(key: Any) -> KeyRecord | None:
    """The cluster's record of a token key (owner, shared users, pair), or the session record."""
    return key.record


def coverage(key: Any) -> str:
    """``full`` when the key is on every ACTIVE HSM the session routes to, else ``partial``."""
    order = key.session.order
    return "full" if len(key.hsms) >= len(order) else "partial"


def key_info(key: Any) -> dict[str, Any]:
    """``key-reference`` and ``key-info`` as the CLI prints them (with key-quorum-values)."""
    rec = record(key)
    assert rec is not None
    shown = rec.to_cli(coverage(key))
    info = shown["key-info"]
    # Key quorum (SDK 5.13+): the lab has no key-level quorum yet, so both values are 0.
    shown["key-info"] = {
        "key-owners": info["key-owners"],
        "shared-users": info["shared-users"],
        "key-quorum-values": {"manage-key-quorum-value": 0, "use-key-quorum-value": 0},
        "cluster-coverage": info["cluster-coverage"],
    }
    return shown


def all_records(client: Any) -> list[KeyRecord]:
    """Every token key of the cluster that is fully made, by reference (what admins list)."""
    from labsupport.client.keys import KeyStatus

    return sorted(
        (r for r in client.keys.records().values() if r.status is KeyStatus.OK),
        key=lambda r: r.ref,
    )


def forget(session: Any, key: Any) -> None:
    """Drop cached key objects so the next lookup sees changed capabilities (set-attribute).

    python-pkcs11 picks an object's class (with or without ``wrap_key`` …) when it lists
    the object, so a key whose ``wrap`` just became true must be listed again.
    """
    session.forget_key(key.ref)


def hsm_tokens(client: Any) -> list[tuple[Any, Any]]:
    """``(endpoint, token)`` for each ACTIVE HSM the client talks to."""
    client.poll(force=True)
    out = []
    for endpoint in client.topology.routable():
        out.append((endpoint, client.topology.link(endpoint).session.token))
    return out


__all__ = ["all_records", "coverage", "forget", "hsm_tokens", "key_info", "record"]
