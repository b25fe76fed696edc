"""Generate, find and delete keys inside the HSM, the way a CloudHSM crypto user does.

Every key here is created *inside* the token by ``C_GenerateKey`` / ``C_GenerateKeyPair``:
its secret never exists outside the HSM. The functions work on any python-pkcs11
``Session`` (a bare SoftHSM token, the lab's simulated cluster, or a real
``libcloudhsm_pkcs11.so``).

Templates. PKCS#11 leaves many attribute defaults to the vendor, and vendors differ:
CloudHSM makes a new key *extractable* unless told otherwise, SoftHSM makes it
*non-extractable*. So :func:`key_template` writes every security attribute explicitly,
with CloudHSM's defaults (``CKA_PRIVATE``, ``CKA_SENSITIVE`` and ``CKA_EXTRACTABLE`` true)
and nothing allowed that you did not ask for (``usage``). The result is the same key on
both — a habit worth keeping with any HSM.

Token or session key. ``token=True`` (the CloudHSM CLI's default) stores the key in the
HSM: it survives the session, and on a cluster the client copies it to every HSM.
``token=False`` (PKCS#11's own default) makes a *session key*: it lives on one HSM and
disappears when the session closes.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import MultipleObjectsReturned, NoSuchKey
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.crypto.checks import KeyNotFound


class Usage(enum.Flag):
    """What a key may be used for; each flag sets a pair of PKCS#11 attributes.

    ``ENCRYPT`` → CKA_ENCRYPT/CKA_DECRYPT, ``SIGN`` → CKA_SIGN/CKA_VERIFY,
    ``WRAP`` → CKA_WRAP/CKA_UNWRAP, ``DERIVE`` → CKA_DERIVE. On a key pair the public
    half gets the public operation (encrypt, verify, wrap) and the private half the
    private one (decrypt, sign, unwrap).
    """

    NONE = 0
    ENCRYPT = enum.auto()
    SIGN = enum.auto()
    WRAP = enum.auto()
    DERIVE = enum.auto()


class Curve(enum.Enum):
    """Elliptic curves CloudHSM calls secp256r1 / secp384r1 (NIST P-256 / P-384).

    The one place that maps a curve between its names, its PKCS#11 ``CKA_EC_PARAMS``
    and its ``cryptography`` class.
    """

    P256 = "secp256r1"
    P384 = "secp384r1"

    @property
    def bits(self) -> int:
        """Size of the curve in bits (256 or 384)."""
        return 256 if self is Curve.P256 else 384

    @property
    def field_bytes(self) -> int:
        """Length of one coordinate (and of ECDSA's r and s) in bytes."""
        return (self.bits + 7) // 8

    @property
    def ec_params(self) -> bytes:
        """The DER ``CKA_EC_PARAMS`` value (the curve's named OID)."""
        return encode_named_curve_parameters(self.value)

    def cryptography(self) -> ec.EllipticCurve:
        """The ``cryptography`` curve object (``ec.SECP256R1()``…)."""
        return ec.SECP256R1() if self is Curve.P256 else ec.SECP384R1()

    @classmethod
    def from_ec_params(cls, der: bytes) -> Curve:
        """The curve whose ``CKA_EC_PARAMS`` is ``der``; ValueError for other curves."""
        for curve in cls:
            if curve.ec_params == bytes(der):
                return curve
        raise ValueError(f"not a P-256 or P-384 curve ({curve_name(der)})")


def curve_name(ec_params: bytes) -> str:
    """The name of the curve a ``CKA_EC_PARAMS`` value names (``'secp256r1'``…), for display."""
    for name in ("secp256r1", "secp384r1", "secp521r1", "secp256k1", "secp224r1"):
        if encode_named_curve_parameters(name) == bytes(ec_params):
            return name
    return f"<{len(ec_params)} bytes>"


class KeySpec(enum.Enum):
    """The key kinds lesson 04 generates: (key type, size in bits, curve, default usage)."""

    AES_128 = (KeyType.AES, 128, None, Usage.ENCRYPT)
    AES_256 = (KeyType.AES, 256, None, Usage.ENCRYPT)
    HMAC_256 = (KeyType.GENERIC_SECRET, 256, None, Usage.SIGN)
    RSA_2048 = (KeyType.RSA, 2048, None, Usage.SIGN)
    RSA_3072 = (KeyType.RSA, 3072, None, Usage.SIGN)
    EC_P256 = (KeyType.EC, 256, Curve.P256, Usage.SIGN)
    EC_P384 = (KeyType.EC, 384, Curve.P384, Usage.SIGN)

    @property
    def key_type(self) -> KeyType:
        """The PKCS#11 key type (CKK_AES, CKK_RSA, CKK_EC, CKK_GENERIC_SECRET)."""
        return self.value[0]

    @property
    def bits(self) -> int:
        """Key size in bits (AES/HMAC key length, RSA modulus, EC curve size)."""
        return self.value[1]

    @property
    def curve(self) -> Curve | None:
        """The EC curve, or None for non-EC keys."""
        return self.value[2]

    @property
    def default_usage(self) -> Usage:
        """Usage given when the caller names none: one purpose per key."""
        return self.value[3]

    @property
    def is_pair(self) -> bool:
        """True for asymmetric specs (RSA, EC), which generate a key pair."""
        return self.key_type in (KeyType.RSA, KeyType.EC)

    @property
    def mechanism(self) -> Mechanism:
        """The generation mechanism (CKM_AES_KEY_GEN, CKM_RSA_PKCS_KEY_PAIR_GEN, …)."""
        return _GENERATION_MECHANISMS[self.key_type]


_GENERATION_MECHANISMS = {
    KeyType.AES: Mechanism.AES_KEY_GEN,
    KeyType.GENERIC_SECRET: Mechanism.GENERIC_SECRET_KEY_GEN,
    KeyType.RSA: Mechanism.RSA_PKCS_KEY_PAIR_GEN,
    KeyType.EC: Mechanism.EC_KEY_PAIR_GEN,
}


@dataclass(frozen=True)
class KeyPair:
    """An asymmetric key pair generated in the HSM (both halves share label and id)."""

    public: pkcs11.PublicKey
    private: pkcs11.PrivateKey

    @property
    def label(self) -> str:
        """The label both halves carry (CKA_LABEL)."""
        return self.private.label

    @property
    def id(self) -> bytes:
        """The id both halves carry (CKA_ID), used to pair them up again."""
        return self.private.id

    def __iter__(self) -> Iterator[pkcs11.Key]:
        """Unpack as ``public, private = pair`` (python-pkcs11's own order)."""
        return iter((self.public, self.private))


#: The usage ("capability") attributes, in the order tables show them: the same set as
#: python-pkcs11's ``ALL_CAPABILITIES``. Every layer that copies or lists usage reads this.
USAGE_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute.ENCRYPT,
    Attribute.DECRYPT,
    Attribute.SIGN,
    Attribute.VERIFY,
    Attribute.WRAP,
    Attribute.UNWRAP,
    Attribute.DERIVE,
)

