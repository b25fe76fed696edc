"""Read a key's CKA_* attributes and explain them in plain words, as a printable table.

``print(attribute_table(key))`` shows each attribute that matters for the key's class,
its value and what it means; ``attribute_table(key_a, key_b)`` puts keys side by side
(token vs session key, extractable vs not). Secret values are never read: an attribute
the HSM refuses to reveal shows as ``(sensitive)`` — which is the point.

:data:`CLOUDHSM_DEFAULTS` records the defaults the CloudHSM PKCS#11 library (Client SDK 5)
applies when a template leaves an attribute out, and where SoftHSM differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import AttributeSensitive, AttributeTypeInvalid, PKCS11Error

from labsupport.crypto.keygen import USAGE_ATTRIBUTES, curve_name

#: The attributes that hold a public key's material, per key type: what a copy of a public
#: key must take along (and what is safe to show of any key).
PUBLIC_MATERIAL: dict[KeyType, tuple[Attribute, ...]] = {
    KeyType.RSA: (Attribute.MODULUS, Attribute.PUBLIC_EXPONENT),
    KeyType.EC: (Attribute.EC_PARAMS, Attribute.EC_POINT),
    KeyType.EC_EDWARDS: (Attribute.EC_PARAMS, Attribute.EC_POINT),
}

#: The flags a copy of a key object keeps, per object class: its usage, CKA_PRIVATE,
#: CKA_SENSITIVE (not on public keys) and CKA_MODIFIABLE. Key sync between HSMs and
#: backups copy exactly these.
COPIED_FLAGS: dict[ObjectClass, tuple[Attribute, ...]] = {
    ObjectClass.SECRET_KEY: (
        *USAGE_ATTRIBUTES,
        Attribute.PRIVATE,
        Attribute.SENSITIVE,
        Attribute.MODIFIABLE,
    ),
    ObjectClass.PRIVATE_KEY: (
        Attribute.DECRYPT,
        Attribute.SIGN,
        Attribute.SIGN_RECOVER,
        Attribute.UNWRAP,
        Attribute.DERIVE,
        Attribute.PRIVATE,
        Attribute.SENSITIVE,
        Attribute.MODIFIABLE,
    ),
    ObjectClass.PUBLIC_KEY: (
        Attribute.ENCRYPT,
        Attribute.VERIFY,
        Attribute.VERIFY_RECOVER,
        Attribute.WRAP,
        Attribute.DERIVE,
        Attribute.PRIVATE,
        Attribute.MODIFIABLE,
    ),
}

# Plain-language meaning of each attribute shown in a table.
MEANINGS: dict[Attribute, str] = {
    Attribute.CLASS: "object class: secret, public or private key",
    Attribute.KEY_TYPE: "algorithm family (AES, RSA, EC, generic secret for HMAC)",
    Attribute.LABEL: "name you find the key by (need not be unique)",
    Attribute.ID: "identifier; both halves of a pair share it",
    Attribute.TOKEN: "true: stored in the HSM; false: session key, gone when the session ends",
    Attribute.PRIVATE: "true: visible only to a logged-in user",
    Attribute.SENSITIVE: "true: the key value can never be read out in plaintext",
    Attribute.EXTRACTABLE: "true: may leave the HSM wrapped (encrypted) by another key",
    Attribute.NEVER_EXTRACTABLE: "true: has never been extractable since it was created",
    Attribute.ALWAYS_SENSITIVE: "true: has been sensitive since it was created",
    Attribute.LOCAL: "true: generated inside this HSM (false when imported or unwrapped)",
    Attribute.KEY_GEN_MECHANISM: "mechanism that generated it",
    Attribute.MODIFIABLE: "true: attributes may be changed after creation",
    Attribute.DESTROYABLE: "true: the key can be deleted",
    Attribute.ENCRYPT: "may encrypt data",
    Attribute.DECRYPT: "may decrypt data",
    Attribute.SIGN: "may sign (or compute a MAC)",
    Attribute.VERIFY: "may verify signatures (or MACs)",
    Attribute.WRAP: "may wrap (encrypt) other keys for export",
    Attribute.UNWRAP: "may unwrap (import) wrapped keys into the HSM",
    Attribute.DERIVE: "may derive other keys (ECDH, KDF)",
    Attribute.TRUSTED: "trusted wrapping key (set by an admin)",
    Attribute.WRAP_WITH_TRUSTED: "true: may only be wrapped by a trusted key",
    Attribute.VALUE_LEN: "key length in bytes",
    Attribute.MODULUS_BITS: "RSA modulus size in bits",
    Attribute.PUBLIC_EXPONENT: "RSA public exponent",
    Attribute.EC_PARAMS: "the curve (DER-encoded OID)",
    Attribute.CHECK_VALUE: "key check value (KCV): fingerprint to compare copies",
    Attribute.VALUE: "the key material itself",
    Attribute.PRIVATE_EXPONENT: "RSA private exponent (the secret)",
}

# Which attributes a table shows for each object class, in order.
_COMMON = [Attribute.CLASS, Attribute.KEY_TYPE, Attribute.LABEL, Attribute.ID]
_STORAGE = [Attribute.TOKEN, Attribute.PRIVATE, Attribute.MODIFIABLE, Attribute.DESTROYABLE]
# CKA_ALWAYS_SENSITIVE is left out of the default rows: on the lab's cluster the HSMs that
# received a key by synchronization (an unwrap) report it false. Ask for it explicitly.
_SECRECY = [
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
]
ATTRIBUTES_BY_CLASS: dict[ObjectClass, list[Attribute]] = {
    ObjectClass.SECRET_KEY: [
        *_COMMON,
        Attribute.VALUE_LEN,
        *_STORAGE,
        *_SECRECY,
        *USAGE_ATTRIBUTES,
        Attribute.VALUE,
    ],
    ObjectClass.PRIVATE_KEY: [
        *_COMMON,
        *_STORAGE,
        *_SECRECY,
        Attribute.DECRYPT,
        Attribute.SIGN,
        Attribute.UNWRAP,
        Attribute.DERIVE,
        Attribute.PRIVATE_EXPONENT,
        Attribute.VALUE,
    ],
    ObjectClass.PUBLIC_KEY: [
        *_COMMON,
        Attribute.MODULUS_BITS,
        Attribute.PUBLIC_EXPONENT,
        Attribute.EC_PARAMS,
        *_STORAGE,
        Attribute.LOCAL,
        Attribute.ENCRYPT,
        Attribute.VERIFY,
        Attribute.WRAP,
        Attribute.TRUSTED,
    ],
}

# Attributes whose value is a secret: the table never reads them, only asks the HSM
# whether it would reveal them (it should say "sensitive").
SECRET_ATTRIBUTES = frozenset({Attribute.VALUE, Attribute.PRIVATE_EXPONENT})

# Attributes that exist for one key type only (EC params on EC keys, …).
_TYPE_SPECIFIC = {
    Attribute.MODULUS_BITS: pkcs11.KeyType.RSA,
    Attribute.PUBLIC_EXPONENT: pkcs11.KeyType.RSA,
    Attribute.PRIVATE_EXPONENT: pkcs11.KeyType.RSA,
    Attribute.EC_PARAMS: pkcs11.KeyType.EC,
}

SENSITIVE_MARK = "(sensitive)"
ABSENT_MARK = "—"


@dataclass(frozen=True)
class CloudHsmDefault:
    """The value CloudHSM gives ``attribute`` when a template leaves it out, and SoftHSM's."""

    attribute: Attribute
    cloudhsm: bool
    softhsm: bool


