"""Lesson 05 support: bring your own key (BYOK) into CloudHSM and into KMS.

Modules, by flow:

* :mod:`~labsupport.byok.material` — key material made *outside* an HSM with
  ``cryptography`` (AES bytes, RSA/EC private keys, PKCS#8), and the PEM file that
  plaintext import starts from.
* :mod:`~labsupport.byok.into_cloudhsm` — into CloudHSM: an RSA *import key* in the HSM,
  material wrapped outside with ``rsa-oaep`` (AES keys) or ``rsa-aes`` (private keys),
  ``C_UnwrapKey`` inside; the weaker plaintext import; round-trip proofs.
* :func:`oaep_hashes_for` — which RSA-OAEP hashes the token accepts for (un)wrapping
  (:func:`labsupport.crypto.oaep.oaep_hashes`, under lesson 05's name).
* key check values — CloudHSM's AES-ECB method, and CMAC (:mod:`labsupport.crypto.kcv`,
  re-exported here).
* :mod:`~labsupport.byok.into_kms` — into KMS from CloudHSM: GetParametersForImport, wrap
  in the HSM, ImportKeyMaterial — keep a copy of your KMS key material in your own HSM.
* :mod:`~labsupport.byok.keystore` — the KMS custom key store requirements, checked on
  the lab cluster.

Every function takes an ordinary python-pkcs11 session or key: the lab's simulated
cluster, a bare SoftHSM token, or a real CloudHSM.
"""

from labsupport.byok.into_cloudhsm import (
    Imported,
    ImportScheme,
    RoundTrip,
    UnwrapFailed,
    WrappedKey,
    create_import_key,
    import_pem_file,
    import_plaintext,
    round_trip,
    scheme_for,
    unwrap_into_hsm,
    wrap_for_import,
)
from labsupport.byok.into_kms import (
    ImportParameters,
    KmsCopy,
    copy_to_kms,
    decrypt_in_hsm,
    get_import_parameters,
    kms_algorithm_for,
    load_wrapping_key,
    wrap_in_hsm,
)
from labsupport.byok.keystore import (
    KMS_USER,
    KeyStoreReadiness,
    Requirement,
    custom_key_store_readiness,
)
from labsupport.byok.material import (
    ByokInputError,
    NotKeyMaterial,
    describe,
    new_aes_key,
    new_ec_key,
    new_rsa_key,
    pkcs8_der,
    read_pem_file,
    write_pem_file,
)
from labsupport.crypto.kcv import KcvMethod, KcvUnavailable, format_kcv, hsm_kcv, kcv
from labsupport.crypto.oaep import oaep_hashes as oaep_hashes_for

__all__ = [
    "KMS_USER",
    "ByokInputError",
    "ImportParameters",
    "ImportScheme",
    "Imported",
    "KcvMethod",
    "KcvUnavailable",
    "KeyStoreReadiness",
    "KmsCopy",
    "NotKeyMaterial",
    "Requirement",
    "RoundTrip",
    "UnwrapFailed",
    "WrappedKey",
    "copy_to_kms",
    "create_import_key",
    "custom_key_store_readiness",
    "decrypt_in_hsm",
    "describe",
    "format_kcv",
    "get_import_parameters",
    "hsm_kcv",
    "import_pem_file",
    "import_plaintext",
    "kcv",
    "kms_algorithm_for",
    "load_wrapping_key",
    "new_aes_key",
    "new_ec_key",
    "new_rsa_key",
    "oaep_hashes_for",
    "pkcs8_der",
    "read_pem_file",
    "round_trip",
    "scheme_for",
    "unwrap_into_hsm",
    "wrap_for_import",
    "wrap_in_hsm",
    "write_pem_file",
]