# Which attributes each Usage flag sets on each object class.
_USAGE_ATTRS: dict[ObjectClass, dict[Usage, tuple[Attribute, ...]]] = {
    ObjectClass.SECRET_KEY: {
        Usage.ENCRYPT: (Attribute.ENCRYPT, Attribute.DECRYPT),
        Usage.SIGN: (Attribute.SIGN, Attribute.VERIFY),
        Usage.WRAP: (Attribute.WRAP, Attribute.UNWRAP),
        Usage.DERIVE: (Attribute.DERIVE,),
    },
    ObjectClass.PUBLIC_KEY: {
        Usage.ENCRYPT: (Attribute.ENCRYPT,),
        Usage.SIGN: (Attribute.VERIFY,),
        Usage.WRAP: (Attribute.WRAP,),
        Usage.DERIVE: (),
    },
    ObjectClass.PRIVATE_KEY: {
        Usage.ENCRYPT: (Attribute.DECRYPT,),
        Usage.SIGN: (Attribute.SIGN,),
        Usage.WRAP: (Attribute.UNWRAP,),
        Usage.DERIVE: (Attribute.DERIVE,),
    },
}


def key_template(
    object_class: ObjectClass,
    *,
    label: str,
    usage: Usage,
    token: bool = True,
    extractable: bool = True,
    key_id: bytes = b"",
) -> dict[Attribute, Any]:
    """The full attribute template for one new key object, every attribute explicit.

    CloudHSM-like defaults: private (only a logged-in user sees it), sensitive (its value
    can't be read), extractable (its owner may *wrap* it — encrypted — e.g. for backup or
    BYOK); ``extractable=False`` forbids even that. Usage attributes are all false unless
    ``usage`` names them. Public keys are not private and have no sensitive value.
    """
    template: dict[Attribute, Any] = {
        Attribute.CLASS: object_class,
        Attribute.LABEL: label,
        Attribute.ID: key_id,
        Attribute.TOKEN: token,
    }
    if object_class is ObjectClass.PUBLIC_KEY:
        template[Attribute.PRIVATE] = False
    else:
        template.update(
            {
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: extractable,
            }
        )
    wanted = _USAGE_ATTRS[object_class]
    for flag, attrs in wanted.items():
        for attr in attrs:
            template[attr] = bool(usage & flag)
    return template


