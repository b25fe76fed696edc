"""``key generate-* | list | delete | share | unshare | set-attribute | import pem | replicate``.

Rules (user guide): only crypto users manage keys; only the **owner** may delete, share,
unshare, wrap or change a key; users it is shared with may use it; ``key list`` shows the
keys a user owns or shares plus every public key, 10 at a time (``--max-items``) with a
``next_token`` for the next page (``--starting-token``). Labels have at most 127
characters. Keys the CLI generates get **AWS's default attributes** (see
:mod:`labsupport.client.cli.attributes`), not python-pkcs11's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.client.cli import backend
from labsupport.client.cli.attributes import (
    CURVES,
    KEY_TYPE_NAMES,
    NOT_FOR,
    BadAttribute,
    check_label,
    creation_template,
    lookup,
    parse_value,
    render,
)
from labsupport.client.cli.families.user import ROLE
from labsupport.client.cli.grammar import REGISTRY, Args, Flag, Kind, Need, command, positive_int
from labsupport.client.keys import KeyClass, parse_ref
from labsupport.client.users import Role, normalize_username
from labsupport.errors import LabError

REGISTRY.category("key", "Key management commands")
REGISTRY.category("key generate-symmetric", "Generate symmetric keys")
REGISTRY.category("key generate-asymmetric-pair", "Generate asymmetric key pairs")
REGISTRY.category("key import", "Import keys")

MAX_KEY_QUORUM = 8

FILTER = Flag(
    "--filter",
    "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in "
    "the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a matching key",
    kind=Kind.LIST,
)
REQUIRED_FILTER = Flag(FILTER.name, FILTER.help, required=True, kind=Kind.LIST)
APPROVAL = Flag("--approval", "Filepath of signed quorum token file to approve operation")
SESSION = Flag(
    "--session",
    "Creates a session key that exists only in the current session. The key cannot be "
    "recovered after the session ends",
    kind=Kind.SWITCH,
)
SHARE = Flag(
    "--share-crypto-users",
    "Space separated list of Crypto User usernames to share the key with",
    kind=Kind.LIST,
)


# -- filters --------------------------------------------------------------------------------


def _parse_filters(filters: list[str]) -> list[tuple[str, str]]:
    parsed = []
    for text in filters:
        name, sep, value = text.partition("=")
        if not sep or not (name == "key-reference" or name.startswith("attr.")):
            raise LabError(
                f"Invalid filter {text!r}.",
                "Use key-reference=0x… or attr.KEY_ATTRIBUTE_NAME=VALUE "
                "(e.g. attr.label=my-key attr.class=private-key).",
            )
        if name == "key-reference":
            try:
                parse_ref(value)
            except ValueError:
                raise LabError(
                    f"Invalid key reference {value!r}.", "Write key-reference=0x000000000000001f."
                ) from None
        else:
            lookup(name[5:])
        parsed.append((name, value))
    return parsed


def key_class(key: Any) -> KeyClass:
    """The :class:`KeyClass` of a cluster key."""
    return KeyClass.of(key[Attribute.CLASS])


def _value(key: Any, name: str) -> str:
    if name == "label":
        return str(key[Attribute.LABEL])
    if name == "class":
        return key_class(key).value
    if name == "key-type":
        return KEY_TYPE_NAMES.get(key[Attribute.KEY_TYPE], "")
    return str(render(key, key_class(key)).get(name, "")).lower()


def _matches(key: Any, parsed: list[tuple[str, str]]) -> bool:
    for name, value in parsed:
        if name == "key-reference":
            if key.ref != parse_ref(value):
                return False
        else:
            attr = name[5:]
            wanted = value if attr == "label" else value.lower()
            if _value(key, attr) != wanted:
                return False
    return True


def select(cli: Any, filters: list[str] | None) -> list[Any]:
    """The keys the logged-in crypto user can see that match every filter."""
    parsed = _parse_filters(filters or [])
    return [k for k in cli.session.list_keys() if _matches(k, parsed)]


def select_one(cli: Any, filters: list[str] | None, what: str = "key") -> Any:
    """Exactly one key, or an error saying how many matched and what to do."""
    keys = select(cli, filters)
    if not keys:
        raise LabError(
            f"No {what} matches the filter {' '.join(filters or [])!r} among the keys you own "
            "or that are shared with you.",
            "List your keys with `key list --verbose` and filter on key-reference=0x….",
        )
    if len(keys) > 1:
        refs = ", ".join(k.reference for k in keys[:5])
        raise LabError(
            f"{len(keys)} keys match the filter ({refs}…); it must select exactly one.",
            "Add filters (attr.class=private-key …) or use key-reference=0x….",
        )
    return keys[0]


def require_true(key: Any, name: str) -> None:
    """Refuse when the key's usage attribute ``name`` (wrap, unwrap, sign, verify) is false,
    as the HSM does; AWS's defaults leave most of them false."""
    if not key[lookup(name).attribute]:
        raise LabError(
            f"Key {key.reference} has {name}=false (AWS's default for keys the CLI generates), "
            f"so the HSM refuses to {name} with it.",
            f"key set-attribute --filter key-reference={key.reference} --name {name} --value "
            f"true (or create the key with --attributes {name}=true).",
        )


