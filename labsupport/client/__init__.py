"""Layer 4 — the Client SDK: configure, connect, users, key sync, load balancing.

This package plays the part of AWS CloudHSM Client SDK 5 (its PKCS#11 library and
CloudHSM CLI) for a cluster whose HSMs are SoftHSM tokens::

    from labsupport import client as chsm
    chsm.install_trust_anchor(ca_certificate_pem)   # customerCA.crt
    chsm.configure(cluster_id=cluster_id)           # configure-pkcs11 --cluster-id …
    cl = chsm.connect()
    cl.cli.run("cluster activate", password=admin_password)
    session = cl.login("alice:her-password")        # an ordinary python-pkcs11 Session
    cl.token.slot.get_mechanisms()                  # one PKCS#11 slot represents the cluster

See :mod:`labsupport.client.session` for how operations are routed to the HSMs and
where the simulation differs from a real cluster.
"""

from labsupport.client.balancer import Request, RequestLog
from labsupport.client.cli import CliResult, CloudHsmCli
from labsupport.client.client import (
    AVAILABILITY_MESSAGE,
    Client,
    ClusterSlot,
    ClusterToken,
    connect,
)
from labsupport.client.config import (
    ClientConfig,
    config_path,
    configure,
    install_trust_anchor,
    load_config,
    set_option,
    trust_anchor_path,
)
from labsupport.client.endpoints import ClusterView, HsmEndpoint, HsmState
from labsupport.client.errors import (
    ClientNotConfigured,
    ClusterNotActive,
    HsmUnreachable,
    KeyAvailabilityError,
    KeyNotExtractable,
    KeyPermissionError,
    LoginFailed,
    NoHsmAvailable,
    PinFormatError,
    SessionClosedError,
    SessionKeyLost,
    TrustAnchorError,
    UserError,
    UserLocked,
    WrongRole,
)
from labsupport.client.keys import KeyClass, KeyRecord, format_ref
from labsupport.client.session import ClusterKey, ClusterSession
from labsupport.client.sync import SyncReport
from labsupport.client.users import MAX_FAILED_LOGINS, Role, User

__all__ = [
    "AVAILABILITY_MESSAGE",
    "MAX_FAILED_LOGINS",
    "CliResult",
    "Client",
    "ClientConfig",
    "ClientNotConfigured",
    "CloudHsmCli",
    "ClusterKey",
    "ClusterNotActive",
    "ClusterSession",
    "ClusterSlot",
    "ClusterToken",
    "ClusterView",
    "HsmEndpoint",
    "HsmState",
    "HsmUnreachable",
    "KeyAvailabilityError",
    "KeyClass",
    "KeyNotExtractable",
    "KeyPermissionError",
    "KeyRecord",
    "LoginFailed",
    "NoHsmAvailable",
    "PinFormatError",
    "Request",
    "RequestLog",
    "Role",
    "SessionClosedError",
    "SessionKeyLost",
    "SyncReport",
    "TrustAnchorError",
    "User",
    "UserError",
    "UserLocked",
    "WrongRole",
    "config_path",
    "configure",
    "connect",
    "format_ref",
    "install_trust_anchor",
    "load_config",
    "set_option",
    "trust_anchor_path",
]
