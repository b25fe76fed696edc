"""Signatures made inside the HSM: RSA-PSS, RSA PKCS#1 v1.5 and ECDSA.

Who hashes? A mechanism such as CKM_SHA256_RSA_PKCS_PSS takes the whole message and lets
the PKCS#11 library hash it. CloudHSM's Client SDK 5 hashes *in the client library*
anyway and sends only the digest to the HSM, so nothing is lost by hashing yourself and
calling the "raw" mechanism (CKM_RSA_PKCS_PSS, CKM_RSA_PKCS, CKM_ECDSA) on the digest.
SoftHSM 2.6.1 has no CKM_ECDSA_SHA256 at all, so for ECDSA that is the only way there.
:func:`signing_plan` looks at the token's mechanism list at run time and says which
path a scheme takes; :func:`sign` and :func:`verify` follow it.

Encodings. PKCS#11 returns an ECDSA signature as raw ``r || s`` (two fixed-size
integers); X.509, OpenSSL, TLS and ``cryptography`` want the DER ``SEQUENCE {r, s}``.
:func:`sign` returns the DER form for ECDSA so the signature works everywhere;
:func:`ecdsa_raw_to_der` / :func:`ecdsa_der_to_raw` convert. RSA signatures are the same
bytes in every world.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pkcs11
from cryptography.hazmat.primitives.asymmetric import padding
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import SignatureInvalid, SignatureLenRange
from pkcs11.util.ec import decode_ecdsa_signature, encode_ecdsa_signature

from labsupport.crypto.checks import require_capability, require_key_type
from labsupport.crypto.hashes import HashAlg
from labsupport.crypto.keygen import Curve


class Family(enum.Enum):
    """Signature families: RSA PKCS#1 v1.5, RSA-PSS, ECDSA."""

    PKCS1V15 = "RSA PKCS#1 v1.5"
    PSS = "RSA-PSS"
    ECDSA = "ECDSA"


_DIGEST_MECHANISMS = {
    Family.PKCS1V15: Mechanism.RSA_PKCS,
    Family.PSS: Mechanism.RSA_PKCS_PSS,
    Family.ECDSA: Mechanism.ECDSA,
}


class SignatureScheme(enum.Enum):
    """A signature algorithm: family + hash. ``scheme.value`` is a readable name."""

    RSA_PKCS1V15_SHA256 = "RSA PKCS#1 v1.5 with SHA-256"
    RSA_PKCS1V15_SHA384 = "RSA PKCS#1 v1.5 with SHA-384"
    RSA_PSS_SHA256 = "RSA-PSS with SHA-256"
    RSA_PSS_SHA384 = "RSA-PSS with SHA-384"
    ECDSA_SHA256 = "ECDSA with SHA-256"
    ECDSA_SHA384 = "ECDSA with SHA-384"

    @property
    def family(self) -> Family:
        """PKCS1V15, PSS or ECDSA."""
        if self.name.startswith("RSA_PKCS1V15"):
            return Family.PKCS1V15
        return Family.PSS if self.name.startswith("RSA_PSS") else Family.ECDSA

    @property
    def hash(self) -> HashAlg:
        """The hash applied to the message."""
        return HashAlg.SHA384 if self.name.endswith("384") else HashAlg.SHA256

    @property
    def key_type(self) -> KeyType:
        """RSA for PKCS#1 v1.5 and PSS, EC for ECDSA."""
        return KeyType.EC if self.family is Family.ECDSA else KeyType.RSA

    @property
    def combined_mechanism(self) -> Mechanism:
        """The hash-and-sign mechanism (CKM_SHA256_RSA_PKCS_PSS, CKM_ECDSA_SHA256…)."""
        if self.family is Family.PKCS1V15:
            return self.hash.rsa_pkcs_mechanism
        if self.family is Family.PSS:
            return self.hash.rsa_pss_mechanism
        return Mechanism.ECDSA_SHA384 if self.hash is HashAlg.SHA384 else Mechanism.ECDSA_SHA256

    @property
    def digest_mechanism(self) -> Mechanism:
        """The sign-a-digest mechanism (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA)."""
        return _DIGEST_MECHANISMS[self.family]

    @property
    def pss_params(self) -> tuple[Mechanism, pkcs11.MGF, int] | None:
        """PSS parameters (hash, MGF1 hash, salt length = digest length), or None."""
        if self.family is not Family.PSS:
            return None
        return (self.hash.mechanism, self.hash.mgf, self.hash.digest_size)

    def cryptography_padding(self) -> padding.AsymmetricPadding | None:
        """The matching ``cryptography`` padding for RSA schemes (None for ECDSA)."""
        if self.family is Family.PKCS1V15:
            return padding.PKCS1v15()
        if self.family is Family.PSS:
            algorithm = self.hash.cryptography()
            return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=self.hash.digest_size)
        return None

    def openssl_options(self) -> list[str]:
        """Extra ``openssl dgst`` options to verify this scheme (PSS needs its parameters)."""
        if self.family is Family.PSS:
            return [
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                f"rsa_pss_saltlen:{self.hash.digest_size}",
            ]
        return []