# CloudHSM: the Client SDK 5 PKCS#11 attribute tables (secret and private keys).
# SoftHSM 2.6.1: measured by measure_defaults() (generate a key with an empty template).
# The attributes a template may leave out, and which of them default to true on each
# (the others default to false).
_DEFAULTED = (
    "TOKEN PRIVATE SENSITIVE EXTRACTABLE ENCRYPT DECRYPT SIGN WRAP UNWRAP DERIVE "
    "MODIFIABLE DESTROYABLE"
).split()
_TRUE_ON_CLOUDHSM = set("PRIVATE SENSITIVE EXTRACTABLE MODIFIABLE DESTROYABLE".split())
_TRUE_ON_SOFTHSM = set("PRIVATE ENCRYPT DECRYPT SIGN WRAP UNWRAP MODIFIABLE DESTROYABLE".split())
CLOUDHSM_DEFAULTS: list[CloudHsmDefault] = [
    CloudHsmDefault(Attribute[name], name in _TRUE_ON_CLOUDHSM, name in _TRUE_ON_SOFTHSM)
    for name in _DEFAULTED
]


def measure_defaults(session: pkcs11.Session) -> dict[Attribute, bool]:
    """Ask the token which defaults it applies: generate an AES session key from an
    empty template (python-pkcs11 normally fills one in) and read the attributes back.

    The key is destroyed afterwards. Use it on any PKCS#11 module to compare vendors.
    """
    from pkcs11.constants import DEFAULT

    wanted = [d.attribute for d in CLOUDHSM_DEFAULTS]
    template = {attr: DEFAULT for attr in wanted}
    template[Attribute.TOKEN] = False  # never leave a probe key behind
    key = session.generate_key(pkcs11.KeyType.AES, 128, template=template)
    try:
        return {attr: bool(key[attr]) for attr in wanted}
    finally:
        key.destroy()


