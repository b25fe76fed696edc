"""Bring your own key into KMS — from your own HSM, so you keep a copy KMS cannot lose.

KMS keys with ``Origin=EXTERNAL`` hold material you import. KMS never gives it back, and
imported material can expire (``ValidTo``) or be deleted; after that the KMS key is
``PendingImport`` and only *the same* material revives it. So the material must live
somewhere safe, and the safest place is an HSM you control. The pattern:

1. generate an AES-256 key **in CloudHSM**, extractable (so its owner may wrap it);
2. ``GetParametersForImport``: KMS returns an RSA wrapping public key and an import
   token, valid 24 hours (:func:`get_import_parameters`);
3. load that public key into the HSM (:func:`load_wrapping_key`) and wrap the AES key
   **inside the HSM** with the algorithm you asked for (:func:`wrap_in_hsm`);
4. ``ImportKeyMaterial`` with the blob and the token, optionally with ``ValidTo``.

The plaintext key exists only inside HSMs — CloudHSM's and KMS's. :func:`copy_to_kms`
does steps 2 to 4 in one call; repeat it whenever the material must be imported again.

Which algorithm. ``RSAES_OAEP_SHA_256`` (or ``_SHA_1``) for a symmetric key;
``RSA_AES_KEY_WRAP_SHA_256`` (or ``_SHA_1``) for material larger than RSA-OAEP carries
(asymmetric or HMAC keys). ``RSAES_PKCS1_V1_5`` is refused. **Lab difference:** SoftHSM
2.6.1 does RSA-OAEP with SHA-1 only, so in the lab the HSM wraps with
``RSAES_OAEP_SHA_1`` / ``RSA_AES_KEY_WRAP_SHA_1`` (:func:`kms_algorithm_for` asks the
token); on CloudHSM use the SHA-256 variants. SoftHSM also lacks
``CKM_RSA_AES_KEY_WRAP``, so :func:`wrap_in_hsm` composes it: a temporary AES key made in
the HSM is wrapped with RSA-OAEP, and it wraps the target key with
``CKM_AES_KEY_WRAP_PAD``.

:func:`decrypt_in_hsm` opens a ciphertext made by the *simulated* KMS with the AES key in
the HSM — proof that both hold the same material. It works only because the lab's
ciphertext format is documented (:mod:`labsupport.kms.ciphertext`); AWS's is not. On AWS
the proof is that KMS accepts a reimport: it takes only the same material again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, Mechanism

from labsupport.byok.material import ByokInputError, choice
from labsupport.crypto.checks import require_capability
from labsupport.crypto.ciphers import GcmCiphertext, aes_gcm_decrypt
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.interop import import_public_key
from labsupport.crypto.keygen import Usage
from labsupport.crypto.oaep import OaepScheme, oaep_hashes, require_oaep_hash
from labsupport.crypto.wrapping import rsa_aes_wrap_in_hsm
from labsupport.kms import ciphertext as kms_ciphertext
from labsupport.kms.model import WrappingAlgorithm, WrappingKeySpec

_HASHES = {"SHA1": HashAlg.SHA1, "SHA256": HashAlg.SHA256}


def kms_algorithm_for(
    target: pkcs11.Session | pkcs11.Key, *, large_material: bool = False
) -> WrappingAlgorithm:
    """The KMS wrapping algorithm this token can produce: SHA-256 variants if it can, else SHA-1.

    ``large_material`` asks for the RSA-AES variant (needed for more than RSA-OAEP can
    carry; an AES-256 key fits in plain RSA-OAEP).
    """
    sha256 = HashAlg.SHA256 in oaep_hashes(target)
    if large_material:
        return (
            WrappingAlgorithm.RSA_AES_KEY_WRAP_SHA_256
            if sha256
            else WrappingAlgorithm.RSA_AES_KEY_WRAP_SHA_1
        )
    return WrappingAlgorithm.RSAES_OAEP_SHA_256 if sha256 else WrappingAlgorithm.RSAES_OAEP_SHA_1


@dataclass(frozen=True)
class ImportParameters:
    """GetParametersForImport's answer: the wrapping public key and the import token."""

    key_arn: str
    algorithm: WrappingAlgorithm
    key_spec: WrappingKeySpec
    public_key: bytes = field(repr=False)
    import_token: bytes = field(repr=False)
    valid_to: datetime

    def __str__(self) -> str:
        return (
            f"{self.key_spec.value} wrapping public key for {self.algorithm.value}, "
            f"import token valid to {self.valid_to:%Y-%m-%d %H:%M:%S} UTC"
        )


