"""One logged-in PKCS#11 session on the token that plays an HSM, with an object index.

Opening a SoftHSM token needs its internal PIN (kept by the token store, never shown).
Creating or deleting any token re-initializes the PKCS#11 library in this process and
kills every open session (:attr:`labsupport.hsm.TokenStore.generation` counts that), so
a link reopens its session when the generation changed and forgets object handles
found before.

SoftHSM's object search is linear in the number of objects on the token (it re-checks
each object file), so a link lists the token's objects once and keeps a
``key reference → objects`` index, updated as keys are added and removed.
"""

from __future__ import annotations

import contextlib

import pkcs11
from pkcs11 import Attribute

from labsupport.client.endpoints import HsmEndpoint
from labsupport.client.keys import id_to_ref, ref_to_id
from labsupport.hsm.synckey import find_sync_key
from labsupport.hsm.tokens import TokenStore, firmware_session

# python-pkcs11 logs the token out when the session that logged in is closed, and the
# login is shared by every session of the token in this process. Sessions that did the
# login are therefore never closed; they are parked here until the library restarts.
_LOGIN_SESSIONS: dict[str, pkcs11.Session] = {}


class HsmLink:
    """A session on one HSM's token (reopened after library re-initialization)."""

    def __init__(self, tokens: TokenStore, endpoint: HsmEndpoint) -> None:
        self.tokens = tokens
        self.endpoint = endpoint
        self.hsm_id = endpoint.hsm_id
        self._session: pkcs11.Session | None = None
        self.generation = -1
        self._index: dict[int, list[pkcs11.Object]] | None = None
        self._sync_key: pkcs11.SecretKey | None = None

    def __repr__(self) -> str:
        return f"<HsmLink {self.hsm_id} token={self.endpoint.token_label!r}>"

    @property
    def alive(self) -> bool:
        """True if the session is open and the library was not re-initialized since."""
        return self._session is not None and self.generation == self.tokens.generation

    @property
    def session(self) -> pkcs11.Session:
        """The open python-pkcs11 session (opened or reopened on demand)."""
        if self._session is None or self.generation != self.tokens.generation:
            self._open()
        assert self._session is not None
        return self._session

    def _open(self) -> None:
        self._index = None
        self._sync_key = None
        self._session = None
        session = firmware_session(self.tokens, self.endpoint.token_label, rw=True)
        self._session = session
        self.generation = self.tokens.generation

    def close(self) -> None:
        """Close the session (ignoring a session the library already dropped)."""
        if self._session is not None and self.alive:
            if self._session.user_type == pkcs11.UserType.NOBODY:
                with contextlib.suppress(pkcs11.PKCS11Error):
                    self._session.close()
            else:  # closing it would log out every other session of this token
                _LOGIN_SESSIONS[self.endpoint.token_label] = self._session
        self._session = None
        self._index = None
        self._sync_key = None

    # -- the index of our key objects ----------------------------------------------------

    def index(self) -> dict[int, list[pkcs11.Object]]:
        """``reference → token objects`` for every key object with an 8-byte reference."""
        session = self.session
        if self._index is None:
            index: dict[int, list[pkcs11.Object]] = {}
            for obj in session.get_objects({Attribute.TOKEN: True}):
                try:
                    ref = id_to_ref(obj[Attribute.ID])
                except (pkcs11.AttributeTypeInvalid, pkcs11.AttributeSensitive):
                    continue
                if ref is not None:
                    index.setdefault(ref, []).append(obj)
            self._index = index
        return self._index

    def find(self, ref: int, refresh: bool = True) -> pkcs11.Object | None:
        """The token object of key ``ref`` on this HSM, or None."""
        found = self.index().get(ref)
        if found:
            return found[0]
        if not refresh:
            return None
        # Made by another kernel since we listed? Ask the token directly.
        objs = list(self.session.get_objects({Attribute.TOKEN: True, Attribute.ID: ref_to_id(ref)}))
        if objs:
            self.index()[ref] = objs
            return objs[0]
        return None

    def remember(self, ref: int, obj: pkcs11.Object) -> None:
        """Add an object we just created to the index."""
        if self._index is not None:
            self._index.setdefault(ref, []).append(obj)

    def forget(self, ref: int) -> None:
        """Drop ``ref`` from the index (after destroying it)."""
        if self._index is not None:
            self._index.pop(ref, None)

    def invalidate(self) -> None:
        """Forget the index (list the token again on next use)."""
        self._index = None

    # -- the cluster-internal key ------------------------------------------------------------

    def sync_key(self) -> pkcs11.SecretKey | None:
        """The cluster's internal sync key on this HSM, or None if it has none yet."""
        # self.session first: after PKCS#11 was re-initialized it reopens the session and
        # forgets the cached key, whose handle is stale — or now names another object.
        session = self.session
        if self._sync_key is None:
            self._sync_key = find_sync_key(session)
        return self._sync_key

    def set_sync_key(self, key: pkcs11.SecretKey) -> None:
        """Remember the sync key just created or received."""
        self._sync_key = key