def require_type(key: Any, wanted: KeyType, mechanism: str) -> None:
    """Refuse a key of another type before the HSM is called: CloudHSM answers
    CKR_KEY_TYPE_INCONSISTENT, while SoftHSM 2.6 can crash on a mismatch (RSA-PSS with an
    EC key dies with SIGSEGV)."""
    if key[Attribute.KEY_TYPE] != wanted:
        raise LabError(
            f"Key {key.reference} is not an {wanted.name} key, so the HSM refuses {mechanism} "
            "with it (CKR_KEY_TYPE_INCONSISTENT).",
            f"Pick an {wanted.name} key (attr.key-type={wanted.name.lower()}).",
        )


def describe(key: Any, partner: Any = None) -> dict[str, Any]:
    """``{"key-reference", "key-info", "attributes"}`` — the CLI's verbose shape of a key."""
    shown = backend.key_info(key)
    shown["attributes"] = render(key, key_class(key), partner)
    return shown


def _partner(cli: Any, key: Any) -> Any:
    rec = backend.record(key)
    if rec is None or rec.pair is None:
        return None
    try:
        return cli.session.key_by_reference(rec.pair)
    except Exception:
        return None


# -- key list -------------------------------------------------------------------------------


@command(
    "key list",
    "List the keys the current user owns, shares, and all public keys in the HSM cluster",
    Need.ANY_USER,
    FILTER,
    Flag(
        "--max-items",
        "The total number of items to return in the command's output. If the "
        "total number of items available is more than the value specified, a next-token is "
        "provided in the command's output. [default: 10]",
        convert=positive_int,
    ),
    Flag(
        "--starting-token",
        "A token to specify where to start paginating. This is the "
        "next-token from a previously truncated response",
    ),
    Flag(
        "--verbose",
        "If included, prints all attributes and key information for each matched key",
        kind=Kind.SWITCH,
        short="-v",
    ),
)
def key_list(cli: Any, args: Args) -> dict[str, Any]:
    """Keys by reference, a page at a time (10 by default); admins see every key's label."""
    if cli.user.role is Role.ADMIN:
        return _admin_key_list(cli, args)
    keys = select(cli, args.filter)
    start, limit = _page(args, len(keys))
    page = keys[start : start + limit]
    matched = []
    for key in page:
        if args.verbose:
            matched.append(describe(key, _partner(cli, key)))
        else:
            matched.append(
                {"key-reference": key.reference, "attributes": {"label": key[Attribute.LABEL]}}
            )
    data: dict[str, Any] = {
        "matched_keys": matched,
        "total_key_count": len(keys),
        "returned_key_count": len(page),
    }
    if start + len(page) < len(keys):
        data["next_token"] = str(start + len(page))
    return data


def _page(args: Args, total: int) -> tuple[int, int]:
    limit = 10 if args.max_items is None else args.max_items
    try:
        start = int(args.starting_token) if args.starting_token is not None else 0
    except ValueError:
        start = -1
    if start < 0 or start > total:
        raise LabError(
            f"Invalid starting token {args.starting_token!r}.",
            "Pass the next_token value of the previous page.",
        )
    return start, limit


_ADMIN_FILTERS = {
    "attr.label": lambda rec: rec.label,
    "attr.class": lambda rec: rec.key_class.value,
    "attr.key-type": lambda rec: rec.key_type.lower().replace("_", "-"),
}


