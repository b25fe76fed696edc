"""CloudHSM CLI (Client SDK 5), simulated: the same commands and JSON output shapes.

::

    cli = client.cli
    cli.run("cluster activate", password=admin_pw)  # data: "Cluster activation successful"
    cli.run("login --username admin --role admin", password=admin_pw)
    cli.run("user create --username alice --role crypto-user", password=alice_pw)
    cli.run("user list")

Each command returns a :class:`CliResult` that prints as the real CLI's JSON
(``{"error_code": 0, "data": …}``; failures have ``error_code`` 1 and a message). Pass
passwords with ``password=`` rather than in the command text, so they never appear in
a notebook's output; the lab stores only salted hashes of them.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.client.errors import ClusterNotActive
from labsupport.client.keys import KeyClass, parse_ref
from labsupport.client.session import ClusterKey, ClusterSession
from labsupport.client.users import Role, User, normalize_username
from labsupport.crypto.keygen import USAGE_ATTRIBUTES, curve_name
from labsupport.errors import LabError

_CURVES = {
    "secp256r1": "secp256r1",
    "prime256v1": "secp256r1",
    "secp384r1": "secp384r1",
    "secp521r1": "secp521r1",
    "secp256k1": "secp256k1",
}


@dataclass
class CliResult:
    """One CLI command's result: ``error_code`` (0 ok, 1 failed) and ``data``."""

    error_code: int
    data: Any
    hint: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        """True when the command succeeded."""
        return self.error_code == 0

    def to_json(self) -> str:
        """The JSON the real CLI prints (2-space indent)."""
        return json.dumps({"error_code": self.error_code, "data": self.data}, indent=2)

    def __str__(self) -> str:
        text = self.to_json()
        if self.hint:
            text += f"\n# lab hint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def raise_for_error(self) -> CliResult:
        """Raise a :class:`LabError` if the command failed; else return self."""
        if not self.ok:
            raise LabError(str(self.data), self.hint)
        return self


