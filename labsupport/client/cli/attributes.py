"""Key attributes as CloudHSM CLI names and prints them, and AWS's defaults per key type.

CLI attribute names are the kebab-case form of the PKCS#11 ``CKA_*`` names
(``wrap-with-trusted`` = ``CKA_WRAP_WITH_TRUSTED``). Source: the user guide's "CloudHSM
CLI key attributes" table (``cloudhsm_cli-key-attributes-table.html``) and the example
outputs of ``key generate-symmetric aes`` / ``generate-asymmetric-pair``.

**AWS's defaults differ from python-pkcs11's.** A key made with ``key generate-symmetric
aes`` has encrypt, decrypt, wrap and unwrap **false** and sign/verify **true** unless
``--attributes`` sets them; a learner who forgets ``--attributes encrypt=true
decrypt=true`` gets a key that refuses to encrypt — on AWS as here.

Modelled without a public source (said again in the output of ``help``):

* RSA private keys default to ``decrypt=true`` (the documented RSA public key has
  ``encrypt=true``); EC and RSA private keys ``sign=false`` as the attribute table says;
* ``check-value`` of an RSA or EC key: the first 3 bytes of SHA-1 over the modulus or
  EC point (AWS prints the same value for both halves but does not say how it is made);
* ``key-length-bytes`` of an RSA key: twice the modulus length (the documented example
  prints 512 for a 2048-bit key); of an EC key: the EC point's length (public) or the
  PKCS#8 DER length (private), which match the documented secp224r1 example (57 / 122).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType
from pkcs11 import exceptions as ckr

from labsupport.client.keys import KeyClass
from labsupport.crypto.keygen import curve_name
from labsupport.errors import LabError

#: Maximum label length (SDK 5.11 and later; 126 before).
LABEL_MAX = 127

#: Curve names ``--curve`` accepts, and the named curve each one is.
CURVES = {
    "prime256v1": "secp256r1",
    "secp256r1": "secp256r1",
    "secp224r1": "secp224r1",
    "secp384r1": "secp384r1",
    "secp256k1": "secp256k1",
    "secp521r1": "secp521r1",
}

KEY_TYPE_NAMES = {
    KeyType.AES: "aes",
    KeyType.RSA: "rsa",
    KeyType.EC: "ec",
    KeyType.GENERIC_SECRET: "generic-secret",
    KeyType.DES3: "des3",
}


@dataclass(frozen=True)
class CliAttribute:
    """One attribute: its CLI name, PKCS#11 attribute, value kind and who may set it."""

    name: str
    attribute: Attribute
    kind: str = "bool"  # bool | text | hex
    at_create: bool = True
    settable: bool = True
    admin_only: bool = False