def _admin_key_list(cli: Any, args: Args) -> dict[str, Any]:
    """Admins list every key of the cluster (label only: --verbose has no effect for them).

    Modelled: the user guide lets admins run ``key list`` but shows no admin output; the
    lab lists all token keys by reference and label, filtered on label, class or type.
    """
    records = backend.all_records(cli.client)
    for name, value in _parse_filters(args.filter or []):
        if name == "key-reference":
            records = [r for r in records if r.ref == parse_ref(value)]
        elif name in _ADMIN_FILTERS:
            wanted = value if name == "attr.label" else value.lower()
            records = [r for r in records if _ADMIN_FILTERS[name](r) == wanted]
        else:
            raise LabError(
                f"An admin cannot filter on {name} (admins do not see key attributes).",
                "Filter on attr.label, attr.class, attr.key-type or key-reference.",
            )
    start, limit = _page(args, len(records))
    page = records[start : start + limit]
    data: dict[str, Any] = {
        "matched_keys": [
            {"key-reference": r.reference, "attributes": {"label": r.label}} for r in page
        ],
        "total_key_count": len(records),
        "returned_key_count": len(page),
    }
    if start + len(page) < len(records):
        data["next_token"] = str(start + len(page))
    return data


# -- generation -------------------------------------------------------------------------------


def _quorum(manage: int | None, use: int | None, shared: list[str]) -> None:
    users = 1 + len(shared)
    for flag, value in (("manage", manage), ("use", use)):
        if not value:
            continue
        if value > MAX_KEY_QUORUM or value > users:
            raise LabError(
                f"--{flag}-key-quorum-value {value} is too high: at most {MAX_KEY_QUORUM} and "
                f"no more than the users associated with the key (owner + shared = {users}).",
                "Share the key with more crypto users (--share-crypto-users) or lower the value.",
            )
        # Refused: on CloudHSM a key with a non-zero quorum value needs that many approvals
        # (quorum tokens signed by the key's owner and shared users, each with a registered
        # token-sign key) for every management (share, unshare, delete, set-attribute, wrap)
        # or usage operation; the lab's key records carry no per-key quorum, so it would be
        # a value nothing enforces.
        raise LabError(
            f"--{flag}-key-quorum-value {value}: the lab does not simulate key quorum. On "
            "CloudHSM each key-" + ("management" if flag == "manage" else "usage") + " "
            f"operation on this key would then need {value} approvals: a quorum token signed "
            "by the key's owner and shared crypto users who registered token-sign keys.",
            f"Generate the key without --{flag}-key-quorum-value (0, the default: no key "
            "quorum); lesson 06 shows quorum for admin operations.",
        )


def _share(key: Any, users: list[str] | None, session_key: bool) -> None:
    if users and session_key:
        raise LabError(
            "Session keys cannot be shared (they live in your session only).",
            "Drop --session to make a token key you can share.",
        )
    for name in users or []:
        key.share(normalize_username(name))


QUORUM_FLAGS = (
    Flag(
        "--manage-key-quorum-value",
        "The quorum value for key management operations",
        convert=positive_int,
    ),
    Flag(
        "--use-key-quorum-value", "The quorum value for key usage operations", convert=positive_int
    ),
)


def _symmetric(cli: Any, args: Args, type_name: str, key_type: KeyType, bits: int) -> Any:
    check_label(args.label)
    _quorum(args.manage_key_quorum_value, args.use_key_quorum_value, args.share_crypto_users or [])
    template = creation_template(type_name, KeyClass.SECRET, args.attributes, not args.session)
    template[Attribute.LABEL] = args.label
    key = cli.session.generate_key(
        key_type, bits, label=args.label, store=not args.session, template=template
    )
    _share(key, args.share_crypto_users, bool(args.session))
    return {"key": describe(key)}


@command(
    "key generate-symmetric aes",
    "Generate an AES key",
    Need.CRYPTO_USER,
    Flag("--label", "Label for the key", required=True),
    SESSION,
    Flag("--key-length-bytes", "Key length in bytes", required=True, choices=("16", "24", "32")),
    Flag(
        "--attributes",
        "Space separated list of key attributes to set for the generated AES "
        "key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE",
        kind=Kind.LIST,
    ),
    SHARE,
    *QUORUM_FLAGS,
)
def generate_aes(cli: Any, args: Args) -> dict[str, Any]:
    """AES key with AWS's defaults: encrypt/decrypt/wrap/unwrap false unless set."""
    return _symmetric(cli, args, "aes", KeyType.AES, int(args.key_length_bytes) * 8)


