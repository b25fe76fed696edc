"""Lessons 02 and 03 in one call: an ACTIVE cluster, a connected client, crypto users.

For lessons after 03 that need a working cluster but must run on their own::

    from labsupport.client.quickstart import connected_cluster
    ready = connected_cluster(lab.workspace, owner=lab.scope, users=("alice", "bob"))
    session = ready.login("alice")          # a logged-in cluster session

It creates an initialized cluster with the control plane's quickstart, installs its
``customerCA.crt``, configures the client with ``--cluster-id``, connects, activates the
cluster and creates the crypto users. The passwords are random, kept only in the
returned object (never printed); ``ready.login(user)`` uses them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from labsupport.client.client import Client, connect
from labsupport.client.config import configure, install_trust_anchor
from labsupport.client.session import ClusterSession
from labsupport.workspace.home import Workspace


@dataclass
class ReadyCluster:
    """What :func:`connected_cluster` made (passwords hidden from ``repr``)."""

    cluster_id: str
    client: Client
    users: tuple[str, ...]
    _passwords: dict[str, str] = field(repr=False)

    def login(self, user: str, rw: bool = True, client: Client | None = None) -> ClusterSession:
        """Log ``user`` in (PKCS#11 PIN ``user:password``) and return the session.

        ``client`` is another connected client (e.g. of a cluster restored from a backup
        of this one, where the same users exist); default: this cluster's.
        """
        return (client or self.client).login(f"{user}:{self._passwords[user]}", rw=rw)

    def cli_login(self, user: str = "admin", client: Client | None = None) -> Any:
        """Log ``user`` in to CloudHSM CLI (``client.cli``) with its hidden password."""
        cli = (client or self.client).cli
        role = "admin" if user == "admin" else "crypto-user"
        return cli.run(f"login --username {user} --role {role}", password=self._passwords[user])

    def pin_environment(self, user: str) -> dict[str, str]:
        """``{"CLOUDHSM_PIN": "<user>:<password>"}`` for a child process's environment.

        What an application host gets from its secret store on AWS: pass it as
        ``env={**os.environ, **ready.pin_environment("alice")}`` to a process that uses
        CloudHSM's OpenSSL integration (lesson 07). Never print it.
        """
        return {"CLOUDHSM_PIN": f"{user}:{self._passwords[user]}"}


def connected_cluster(
    workspace: Workspace | None = None,
    owner: str = "workspace",
    hsm_count: int = 2,
    users: tuple[str, ...] = ("alice",),
) -> ReadyCluster:
    """An ACTIVE cluster of ``hsm_count`` HSMs, a connected client and crypto ``users``."""
    from labsupport.controlplane.quickstart import initialized_cluster

    ws = workspace or Workspace.open()
    made = initialized_cluster(ws, owner=owner, hsm_count=hsm_count)
    install_trust_anchor(made.customer_ca_cert.read_bytes(), ws)
    configure(cluster_id=made.cluster_id, workspace=ws, owner=owner)
    client = connect(ws)
    passwords = {name: secrets.token_urlsafe(12) for name in ("admin", *users)}
    cli = client.cli
    cli.run("cluster activate", password=passwords["admin"]).raise_for_error()
    cli.run("login --username admin --role admin", password=passwords["admin"]).raise_for_error()
    for name in users:
        cli.run(
            f"user create --username {name} --role crypto-user", password=passwords[name]
        ).raise_for_error()
    cli.run("logout").raise_for_error()
    return ReadyCluster(made.cluster_id, client, tuple(users), passwords)
