"""PKCS#11 recipes on any python-pkcs11 ``Session``: key generation and crypto operations.

Everything works on any python-pkcs11 ``Session`` (a SoftHSM token, the lab's simulated
CloudHSM cluster, or a real CloudHSM). This package sits *low* (layer 2, beside ``hsm/``):
it imports only python-pkcs11, ``cryptography`` and :mod:`labsupport.errors`, so the
control plane, the client, KMS and BYOK all use these recipes instead of their own
copies. Lesson 04 teaches with them. Modules, by topic:

* :mod:`~labsupport.crypto.keygen` — AES, HMAC, RSA-2048/3072, EC P-256/P-384 keys with
  CloudHSM-like templates; token vs session keys; find by label or id; delete.
* :mod:`~labsupport.crypto.attributes` — CKA_* attributes as a printable, explained table.
* :mod:`~labsupport.crypto.ciphers` — AES-GCM with an HSM-generated IV; RSA-OAEP.
* :mod:`~labsupport.crypto.signatures` — RSA-PSS, RSA PKCS#1 v1.5, ECDSA (DER).
* :mod:`~labsupport.crypto.mac` — HMAC-SHA256.
* :mod:`~labsupport.crypto.hashes` — one table of hash ↔ PKCS#11 mechanisms.
* :mod:`~labsupport.crypto.oaep` — the OAEP scheme and which hashes the token accepts.
* :mod:`~labsupport.crypto.wrapping` — AES key wrap (RFC 3394/5649), RSA-OAEP wrap, and
  the RSA-AES key wrap (in and outside the HSM).
* :mod:`~labsupport.crypto.kcv` — key check values (CloudHSM's AES-ECB, and CMAC).
* :mod:`~labsupport.crypto.x509` — token keys as ``cryptography`` keys (certificates,
  CSRs signed in the token).
* :mod:`~labsupport.crypto.interop` — public keys to ``cryptography``; verify outside.
* :mod:`~labsupport.crypto.usecases` — code signing, a CA in the HSM, ``openssl verify``.
* :mod:`~labsupport.crypto.throughput` — live ops/s measurements and a plot.
* :mod:`~labsupport.crypto.errors_help` — lesson 04's diagnosis of a PKCS#11 error.
"""

from labsupport.crypto.attributes import (
    attribute_table,
    defaults_table,
    key_summary,
    measure_defaults,
)
from labsupport.crypto.checks import (
    CryptoLabError,
    DecryptionFailed,
    GcmAuthenticationFailed,
    KeyCapabilityMissing,
    KeyNotExtractable,
    KeyNotFound,
    OaepHashUnsupported,
    WrongKeyType,
)
from labsupport.crypto.ciphers import (
    GcmCiphertext,
    OaepScheme,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    oaep_hashes,
    oaep_scheme,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
)
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.interop import (
    encrypt_outside,
    export_private_key,
    exportability,
    public_key_pem,
    to_cryptography,
    verify_outside,
)
from labsupport.crypto.keygen import (
    Curve,
    KeyPair,
    KeySpec,
    Usage,
    delete_key,
    find_key,
    find_key_pair,
    find_keys,
    generate_aes,
    generate_ec,
    generate_hmac_key,
    generate_key_pair,
    generate_rsa,
    generate_secret_key,
)
from labsupport.crypto.mac import hmac_sign, hmac_verify
from labsupport.crypto.signatures import SignatureScheme, sign, signing_plan, verify
from labsupport.crypto.wrapping import WrapMechanism, check_value, unwrap_key, wrap_key

__all__ = [
    "CryptoLabError",
    "Curve",
    "DecryptionFailed",
    "GcmAuthenticationFailed",
    "GcmCiphertext",
    "HashAlg",
    "KeyCapabilityMissing",
    "KeyNotExtractable",
    "KeyNotFound",
    "KeyPair",
    "KeySpec",
    "OaepHashUnsupported",
    "OaepScheme",
    "SignatureScheme",
    "Usage",
    "WrapMechanism",
    "WrongKeyType",
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "attribute_table",
    "check_value",
    "defaults_table",
    "delete_key",
    "encrypt_outside",
    "export_private_key",
    "exportability",
    "find_key",
    "find_key_pair",
    "find_keys",
    "generate_aes",
    "generate_ec",
    "generate_hmac_key",
    "generate_key_pair",
    "generate_rsa",
    "generate_secret_key",
    "hmac_sign",
    "hmac_verify",
    "key_summary",
    "measure_defaults",
    "oaep_hashes",
    "oaep_scheme",
    "public_key_pem",
    "rsa_oaep_decrypt",
    "rsa_oaep_encrypt",
    "sign",
    "signing_plan",
    "to_cryptography",
    "unwrap_key",
    "verify",
    "verify_outside",
    "wrap_key",
]