ATTRIBUTES: dict[str, CliAttribute] = {
    a.name: a
    for a in (
        CliAttribute(
            "always-sensitive", Attribute.ALWAYS_SENSITIVE, at_create=False, settable=False
        ),
        CliAttribute("check-value", Attribute.CHECK_VALUE, "hex", False, False),
        CliAttribute("class", Attribute.CLASS, "text", False, False),
        CliAttribute("curve", Attribute.EC_PARAMS, "text", False, False),
        CliAttribute("decrypt", Attribute.DECRYPT),
        CliAttribute("derive", Attribute.DERIVE),
        CliAttribute("destroyable", Attribute.DESTROYABLE),
        CliAttribute("ec-point", Attribute.EC_POINT, "hex", False, False),
        CliAttribute("encrypt", Attribute.ENCRYPT),
        CliAttribute("extractable", Attribute.EXTRACTABLE, settable=False),
        CliAttribute("id", Attribute.ID, "hex", settable=False),
        CliAttribute("key-length-bytes", Attribute.VALUE_LEN, "int", False, False),
        CliAttribute("key-type", Attribute.KEY_TYPE, "text", False, False),
        CliAttribute("label", Attribute.LABEL, "text"),
        CliAttribute("local", Attribute.LOCAL, at_create=False, settable=False),
        CliAttribute("modifiable", Attribute.MODIFIABLE),
        CliAttribute("modulus", Attribute.MODULUS, "hex", False, False),
        CliAttribute("modulus-size-bits", Attribute.MODULUS_BITS, "int", False, False),
        CliAttribute(
            "never-extractable", Attribute.NEVER_EXTRACTABLE, at_create=False, settable=False
        ),
        CliAttribute("private", Attribute.PRIVATE, settable=False),
        CliAttribute("public-exponent", Attribute.PUBLIC_EXPONENT, "hex", False, False),
        CliAttribute("sensitive", Attribute.SENSITIVE),
        CliAttribute("sign", Attribute.SIGN),
        CliAttribute("token", Attribute.TOKEN, at_create=False, settable=False),
        CliAttribute("trusted", Attribute.TRUSTED, at_create=False, admin_only=True),
        CliAttribute("unwrap", Attribute.UNWRAP),
        CliAttribute("verify", Attribute.VERIFY),
        CliAttribute("wrap", Attribute.WRAP),
        CliAttribute("wrap-with-trusted", Attribute.WRAP_WITH_TRUSTED),
    )
}

#: The order AWS prints attributes in (documented AES example), then type-specific ones.
ORDER = (
    "key-type",
    "label",
    "id",
    "check-value",
    "class",
    "encrypt",
    "decrypt",
    "token",
    "always-sensitive",
    "derive",
    "destroyable",
    "extractable",
    "local",
    "modifiable",
    "never-extractable",
    "private",
    "sensitive",
    "sign",
    "trusted",
    "unwrap",
    "verify",
    "wrap",
    "wrap-with-trusted",
    "key-length-bytes",
)

# Flags that only make sense for some classes (PKCS#11 rejects the others in a template).
NOT_FOR = {
    KeyClass.PUBLIC: {
        "decrypt",
        "sign",
        "unwrap",
        "sensitive",
        "extractable",
        "always-sensitive",
        "never-extractable",
        "wrap-with-trusted",
    },
    KeyClass.PRIVATE: {"encrypt", "verify", "wrap", "trusted"},
    KeyClass.SECRET: set(),
}

_COMMON = {"token": True, "private": True, "modifiable": True, "destroyable": True}
#: AWS's defaults for the halves of a key pair, EC and RSA alike but for RSA's
#: encrypt (public) and decrypt (private), which are true.
_PUBLIC_HALF = {**_COMMON, "encrypt": False, "verify": False, "wrap": False, "derive": False}
_PRIVATE_HALF = {
    **_COMMON,
    "decrypt": False,
    "sign": False,
    "unwrap": False,
    "derive": False,
    "sensitive": True,
    "extractable": True,
    "wrap-with-trusted": False,
}

#: AWS's defaults for keys the CLI generates (see the module docstring for sources).
DEFAULTS: dict[tuple[str, KeyClass], dict[str, bool]] = {
    ("aes", KeyClass.SECRET): {
        **_COMMON,
        "encrypt": False,
        "decrypt": False,
        "sign": True,
        "verify": True,
        "wrap": False,
        "unwrap": False,
        "derive": False,
        "sensitive": True,
        "extractable": True,
        "wrap-with-trusted": False,
    },
    ("rsa", KeyClass.PUBLIC): {**_PUBLIC_HALF, "encrypt": True},
    # modelled: mirrors the documented public key's encrypt=true
    ("rsa", KeyClass.PRIVATE): {**_PRIVATE_HALF, "decrypt": True},
    ("ec", KeyClass.PUBLIC): dict(_PUBLIC_HALF),
    ("ec", KeyClass.PRIVATE): dict(_PRIVATE_HALF),
}
# generic-secret: the user guide gives no example output; modelled on AES.
DEFAULTS[("generic-secret", KeyClass.SECRET)] = dict(DEFAULTS[("aes", KeyClass.SECRET)])