@command(
    "key generate-symmetric generic-secret",
    "Generate a generic secret key",
    Need.CRYPTO_USER,
    Flag("--label", "Label for the key", required=True),
    SESSION,
    Flag("--key-length-bytes", "Key length in bytes", required=True, convert=positive_int),
    Flag(
        "--attributes",
        "Space separated list of key attributes to set for the generated "
        "generic secret key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE",
        kind=Kind.LIST,
    ),
    SHARE,
    *QUORUM_FLAGS,
    modelled="default attributes as for AES (the user guide shows no example output)",
)
def generate_generic_secret(cli: Any, args: Args) -> dict[str, Any]:
    """Generic secret (HMAC) key of 1 to 800 bytes."""
    if not 1 <= args.key_length_bytes <= 800:
        raise LabError(
            f"--key-length-bytes {args.key_length_bytes} is out of range.",
            "A generic secret key is 1 to 800 bytes long (e.g. 32 for HMAC-SHA256).",
        )
    return _symmetric(
        cli, args, "generic-secret", KeyType.GENERIC_SECRET, args.key_length_bytes * 8
    )


PAIR_FLAGS = (
    Flag("--public-label", "Label for the public key", required=True),
    Flag("--private-label", "Label for the private key", required=True),
    Flag(
        "--session",
        "Creates a session key pair that exists only in the current session. "
        "The key cannot be recovered after the session ends",
        kind=Kind.SWITCH,
    ),
)
PAIR_OPTIONS = (
    Flag(
        "--public-attributes",
        "Space separated list of key attributes to set for the "
        "generated public key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE",
        kind=Kind.LIST,
    ),
    Flag(
        "--private-attributes",
        "Space separated list of key attributes to set for the "
        "generated private key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE",
        kind=Kind.LIST,
    ),
    SHARE,
    Flag(
        "--manage-private-key-quorum-value",
        "The quorum value for key management operations for the private key",
        convert=positive_int,
    ),
    Flag(
        "--use-private-key-quorum-value",
        "The quorum value for key usage operations for the private key",
        convert=positive_int,
    ),
)


def _pair_templates(args: Args, type_name: str) -> tuple[dict, dict]:
    check_label(args.public_label)
    check_label(args.private_label)
    _quorum(
        args.manage_private_key_quorum_value,
        args.use_private_key_quorum_value,
        args.share_crypto_users or [],
    )
    token = not args.session
    pub = creation_template(type_name, KeyClass.PUBLIC, args.public_attributes, token)
    priv = creation_template(type_name, KeyClass.PRIVATE, args.private_attributes, token)
    pub[Attribute.LABEL] = args.public_label
    priv[Attribute.LABEL] = args.private_label
    return pub, priv


def _pair_result(pub: Any, priv: Any) -> dict[str, Any]:
    return {"public_key": describe(pub), "private_key": describe(priv, partner=pub)}


def _exponent(text: str) -> int:
    value = int(text, 0)
    if value < 65537 or value % 2 == 0:
        raise ValueError("the public exponent must be an odd number of at least 65537")
    return value


def _modulus_bits(text: str) -> int:
    value = int(text, 0)
    if value < 2048 or value % 8:
        raise ValueError("the modulus must be at least 2048 bits (a multiple of 8)")
    return value


