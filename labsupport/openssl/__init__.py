"""OpenSSL with keys that stay in the cluster's HSMs (lesson 07).

* :mod:`labsupport.openssl.launcher` — ``cloudhsm-openssl`` / ``python -m labsupport
  openssl``: ``CLOUDHSM_PIN=<user>:<password>``, keys named ``cloudhsm:<label>``, the real
  ``openssl`` with the PKCS#11 engine, failover for ``s_server``;
* :mod:`labsupport.openssl.engine` — find OpenSSL 3, the PKCS#11 engine and OpenSC's spy;
* :mod:`labsupport.openssl.requests` — the request log: which HSM made each private-key
  operation.
"""

from labsupport.openssl.engine import (
    OpenSSLNotFound,
    engine_available,
    find_engine,
    find_openssl,
)
from labsupport.openssl.launcher import (
    ENV_PIN,
    KEY_SCHEME,
    KeyExportRefused,
    KeyNotVisible,
    Launcher,
    LauncherError,
    OutputWatcher,
    main,
)
from labsupport.openssl.requests import EngineRequest, read_requests, requests_path

__all__ = [
    "ENV_PIN",
    "KEY_SCHEME",
    "EngineRequest",
    "KeyExportRefused",
    "KeyNotVisible",
    "Launcher",
    "LauncherError",
    "OpenSSLNotFound",
    "OutputWatcher",
    "engine_available",
    "find_engine",
    "find_openssl",
    "main",
    "read_requests",
    "requests_path",
]
