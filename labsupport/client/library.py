"""The cluster seen as a loaded PKCS#11 library: ``client.lib`` (like ``pkcs11.lib(path)``).

Code written for python-pkcs11 starts from a library object::

    lib = pkcs11.lib("/opt/cloudhsm/lib/libcloudhsm_pkcs11.so")
    token = lib.get_token(token_label="cavium")        # CloudHSM's one token
    with token.open(user_pin="alice:password") as session: ...

In the lab, ``chsm.connect().lib`` plays that library: one slot, one token (the cluster),
and the same ``get_slots`` / ``get_tokens`` / ``get_token`` calls. CloudHSM's library
exposes one slot per cluster; the lab's client configures one cluster, so one slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pkcs11 import exceptions as ckr

if TYPE_CHECKING:
    from labsupport.client.clustertoken import ClusterSlot, ClusterToken
    from labsupport.client.interfaces import ClusterClient


class ClusterLibrary:
    """python-pkcs11's ``lib`` interface over one connected cluster client."""

    def __init__(self, client: ClusterClient) -> None:
        self._client = client
        self._initialized = True

    @property
    def initialized(self) -> bool:
        """False after :meth:`finalize` until the next call re-initializes the library."""
        return self._initialized

    @property
    def cryptoki_version(self) -> tuple[int, int]:
        """PKCS#11 version the library implements (CloudHSM's library: 2.40)."""
        return (2, 40)

    @property
    def manufacturer_id(self) -> str:
        """Who made the library (the lab's simulation of CloudHSM's)."""
        return "CloudHSM Lab (simulated)"

    @property
    def library_description(self) -> str:
        """What the library is."""
        return "CloudHSM Lab PKCS#11 (simulated Client SDK 5)"

    @property
    def library_version(self) -> tuple[int, int]:
        """The simulated library version."""
        return (5, 0)

    def _require_initialized(self) -> None:
        if not self._initialized:
            raise ckr.PKCS11Error("CKR_CRYPTOKI_NOT_INITIALIZED: call reinitialize() first")

    def get_slots(self, token_present: bool = False) -> list[ClusterSlot]:
        """The library's slots: one, for the cluster (``C_GetSlotList``)."""
        self._require_initialized()
        return [self._client.token.slot]

    def get_tokens(
        self,
        token_label: str | None = None,
        token_serial: bytes | None = None,
        token_flags: Any = None,
        slot_flags: Any = None,
        mechanisms: Any = None,
    ) -> Iterator[ClusterToken]:
        """Tokens matching every given criterion (python-pkcs11 ``lib.get_tokens``)."""
        self._require_initialized()
        token = self._client.token
        slot = token.slot
        if token_label is not None and token.label != token_label:
            return
        if token_serial is not None and token.serial != token_serial:
            return
        if token_flags is not None and (token.flags & token_flags) != token_flags:
            return
        if slot_flags is not None and (slot.flags & slot_flags) != slot_flags:
            return
        if mechanisms is not None and not set(mechanisms) <= slot.get_mechanisms():
            return
        yield token

    def get_token(self, **criteria: Any) -> ClusterToken:
        """The one token matching ``criteria`` (``NoSuchToken`` if none)."""
        found = list(self.get_tokens(**criteria))
        if not found:
            raise ckr.NoSuchToken("No token matching that specification")
        return found[0]

    def reinitialize(self) -> None:
        """Finalize and initialize again (open sessions end)."""
        self.finalize()
        self._initialized = True

    def finalize(self) -> None:
        """Close every session of this client (``C_Finalize``)."""
        for session in self._client.open_sessions():
            session.close()
        self._initialized = False

    def __repr__(self) -> str:
        return f"<ClusterLibrary {self._client.cluster_id}>"


__all__ = ["ClusterLibrary"]
