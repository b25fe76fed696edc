"""Hash algorithms, with their names in PKCS#11, in ``cryptography`` and in OpenSSL."""

from __future__ import annotations

import enum
import hashlib

from cryptography.hazmat.primitives import hashes
from pkcs11 import Mechanism
from pkcs11.mechanisms import MGF

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): PKCS#1 v1.5 signs prefix || digest.
_DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


class HashAlg(enum.Enum):
    """A hash function: ``SHA1`` (legacy, OAEP only), ``SHA256``, ``SHA384``, ``SHA512``."""

    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    @property
    def mechanism(self) -> Mechanism:
        """The PKCS#11 digest mechanism (CKM_SHA256…), used inside OAEP/PSS parameters."""
        return {
            HashAlg.SHA1: Mechanism.SHA_1,
            HashAlg.SHA256: Mechanism.SHA256,
            HashAlg.SHA384: Mechanism.SHA384,
            HashAlg.SHA512: Mechanism.SHA512,
        }[self]

    @property
    def mgf(self) -> MGF:
        """The matching mask generation function (CKG_MGF1_SHA256…)."""
        return {
            HashAlg.SHA1: MGF.SHA1,
            HashAlg.SHA256: MGF.SHA256,
            HashAlg.SHA384: MGF.SHA384,
            HashAlg.SHA512: MGF.SHA512,
        }[self]

    @property
    def hmac_mechanism(self) -> Mechanism:
        """The HMAC mechanism with this hash (CKM_SHA256_HMAC…)."""
        return {
            HashAlg.SHA1: Mechanism.SHA_1_HMAC,
            HashAlg.SHA256: Mechanism.SHA256_HMAC,
            HashAlg.SHA384: Mechanism.SHA384_HMAC,
            HashAlg.SHA512: Mechanism.SHA512_HMAC,
        }[self]

    @property
    def digest_size(self) -> int:
        """Output length in bytes (32 for SHA-256)."""
        return hashlib.new(self.value).digest_size

    @property
    def digest_info(self) -> bytes:
        """DER DigestInfo prefix that PKCS#1 v1.5 puts before the digest."""
        return _DIGEST_INFO[self.value]

    @property
    def openssl_name(self) -> str:
        """Name on the OpenSSL command line (``-sha256``)."""
        return self.value

    def cryptography(self) -> hashes.HashAlgorithm:
        """The ``cryptography`` hash object (``hashes.SHA256()``…)."""
        return {
            HashAlg.SHA1: hashes.SHA1,
            HashAlg.SHA256: hashes.SHA256,
            HashAlg.SHA384: hashes.SHA384,
            HashAlg.SHA512: hashes.SHA512,
        }[self]()

    def digest(self, data: bytes) -> bytes:
        """Hash ``data`` here, outside the HSM (what CloudHSM's Client SDK 5 does too)."""
        return hashlib.new(self.value, data).digest()
