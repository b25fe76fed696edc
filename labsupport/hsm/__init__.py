"""Layer 2 — the HSM backend: a PKCS#11 module (SoftHSMv2) and its tokens."""

from labsupport.hsm.module import find_module, find_softhsm_util, install_hint
from labsupport.hsm.tokens import TokenRecord, TokenStore, token_store

__all__ = [
    "TokenRecord",
    "TokenStore",
    "find_module",
    "find_softhsm_util",
    "install_hint",
    "token_store",
]
