"""The one PKCS#11 slot and token that represent a whole cluster (``client.token``).

CloudHSM's PKCS#11 library exposes one slot per cluster, whatever the number of HSMs;
``token.open(user_pin="user:password")`` logs a crypto user in to the whole cluster.
"""

from __future__ import annotations

from typing import Any

import pkcs11
from pkcs11 import SlotFlag, TokenFlag, types

from labsupport.client import mechanisms
from labsupport.client.errors import NoHsmAvailable, NotSupportedByCloudHsm
from labsupport.client.interfaces import ClusterClient
from labsupport.errors import TokenNotFound


class ClusterSlot(types.Slot):
    """The one PKCS#11 slot that represents the whole cluster (``token.slot``).

    As with CloudHSM's PKCS#11 library, one slot represents the cluster, not one HSM.
    ``get_mechanisms()`` returns the mechanisms every ACTIVE HSM supports (the ones any
    request can be routed with); ``get_mechanism_info(mechanism)`` asks one of the HSMs
    (they are identical), as do the version properties.
    """

    def __init__(self, client: ClusterClient) -> None:
        self._client = client

    def _identity(self) -> Any:
        return ("ClusterSlot", self._client.cluster_id)

    def _hsm_slots(self) -> list[types.Slot]:
        client = self._client
        client.poll(force=True)
        slots = []
        for endpoint in client.topology.routable():
            try:
                slots.append(client.topology.link(endpoint).session.token.slot)
            except (TokenNotFound, pkcs11.PKCS11Error):
                continue  # an HSM that went away: the next poll routes around it
        if not slots:
            raise NoHsmAvailable(
                "The cluster has no ACTIVE HSM to answer for the slot.",
                "Create an HSM (cloudhsm.create_hsm(...)) and wait for it to become ACTIVE.",
            )
        return slots

    @property
    def slot_id(self) -> int:  # type: ignore[override]
        """The slot id (the lab's cluster client has one slot)."""
        return 0

    @property
    def slot_description(self) -> str:  # type: ignore[override]
        """Which cluster this slot represents."""
        return f"CloudHSM cluster {self._client.cluster_id}"

    @property
    def manufacturer_id(self) -> str:  # type: ignore[override]
        """Who made this slot (the lab's simulation)."""
        return "CloudHSM Lab (simulated)"

    @property
    def flags(self) -> SlotFlag:  # type: ignore[override]
        """Slot flags: a token is present."""
        return SlotFlag.TOKEN_PRESENT

    @property
    def hardware_version(self) -> tuple[int, int]:  # type: ignore[override]
        """Hardware version, as one HSM reports it."""
        return self._hsm_slots()[0].hardware_version

    @property
    def firmware_version(self) -> tuple[int, int]:  # type: ignore[override]
        """Firmware version, as one HSM reports it."""
        return self._hsm_slots()[0].firmware_version

    @property
    def cryptoki_version(self) -> tuple[int, int]:  # type: ignore[override]
        """PKCS#11 API version, as one HSM reports it."""
        return self._hsm_slots()[0].cryptoki_version

    def get_token(self) -> ClusterToken:
        """The cluster's token."""
        return self._client.token

    def get_mechanisms(self) -> set[Any]:
        """CloudHSM's Client SDK 5 mechanisms that every ACTIVE HSM can run
        (``C_GetMechanismList``); see :mod:`labsupport.client.mechanisms` for the ones
        SoftHSM cannot run."""
        common: set[Any] = set(mechanisms.CLOUDHSM_MECHANISMS)
        for slot in self._hsm_slots():
            common &= set(slot.get_mechanisms())
        return common

    def get_mechanism_info(self, mechanism: Any) -> Any:
        """Key sizes and flags of ``mechanism``, from one of the HSMs (``C_GetMechanismInfo``)."""
        mechanisms.require(mechanism, self.get_mechanisms(), "cluster")
        return self._hsm_slots()[0].get_mechanism_info(mechanism)

    def __repr__(self) -> str:
        return f"<ClusterSlot {self._client.cluster_id}>"


class ClusterToken(types.Token):
    """The one PKCS#11 token (in one slot) that represents the whole cluster.

    ``token.open(user_pin="alice:password", rw=True)`` is the same as
    ``client.login("alice:password", rw=True)``. Its label is the cluster id.
    ``token.slot`` is a :class:`ClusterSlot`: one PKCS#11 slot represents the cluster, and
    ``token.slot.get_mechanisms()`` lists what every ACTIVE HSM supports.
    """

    def __init__(self, client: ClusterClient) -> None:
        self._client = client
        self._slot = ClusterSlot(client)

    def _identity(self) -> Any:
        return ("ClusterToken", self._client.cluster_id)

    @property
    def label(self) -> str:  # type: ignore[override]
        """The cluster id."""
        return self._client.cluster_id

    @property
    def serial(self) -> bytes:  # type: ignore[override]
        """The cluster id, as bytes."""
        return self._client.cluster_id.encode()

    @property
    def manufacturer_id(self) -> str:  # type: ignore[override]
        """Who made this token (the lab's simulation)."""
        return "CloudHSM Lab (simulated)"

    @property
    def model(self) -> str:  # type: ignore[override]
        """The simulated model."""
        return "cluster"

    @property
    def flags(self) -> TokenFlag:
        """Token flags: login required, RNG, initialized."""
        return TokenFlag.LOGIN_REQUIRED | TokenFlag.RNG | TokenFlag.TOKEN_INITIALIZED

    @property
    def slot(self) -> ClusterSlot:  # type: ignore[override]
        """The slot: one PKCS#11 slot represents the whole cluster."""
        return self._slot

    def open(
        self,
        rw: bool = False,
        user_pin: str | bytes | None = None,
        so_pin: str | None = None,
        user_type: Any = None,
        attribute_mapper: Any = None,
        **_: Any,
    ) -> Any:
        """Open a session: logged in with ``user_pin`` (``<username>:<password>``), or a
        public session (no PIN) that can digest, generate random data and use public keys.

        ``attribute_mapper`` (python-pkcs11) is honoured for the attribute values the
        session's keys read and write. A security-officer login (``so_pin``) is refused
        with ``FunctionNotSupported``: CloudHSM's PKCS#11 library logs in crypto users only.
        """
        if so_pin is not None or (user_type is not None and user_type == pkcs11.UserType.SO):
            raise NotSupportedByCloudHsm(
                "AWS CloudHSM's PKCS#11 library has no security officer (CKU_SO) login "
                "(CKR_FUNCTION_NOT_SUPPORTED); it logs in crypto users only.",
                "Pass user_pin='<username>:<password>'; admins manage users with CloudHSM CLI "
                "(client.cli).",
            )
        if user_pin is None:
            session = self._client.open_public(rw=rw)
        else:
            session = self._client.login(user_pin, rw=rw)
        if attribute_mapper is not None:
            session.attribute_mapper = attribute_mapper
        return session

    def __repr__(self) -> str:
        return f"<ClusterToken {self.label}>"


__all__ = ["ClusterSlot", "ClusterToken"]