def attribute_name(attr: Attribute) -> str:
    """The PKCS#11 name of an attribute, e.g. ``CKA_EXTRACTABLE``."""
    return f"CKA_{attr.name}"


def format_value(attr: Attribute, value: Any) -> str:
    """Render an attribute value for a table (enum names, hex ids, sizes of blobs)."""
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "name") and not isinstance(value, str | bytes):
        return str(value.name)
    if isinstance(value, bytes):
        if attr is Attribute.ID:
            return value.hex() or "(empty)"
        if attr is Attribute.PUBLIC_EXPONENT:
            return str(int.from_bytes(value, "big"))
        if attr is Attribute.EC_PARAMS:
            return curve_name(value)
        return f"<{len(value)} bytes>"
    if attr is Attribute.LABEL:
        return repr(value)
    return str(value)


def read_attribute(key: pkcs11.Object, attr: Attribute) -> str:
    """One attribute of ``key`` as display text: its value, ``(sensitive)`` or ``—``."""
    try:
        value = key[attr]
    except AttributeSensitive:
        return SENSITIVE_MARK
    except AttributeTypeInvalid:
        return ABSENT_MARK
    except PKCS11Error:
        return ABSENT_MARK
    if attr in SECRET_ATTRIBUTES:  # readable only if the key is NOT sensitive: say so
        return f"READABLE ({len(value)} bytes)"
    return format_value(attr, value)


@dataclass(frozen=True)
class AttributeRow:
    """One table row: attribute name, one value per key, and its meaning."""

    attribute: Attribute
    values: tuple[str, ...]
    meaning: str

    @property
    def name(self) -> str:
        """``CKA_…`` name of the attribute."""
        return attribute_name(self.attribute)


@dataclass(frozen=True)
class AttributeTable:
    """Attributes of one or more keys; ``print()`` it, or use ``.rows`` / ``.as_dict()``."""

    headers: tuple[str, ...]
    rows: tuple[AttributeRow, ...]

    def as_dict(self, column: int = 0) -> dict[str, str]:
        """``{"CKA_…": value}`` for the key in ``column`` (0 = first key)."""
        return {row.name: row.values[column] for row in self.rows}

    def value(self, attr: Attribute, column: int = 0) -> str:
        """Display value of ``attr`` for the key in ``column``."""
        for row in self.rows:
            if row.attribute is attr:
                return row.values[column]
        raise KeyError(attribute_name(attr))

    def __str__(self) -> str:
        widths = [max(len("attribute"), *(len(r.name) for r in self.rows))]
        for i, head in enumerate(self.headers):
            widths.append(max(len(head), *(len(r.values[i]) for r in self.rows)))
        header = ["attribute", *self.headers, "meaning"]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True))]
        lines[0] = lines[0].rstrip()
        lines.append("  ".join("-" * w for w in widths) + "  -------")
        for row in self.rows:
            cells = [row.name, *row.values]
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
                + "  "
                + row.meaning
            )
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython display
        p.text(str(self))