def get_import_parameters(
    kms: Any,
    key_id: str,
    algorithm: WrappingAlgorithm | str,
    key_spec: WrappingKeySpec | str = WrappingKeySpec.RSA_2048,
) -> ImportParameters:
    """Call ``kms.get_parameters_for_import``; its answer as :class:`ImportParameters`."""
    algorithm = choice(WrappingAlgorithm, algorithm, "KMS wrapping algorithm")
    key_spec = choice(WrappingKeySpec, key_spec, "KMS wrapping key spec")
    answer = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm.value, WrappingKeySpec=key_spec.value
    )
    valid_to = answer["ParametersValidTo"]
    if valid_to.tzinfo is None:
        valid_to = valid_to.replace(tzinfo=timezone.utc)
    return ImportParameters(
        key_arn=answer["KeyId"],
        algorithm=algorithm,
        key_spec=key_spec,
        public_key=answer["PublicKey"],
        import_token=answer["ImportToken"],
        valid_to=valid_to.astimezone(timezone.utc),
    )


def load_wrapping_key(
    session: pkcs11.Session,
    parameters: ImportParameters | bytes,
    label: str = "kms-wrapping-key",
) -> pkcs11.PublicKey:
    """Create KMS's wrapping public key in the HSM (``C_CreateObject``), allowed only to wrap.

    It is a token object so that every HSM of a cluster has it (the composed RSA-AES wrap
    needs it on the same HSM as its temporary AES key); delete it when done.
    """
    der = parameters.public_key if isinstance(parameters, ImportParameters) else parameters
    fix = "Pass the ImportParameters from get_import_parameters (or its public_key bytes)."
    try:
        public = serialization.load_der_public_key(bytes(der))
    except (ValueError, TypeError):
        raise ByokInputError("This is not KMS's wrapping public key (DER).", fix) from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise ByokInputError("KMS's wrapping public key is an RSA key; this one is not.", fix)
    return import_public_key(session, public, label, usage=Usage.WRAP, token=True)


def _hash_of(algorithm: WrappingAlgorithm) -> HashAlg:
    return _HASHES[algorithm.hash_name]


def wrap_in_hsm(
    wrapping_key: pkcs11.PublicKey, key: pkcs11.SecretKey, algorithm: WrappingAlgorithm | str
) -> bytes:
    """Wrap ``key`` for ImportKeyMaterial inside the HSM; returns ``EncryptedKeyMaterial``.

    ``wrapping_key`` comes from :func:`load_wrapping_key`; ``algorithm`` must be the one
    given to GetParametersForImport. ``key`` must be extractable and yours (only a key's
    owner may wrap it on CloudHSM).
    """
    algorithm = choice(WrappingAlgorithm, algorithm, "KMS wrapping algorithm")
    if algorithm is WrappingAlgorithm.RSAES_PKCS1_V1_5:
        raise ByokInputError(
            "KMS refuses RSAES_PKCS1_V1_5 (since 10 October 2023).",
            "Use an RSAES_OAEP or RSA_AES algorithm (kms_algorithm_for(session) picks one).",
        )
    require_capability(wrapping_key, Attribute.WRAP, "wrap other keys")
    require_oaep_hash(
        wrapping_key,
        _hash_of(algorithm),
        "Ask GetParametersForImport for the SHA-1 variant (kms_algorithm_for(session) picks "
        "it); on CloudHSM use the SHA-256 variants.",
    )
    if algorithm.is_rsa_aes:  # CKM_RSA_AES_KEY_WRAP, composed in the HSM
        return rsa_aes_wrap_in_hsm(wrapping_key, key, _hash_of(algorithm))
    oaep = OaepScheme(_hash_of(algorithm))
    return wrapping_key.wrap_key(
        key, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep.mechanism_param
    )