def new_key_id() -> bytes:
    """A fresh random 8-byte CKA_ID (shared by both halves of a pair)."""
    return secrets.token_bytes(8)


# python-pkcs11 takes these as keyword arguments (label=, id=, store=) and fills them into
# the template itself; layers that wrap a Session (the lab's cluster client) rely on that.
_KWARG_ATTRIBUTES = (Attribute.CLASS, Attribute.LABEL, Attribute.ID, Attribute.TOKEN)


def _generation_template(template: dict[Attribute, Any]) -> dict[Attribute, Any]:
    return {k: v for k, v in template.items() if k not in _KWARG_ATTRIBUTES}


def generate_secret_key(
    session: pkcs11.Session,
    spec: KeySpec,
    label: str,
    *,
    usage: Usage | None = None,
    token: bool = True,
    extractable: bool = True,
    key_id: bytes | None = None,
) -> pkcs11.SecretKey:
    """Generate a symmetric key (AES or HMAC generic secret) inside the HSM.

    ``usage`` defaults to the spec's single purpose (AES: encrypt/decrypt; HMAC: sign/verify).
    The full template is :func:`key_template`'s.
    """
    if spec.is_pair:
        raise ValueError(f"{spec.name} is a key-pair spec: use generate_key_pair()")
    key_id = new_key_id() if key_id is None else key_id
    template = key_template(
        ObjectClass.SECRET_KEY,
        label=label,
        usage=spec.default_usage if usage is None else usage,
        token=token,
        extractable=extractable,
        key_id=key_id,
    )
    return session.generate_key(
        spec.key_type,
        spec.bits,
        id=key_id,
        label=label,
        store=token,
        mechanism=spec.mechanism,
        template=_generation_template(template),
    )


