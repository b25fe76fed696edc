"""What the client knows about a cluster: its HSM endpoints and their states.

The client core works on these small value objects only; :mod:`labsupport.client.resolver`
is the one place that asks the control plane to produce them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# One enum for HSM states across the lab: the control plane's (a plain module).
from labsupport.controlplane.states import HsmState

__all__ = ["ClusterView", "HsmEndpoint", "HsmState"]


@dataclass(frozen=True)
class HsmEndpoint:
    """One HSM as a client sees it: its ENI address, its AZ and the token behind it.

    ``token_label`` names the SoftHSM token that plays this HSM; learners never need it.
    """

    hsm_id: str
    eni_ip: str
    availability_zone: str
    token_label: str
    state: HsmState = HsmState.ACTIVE
    subnet_id: str = ""

    @property
    def usable(self) -> bool:
        """True when the client may send requests to this HSM (state ACTIVE)."""
        return self.state is HsmState.ACTIVE


@dataclass(frozen=True)
class ClusterView:
    """A cluster as the client resolves it on connect.

    ``hsm_certificate_pem`` is the certificate the HSMs present when a client connects
    (the cluster certificate your CA signed during initialization); the client checks it
    against ``customerCA.crt``. ``state`` is the cluster state string (``INITIALIZED``,
    ``ACTIVE`` …); ``owner`` the lesson scope that created it (used by resets).
    """

    cluster_id: str
    state: str
    hsms: tuple[HsmEndpoint, ...]
    hsm_certificate_pem: str | None = None
    owner: str = ""
    region: str = ""
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def hsm(self, hsm_id: str) -> HsmEndpoint | None:
        """The HSM called ``hsm_id``, or None."""
        return next((h for h in self.hsms if h.hsm_id == hsm_id), None)

    @property
    def usable_hsms(self) -> tuple[HsmEndpoint, ...]:
        """The HSMs that can serve requests now."""
        return tuple(h for h in self.hsms if h.usable)