@dataclass(frozen=True)
class SigningPlan:
    """How a scheme is carried out on a token: which mechanism, and who hashes."""

    scheme: SignatureScheme
    mechanism: Mechanism
    client_hashes: bool
    reason: str

    def __str__(self) -> str:
        where = "client hashes, HSM signs the digest" if self.client_hashes else "HSM hashes"
        return f"{self.scheme.value}: CKM_{self.mechanism.name} ({where}) — {self.reason}"


def token_mechanisms(session: pkcs11.Session) -> frozenset[Mechanism] | None:
    """The mechanisms the token behind ``session`` supports (``C_GetMechanismList``).

    On the lab's cluster client the slot is the one slot that represents the whole
    cluster, listing what every ACTIVE HSM supports. None when a session exposes no
    slot at all (then callers fall back to a trial call).
    """
    slot = getattr(session.token, "slot", None)
    if slot is None:
        return None
    return frozenset(m for m in slot.get_mechanisms() if isinstance(m, Mechanism))


_PROBED: dict[tuple[str, str, Mechanism], bool] = {}


def mechanism_supported(key: pkcs11.Key, mechanism: Mechanism, param: object = None) -> bool:
    """Does the token behind ``key`` support ``mechanism`` for signing/verifying?

    Reads the mechanism list when the session exposes it; otherwise tries the mechanism
    once on ``key`` (a token that lacks it answers CKR_MECHANISM_INVALID) and remembers
    the answer for this token model.
    """
    session = key.session
    listed = token_mechanisms(session)
    if listed is not None:
        return mechanism in listed
    token = session.token
    cache_key = (token.manufacturer_id, token.model, mechanism)
    if cache_key not in _PROBED:
        probe = bytes(32)
        try:
            if key[Attribute.CLASS] is ObjectClass.PRIVATE_KEY:
                key.sign(probe, mechanism=mechanism, mechanism_param=param)
            else:
                key.verify(probe, bytes(64), mechanism=mechanism, mechanism_param=param)
            _PROBED[cache_key] = True
        except pkcs11.exceptions.MechanismInvalid:
            _PROBED[cache_key] = False
        except pkcs11.PKCS11Error:
            _PROBED[cache_key] = True  # the mechanism started; the probe data was wrong
    return _PROBED[cache_key]


def signing_plan(
    target: pkcs11.Session | pkcs11.Key,
    scheme: SignatureScheme,
    *,
    client_hash: bool | None = None,
) -> SigningPlan:
    """Decide how ``scheme`` is signed on this token: which mechanism, who hashes.

    ``target`` is the signing (or verifying) key, or a session whose token lists its
    mechanisms. ``client_hash=None`` prefers the combined hash-and-sign mechanism when
    the token has it; ``True``/``False`` force one path (to compare them — the signatures
    verify the same).
    """
    if isinstance(target, pkcs11.types.Key):

        def supported(mechanism: Mechanism) -> bool:
            param = scheme.pss_params
            return mechanism_supported(target, mechanism, param)

    else:
        listed = token_mechanisms(target)
        if listed is None:
            raise ValueError(
                "this session does not list its mechanisms: pass the key instead, "
                "signing_plan(key, scheme), so the plan can be found by trying it"
            )

        def supported(mechanism: Mechanism) -> bool:
            return mechanism in listed

    has_combined = supported(scheme.combined_mechanism)
    if client_hash is None:
        client_hash = not has_combined
        reason = (
            f"token has CKM_{scheme.combined_mechanism.name}"
            if has_combined
            else f"token lacks CKM_{scheme.combined_mechanism.name}"
        )
    else:
        reason = "path chosen by the caller"
    mechanism = scheme.digest_mechanism if client_hash else scheme.combined_mechanism
    if not supported(mechanism):
        raise pkcs11.exceptions.MechanismInvalid(
            f"token supports neither CKM_{scheme.combined_mechanism.name} nor the path asked for"
        )
    return SigningPlan(scheme, mechanism, client_hash, reason)