def _column_name(key: pkcs11.Object) -> str:
    label = read_attribute(key, Attribute.LABEL).strip("'")
    return label or f"{type(key).__name__}"


def attribute_table(
    *keys: pkcs11.Object,
    attributes: Sequence[Attribute] | None = None,
    headers: Sequence[str] | None = None,
) -> AttributeTable:
    """Read the attributes of ``keys`` (all of one object class) into a table.

    ``attributes`` restricts the rows (default: those that matter for the class);
    ``headers`` names the columns (default: the key labels). Rows that apply to none of
    the keys (EC params on an RSA key) are left out.
    """
    if not keys:
        raise ValueError("attribute_table needs at least one key")
    classes = {key[Attribute.CLASS] for key in keys}
    if attributes is None:
        if len(classes) > 1:
            raise ValueError("keys of different classes: pass attributes=[...] to choose the rows")
        attributes = ATTRIBUTES_BY_CLASS[next(iter(classes))]
    key_types = {key[Attribute.KEY_TYPE] for key in keys}
    rows = []
    for attr in attributes:
        needed = _TYPE_SPECIFIC.get(attr)
        if needed is not None and needed not in key_types:
            continue
        values = tuple(read_attribute(key, attr) for key in keys)
        rows.append(AttributeRow(attr, values, MEANINGS.get(attr, "")))
    names = tuple(headers) if headers else tuple(_column_name(k) for k in keys)
    if len(names) != len(keys):
        raise ValueError("give one header per key")
    return AttributeTable(names, tuple(rows))


def key_summary(key: pkcs11.Key) -> str:
    """One line about a key: label, class, algorithm and size, token/session, exportability.

    Example: ``'code-signing'  private  EC P-256  token  sensitive, non-extractable``.
    """
    attrs = key.get_attributes(
        [Attribute.LABEL, Attribute.CLASS, Attribute.KEY_TYPE, Attribute.TOKEN]
    )
    object_class = attrs[Attribute.CLASS]
    key_type = attrs[Attribute.KEY_TYPE]
    if key_type is pkcs11.KeyType.EC:
        curve = curve_name(key[Attribute.EC_PARAMS])
        size = {"secp256r1": "P-256", "secp384r1": "P-384"}.get(curve, curve)
    elif key_type is pkcs11.KeyType.RSA:
        size = f"{len(key[Attribute.MODULUS]) * 8}"
    else:  # SoftHSM 2.6 records no length (0) on unwrapped copies
        size = f"{key[Attribute.VALUE_LEN] * 8}" if key[Attribute.VALUE_LEN] else "?"
    kind = object_class.name.split("_")[0].lower()
    where = "token" if attrs[Attribute.TOKEN] else "session"
    algorithm = f"{key_type.name} {size}"
    text = f"{attrs[Attribute.LABEL]!r:<16} {kind:<7} {algorithm:<18} {where:<7}"
    if object_class is not ObjectClass.PUBLIC_KEY:
        flags = key.get_attributes([Attribute.SENSITIVE, Attribute.EXTRACTABLE])
        text += (" sensitive" if flags[Attribute.SENSITIVE] else " NOT sensitive") + (
            ", extractable" if flags[Attribute.EXTRACTABLE] else ", non-extractable"
        )
    return text.rstrip()


def defaults_table(session: pkcs11.Session | None = None) -> str:
    """CloudHSM's default for each attribute a template may omit, next to SoftHSM's.

    With ``session``, the SoftHSM column is measured live on that token
    (:func:`measure_defaults`); otherwise the values recorded for SoftHSM 2.6.1 are shown.
    A ``<-`` marks the attributes where the two disagree.
    """
    measured = measure_defaults(session) if session is not None else None
    rows = [("attribute", "CloudHSM", "this token" if measured else "SoftHSM 2.6", "")]
    for d in CLOUDHSM_DEFAULTS:
        other = measured[d.attribute] if measured else d.softhsm
        rows.append(
            (
                attribute_name(d.attribute),
                str(d.cloudhsm),
                str(other),
                "<- differs" if other != d.cloudhsm else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        ("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]).rstrip()
        for r in rows
    )