@dataclass(frozen=True)
class KmsCopy:
    """The result of :func:`copy_to_kms`: which KMS key now holds the HSM key's material."""

    key_arn: str
    algorithm: WrappingAlgorithm
    key_material_id: str
    wrapped_bytes: int
    valid_to: datetime | None

    def __str__(self) -> str:
        expiry = (
            f"expires {self.valid_to:%Y-%m-%d %H:%M:%S} UTC" if self.valid_to else "does not expire"
        )
        return (
            f"imported into {self.key_arn} with {self.algorithm.value} "
            f"({self.wrapped_bytes} bytes wrapped in the HSM); key material {expiry}"
        )


def copy_to_kms(
    kms: Any,
    key_id: str,
    key: pkcs11.SecretKey,
    *,
    algorithm: WrappingAlgorithm | str | None = None,
    key_spec: WrappingKeySpec | str = WrappingKeySpec.RSA_2048,
    valid_to: datetime | None = None,
) -> KmsCopy:
    """Import the AES-256 ``key`` from the HSM into the EXTERNAL KMS key ``key_id``.

    GetParametersForImport → wrapping key into the HSM → wrap in the HSM → delete the
    wrapping key object → ImportKeyMaterial. ``algorithm`` defaults to
    :func:`kms_algorithm_for` the key's token. ``valid_to`` (a datetime) makes the material
    expire then (``KEY_MATERIAL_EXPIRES``); None means ``KEY_MATERIAL_DOES_NOT_EXPIRE``.
    KMS's own errors (expired token, different material …) reach you unchanged.
    """
    algorithm = (
        choice(WrappingAlgorithm, algorithm, "KMS wrapping algorithm")
        if algorithm
        else kms_algorithm_for(key.session)
    )
    parameters = get_import_parameters(kms, key_id, algorithm, key_spec)
    wrapping = load_wrapping_key(key.session, parameters)
    try:
        blob = wrap_in_hsm(wrapping, key, algorithm)
    finally:
        wrapping.destroy()
    expiry: dict[str, Any] = (
        {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
        if valid_to is None
        else {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": valid_to}
    )
    answer = kms.import_key_material(
        KeyId=key_id,
        ImportToken=parameters.import_token,
        EncryptedKeyMaterial=blob,
        **expiry,
    )
    return KmsCopy(
        key_arn=answer["KeyId"],
        algorithm=algorithm,
        key_material_id=answer.get("KeyMaterialId", ""),
        wrapped_bytes=len(blob),
        valid_to=valid_to,
    )


def decrypt_in_hsm(
    key: pkcs11.SecretKey, ciphertext_blob: bytes, encryption_context: dict[str, str] | None = None
) -> bytes:
    """Decrypt a *simulated* KMS ciphertext with the AES key in the HSM (lab-only proof).

    The lab's KMS blob is ``version | key id | nonce | AES-256-GCM ciphertext+tag`` with
    the encryption context bound as AAD (:mod:`labsupport.kms.ciphertext`). AWS's real
    format is private, so this cannot be done against AWS.
    """
    parsed = kms_ciphertext.parse(ciphertext_blob)
    aad = (
        kms_ciphertext.AAD_DOMAIN
        + parsed.header
        + kms_ciphertext.canonical_context(encryption_context)
    )
    return aes_gcm_decrypt(key, GcmCiphertext(parsed.nonce, parsed.sealed, aad))
