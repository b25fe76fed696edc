"""What the simulated KMS knows about a key: enums for its states and options, and records.

The names and values are AWS's own (``KeyState.PENDING_IMPORT.value == "PendingImport"``),
so what the simulator returns is what ``boto3.client("kms")`` returns from AWS.

All keys live in one fake AWS account, :data:`ACCOUNT_ID` (``111122223333``, the example
account id of the AWS documentation), so ARNs look like
``arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from labsupport.aws.inprocess import AwsServiceError
from labsupport.aws.paging import InvalidPageToken, paginate
from labsupport.workspace.home import LESSON_TAG, WORKSPACE_OWNER, Workspace
from labsupport.workspace.statefile import StateFile, StateShapeError, expect

#: The workspace state file of the simulated KMS (``state/kms.json``).
STATE_NAME = "kms"

#: The fake AWS account every simulated KMS key belongs to (the AWS docs' example account).
ACCOUNT_ID = "111122223333"

#: Key material of a SYMMETRIC_DEFAULT key: 256-bit AES (AES-256-GCM).
SYMMETRIC_KEY_BYTES = 32

#: An import token and its wrapping public key are valid for 24 hours.
IMPORT_PARAMETERS_LIFETIME_SECONDS = 24 * 3600

#: ImportKeyMaterial's ValidTo may be at most 365 days after the request.
MAX_VALID_TO_SECONDS = 365 * 24 * 3600

#: ScheduleKeyDeletion's waiting period: 7 to 30 days, default 30.
MIN_PENDING_WINDOW_DAYS, MAX_PENDING_WINDOW_DAYS, DEFAULT_PENDING_WINDOW_DAYS = 7, 30, 30

#: KMS list operations return 100 items per page unless ``Limit`` (1 to 1000) says otherwise.
DEFAULT_LIST_LIMIT = 100

#: Encrypt takes at most 4,096 bytes of plaintext; GenerateDataKey at most 1,024 bytes.
MAX_PLAINTEXT_BYTES = 4096
MAX_DATA_KEY_BYTES = 1024

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEY_ID_PATTERN = re.compile(rf"^{_UUID}$")
KEY_ARN_PATTERN = re.compile(
    rf"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):key/(?P<key_id>{_UUID})$"
)


class KeyState(str, enum.Enum):
    """The key states a simulated key can be in (``KeyMetadata.KeyState``)."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"


class Origin(str, enum.Enum):
    """Where a key's material comes from: KMS itself, or imported by you (BYOK)."""

    AWS_KMS = "AWS_KMS"
    EXTERNAL = "EXTERNAL"


class ExpirationModel(str, enum.Enum):
    """Whether imported key material expires at ``ValidTo``."""

    KEY_MATERIAL_EXPIRES = "KEY_MATERIAL_EXPIRES"
    KEY_MATERIAL_DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"


class WrappingAlgorithm(str, enum.Enum):
    """How key material is protected on its way into KMS (GetParametersForImport).

    ``RSAES_OAEP_*`` encrypt the material directly with the RSA wrapping key.
    ``RSA_AES_KEY_WRAP_*`` encrypt a fresh AES-256 key with RSA-OAEP and the material
    with that AES key (AES key wrap with padding, RFC 5649) — needed for material larger
    than RSA-OAEP can carry, such as RSA private keys. ``RSAES_PKCS1_V1_5`` is listed
    because the API still names it, but KMS has refused it since 10 October 2023.
    """

    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    RSA_AES_KEY_WRAP_SHA_1 = "RSA_AES_KEY_WRAP_SHA_1"
    RSA_AES_KEY_WRAP_SHA_256 = "RSA_AES_KEY_WRAP_SHA_256"
    RSAES_PKCS1_V1_5 = "RSAES_PKCS1_V1_5"

    @property
    def hash_name(self) -> str:
        """The OAEP hash (and MGF1 hash) of this algorithm: ``"SHA1"`` or ``"SHA256"``."""
        return "SHA256" if self.value.endswith("SHA_256") else "SHA1"

    @property
    def is_rsa_aes(self) -> bool:
        """True for the two-step RSA-OAEP + AES key wrap (RFC 5649) algorithms."""
        return self.value.startswith("RSA_AES_KEY_WRAP")


class WrappingKeySpec(str, enum.Enum):
    """Size of the RSA wrapping key GetParametersForImport returns."""

    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"

    @property
    def bits(self) -> int:
        """The RSA modulus size in bits."""
        return int(self.value.split("_")[1])


def list_page(
    operation: str, items: list[Any], params: dict[str, Any], member: str
) -> dict[str, Any]:
    """One page of a KMS list operation (``Limit``/``Marker`` in; ``NextMarker``/``Truncated``
    out), cut by the lab's one paginator (:mod:`labsupport.aws.paging`).

    ``Limit``'s range (1 to 1000) is checked from the service model before this runs; a
    ``Marker`` this operation did not issue answers ``InvalidMarkerException``, as on AWS.
    """
    try:
        page = paginate(
            operation,
            items,
            params.get("Marker"),
            params.get("Limit"),
            DEFAULT_LIST_LIMIT,
            token_name="Marker",
        )
    except InvalidPageToken as err:
        raise AwsServiceError("InvalidMarkerException", str(err)) from None
    result: dict[str, Any] = {member: page.items, "Truncated": page.next_token is not None}
    if page.next_token is not None:
        result["NextMarker"] = page.next_token
    return result