def _to_be_signed(plan: SigningPlan, data: bytes) -> bytes:
    if not plan.client_hashes:
        return data
    digest = plan.scheme.hash.digest(data)
    if plan.scheme.family is Family.PKCS1V15:
        return plan.scheme.hash.digest_info + digest  # CKM_RSA_PKCS pads what it is given
    return digest


def sign(
    private_key: pkcs11.PrivateKey,
    data: bytes,
    scheme: SignatureScheme,
    *,
    client_hash: bool | None = None,
) -> bytes:
    """Sign ``data`` with a private key that stays in the HSM.

    Returns the signature in its interoperable form (DER for ECDSA). ``client_hash`` as
    in :func:`signing_plan`.
    """
    require_key_type(private_key, [scheme.key_type], scheme.value, ObjectClass.PRIVATE_KEY)
    require_capability(private_key, Attribute.SIGN, "sign")
    plan = signing_plan(private_key, scheme, client_hash=client_hash)
    raw = private_key.sign(
        _to_be_signed(plan, data), mechanism=plan.mechanism, mechanism_param=scheme.pss_params
    )
    return ecdsa_raw_to_der(raw) if scheme.family is Family.ECDSA else raw


def verify(
    public_key: pkcs11.PublicKey,
    data: bytes,
    signature: bytes,
    scheme: SignatureScheme,
    *,
    client_hash: bool | None = None,
) -> bool:
    """Verify a signature in the HSM with the public key; True if valid, else False.

    ECDSA signatures are expected in DER (as :func:`sign` returns them).
    """
    require_key_type(public_key, [scheme.key_type], scheme.value, ObjectClass.PUBLIC_KEY)
    require_capability(public_key, Attribute.VERIFY, "verify")
    plan = signing_plan(public_key, scheme, client_hash=client_hash)
    if scheme.family is Family.ECDSA:
        try:
            signature = ecdsa_der_to_raw(signature, _ec_field_bytes(public_key))
        except ValueError:
            return False
    try:
        return public_key.verify(
            _to_be_signed(plan, data),
            signature,
            mechanism=plan.mechanism,
            mechanism_param=scheme.pss_params,
        )
    except (SignatureInvalid, SignatureLenRange):
        return False


def _ec_field_bytes(public_key: pkcs11.PublicKey) -> int:
    return Curve.from_ec_params(public_key[Attribute.EC_PARAMS]).field_bytes


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """Convert a PKCS#11 ECDSA signature ``r || s`` into DER ``SEQUENCE {r, s}``."""
    if len(raw) % 2:
        raise ValueError("a raw ECDSA signature has an even length (r || s)")
    return encode_ecdsa_signature(raw)


def ecdsa_der_to_raw(der: bytes, field_bytes: int) -> bytes:
    """Convert a DER ECDSA signature into PKCS#11's ``r || s`` (each ``field_bytes`` long).

    python-pkcs11's ``decode_ecdsa_signature`` makes r and s as long as the longer of the
    two; a token wants each exactly as long as the curve's field, so both are padded.
    """
    try:
        raw = decode_ecdsa_signature(der)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a DER ECDSA signature: {exc}") from None
    half = len(raw) // 2
    if half > field_bytes:
        raise ValueError(f"r or s is longer than {field_bytes} bytes")
    return raw[:half].rjust(field_bytes, b"\0") + raw[half:].rjust(field_bytes, b"\0")
