"""Hash algorithms, with their names in PKCS#11, in ``cryptography`` and in OpenSSL.

One table (:data:`_TABLE`) holds every mechanism a hash goes with, so the signature
recipes, OAEP and the ``cryptography`` token-key adapters (:mod:`labsupport.crypto.x509`)
all read the same mapping.
"""

from __future__ import annotations

import enum
import hashlib
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from pkcs11 import Mechanism
from pkcs11.mechanisms import MGF


class _Row(NamedTuple):
    digest: Mechanism
    mgf: MGF
    hmac: Mechanism
    rsa_pkcs: Mechanism
    rsa_pss: Mechanism
    digest_info: str  # DER DigestInfo prefix (RFC 8017 §9.2 note 1), hex
    cryptography: type[hashes.HashAlgorithm]


_TABLE: dict[str, _Row] = {
    "sha1": _Row(
        Mechanism.SHA_1,
        MGF.SHA1,
        Mechanism.SHA_1_HMAC,
        Mechanism.SHA1_RSA_PKCS,
        Mechanism.SHA1_RSA_PKCS_PSS,
        "3021300906052b0e03021a05000414",
        hashes.SHA1,
    ),
    "sha224": _Row(
        Mechanism.SHA224,
        MGF.SHA224,
        Mechanism.SHA224_HMAC,
        Mechanism.SHA224_RSA_PKCS,
        Mechanism.SHA224_RSA_PKCS_PSS,
        "302d300d06096086480165030402040500041c",
        hashes.SHA224,
    ),
    "sha256": _Row(
        Mechanism.SHA256,
        MGF.SHA256,
        Mechanism.SHA256_HMAC,
        Mechanism.SHA256_RSA_PKCS,
        Mechanism.SHA256_RSA_PKCS_PSS,
        "3031300d060960864801650304020105000420",
        hashes.SHA256,
    ),
    "sha384": _Row(
        Mechanism.SHA384,
        MGF.SHA384,
        Mechanism.SHA384_HMAC,
        Mechanism.SHA384_RSA_PKCS,
        Mechanism.SHA384_RSA_PKCS_PSS,
        "3041300d060960864801650304020205000430",
        hashes.SHA384,
    ),
    "sha512": _Row(
        Mechanism.SHA512,
        MGF.SHA512,
        Mechanism.SHA512_HMAC,
        Mechanism.SHA512_RSA_PKCS,
        Mechanism.SHA512_RSA_PKCS_PSS,
        "3051300d060960864801650304020305000440",
        hashes.SHA512,
    ),
}


class HashAlg(enum.Enum):
    """A hash function: ``SHA1`` (legacy, OAEP only), ``SHA224``, ``SHA256``, ``SHA384``,
    ``SHA512``."""

    SHA1 = "sha1"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    @classmethod
    def of(cls, algorithm: hashes.HashAlgorithm) -> HashAlg:
        """The member for a ``cryptography`` hash object; ValueError for other hashes."""
        try:
            return cls(algorithm.name)
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(
                f"hash {algorithm.name} is not supported here; use one of {names}"
            ) from None

    @property
    def _row(self) -> _Row:
        return _TABLE[self.value]

    @property
    def mechanism(self) -> Mechanism:
        """The PKCS#11 digest mechanism (CKM_SHA256…), used inside OAEP/PSS parameters."""
        return self._row.digest

    @property
    def mgf(self) -> MGF:
        """The matching mask generation function (CKG_MGF1_SHA256…)."""
        return self._row.mgf

    @property
    def hmac_mechanism(self) -> Mechanism:
        """The HMAC mechanism with this hash (CKM_SHA256_HMAC…)."""
        return self._row.hmac

    @property
    def rsa_pkcs_mechanism(self) -> Mechanism:
        """Hash-and-sign RSA PKCS#1 v1.5 with this hash (CKM_SHA256_RSA_PKCS…)."""
        return self._row.rsa_pkcs

    @property
    def rsa_pss_mechanism(self) -> Mechanism:
        """Hash-and-sign RSA-PSS with this hash (CKM_SHA256_RSA_PKCS_PSS…)."""
        return self._row.rsa_pss

    @property
    def digest_size(self) -> int:
        """Output length in bytes (32 for SHA-256)."""
        return hashlib.new(self.value).digest_size

    @property
    def digest_info(self) -> bytes:
        """DER DigestInfo prefix that PKCS#1 v1.5 puts before the digest."""
        return bytes.fromhex(self._row.digest_info)

    @property
    def openssl_name(self) -> str:
        """Name on the OpenSSL command line (``-sha256``)."""
        return self.value

    def cryptography(self) -> hashes.HashAlgorithm:
        """The ``cryptography`` hash object (``hashes.SHA256()``…)."""
        return self._row.cryptography()

    def digest(self, data: bytes) -> bytes:
        """Hash ``data`` here, outside the HSM (what CloudHSM's Client SDK 5 does too)."""
        return hashlib.new(self.value, data).digest()