@command(
    "key generate-asymmetric-pair rsa",
    "Generate an RSA key pair",
    Need.CRYPTO_USER,
    *PAIR_FLAGS,
    Flag(
        "--modulus-size-bits",
        "Modulus size in bits used to generate the RSA key pair",
        required=True,
        convert=_modulus_bits,
    ),
    Flag(
        "--public-exponent",
        "Public exponent used to generate the RSA key pair",
        required=True,
        convert=_exponent,
    ),
    *PAIR_OPTIONS,
)
def generate_rsa(cli: Any, args: Args) -> dict[str, Any]:
    """RSA pair; AWS's defaults (public encrypt=true, verify=false; private sign=false)."""
    pub_t, priv_t = _pair_templates(args, "rsa")
    exponent = args.public_exponent
    pub_t[Attribute.PUBLIC_EXPONENT] = exponent.to_bytes((exponent.bit_length() + 7) // 8, "big")
    pub, priv = cli.session.generate_keypair(
        KeyType.RSA,
        args.modulus_size_bits,
        store=not args.session,
        public_template=pub_t,
        private_template=priv_t,
    )
    _share(priv, args.share_crypto_users, bool(args.session))
    return _pair_result(pub, priv)


@command(
    "key generate-asymmetric-pair ec",
    "Generate an Elliptic-Curve Cryptography (ECC) key pair",
    Need.CRYPTO_USER,
    *PAIR_FLAGS,
    Flag(
        "--curve",
        "Elliptic curve used to generate the key pair",
        required=True,
        choices=tuple(CURVES),
    ),
    *PAIR_OPTIONS,
)
def generate_ec(cli: Any, args: Args) -> dict[str, Any]:
    """EC pair on a named curve; private sign=false unless --private-attributes sign=true."""
    pub_t, priv_t = _pair_templates(args, "ec")
    params = cli.session.create_domain_parameters(
        KeyType.EC,
        {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVES[args.curve])},
        local=True,
    )
    pub, priv = params.generate_keypair(
        store=not args.session, public_template=pub_t, private_template=priv_t
    )
    _share(priv, args.share_crypto_users, bool(args.session))
    return _pair_result(pub, priv)


# -- delete, share, unshare, set-attribute ---------------------------------------------------


def _no_quorum(args: Args) -> None:
    if args.approval is not None:
        raise LabError(
            "Key quorum is not enabled for this key, so there is nothing to approve.",
            "Run the command without --approval.",
        )


@command(
    "key delete", "Delete a key from the HSM cluster", Need.CRYPTO_USER, REQUIRED_FILTER, APPROVAL
)
def key_delete(cli: Any, args: Args) -> dict[str, str]:
    """Delete one key from every HSM (owner only)."""
    _no_quorum(args)
    select_one(cli, args.filter).destroy()
    return {"message": "Key deleted successfully"}


SHARE_USER = (
    Flag("--username", "A username with which the key will be shared", required=True),
    ROLE,
)


def _sharing(verb: str, summary: str) -> None:
    """Register ``key share`` or ``key unshare`` (owner only; the user must exist)."""

    @command(f"key {verb}", summary, Need.CRYPTO_USER, REQUIRED_FILTER, *SHARE_USER, APPROVAL)
    def handler(cli: Any, args: Args) -> dict[str, str]:
        """Share (unshare) one key with a crypto user (owner only)."""
        _no_quorum(args)
        key = select_one(cli, args.filter)
        getattr(key, verb)(normalize_username(args.username))
        return {"message": f"Key {verb}d successfully"}


_sharing("share", "Share a key in the HSM cluster with another user")
_sharing("unshare", "Unshare a key in the HSM cluster with another user")


@command(
    "key set-attribute",
    "Set an attribute for a key in the HSM cluster",
    Need.CRYPTO_USER,
    REQUIRED_FILTER,
    Flag("--name", "Name of the attribute to set", required=True),
    Flag("--value", "Value of the attribute to set", required=True),
    APPROVAL,
    modelled="the success message text",
)
def set_attribute(cli: Any, args: Args) -> dict[str, str]:
    """Change one attribute of one key (owner only), within AWS's rules."""
    _no_quorum(args)
    attr = lookup(args.name)
    key = select_one(cli, args.filter)
    klass = key_class(key)
    if attr.admin_only:
        raise BadAttribute(
            f"Only an admin can set {attr.name} (it marks keys trusted for wrap-with-trusted).",
            "Ask an admin.",
        )
    if not attr.settable:
        raise BadAttribute(
            f"Attribute {attr.name} cannot be changed after the key is created.",
            "Create a new key with the value you need (--attributes …).",
        )
    value = parse_value(attr, args.value)
    current = render(key, klass)
    if attr.name == "modifiable" and value:
        raise BadAttribute("modifiable can only change from true to false.", "Leave it true.")
    if current.get("modifiable") is False and attr.name != "label":
        raise BadAttribute(f"Key {key.reference} is not modifiable.", "Create a new key.")
    if attr.name == "sensitive" and (klass is not KeyClass.PRIVATE or not value):
        raise BadAttribute(
            "sensitive can only change from false to true, on private keys.", "Leave it."
        )
    if attr.name == "wrap-with-trusted" and current.get("wrap-with-trusted"):
        raise BadAttribute("wrap-with-trusted is read-only once true.", "Leave it true.")
    if attr.kind == "bool" and attr.name in NOT_FOR[klass]:
        raise BadAttribute(f"A {klass.value} has no attribute {attr.name}.", "Pick another one.")
    key[attr.attribute] = value
    backend.forget(cli.session, key)
    return {"message": "Attribute set successfully"}