class BadAttribute(LabError):
    """An attribute name or value the CLI does not accept."""


def parse_bool(name: str, text: str) -> bool:
    """``true``/``false`` (any case; also 1/0) → bool, else an error naming the attribute."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadAttribute(
        f"Invalid value {text!r} for attribute {name}: expected true or false.",
        f"Write {name}=true or {name}=false.",
    )


def parse_value(attr: CliAttribute, text: str) -> Any:
    """The PKCS#11 value of ``text`` for ``attr``."""
    if attr.kind == "bool":
        return parse_bool(attr.name, text)
    if attr.name == "label":
        check_label(text)
        return text
    if attr.name == "id":
        if text.lower().startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                raise BadAttribute(
                    f"Invalid id {text!r}: not hexadecimal.", "Write id=0x0102… or id=text."
                ) from None
        return text.encode()
    return text


def check_label(label: str) -> str:
    """Refuse labels longer than 127 characters (CloudHSM's limit since SDK 5.11)."""
    if len(label) > LABEL_MAX:
        raise BadAttribute(
            f"The label is {len(label)} characters long; CloudHSM allows at most {LABEL_MAX}.",
            "Choose a shorter label.",
        )
    return label


def lookup(name: str) -> CliAttribute:
    """The attribute called ``name`` (CLI spelling), or an error listing the names."""
    attr = ATTRIBUTES.get(name)
    if attr is None:
        raise BadAttribute(
            f"Unknown key attribute {name!r}.",
            f"Attribute names are kebab-case CKA_ names: {', '.join(sorted(ATTRIBUTES))}.",
        )
    return attr


def creation_template(
    key_type: str, key_class: KeyClass, pairs: list[str] | None, token: bool
) -> dict[Attribute, Any]:
    """The PKCS#11 template for a CLI-generated key: AWS's defaults, then ``--attributes``."""
    values: dict[str, Any] = dict(DEFAULTS[(key_type, key_class)])
    values["token"] = token
    for text in pairs or []:
        name, sep, raw = text.partition("=")
        if not sep:
            raise BadAttribute(
                f"Bad attribute {text!r}: use KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE.",
                "For example --attributes encrypt=true decrypt=true.",
            )
        attr = lookup(name)
        if attr.admin_only:
            raise BadAttribute(f"Only an admin can set {name}.", f"Create the key without {name}.")
        if not attr.at_create or (name in NOT_FOR[key_class]):
            raise BadAttribute(
                f"Attribute {name} cannot be set when a {key_class.value} is created.",
                f"Settable at creation: {', '.join(settable_at_create(key_class))}.",
            )
        values[name] = parse_value(attr, raw)
    return {ATTRIBUTES[n].attribute: v for n, v in values.items()}


def settable_at_create(key_class: KeyClass) -> list[str]:
    """Attribute names ``--attributes`` accepts for a key of ``key_class``."""
    return sorted(
        n
        for n, a in ATTRIBUTES.items()
        if a.at_create and not a.admin_only and n not in NOT_FOR[key_class]
    )


# -- rendering -----------------------------------------------------------------------------