class CloudHsmCli:
    """A CloudHSM CLI session on one cluster (``client.cli``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.user: User | None = None
        self._session: ClusterSession | None = None

    def __repr__(self) -> str:
        who = f"{self.user.username} ({self.user.role.value})" if self.user else "not logged in"
        return f"<CloudHsmCli {self.client.cluster_id}: {who}>"

    # -- the command line ----------------------------------------------------------------

    def run(self, command: str, password: str | None = None) -> CliResult:
        """Run one CLI command line, e.g. ``"user list"``; returns its :class:`CliResult`."""
        try:
            words = shlex.split(command)
            return self._dispatch(words, password)
        except LabError as exc:
            return CliResult(1, exc.problem, exc.fix)
        except pkcs11.PKCS11Error as exc:
            return CliResult(1, f"{type(exc).__name__}: {exc}".rstrip(": "))
        except _Usage as exc:
            return CliResult(1, str(exc), "Run cli.run('help') for the commands the lab supports.")

    def _dispatch(self, words: list[str], password: str | None) -> CliResult:
        if not words or words[0] == "help":
            return CliResult(0, sorted(_COMMANDS))
        for n in (3, 2, 1):
            name = " ".join(words[:n])
            if name in _COMMANDS:
                opts = _parse(words[n:])
                if password is not None and "password" not in opts:
                    opts["password"] = password
                return getattr(self, _COMMANDS[name])(**opts)
        raise _Usage(f"Unknown command: {' '.join(words[:3])}")

    # -- cluster, login ----------------------------------------------------------------------

    def cluster_activate(self, password: str | None = None) -> CliResult:
        """``cluster activate``: set the admin password; the cluster becomes ACTIVE."""
        from labsupport.client import resolver

        _need(password, "password")
        self.client.users.activate(password)
        resolver.mark_active(self.client.workspace, self.client.cluster_id)
        self.client.poll(force=True)
        return CliResult(0, "Cluster activation successful")

    def login(self, username: str = "", role: str = "", password: str | None = None) -> CliResult:
        """``login --username U --role admin|crypto-user``."""
        _need(username, "--username")
        _need(role, "--role")
        _need(password, "password")
        if self.user is not None:
            return CliResult(1, "User already logged in", "Run `logout` first.")
        user = self.client.users.authenticate(username, password, Role(role))
        self.user = user
        if user.role is Role.CRYPTO_USER:
            self._session = ClusterSession(self.client, user, rw=True)
            self.client._sessions.append(self._session)
        return CliResult(0, {"username": user.username, "role": user.role.value})

    def logout(self) -> CliResult:
        """``logout``."""
        if self.user is None:
            return CliResult(1, "No user is logged in")
        if self._session is not None:
            self._session.close()
            self._session = None
        self.user = None
        return CliResult(0, "Logout successful")

    # -- users ------------------------------------------------------------------------------------

    def user_list(self) -> CliResult:
        """``user list`` (no login needed)."""
        return CliResult(0, {"users": [u.to_cli() for u in self.client.users.list()]})

    def user_create(
        self, username: str = "", role: str = "", password: str | None = None
    ) -> CliResult:
        """``user create --username U --role R`` (admins)."""
        _need(username, "--username")
        _need(role, "--role")
        _need(password, "password")
        user = self.client.users.create(self.user, username, role, password)
        return CliResult(0, {"username": user.username, "role": user.role.value})

    def user_delete(self, username: str = "", role: str = "") -> CliResult:
        """``user delete --username U --role R`` (admins)."""
        _need(username, "--username")
        _need(role, "--role")
        logged_in = self.client.logged_in_users()
        user = self.client.users.delete(self.user, username, role, logged_in)
        return CliResult(0, {"username": user.username, "role": user.role.value})

    def user_change_password(
        self, username: str = "", role: str = "", password: str | None = None
    ) -> CliResult:
        """``user change-password --username U --role R`` (admins, or yourself); unlocks."""
        _need(username, "--username")
        _need(role, "--role")
        _need(password, "password")
        user = self.client.users.change_password(self.user, username, role, password)
        return CliResult(0, {"username": user.username, "role": user.role.value})

    # -- keys ---------------------------------------------------------------------------

    def _cu(self) -> ClusterSession:
        if not self.client.users.activated:
            raise ClusterNotActive("The cluster is not activated.", "Run `cluster activate` first.")
        if self.user is None or self._session is None:
            raise LabError(
                "Key commands need a logged-in crypto user.",
                "login --username <crypto user> --role crypto-user",
            )
        return self._session

    def _matching(self, filters: list[str] | str | None) -> list[ClusterKey]:
        session = self._cu()
        keys = session.list_keys()
        for text in _as_list(filters):
            if "=" not in text:
                raise _Usage(f"Bad filter {text!r}: use attr.label=NAME or key-reference=0x…")
            name, value = text.split("=", 1)
            if name == "key-reference":
                ref = parse_ref(value)
                keys = [k for k in keys if k.ref == ref]
            elif name.startswith("attr."):
                attr = name[5:]
                keys = [k for k in keys if str(_attributes(k).get(attr)).lower() == value.lower()]
            else:
                raise _Usage(f"Bad filter {text!r}: use attr.<name>=VALUE or key-reference=0x…")
        return keys

    def key_list(
        self, filter: Any = None, max_items: str | None = None, verbose: bool = False
    ) -> CliResult:
        """``key list [--filter …] [--max-items N] [--verbose]``."""
        keys = self._matching(filter)
        limit = int(max_items) if max_items else len(keys)
        shown = keys[:limit]
        matched = []
        for key in shown:
            if verbose:
                matched.append(self._describe(key))
            else:
                matched.append({"key-reference": key.reference, "attributes": {"label": key.label}})
        data: dict[str, Any] = {
            "matched_keys": matched,
            "total_key_count": len(keys),
            "returned_key_count": len(shown),
        }
        if limit < len(keys):
            data["next_token"] = str(limit)
        return CliResult(0, data)

    def _describe(self, key: ClusterKey) -> dict[str, Any]:
        coverage = "full" if len(key.hsms) >= len(self._cu()._order) else "partial"
        rec = key._current_record() or key._record
        assert rec is not None
        return rec.to_cli(coverage, _attributes(key))

    def key_delete(self, filter: Any = None) -> CliResult:
        """``key delete --filter …`` (owner only)."""
        key = self._one(filter)
        key.destroy()
        return CliResult(0, {"message": "Key deleted successfully"})

    def key_share(self, filter: Any = None, username: str = "", role: str = "") -> CliResult:
        """``key share --filter … --username U --role crypto-user`` (owner only)."""
        _need(username, "--username")
        key = self._one(filter)
        key.share(normalize_username(username))
        return CliResult(0, {"message": "Key shared successfully"})

    def key_unshare(self, filter: Any = None, username: str = "", role: str = "") -> CliResult:
        """``key unshare --filter … --username U --role crypto-user`` (owner only)."""
        _need(username, "--username")
        key = self._one(filter)
        key.unshare(normalize_username(username))
        return CliResult(0, {"message": "Key unshared successfully"})

    def _one(self, filters: Any) -> ClusterKey:
        if not filters:
            raise _Usage("--filter is required (e.g. --filter attr.label=my-key)")
        keys = self._matching(filters)
        if not keys:
            raise LabError("No key matches the filter.", "List your keys with `key list`.")
        if len(keys) > 1:
            raise LabError(
                f"{len(keys)} keys match the filter; it must select exactly one.",
                "Add filters, e.g. key-reference=0x….",
            )
        return keys[0]

    def key_generate_symmetric_aes(
        self,
        label: str = "",
        key_length_bytes: str = "32",
        session: bool = False,
        attributes: Any = None,
        share_crypto_users: Any = None,
    ) -> CliResult:
        """``key generate-symmetric aes --label L --key-length-bytes 16|24|32 [--session]``."""
        _need(label, "--label")
        length = int(key_length_bytes)
        if length not in (16, 24, 32):
            raise _Usage("--key-length-bytes must be 16, 24 or 32 for AES")
        template = _template(attributes)
        key = self._cu().generate_key(
            KeyType.AES, length * 8, label=label, store=not session, template=template
        )
        self._share_all(key, share_crypto_users)
        return CliResult(0, {"key": self._describe(key)})

    def key_generate_asymmetric_pair_rsa(
        self,
        public_label: str = "",
        private_label: str = "",
        modulus_size_bits: str = "2048",
        public_exponent: str = "65537",
        session: bool = False,
        public_attributes: Any = None,
        private_attributes: Any = None,
        share_crypto_users: Any = None,
    ) -> CliResult:
        """``key generate-asymmetric-pair rsa --public-label … --private-label …``."""
        _need(public_label, "--public-label")
        _need(private_label, "--private-label")
        exponent = int(public_exponent, 0)
        pub, priv = self._cu().generate_keypair(
            KeyType.RSA,
            int(modulus_size_bits),
            store=not session,
            public_template={
                Attribute.LABEL: public_label,
                Attribute.PUBLIC_EXPONENT: exponent.to_bytes(
                    (exponent.bit_length() + 7) // 8, "big"
                ),
                **_template(public_attributes),
            },
            private_template={Attribute.LABEL: private_label, **_template(private_attributes)},
        )
        self._share_all(priv, share_crypto_users)
        return CliResult(
            0, {"public_key": self._describe(pub), "private_key": self._describe(priv)}
        )

    def key_generate_asymmetric_pair_ec(
        self,
        public_label: str = "",
        private_label: str = "",
        curve: str = "secp256r1",
        session: bool = False,
        public_attributes: Any = None,
        private_attributes: Any = None,
        share_crypto_users: Any = None,
    ) -> CliResult:
        """``key generate-asymmetric-pair ec --public-label … --private-label … --curve …``."""
        _need(public_label, "--public-label")
        _need(private_label, "--private-label")
        if curve not in _CURVES:
            raise _Usage(f"Unsupported curve {curve}: use one of {', '.join(sorted(_CURVES))}")
        params = self._cu().create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[curve])},
            local=True,
        )
        pub, priv = params.generate_keypair(
            store=not session,
            public_template={Attribute.LABEL: public_label, **_template(public_attributes)},
            private_template={Attribute.LABEL: private_label, **_template(private_attributes)},
        )
        self._share_all(priv, share_crypto_users)
        return CliResult(
            0, {"public_key": self._describe(pub), "private_key": self._describe(priv)}
        )

    def _share_all(self, key: ClusterKey, users: Any) -> None:
        for name in _as_list(users):
            key.share(normalize_username(name))


# -- helpers ---------------------------------------------------------------------------------------

_COMMANDS = {
    "cluster activate": "cluster_activate",
    "login": "login",
    "logout": "logout",
    "user list": "user_list",
    "user create": "user_create",
    "user delete": "user_delete",
    "user change-password": "user_change_password",
    "key list": "key_list",
    "key delete": "key_delete",
    "key share": "key_share",
    "key unshare": "key_unshare",
    "key generate-symmetric aes": "key_generate_symmetric_aes",
    "key generate-asymmetric-pair rsa": "key_generate_asymmetric_pair_rsa",
    "key generate-asymmetric-pair ec": "key_generate_asymmetric_pair_ec",
}
_MULTI = {"filter", "attributes", "public_attributes", "private_attributes", "share_crypto_users"}


class _Usage(Exception):
    pass


def _parse(words: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            raise _Usage(f"Unexpected argument {word!r}")
        name = word[2:].replace("-", "_")
        values = []
        i += 1
        while i < len(words) and not words[i].startswith("--"):
            values.append(words[i])
            i += 1
        if name in _MULTI:
            opts[name] = values
        elif not values:
            opts[name] = True
        elif len(values) == 1:
            opts[name] = values[0]
        else:
            raise _Usage(f"--{word[2:]} takes one value")
    return opts


def _need(value: Any, name: str) -> None:
    if not value:
        if name == "password":
            raise LabError(
                "This command needs a password (the real CLI would prompt for it).",
                "Pass it as cli.run(..., password=...) so it never shows in the output.",
            )
        raise _Usage(f"{name} is required")


def _as_list(value: Any) -> list[str]:
    if value is None or value is True:
        return []
    return [value] if isinstance(value, str) else list(value)


_ATTR_NAMES = {
    **{attr.name.lower(): attr for attr in USAGE_ATTRIBUTES},
    "private": Attribute.PRIVATE,
    "sensitive": Attribute.SENSITIVE,
    "extractable": Attribute.EXTRACTABLE,
    "modifiable": Attribute.MODIFIABLE,
    "token": Attribute.TOKEN,
}


def _template(values: Any) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {}
    for text in _as_list(values):
        name, _, value = text.partition("=")
        attr = _ATTR_NAMES.get(name)
        if attr is None:
            raise _Usage(f"Unsupported attribute {name!r}; supported: {', '.join(_ATTR_NAMES)}")
        template[attr] = value.lower() == "true"
    return template


_KEY_TYPES = {
    KeyType.AES: "aes",
    KeyType.RSA: "rsa",
    KeyType.EC: "ec",
    KeyType.GENERIC_SECRET: "generic-secret",
}


def _attributes(key: ClusterKey) -> dict[str, Any]:
    """The kebab-case attribute dictionary CloudHSM CLI prints for a key."""
    obj = key._any()
    cls = key._class
    out: dict[str, Any] = {
        "key-type": _KEY_TYPES.get(obj[Attribute.KEY_TYPE], str(obj[Attribute.KEY_TYPE]).lower()),
        "label": obj[Attribute.LABEL],
        "id": "0x" + key[Attribute.ID].hex() if key[Attribute.ID] else "",
        "class": cls.value,
    }
    flags = [
        "encrypt",
        "decrypt",
        "sign",
        "verify",
        "wrap",
        "unwrap",
        "derive",
        "token",
        "private",
        "modifiable",
    ]
    if cls is not KeyClass.PUBLIC:
        flags += ["sensitive"]
    values = obj.get_attributes(
        [a for n, a in _ATTR_NAMES.items() if n in flags and _valid(cls, a)]
    )
    for name in flags:
        attr = _ATTR_NAMES[name]
        if attr in values:
            out[name] = bool(values[attr])
        elif not _valid(cls, attr):
            out[name] = False
    out["extractable"] = bool(key[Attribute.EXTRACTABLE]) if cls is not KeyClass.PUBLIC else True
    out["local"] = bool(key[Attribute.LOCAL])
    if cls is not KeyClass.PUBLIC:
        out["never-extractable"] = bool(key[Attribute.NEVER_EXTRACTABLE])
    kt = obj[Attribute.KEY_TYPE]
    if cls is KeyClass.SECRET:
        out["key-length-bytes"] = key[Attribute.VALUE_LEN]
        try:
            kcv = key[Attribute.CHECK_VALUE]
            if kcv:
                out["check-value"] = "0x" + bytes(kcv).hex()
        except pkcs11.PKCS11Error:
            pass
    elif kt == KeyType.RSA:
        modulus = obj[Attribute.MODULUS]
        out["modulus-size-bits"] = len(modulus) * 8
        out["public-exponent"] = "0x" + bytes(obj[Attribute.PUBLIC_EXPONENT]).hex()
    elif kt == KeyType.EC:
        out["curve"] = curve_name(obj[Attribute.EC_PARAMS])
    return out


def _valid(cls: KeyClass, attr: Attribute) -> bool:
    if cls is KeyClass.PUBLIC:
        return attr not in (
            Attribute.DECRYPT,
            Attribute.SIGN,
            Attribute.UNWRAP,
            Attribute.SENSITIVE,
        )
    if cls is KeyClass.PRIVATE:
        return attr not in (Attribute.ENCRYPT, Attribute.VERIFY, Attribute.WRAP)
    return True


__all__ = ["CliResult", "CloudHsmCli", "ObjectClass"]