# -- import pem, replicate ------------------------------------------------------------------


@command(
    "key import pem",
    "Import a PEM format key into an HSM",
    Need.CRYPTO_USER,
    Flag("--path", "Path where the key is located in PEM format", required=True),
    Flag("--label", "Label for the imported key", required=True),
    Flag(
        "--key-type-class",
        "Key type and class of the imported key",
        required=True,
        choices=("ec-public", "rsa-public"),
    ),
    Flag(
        "--attributes",
        "Space separated list of key attributes in the form of "
        "KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE for the imported key",
        kind=Kind.LIST,
    ),
)
def import_pem(cli: Any, args: Args) -> dict[str, Any]:
    """Import a public key from a PEM file (``local`` false)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    check_label(args.label)
    path = Path(args.path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabError(f"Cannot read {path}: {exc.strerror}.", "Check the --path.") from None
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        raise LabError(
            f"{path.name} does not hold a PEM public key (-----BEGIN PUBLIC KEY-----).",
            "key import pem imports public keys; bring private keys in wrapped, with "
            "`key unwrap` (lesson 05).",
        ) from None
    type_name = args.key_type_class.split("-")[0]
    template = creation_template(type_name, KeyClass.PUBLIC, args.attributes, True)
    template.update({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: args.label})
    if type_name == "rsa" and isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        template[Attribute.KEY_TYPE] = KeyType.RSA
        template[Attribute.MODULUS] = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        template[Attribute.PUBLIC_EXPONENT] = numbers.e.to_bytes(
            (numbers.e.bit_length() + 7) // 8, "big"
        )
    elif type_name == "ec" and isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        template[Attribute.KEY_TYPE] = KeyType.EC
        template[Attribute.EC_PARAMS] = encode_named_curve_parameters(public.curve.name)
        template[Attribute.EC_POINT] = _der_octet_string(point)
    else:
        raise LabError(
            f"{path.name} does not hold an {type_name.upper()} public key.",
            "Match --key-type-class to the key in the file (rsa-public or ec-public).",
        )
    key = cli.session.create_object(template)
    return {"key": describe(key), "message": "Successfully imported key"}


def _der_octet_string(data: bytes) -> bytes:
    if len(data) < 0x80:
        return bytes([0x04, len(data)]) + data
    if len(data) < 0x100:
        return bytes([0x04, 0x81, len(data)]) + data
    return bytes([0x04, 0x82]) + len(data).to_bytes(2, "big") + data


@command(
    "key replicate",
    "Replicate a key from a source cluster to a cloned destination cluster",
    Need.CRYPTO_USER,
    REQUIRED_FILTER,
    Flag("--source-cluster-id", "Source cluster ID", required=True),
    Flag("--destination-cluster-id", "Destination cluster ID", required=True),
    refused="CloudHSM copies the key to a destination cluster cloned from the same backup, "
    "with both clusters in the client's configuration; the lab's client configuration holds "
    "one cluster",
)
def key_replicate(cli: Any, args: Args) -> dict[str, Any]:
    """Refused in the lab: it needs two configured clusters cloned from one backup."""
    select_one(cli, args.filter)
    raise LabError(
        f"Cannot replicate to {args.destination_cluster_id}: on CloudHSM both clusters must be "
        "in the client's configuration (configure-cli add-cluster) and the destination must "
        "be a clone of the source (restored from one of its backups, same users); the lab's "
        "client configuration holds one cluster.",
        "To get a key into another cluster in the lab, wrap it (`key wrap`) and unwrap it "
        "there, or restore a backup (lesson 06).",
    )