@functools.cache
def _ec_private_length(curve: str) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(getattr(ec, curve.upper())())
    return len(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _raw_point(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the X9.62 point; return the point."""
    data = bytes(value)
    if len(data) > 2 and data[0] == 0x04 and data[1] < 0x80 and data[1] == len(data) - 2:
        return data[2:]
    if len(data) > 3 and data[0] == 0x04 and data[1] == 0x81 and data[2] == len(data) - 3:
        return data[3:]
    return data


def _get(key: Any, attr: Attribute, default: Any = None) -> Any:
    try:
        return key[attr]
    except (ckr.AttributeTypeInvalid, ckr.AttributeSensitive):
        return default


def _hexs(value: bytes | None) -> str:
    return "0x" + bytes(value).hex() if value else ""


def render(key: Any, key_class: KeyClass, partner: Any = None) -> dict[str, Any]:
    """The ``attributes`` object CloudHSM CLI prints for ``key`` (all attributes, AWS order).

    ``partner`` is the other half of a key pair, if known: a private key shows the EC
    point / check value computed from its public half.
    """
    kt = key[Attribute.KEY_TYPE]
    type_name = KEY_TYPE_NAMES.get(kt, str(kt).lower())
    out: dict[str, Any] = {}
    flags = [n for n in ORDER if ATTRIBUTES.get(n) and ATTRIBUTES[n].kind == "bool"]
    wanted = [ATTRIBUTES[n].attribute for n in flags if n not in NOT_FOR[key_class]]
    try:
        values = key.get_attributes(wanted)
    except pkcs11.PKCS11Error:
        values = {a: _get(key, a) for a in wanted}
    for name in ORDER:
        if name == "key-type":
            out[name] = type_name
        elif name == "label":
            out[name] = key[Attribute.LABEL]
        elif name == "id":
            out[name] = _hexs(_get(key, Attribute.ID, b""))
        elif name == "check-value":
            out[name] = _check_value(key, key_class, kt, partner)
        elif name == "class":
            out[name] = key_class.value
        elif name == "key-length-bytes":
            out[name] = _length(key, key_class, kt, partner)
        elif name in NOT_FOR[key_class]:
            out[name] = name == "extractable"  # public keys: always extractable
        else:
            value = values.get(ATTRIBUTES[name].attribute)
            out[name] = bool(value) if value is not None else False
    if kt == KeyType.RSA:
        modulus = bytes(key[Attribute.MODULUS])
        out["public-exponent"] = _hexs(_get(key, Attribute.PUBLIC_EXPONENT, b"\x01\x00\x01"))
        out["modulus"] = _hexs(modulus)
        out["modulus-size-bits"] = len(modulus) * 8
    elif kt == KeyType.EC:
        point = _ec_point(key, key_class, partner)
        if point is not None:
            out["ec-point"] = _hexs(point)
        out["curve"] = curve_name(bytes(key[Attribute.EC_PARAMS]))
    return out


def _ec_point(key: Any, key_class: KeyClass, partner: Any) -> bytes | None:
    source = key if key_class is KeyClass.PUBLIC else partner
    if source is None:
        return None
    value = _get(source, Attribute.EC_POINT)
    return _raw_point(value) if value else None


def _check_value(key: Any, key_class: KeyClass, kt: Any, partner: Any) -> str:
    if key_class is KeyClass.SECRET:
        return _hexs(_get(key, Attribute.CHECK_VALUE, b""))
    if kt == KeyType.RSA:
        material = bytes(key[Attribute.MODULUS])
    else:
        material = _ec_point(key, key_class, partner) or b""
    if not material:
        return ""
    return _hexs(hashlib.sha1(material).digest()[:3])  # modelled (see module docstring)


def _length(key: Any, key_class: KeyClass, kt: Any, partner: Any) -> int:
    if key_class is KeyClass.SECRET:
        return int(_get(key, Attribute.VALUE_LEN, 0) or 0)
    if kt == KeyType.RSA:
        return 2 * len(bytes(key[Attribute.MODULUS]))  # modelled on the documented example
    curve = curve_name(bytes(key[Attribute.EC_PARAMS]))
    if key_class is KeyClass.PRIVATE:
        return _ec_private_length(curve) if curve in CURVES else 0
    point = _ec_point(key, key_class, partner)
    return len(point) if point else 0


__all__ = [
    "ATTRIBUTES",
    "CURVES",
    "DEFAULTS",
    "LABEL_MAX",
    "BadAttribute",
    "CliAttribute",
    "check_label",
    "creation_template",
    "lookup",
    "parse_value",
    "render",
]