def key_arn(region: str, key_id: str) -> str:
    """The ARN of key ``key_id`` in ``region`` of the lab's fake account."""
    return f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}"


@dataclass
class ImportedMaterial:
    """Key material imported into an EXTERNAL key (the secret stays in the workspace)."""

    material_hex: str = field(repr=False)
    material_id: str
    expiration_model: str
    valid_to: float | None


@dataclass
class KeyRecord:
    """One simulated KMS key as stored in ``state/kms.json``.

    ``material_hex`` is the key's secret (AWS_KMS keys); ``imported`` the current
    imported material (EXTERNAL keys, None while PendingImport). ``material_id`` of the
    first import is remembered in ``first_material_id`` so a reimport can be checked
    for being the same material even after the material was deleted or expired.
    """

    key_id: str
    region: str
    seq: int
    created: float
    origin: str
    description: str = ""
    enabled: bool = True
    deletion_date: float | None = None
    pending_window_days: int | None = None
    material_hex: str | None = field(default=None, repr=False)
    imported: ImportedMaterial | None = None
    first_material_id: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    lesson: str | None = None

    @property
    def arn(self) -> str:
        """The key's ARN."""
        return key_arn(self.region, self.key_id)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        """Rebuild a record from :meth:`to_json` output."""
        data = dict(data)
        if data.get("imported") is not None:
            data["imported"] = ImportedMaterial(**data["imported"])
        return cls(**data)

    # -- derived state (evaluated lazily against the simulated clock) ---------------

    def live_material(self, now: float) -> bytes | None:
        """The usable key material at time ``now``, or None (not imported, or expired)."""
        if self.origin == Origin.AWS_KMS.value:
            return bytes.fromhex(self.material_hex) if self.material_hex else None
        if self.imported is None:
            return None
        if self.imported.valid_to is not None and now >= self.imported.valid_to:
            return None  # ValidTo passed: KMS deleted the material
        return bytes.fromhex(self.imported.material_hex)

    def state(self, now: float) -> KeyState:
        """The key state at time ``now`` (deletion and expiry are applied lazily)."""
        if self.deletion_date is not None:
            return KeyState.PENDING_DELETION
        if self.live_material(now) is None:
            return KeyState.PENDING_IMPORT
        return KeyState.ENABLED if self.enabled else KeyState.DISABLED

    def deleted(self, now: float) -> bool:
        """True once the deletion waiting period is over: the key no longer exists."""
        return self.deletion_date is not None and now >= self.deletion_date

    def current_material_id(self, now: float) -> str | None:
        """The id of the material in use (None while PendingImport)."""
        if self.origin == Origin.EXTERNAL.value:
            return self.imported.material_id if self.live_material(now) else None
        return self.first_material_id


@dataclass
class ImportTokenRecord:
    """One GetParametersForImport answer: the RSA wrapping key pair and its token.

    The wrapping private key is the simulated KMS's secret; ``secret_hex`` is the part of
    the opaque token only KMS knows, so a forged or altered token is rejected.
    """

    token_id: str
    key_id: str
    region: str
    algorithm: str
    key_spec: str
    valid_to: float
    secret_hex: str = field(repr=False)
    private_key_pem: str = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportTokenRecord:
        """Rebuild a record from :meth:`to_json` output."""
        return cls(**data)


# -- the state file ---------------------------------------------------------------------------


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``state/kms.json`` (missing tables become empty).

    Every key and import-token record must rebuild into its dataclass; a document of the
    wrong shape is treated like a damaged file (its last committed version is restored),
    so no raw ``KeyError`` or ``TypeError`` reaches a boto3 caller.
    """
    data.setdefault("keys", {})
    data.setdefault("import_tokens", {})
    expect(data.get("seq", 0), int, "seq")
    for key_id, raw in expect(data["keys"], dict, "keys").items():
        _rebuild(KeyRecord, raw, f"keys.{key_id}")
    for token_id, raw in expect(data["import_tokens"], dict, "import_tokens").items():
        _rebuild(ImportTokenRecord, raw, f"import_tokens.{token_id}")
    return data


def _rebuild(kind: Any, raw: Any, where: str) -> None:
    expect(raw, dict, where)
    try:
        kind.from_json(raw)
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateShapeError(f"{where} is not a {kind.__name__}: {exc}") from None


def state_file(workspace: Workspace) -> StateFile:
    """``state/kms.json``: the simulated KMS's keys (with their material) and import tokens."""
    return workspace.state(STATE_NAME, validate=validate)


# -- ownership: which lesson scope a stored key belongs to -------------------------------


def key_owners(raw: dict[str, Any]) -> list[str]:
    """The lesson scopes a stored key belongs to: its lesson tag and the scope it was made in."""
    tags = {t.get("TagKey"): t.get("TagValue") for t in raw.get("tags", [])}
    return [o for o in (tags.get(LESSON_TAG), raw.get("lesson")) if o]


def key_scope(raw: dict[str, Any]) -> str:
    """The scope whose lab clock judges a stored key (tag first, else made-in, else workspace)."""
    return next(iter(key_owners(raw)), WORKSPACE_OWNER)
