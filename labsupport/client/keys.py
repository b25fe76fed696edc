"""Key metadata and CloudHSM's key rules: references, ownership, sharing.

Every key the client layer creates gets a **key reference**, shown like CloudHSM CLI
shows it (``0x`` + 16 hex digits) and used as the key's handle (``key.handle``). On the
SoftHSM tokens the reference is the object's ``CKA_ID`` (8 bytes), which is how the same
key is found on every HSM; the ``CKA_ID`` *you* choose is kept in the key's record and
returned by ``key.id`` and ``key[Attribute.ID]``.

Rules (CloudHSM user guide):

* the crypto user who creates a key owns it; only the owner can share it with other
  crypto users, unshare it, delete it, wrap (export) it or change its attributes;
* users the key is shared with can *use* it (encrypt, decrypt, sign, verify, derive,
  unwrap with it) but not delete, export, wrap or modify it;
* public keys are visible to every crypto user.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from pkcs11 import ObjectClass

from labsupport.client.errors import KeyPermissionError

REF_BYTES = 8


class KeyClass(str, enum.Enum):
    """A key's class, spelled as CloudHSM CLI prints it (``class`` attribute)."""

    SECRET = "secret-key"
    PUBLIC = "public-key"
    PRIVATE = "private-key"

    @property
    def object_class(self) -> ObjectClass:
        """The PKCS#11 object class."""
        return _OBJECT_CLASSES[self]

    @classmethod
    def of(cls, object_class: ObjectClass) -> KeyClass:
        """The :class:`KeyClass` of a PKCS#11 object class."""
        return _KEY_CLASSES[ObjectClass(object_class)]


#: The one correspondence of CloudHSM CLI's key classes and PKCS#11's object classes.
_OBJECT_CLASSES = {
    KeyClass.SECRET: ObjectClass.SECRET_KEY,
    KeyClass.PUBLIC: ObjectClass.PUBLIC_KEY,
    KeyClass.PRIVATE: ObjectClass.PRIVATE_KEY,
}
_KEY_CLASSES = {object_class: key_class for key_class, object_class in _OBJECT_CLASSES.items()}


class KeyStatus(str, enum.Enum):
    """Where a key is in its life (the sync journal)."""

    PENDING = "pending"  # recorded, being created and copied to every HSM
    OK = "ok"
    DELETING = "deleting"  # being destroyed on every HSM


def format_ref(ref: int) -> str:
    """A key reference as CloudHSM CLI prints it: ``0x`` + 16 hex digits."""
    return f"0x{ref:016x}"


def parse_ref(text: str | int) -> int:
    """The integer of a key reference given as ``0x…`` text or an int."""
    return text if isinstance(text, int) else int(str(text), 16)


def ref_to_id(ref: int) -> bytes:
    """The ``CKA_ID`` the key carries on every HSM's token."""
    return ref.to_bytes(REF_BYTES, "big")


def id_to_ref(cka_id: bytes) -> int | None:
    """The reference stored in a token object's ``CKA_ID``, or None if it is not ours."""
    if len(cka_id) != REF_BYTES:
        return None
    return int.from_bytes(cka_id, "big")


@dataclass(frozen=True)
class KeyRecord:
    """What the cluster knows about one token key besides its material."""

    ref: int
    owner: str
    key_class: KeyClass
    key_type: str
    label: str = ""
    learner_id: bytes = b""
    extractable: bool = True
    never_extractable: bool = False
    local: bool = True
    #: CKA_ALWAYS_SENSITIVE as the HSM that made the key reported it (None: not recorded,
    #: e.g. public keys, which do not have it).
    always_sensitive: bool | None = None
    #: CKA_SENSITIVE as its user set it (None: public key, or a record from before the lab
    #: recorded it). The HSM copies of a non-extractable key are always sensitive.
    sensitive: bool | None = None
    shared: tuple[str, ...] = ()
    status: KeyStatus = KeyStatus.PENDING
    pair: int | None = None
    created_on: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def reference(self) -> str:
        """The key reference, ``0x…``."""
        return format_ref(self.ref)

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the cluster document."""
        data = asdict(self)
        data.pop("ref")
        data["key_class"] = self.key_class.value
        data["status"] = self.status.value
        data["learner_id"] = self.learner_id.hex()
        data["shared"] = list(self.shared)
        return data

    @classmethod
    def from_json(cls, ref: str | int, data: dict[str, Any]) -> KeyRecord:
        """Parse a stored record."""
        return cls(
            ref=parse_ref(ref),
            owner=data["owner"],
            key_class=KeyClass(data["key_class"]),
            key_type=data["key_type"],
            label=data.get("label", ""),
            learner_id=bytes.fromhex(data.get("learner_id", "")),
            extractable=bool(data.get("extractable", True)),
            never_extractable=bool(data.get("never_extractable", False)),
            local=bool(data.get("local", True)),
            always_sensitive=(
                None if data.get("always_sensitive") is None else bool(data["always_sensitive"])
            ),
            sensitive=None if data.get("sensitive") is None else bool(data["sensitive"]),
            shared=tuple(data.get("shared", ())),
            status=KeyStatus(data.get("status", "ok")),
            pair=data.get("pair"),
            created_on=data.get("created_on", ""),
            extra=dict(data.get("extra", {})),
        )

    # -- rules -----------------------------------------------------------------------------

    def visible_to(self, username: str) -> bool:
        """True if ``username`` can find and use the key (owner, shared, or public key)."""
        return (
            self.owner == username or username in self.shared or self.key_class is KeyClass.PUBLIC
        )

    def require_use(self, username: str, action: str) -> None:
        """Raise unless ``username`` may use the key for ``action``."""
        if not self.visible_to(username):
            raise KeyPermissionError(
                f"{username} cannot {action} with key {self.reference}: it belongs to "
                f"{self.owner} and is not shared with {username}.",
                f"Ask {self.owner} to share it (`key share --username {username} --role "
                "crypto-user`), or use a key you own.",
            )

    def require_owner(self, username: str, action: str) -> None:
        """Raise unless ``username`` owns the key (delete, share, wrap, modify)."""
        if self.owner != username:
            if username in self.shared:
                why = f"it is shared with {username}, and shared users can use a key but not "
                why += "delete, export, wrap, share or modify it"
            else:
                why = "it is not yours"
            raise KeyPermissionError(
                f"Only the owner ({self.owner}) can {action} key {self.reference}; {why}.",
                f"Log in as {self.owner} to {action} it.",
            )

    def to_cli(self, coverage: str, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``key-info`` shape CloudHSM CLI prints for this key."""
        out: dict[str, Any] = {
            "key-reference": self.reference,
            "key-info": {
                "key-owners": [{"username": self.owner, "key-coverage": coverage}],
                "shared-users": [{"username": u, "key-coverage": coverage} for u in self.shared],
                "cluster-coverage": coverage,
            },
        }
        if attributes is not None:
            out["attributes"] = attributes
        return out
