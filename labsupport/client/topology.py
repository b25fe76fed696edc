"""What the client knows about the cluster's HSMs: the view, the links, which HSMs to route to.

A :class:`Topology` re-reads the cluster (through :mod:`labsupport.client.resolver`) at most
every :data:`POLL_INTERVAL` seconds while the client is busy, synchronizes HSMs that joined
(:func:`labsupport.client.sync.reconcile`), stops routing to HSMs whose token is gone, and
counts every change in :attr:`Topology.version` — sessions and keys compare that number on
each operation and re-resolve their routes when it moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pkcs11

from labsupport.client import resolver, sync
from labsupport.client.clusterdata import ClusterStore
from labsupport.client.endpoints import ClusterView, HsmEndpoint
from labsupport.client.errors import ClusterChanging
from labsupport.client.links import HsmLink
from labsupport.errors import TokenNotFound
from labsupport.hsm.tokens import TokenStore
from labsupport.workspace.home import Workspace

#: How often (seconds) a busy client re-reads the cluster's HSM list and states.
POLL_INTERVAL = 0.5
#: How often a sync is retried while other processes create or delete HSMs under it.
SYNC_ATTEMPTS = 5


class Topology:
    """The cluster's HSMs as one client sees them, and the client's own link to each."""

    def __init__(
        self, workspace: Workspace, tokens: TokenStore, store: ClusterStore, view: ClusterView
    ) -> None:
        self.workspace = workspace
        self.tokens = tokens
        self.store = store
        self.cluster_id = view.cluster_id
        #: The cluster as last described.
        self.view = view
        #: When (time.monotonic) the next routine poll is due.
        self.next_poll = 0.0
        #: Bumped on every change of HSMs, their sync state, or the key records.
        self.version = 0
        self._signature: Any = None
        self._turn = 0
        self._links: dict[str, HsmLink] = {}
        self._down: set[str] = set()

    # -- reading the cluster ---------------------------------------------------------------

    def describe(self) -> ClusterView:
        """The cluster now (``DELETED`` with no HSMs once it is gone)."""
        try:
            return resolver.describe(self.workspace, self.cluster_id)
        except resolver.ClusterNotFound:
            return ClusterView(self.cluster_id, "DELETED", ())

    def routable(self) -> list[HsmEndpoint]:
        """ACTIVE HSMs that are in sync and whose token answers, in cluster order."""
        in_sync = self.store.read().get("hsms", {})
        return [
            h
            for h in self.view.hsms
            if h.usable and h.hsm_id in in_sync and h.hsm_id not in self._down
        ]

    def poll(self, force: bool = False) -> None:
        """Re-read the cluster's HSMs; synchronize HSMs that joined; reroute around gone ones."""
        now = time.monotonic()
        if not force and now < self.next_poll:
            return
        self.next_poll = now + POLL_INTERVAL
        view = self.describe()
        self.view = view
        self._down &= {h.hsm_id for h in view.hsms}
        usable = {h.hsm_id for h in view.usable_hsms} - self._down
        in_sync = set(self.store.read().get("hsms", {}))
        if usable != in_sync:
            self.reconcile_view(view)
        signature = (
            tuple((h.hsm_id, h.state) for h in view.hsms),
            frozenset(self.store.read().get("hsms", {})),
            frozenset(self._down),
            self.store.stamp(),
        )
        if signature != self._signature:
            self._signature = signature
            self.version += 1

    def bump(self) -> None:
        """Something changed (a key record, an HSM): routes are re-resolved on next use."""
        self.version += 1

    def next_turn(self) -> int:
        """The next round-robin number (spreads sessions and requests over the HSMs)."""
        self._turn += 1
        return self._turn

    # -- links -----------------------------------------------------------------------------

    def link(self, endpoint: HsmEndpoint) -> HsmLink:
        """The client's own link to ``endpoint`` (sync, coverage checks, slot questions)."""
        link = self._links.get(endpoint.hsm_id)
        if link is None:
            link = self._links[endpoint.hsm_id] = HsmLink(self.tokens, endpoint)
        return link

    def forget(self, ref: int) -> None:
        """Key ``ref`` was destroyed: drop it from the client's own links' indexes."""
        for link in self._links.values():
            link.forget(ref)

    def mark_down(self, hsm_ids: list[str]) -> None:
        """HSMs whose token is gone: stop routing to them until they leave the cluster."""
        self._down.update(hsm_ids)
        with self.store.update() as doc:
            for hsm_id in hsm_ids:
                doc.get("hsms", {}).pop(hsm_id, None)
        self.bump()

    def close(self) -> None:
        """Close the client's own links."""
        for link in self._links.values():
            link.close()
        self._links.clear()

    # -- synchronization ---------------------------------------------------------------------

    def reconcile_view(self, view: ClusterView, progress: Any = None) -> sync.SyncReport:
        """Bring every usable HSM of ``view`` to the same keys (see :func:`sync.reconcile`).

        Another process may create or delete HSMs meanwhile: a token that appears
        re-initializes PKCS#11 here (every handle goes stale), one that vanishes fails
        its calls. Either way the links are reopened (a vanished HSM is marked down) and
        the sync is retried, up to :data:`SYNC_ATTEMPTS` times; then
        :class:`~labsupport.client.errors.ClusterChanging` says so.
        """
        last: Exception | None = None
        for _ in range(SYNC_ATTEMPTS):
            for hsm_id in [h for h in self._links if view.hsm(h) is None]:
                self._links.pop(hsm_id).close()
            links = []
            for endpoint in view.usable_hsms:
                if endpoint.hsm_id in self._down:
                    continue
                link = self.link(endpoint)
                try:
                    link.session  # noqa: B018 - open now: a missing token means a dead HSM
                except (TokenNotFound, pkcs11.PKCS11Error):
                    self._down.add(endpoint.hsm_id)
                    continue
                links.append(link)
            generation = self.tokens.generation
            try:
                with self.store.locked():
                    report = sync.reconcile(self.store, links, progress)
                break
            except (pkcs11.PKCS11Error, TokenNotFound, ClusterChanging) as exc:
                reopened = isinstance(exc, (pkcs11.SessionHandleInvalid, pkcs11.SessionClosed))
                if not reopened and not self.changed_since(links, generation):
                    raise  # not churn: a real error, as it is
                last = exc  # the library was re-initialized or an HSM left: look again
                view = self.view = self.describe()
        else:
            raise ClusterChanging(
                f"The cluster's HSMs changed {SYNC_ATTEMPTS} times while this client "
                "synchronized keys to them (HSMs created or deleted by another process or "
                f"kernel; last: {type(last).__name__}).",
                "Retry when the other process's create_hsm/delete_hsm calls are done.",
            ) from last
        self.bump()
        return report

    def changed_since(self, links: list[HsmLink], generation: int) -> bool:
        """True if PKCS#11 was re-initialized (TokenStore ``generation``), or an HSM of
        ``links`` left the cluster or lost its token, since the caller began."""
        if self.tokens.generation != generation:
            return True
        now = {h.hsm_id for h in self.describe().usable_hsms}
        if any(link.hsm_id not in now for link in links):
            return True
        known = self.tokens.records()
        return any(link.endpoint.token_label not in known for link in links)

    def reconcile(self, progress: Callable[[int, int], None] | None = None) -> sync.SyncReport:
        """Look at the cluster afresh (forget HSMs marked down) and synchronize it."""
        self._down.clear()
        self.view = self.describe()
        return self.reconcile_view(self.view, progress)


__all__ = ["POLL_INTERVAL", "Topology"]