def generate_key_pair(
    session: pkcs11.Session,
    spec: KeySpec,
    label: str,
    *,
    usage: Usage | None = None,
    token: bool = True,
    extractable: bool = True,
    key_id: bytes | None = None,
) -> KeyPair:
    """Generate an RSA or EC key pair inside the HSM; the private half never leaves it.

    Both halves get the same label and a fresh random id. ``usage`` defaults to signing.
    RSA uses the public exponent 65537.
    """
    if not spec.is_pair:
        raise ValueError(f"{spec.name} is a secret-key spec: use generate_secret_key()")
    usage = spec.default_usage if usage is None else usage
    key_id = new_key_id() if key_id is None else key_id
    common = {"label": label, "usage": usage, "token": token, "key_id": key_id}
    public = _generation_template(key_template(ObjectClass.PUBLIC_KEY, **common))
    private = _generation_template(
        key_template(ObjectClass.PRIVATE_KEY, extractable=extractable, **common)
    )
    if spec.key_type is KeyType.RSA:
        public[Attribute.MODULUS_BITS] = spec.bits
        public[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
    else:
        assert spec.curve is not None
        public[Attribute.EC_PARAMS] = spec.curve.ec_params
    pub, priv = session.generate_keypair(
        spec.key_type,
        spec.bits if spec.key_type is KeyType.RSA else None,
        id=key_id,
        label=label,
        store=token,
        mechanism=spec.mechanism,
        public_template=public,
        private_template=private,
    )
    return KeyPair(pub, priv)


def generate_aes(
    session: pkcs11.Session, label: str, bits: int = 256, **options: Any
) -> pkcs11.SecretKey:
    """Generate an AES key (128 or 256 bits) in the HSM; options as :func:`generate_secret_key`."""
    spec = {128: KeySpec.AES_128, 256: KeySpec.AES_256}.get(bits)
    if spec is None:
        raise ValueError(f"AES keys here are 128 or 256 bits, not {bits}")
    return generate_secret_key(session, spec, label, **options)


def generate_hmac_key(session: pkcs11.Session, label: str, **options: Any) -> pkcs11.SecretKey:
    """Generate a 256-bit generic-secret key for HMAC (CKM_GENERIC_SECRET_KEY_GEN)."""
    return generate_secret_key(session, KeySpec.HMAC_256, label, **options)


def generate_rsa(session: pkcs11.Session, label: str, bits: int = 2048, **options: Any) -> KeyPair:
    """Generate an RSA-2048 or RSA-3072 key pair; options as :func:`generate_key_pair`."""
    spec = {2048: KeySpec.RSA_2048, 3072: KeySpec.RSA_3072}.get(bits)
    if spec is None:
        raise ValueError(f"RSA keys here are 2048 or 3072 bits, not {bits}")
    return generate_key_pair(session, spec, label, **options)


def generate_ec(
    session: pkcs11.Session, label: str, curve: Curve | str = Curve.P256, **options: Any
) -> KeyPair:
    """Generate an EC key pair on P-256 or P-384 (``"secp256r1"``/``"secp384r1"`` accepted)."""
    curve = Curve(curve) if isinstance(curve, str) else curve
    spec = KeySpec.EC_P256 if curve is Curve.P256 else KeySpec.EC_P384
    return generate_key_pair(session, spec, label, **options)


# -- finding and deleting ---------------------------------------------------------------


def find_keys(
    session: pkcs11.Session,
    *,
    label: str | None = None,
    key_id: bytes | None = None,
    object_class: ObjectClass | None = None,
    key_type: KeyType | None = None,
) -> list[pkcs11.Key]:
    """All keys the logged-in user can see that match every given attribute.

    Like CloudHSM's ``key list --filter attr.label=…``: a key with no match is not an
    error here, just an empty list. Session keys of *other* sessions of this
    application are visible too; those of other applications are not.
    """
    query: dict[Attribute, Any] = {}
    if label is not None:
        query[Attribute.LABEL] = label
    if key_id is not None:
        query[Attribute.ID] = key_id
    if key_type is not None:
        query[Attribute.KEY_TYPE] = key_type
    classes = (
        [object_class]
        if object_class is not None
        else [ObjectClass.SECRET_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY]
    )
    found: list[pkcs11.Key] = []
    for cls in classes:
        found += list(session.get_objects({**query, Attribute.CLASS: cls}))
    return found


def find_key(
    session: pkcs11.Session,
    *,
    label: str | None = None,
    key_id: bytes | None = None,
    object_class: ObjectClass | None = None,
    key_type: KeyType | None = None,
) -> pkcs11.Key:
    """The one key matching the given attributes; raises :class:`KeyNotFound` otherwise.

    A key pair shares its label and id, so give ``object_class`` (PUBLIC_KEY or
    PRIVATE_KEY) to pick one half.
    """
    if label is None and key_id is None:
        raise ValueError("find_key needs a label or a key_id")
    try:
        found = find_keys(
            session, label=label, key_id=key_id, object_class=object_class, key_type=key_type
        )
    except (NoSuchKey, MultipleObjectsReturned):  # pragma: no cover - find_keys never raises these
        found = []
    what = " and ".join(
        f"{name}={value!r}"
        for name, value in (("label", label), ("id", key_id and key_id.hex()))
        if value is not None
    )
    if not found:
        raise KeyNotFound(
            f"No key with {what} is visible in this session.",
            "Check the spelling; a session key (token=False) disappears when the session that "
            "made it closes, and private keys are visible only after login.",
        )
    if len(found) > 1:
        kinds = ", ".join(sorted({k.object_class.name for k in found}))
        raise KeyNotFound(
            f"{len(found)} keys match {what} ({kinds}).",
            "Narrow the search: pass object_class=ObjectClass.PRIVATE_KEY (or PUBLIC_KEY) "
            "for one half of a pair, or give keys unique labels.",
        )
    return found[0]


def find_key_pair(session: pkcs11.Session, label: str) -> KeyPair:
    """Find both halves of the key pair called ``label`` (raises :class:`KeyNotFound`)."""
    private = find_key(session, label=label, object_class=ObjectClass.PRIVATE_KEY)
    public = find_key(session, label=label, key_id=private.id, object_class=ObjectClass.PUBLIC_KEY)
    return KeyPair(public, private)  # type: ignore[arg-type]


def delete_key(key: pkcs11.Key | KeyPair) -> None:
    """Destroy a key (or both halves of a pair) in the HSM. Its handle becomes invalid."""
    for part in key if isinstance(key, KeyPair) else (key,):
        part.destroy()
