"""Could this cluster back a KMS *custom key store*? The requirements, checked on the lab cluster.

An AWS CloudHSM key store is the other way to combine KMS and CloudHSM: KMS keys with
``Origin=AWS_CLOUDHSM`` whose key material KMS *generates inside your cluster*, as
non-extractable keys owned by a dedicated crypto user called ``kmsuser``. Every Encrypt
or Decrypt on such a KMS key runs in your HSMs; you keep KMS's API, key policies, IAM,
CloudTrail and service integrations. What KMS asks of the cluster
(``CreateCustomKeyStore``, and again for each ``CreateKey``):

* the cluster is ACTIVE and not associated with another key store;
* it has at least two ACTIVE HSMs, in different Availability Zones (a connect needs one);
* its subnets are in at least two Availability Zones; its security group allows TCP
  2223-2225 (the default rules);
* a crypto user named ``kmsuser`` exists — you give KMS its password, and KMS logs in as
  it (keep it out of other sessions);
* you give KMS the cluster's trust anchor (the content of ``customerCA.crt``).

Limits: symmetric encryption keys only (no asymmetric, HMAC, imported key material or
multi-Region keys). The simulated KMS does not implement custom key stores;
:func:`custom_key_store_readiness` checks the requirements it can see on the lab cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labsupport import aws
from labsupport.client.config import trust_anchor_path
from labsupport.client.users import Role

#: The crypto user KMS logs in as; the name is fixed by KMS.
KMS_USER = "kmsuser"


@dataclass(frozen=True)
class Requirement:
    """One custom-key-store requirement and whether the cluster meets it."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class KeyStoreReadiness:
    """The requirements :func:`custom_key_store_readiness` checked, for one cluster."""

    cluster_id: str
    requirements: tuple[Requirement, ...]

    @property
    def ok(self) -> bool:
        """True when every checked requirement is met."""
        return all(r.ok for r in self.requirements)

    def __str__(self) -> str:
        width = max(len(r.name) for r in self.requirements)
        lines = [f"{'✔' if r.ok else '✘'} {r.name:<{width}}  {r.detail}" for r in self.requirements]
        verdict = "meets" if self.ok else "does NOT meet"
        return "\n".join([*lines, f"→ {self.cluster_id} {verdict} these key store requirements"])


def custom_key_store_readiness(client: Any, cloudhsm: Any = None) -> KeyStoreReadiness:
    """Check the lab cluster of a connected ``client`` against KMS's key store requirements.

    Reads the cluster through the control plane (``describe_clusters``: state, HSMs and
    their Availability Zones, subnets), the users through the Client SDK (``user list``)
    and the client's trust anchor file. ``cloudhsm`` is a boto3 ``cloudhsmv2`` client
    (default: the lab's, for the client's workspace).
    """
    cloudhsm = cloudhsm or aws.client("cloudhsmv2", workspace=client.workspace)
    clusters = cloudhsm.describe_clusters(Filters={"clusterIds": [client.cluster_id]})["Clusters"]
    cluster = clusters[0] if clusters else {"State": "DELETED", "Hsms": [], "SubnetMapping": {}}
    active = [h for h in cluster.get("Hsms", []) if h.get("State") == "ACTIVE"]
    zones = sorted({h["AvailabilityZone"] for h in active})
    subnet_zones = sorted(cluster.get("SubnetMapping", {}))
    users = {u.username: u for u in client.users.list()}
    kmsuser = users.get(KMS_USER)
    config = getattr(client, "config", None)
    anchor = getattr(config, "hsm_ca_file", None) or trust_anchor_path(client.workspace)
    checks = (
        Requirement("cluster ACTIVE", cluster["State"] == "ACTIVE", f"state {cluster['State']}"),
        Requirement(
            "2+ ACTIVE HSMs in 2+ AZs",
            len(active) >= 2 and len(zones) >= 2,
            f"{len(active)} ACTIVE HSM(s) in {', '.join(zones) or 'no AZ'}",
        ),
        Requirement(
            "subnets in 2+ AZs",
            len(subnet_zones) >= 2,
            f"subnets in {', '.join(subnet_zones) or 'no AZ'}",
        ),
        Requirement(
            f"crypto user {KMS_USER!r}",
            kmsuser is not None and kmsuser.role is Role.CRYPTO_USER,
            "exists (crypto-user)"
            if kmsuser is not None and kmsuser.role is Role.CRYPTO_USER
            else "missing: an admin runs `user create --username kmsuser --role crypto-user`",
        ),
        Requirement(
            "trust anchor (customerCA.crt)",
            anchor.exists(),
            "installed on the client" if anchor.exists() else "not installed",
        ),
    )
    return KeyStoreReadiness(client.cluster_id, checks)
