"""The simulated AWS KMS: the operations ``boto3.client("kms")`` calls, answered in-process.

Wire protocol: JSON 1.1, ``X-Amz-Target: TrentService.<Operation>`` — botocore builds
the request, :class:`KmsService` answers it, botocore parses the answer and raises
``kms.exceptions.<Error>`` for AWS's modeled errors, exactly as against AWS.

Simulated: CreateKey (symmetric keys, Origin AWS_KMS or EXTERNAL), DescribeKey, ListKeys
and ListResourceTags (paginated by the one paginator, :mod:`labsupport.aws.paging`),
EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, Encrypt, Decrypt,
GenerateDataKey(+WithoutPlaintext), GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial, and rotation (:mod:`labsupport.kms.rotation`). Every request is
checked against botocore's KMS model first (:mod:`labsupport.aws.validation`). Not
simulated (each answers ``UnsupportedOperationException`` naming what is): asymmetric and
HMAC keys, aliases, grants, key policies, custom key stores, multi-Region keys.

Where the simulation differs from AWS:

* The ciphertext blob has the lab's own format (see :mod:`labsupport.kms.ciphertext`).
* AWS does not publish its error texts: these follow the shapes AWS is known to use
  (``Key '<arn>' does not exist``, ``<arn> is pending import.``) and keep AWS's error
  codes. Bad parameter values answer ``ValidationException`` (not in the botocore model,
  so it arrives as a plain ``ClientError``), as AWS does.
* RSAES_PKCS1_V1_5 is refused with ``UnsupportedOperationException``; AWS documents the
  refusal (since 10 October 2023) but not the error code it uses.
* The key material is kept in the workspace (``state/kms.json``, mode 0600): it is this
  simulated KMS's secret. Like AWS, no operation returns it; only GenerateDataKey returns
  a plaintext *data* key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from labsupport.aws.inprocess import AwsServiceError, JsonService
from labsupport.kms import ciphertext, rotation
from labsupport.kms.model import (
    ACCOUNT_ID,
    DEFAULT_PENDING_WINDOW_DAYS,
    IMPORT_PARAMETERS_LIFETIME_SECONDS,
    KEY_ARN_PATTERN,
    KEY_ID_PATTERN,
    MAX_DATA_KEY_BYTES,
    MAX_PENDING_WINDOW_DAYS,
    MAX_PLAINTEXT_BYTES,
    MAX_VALID_TO_SECONDS,
    MIN_PENDING_WINDOW_DAYS,
    SYMMETRIC_KEY_BYTES,
    ExpirationModel,
    ImportedMaterial,
    ImportTokenRecord,
    KeyRecord,
    KeyState,
    Origin,
    WrappingAlgorithm,
    WrappingKeySpec,
    key_arn,
    key_scope,
    list_page,
    state_file,
)
from labsupport.kms.wrapping import UnwrapError, unwrap_key_material
from labsupport.workspace.clock import ClockReading, LabClock
from labsupport.workspace.home import ENV_LESSON, Workspace

_TOKEN_VERSION = 1


def _err(code: str, message: str) -> AwsServiceError:
    return AwsServiceError(code, message)


def _validation(value: Any, member: str, constraint: str) -> AwsServiceError:
    return AwsServiceError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}",
    )


def _enum(value: Any, member: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise _validation(
            value, member, f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    return value


def _b64(value: Any, member: str) -> bytes:
    try:
        return base64.b64decode(value or b"", validate=True)
    except (ValueError, TypeError):
        raise _validation("***", member, "Member must be a base64-encoded blob") from None


def _epoch(value: Any, member: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _validation(value, member, "Member must be a timestamp") from None


def _utc(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, tz=timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def material_id(key_id: str, material: bytes) -> str:
    """KMS's id for key material: derived from the key id and the material (64 hex digits)."""
    return hashlib.sha256(uuid.UUID(key_id).bytes + material).hexdigest()


def _context(params: dict[str, Any]) -> dict[str, str] | None:
    context = params.get("EncryptionContext")
    if context is None:
        return None
    if not isinstance(context, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.items()
    ):
        raise _validation(context, "encryptionContext", "Member must be a map of strings")
    return context


class KmsService(rotation.RotationOperations, JsonService):
    """The in-process KMS simulator for one workspace and region (see the module docstring)."""

    service_name = "kms"

    def __init__(self, workspace: Workspace, region: str) -> None:
        super().__init__(workspace, region)
        self._state = state_file(workspace)
        self._clock = LabClock(workspace)
        # kms.json and kms-rotation.json must agree: repair what an interrupted reset or
        # deletion left between the two writes (see rotation.drop_orphans).
        rotation.reconcile(workspace)

    # -- state helpers ---------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[dict[str, Any], float]]:
        """Lock the state, apply lazy expiry/deletion, yield it and the caller's lab time.

        Each key is judged by the clock of its own lesson scope (see
        :mod:`labsupport.workspace.clock`), so one lesson moving its clock never expires
        another's keys.
        """
        with self._state.update() as data:
            reading = self._clock.reading()
            deleted = self._housekeeping(data, reading)
            yield data, reading.now()
        if deleted:  # committed: now their rotated materials go too
            rotation.drop_orphans(self.workspace)

    @staticmethod
    def _housekeeping(data: dict[str, Any], clock: ClockReading) -> list[str]:
        """Apply deletions and expiries due on the lab clock; return the deleted key ids."""
        keys = data.setdefault("keys", {})
        tokens = data.setdefault("import_tokens", {})
        deleted = []
        for key_id, raw in list(keys.items()):
            rec = KeyRecord.from_json(raw)
            now = clock.now(key_scope(raw))
            if rec.deleted(now):
                del keys[key_id]  # the waiting period is over: KMS deleted the key
                deleted.append(key_id)
                continue
            if rec.imported is not None and rec.live_material(now) is None:
                rec.imported = None  # ValidTo passed: KMS deleted the imported material
                keys[key_id] = rec.to_json()
        for token_id, raw in list(tokens.items()):
            if raw["key_id"] not in keys:
                del tokens[token_id]
            elif clock.now(key_scope(keys[raw["key_id"]])) >= raw["valid_to"] and raw.get(
                "private_key_pem"
            ):
                raw["private_key_pem"] = ""  # expired: the wrapping private key is discarded
        return deleted

    def _resolve_id(self, key_ref: Any) -> str:
        """Turn a KeyId parameter (key id or key ARN) into a key id, or raise."""
        if not isinstance(key_ref, str) or not key_ref:
            raise _validation(
                key_ref, "keyId", "Member must have length greater than or equal to 1"
            )
        if key_ref.startswith("alias/") or ":alias/" in key_ref:
            name = (
                key_ref
                if key_ref.startswith("arn:")
                else (f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:{key_ref}")
            )
            raise _err(
                "NotFoundException",
                f"Alias {name} is not found. (The simulated KMS has "
                "no aliases: use the key id or key ARN.)",
            )
        match = KEY_ARN_PATTERN.match(key_ref)
        if match:
            if match["region"] != self.region or match["account"] != ACCOUNT_ID:
                raise _err("NotFoundException", f"Key '{key_ref}' does not exist")
            return match["key_id"]
        if key_ref.startswith("arn:"):
            raise _err(
                "InvalidArnException",
                f"ARN {key_ref} is not a valid KMS key ARN "
                "(arn:aws:kms:<region>:<account>:key/<key id>).",
            )
        if not KEY_ID_PATTERN.match(key_ref):
            raise _err("NotFoundException", f"Invalid keyId '{key_ref}'")
        return key_ref

    def _lookup(self, data: dict[str, Any], key_ref: Any, now: float) -> KeyRecord:
        key_id = self._resolve_id(key_ref)
        raw = data.get("keys", {}).get(key_id)
        rec = KeyRecord.from_json(raw) if raw else None
        if rec is None or rec.region != self.region or rec.deleted(now):
            raise _err("NotFoundException", f"Key '{key_arn(self.region, key_id)}' does not exist")
        return rec

    def _read_key(self, key_ref: Any) -> tuple[KeyRecord, float]:
        """Look a key up without writing (reads stay fast)."""
        data = self._state.read()
        now = self._clock.now()
        return self._lookup(data, key_ref, now), now

    @staticmethod
    def _save(data: dict[str, Any], rec: KeyRecord) -> None:
        data["keys"][rec.key_id] = rec.to_json()

    # -- state checks ------------------------------------------------------------------

    @staticmethod
    def _invalid_state(rec: KeyRecord, state: KeyState) -> AwsServiceError:
        text = {
            KeyState.PENDING_IMPORT: "is pending import.",
            KeyState.PENDING_DELETION: "is pending deletion.",
            KeyState.DISABLED: "is disabled.",
            KeyState.ENABLED: "is enabled.",
        }[state]
        return _err("KMSInvalidStateException", f"{rec.arn} {text}")

    def _usable_material(self, rec: KeyRecord, now: float) -> bytes:
        """The material of a key in a state that allows cryptographic operations."""
        state = rec.state(now)
        if state is KeyState.DISABLED:
            raise _err("DisabledException", f"{rec.arn} is disabled.")
        if state is not KeyState.ENABLED:
            raise self._invalid_state(rec, state)
        material = rec.live_material(now)
        assert material is not None
        return material

    @staticmethod
    def _require_external(rec: KeyRecord) -> None:
        if rec.origin != Origin.EXTERNAL.value:
            raise _err(
                "UnsupportedOperationException",
                f"{rec.arn} origin is {rec.origin} which is not valid for this "
                "operation. Only keys created with Origin=EXTERNAL take imported "
                "key material.",
            )

    def _metadata(self, rec: KeyRecord, now: float) -> dict[str, Any]:
        state = rec.state(now)
        meta: dict[str, Any] = {
            "AWSAccountId": ACCOUNT_ID,
            "KeyId": rec.key_id,
            "Arn": rec.arn,
            "CreationDate": rec.created,
            "Enabled": state is KeyState.ENABLED,
            "Description": rec.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": state.value,
            "Origin": rec.origin,
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": False,
        }
        if state is KeyState.PENDING_DELETION:
            meta["DeletionDate"] = rec.deletion_date
            meta["PendingDeletionWindowInDays"] = rec.pending_window_days
        live = rec.live_material(now) is not None
        if rec.origin == Origin.EXTERNAL.value and live and rec.imported is not None:
            meta["ExpirationModel"] = rec.imported.expiration_model
            if rec.imported.valid_to is not None:
                meta["ValidTo"] = rec.imported.valid_to
        material = rec.current_material_id(now)
        if material:
            meta["CurrentKeyMaterialId"] = material
        return meta

    # -- keys --------------------------------------------------------------------------

    def CreateKey(self, params: dict[str, Any]) -> dict[str, Any]:
        """Create a symmetric encryption key (Origin AWS_KMS, or EXTERNAL for import)."""
        spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        if spec != "SYMMETRIC_DEFAULT":
            raise _err(
                "UnsupportedOperationException",
                f"KeySpec {spec} is not simulated: the lab's KMS has symmetric "
                "encryption keys (SYMMETRIC_DEFAULT) only.",
            )
        usage = params.get("KeyUsage", "ENCRYPT_DECRYPT")
        if usage != "ENCRYPT_DECRYPT":
            raise _err(
                "ValidationException",
                f"KeyUsage {usage} is not compatible with KeySpec SYMMETRIC_DEFAULT; "
                "use ENCRYPT_DECRYPT.",
            )
        origin = params.get("Origin", Origin.AWS_KMS.value)
        _enum(origin, "origin", ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"])
        if origin not in (Origin.AWS_KMS.value, Origin.EXTERNAL.value) or params.get(
            "CustomKeyStoreId"
        ):
            raise _err(
                "UnsupportedOperationException",
                f"Origin {origin} (a custom key store) is not simulated; lesson 05 "
                "explains the CloudHSM key store. Use AWS_KMS or EXTERNAL.",
            )
        if params.get("MultiRegion"):
            raise _err("UnsupportedOperationException", "Multi-Region keys are not simulated.")
        description = params.get("Description", "")
        if len(description) > 8192:
            raise _validation(
                "...", "description", "Member must have length less than or equal to 8192"
            )
        tags = params.get("Tags") or []
        for tag in tags:
            if tag.get("TagKey", "").startswith("aws:"):
                raise _err("TagException", "Tag keys beginning with 'aws:' are reserved.")
        key_id = str(uuid.uuid4())
        with self._write() as (data, now):
            data["seq"] = seq = int(data.get("seq", 0)) + 1
            rec = KeyRecord(
                key_id=key_id,
                region=self.region,
                seq=seq,
                created=now,
                origin=origin,
                description=description,
                tags=[{"TagKey": t["TagKey"], "TagValue": t.get("TagValue", "")} for t in tags],
                lesson=os.environ.get(ENV_LESSON) or None,  # None: outside any lesson
            )
            if origin == Origin.AWS_KMS.value:
                material = secrets.token_bytes(SYMMETRIC_KEY_BYTES)
                rec.material_hex = material.hex()
                rec.first_material_id = material_id(key_id, material)
            self._save(data, rec)
            return {"KeyMetadata": self._metadata(rec, now)}

    def DescribeKey(self, params: dict[str, Any]) -> dict[str, Any]:
        """Return a key's metadata (never its material)."""
        rec, now = self._read_key(params.get("KeyId"))
        return {"KeyMetadata": self._metadata(rec, now)}

    def ListKeys(self, params: dict[str, Any]) -> dict[str, Any]:
        """List this region's keys, oldest first, ``Limit`` (1 to 1000, default 100) per page."""
        data = self._state.read()
        now = self._clock.now()
        recs = sorted(
            (KeyRecord.from_json(raw) for raw in data.get("keys", {}).values()),
            key=lambda r: r.seq,
        )
        keys = [
            {"KeyId": r.key_id, "KeyArn": r.arn}
            for r in recs
            if r.region == self.region and not r.deleted(now)
        ]
        return list_page("ListKeys", keys, params, "Keys")

    def ListResourceTags(self, params: dict[str, Any]) -> dict[str, Any]:
        """The key's tags (those given to CreateKey), ``Limit`` (1 to 50, default 50) per page."""
        rec, _now = self._read_key(params.get("KeyId"))
        # AWS's ListResourceTags defaults to (and allows at most) 50 tags per page.
        if params.get("Limit") is not None and params["Limit"] > 50:
            raise _validation(
                params["Limit"], "limit", "Member must have value less than or equal to 50"
            )
        tags = [dict(t) for t in rec.tags]
        return list_page("ListResourceTags", tags, {"Limit": 50, **params}, "Tags")

    def EnableKey(self, params: dict[str, Any]) -> dict[str, Any]:
        """Enable a disabled key."""
        with self._write() as (data, now):
            rec = self._lookup(data, params.get("KeyId"), now)
            state = rec.state(now)
            if state not in (KeyState.ENABLED, KeyState.DISABLED):
                raise self._invalid_state(rec, state)
            rec.enabled = True
            self._save(data, rec)
        return {}

    def DisableKey(self, params: dict[str, Any]) -> dict[str, Any]:
        """Disable a key: it stays, but cryptographic operations fail with DisabledException."""
        with self._write() as (data, now):
            rec = self._lookup(data, params.get("KeyId"), now)
            state = rec.state(now)
            if state not in (KeyState.ENABLED, KeyState.DISABLED):
                raise self._invalid_state(rec, state)
            rec.enabled = False
            self._save(data, rec)
        return {}

    def ScheduleKeyDeletion(self, params: dict[str, Any]) -> dict[str, Any]:
        """Schedule deletion after a waiting period of 7 to 30 days (default 30)."""
        days = params.get("PendingWindowInDays", DEFAULT_PENDING_WINDOW_DAYS)
        if not isinstance(days, int) or days < MIN_PENDING_WINDOW_DAYS:
            raise _validation(
                days,
                "pendingWindowInDays",
                f"Member must have value greater than or equal to {MIN_PENDING_WINDOW_DAYS}",
            )
        if days > MAX_PENDING_WINDOW_DAYS:
            raise _validation(
                days,
                "pendingWindowInDays",
                f"Member must have value less than or equal to {MAX_PENDING_WINDOW_DAYS}",
            )
        with self._write() as (data, now):
            rec = self._lookup(data, params.get("KeyId"), now)
            if rec.state(now) is KeyState.PENDING_DELETION:
                raise self._invalid_state(rec, KeyState.PENDING_DELETION)
            rec.deletion_date = now + days * 86400
            rec.pending_window_days = days
            self._save(data, rec)
        return {
            "KeyId": rec.arn,
            "DeletionDate": rec.deletion_date,
            "KeyState": KeyState.PENDING_DELETION.value,
            "PendingWindowInDays": days,
        }

    def CancelKeyDeletion(self, params: dict[str, Any]) -> dict[str, Any]:
        """Cancel a scheduled deletion; the key comes back Disabled (or PendingImport)."""
        with self._write() as (data, now):
            rec = self._lookup(data, params.get("KeyId"), now)
            if rec.state(now) is not KeyState.PENDING_DELETION:
                raise _err("KMSInvalidStateException", f"{rec.arn} is not pending deletion.")
            rec.deletion_date = None
            rec.pending_window_days = None
            rec.enabled = False
            self._save(data, rec)
        return {"KeyId": rec.arn}

    # -- cryptographic operations ------------------------------------------------------

    def Encrypt(self, params: dict[str, Any]) -> dict[str, Any]:
        """Encrypt up to 4,096 bytes with AES-256-GCM under the key (context = AAD)."""
        plaintext = _b64(params.get("Plaintext"), "plaintext")
        if not 1 <= len(plaintext) <= MAX_PLAINTEXT_BYTES:
            raise _validation(
                "***",
                "plaintext",
                f"Member must have length less than or equal to {MAX_PLAINTEXT_BYTES}",
            )
        self._symmetric_algorithm(params)
        context = _context(params)
        rec, now = self._read_key(params.get("KeyId"))
        material = self._usable_material(rec, now)
        material = rotation.current_material(self.workspace, rec.key_id, material, now)
        blob = ciphertext.seal(rec.key_id, material, plaintext, context)
        return {
            "CiphertextBlob": blob,
            "KeyId": rec.arn,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }

    def Decrypt(self, params: dict[str, Any]) -> dict[str, Any]:
        """Decrypt a blob from Encrypt/GenerateDataKey; the key is found from the blob."""
        blob = _b64(params.get("CiphertextBlob"), "ciphertextBlob")
        self._symmetric_algorithm(params)
        context = _context(params)
        try:
            parsed = ciphertext.parse(blob)
        except ciphertext.CiphertextError:
            raise _err(
                "InvalidCiphertextException",
                "The ciphertext is not a KMS ciphertext blob (or it is damaged).",
            ) from None
        if params.get("KeyId"):
            wanted = self._resolve_id(params["KeyId"])
            if wanted != parsed.key_id:
                raise _err(
                    "IncorrectKeyException",
                    "The key ID in the request does not "
                    "identify a KMS key that can perform this operation.",
                )
        rec, now = self._read_key(parsed.key_id)
        material = self._usable_material(rec, now)
        try:
            plaintext = rotation.open_any(
                self.workspace, rec.key_id, material, parsed, context, now
            )
        except ciphertext.CiphertextError:
            # AWS sends this error with an empty message; the lab says what to check.
            raise _err(
                "InvalidCiphertextException",
                "Decryption failed: the encryption "
                "context must be exactly the one used to encrypt, and the blob must "
                "be unmodified.",
            ) from None
        result = {
            "KeyId": rec.arn,
            "Plaintext": plaintext,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }
        material_ref = rec.current_material_id(now)
        if material_ref:
            result["KeyMaterialId"] = material_ref
        return result

    def GenerateDataKey(self, params: dict[str, Any]) -> dict[str, Any]:
        """Return a new data key, in plaintext and encrypted under the KMS key (envelope)."""
        return self._data_key(params, with_plaintext=True)

    def GenerateDataKeyWithoutPlaintext(self, params: dict[str, Any]) -> dict[str, Any]:
        """Like GenerateDataKey, but only the encrypted copy of the data key is returned."""
        return self._data_key(params, with_plaintext=False)

    def _data_key(self, params: dict[str, Any], with_plaintext: bool) -> dict[str, Any]:
        spec, count = params.get("KeySpec"), params.get("NumberOfBytes")
        if (spec is None) == (count is None):
            raise _err(
                "ValidationException",
                "Please specify either number of bytes or key "
                "spec (KeySpec='AES_256' or NumberOfBytes=32), not both.",
            )
        if spec is not None:
            count = {"AES_256": 32, "AES_128": 16}.get(
                _enum(spec, "keySpec", ["AES_256", "AES_128"])
            )
        if not isinstance(count, int) or not 1 <= count <= MAX_DATA_KEY_BYTES:
            raise _validation(
                count,
                "numberOfBytes",
                f"Member must have value less than or equal to {MAX_DATA_KEY_BYTES}",
            )
        context = _context(params)
        rec, now = self._read_key(params.get("KeyId"))
        material = self._usable_material(rec, now)
        material = rotation.current_material(self.workspace, rec.key_id, material, now)
        data_key = secrets.token_bytes(count)
        result: dict[str, Any] = {
            "CiphertextBlob": ciphertext.seal(rec.key_id, material, data_key, context),
            "KeyId": rec.arn,
        }
        if with_plaintext:
            result["Plaintext"] = data_key
        material_ref = rec.current_material_id(now)
        if material_ref:
            result["KeyMaterialId"] = material_ref
        return result

    @staticmethod
    def _symmetric_algorithm(params: dict[str, Any]) -> None:
        algorithm = params.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
        if algorithm != "SYMMETRIC_DEFAULT":
            raise _err(
                "InvalidKeyUsageException",
                f"EncryptionAlgorithm {algorithm} is not "
                "compatible with a SYMMETRIC_DEFAULT key; use SYMMETRIC_DEFAULT.",
            )

    # -- importing key material (BYOK) ----------------------------------------------------

    def GetParametersForImport(self, params: dict[str, Any]) -> dict[str, Any]:
        """Return an RSA wrapping public key and an import token, both valid for 24 hours."""
        algorithm = _enum(
            params.get("WrappingAlgorithm"),
            "wrappingAlgorithm",
            [a.value for a in WrappingAlgorithm] + ["SM2PKE"],
        )
        if algorithm == WrappingAlgorithm.RSAES_PKCS1_V1_5.value:
            raise _err(
                "UnsupportedOperationException",
                "RSAES_PKCS1_V1_5 is no longer supported as a wrapping algorithm (KMS "
                "stopped accepting it on 10 October 2023). Use RSAES_OAEP_SHA_256, or "
                "RSA_AES_KEY_WRAP_SHA_256 for material larger than RSA-OAEP can carry.",
            )
        if algorithm == "SM2PKE":
            raise _err(
                "UnsupportedOperationException",
                "SM2PKE is available only in China Regions and is not simulated.",
            )
        spec = _enum(
            params.get("WrappingKeySpec"),
            "wrappingKeySpec",
            [s.value for s in WrappingKeySpec] + ["SM2"],
        )
        if spec == "SM2":
            raise _err(
                "UnsupportedOperationException",
                "The SM2 wrapping key spec is available "
                "only in China Regions and is not simulated.",
            )
        rec, now = self._read_key(params.get("KeyId"))
        self._require_external(rec)
        if rec.state(now) is KeyState.PENDING_DELETION:
            raise self._invalid_state(rec, KeyState.PENDING_DELETION)
        # Key generation (up to a second or two for RSA-4096) happens outside the lock.
        private_key = rsa.generate_private_key(65537, WrappingKeySpec(spec).bits)
        token_id, secret = uuid.uuid4(), secrets.token_bytes(32)
        with self._write() as (data, now):
            rec = self._lookup(data, rec.key_id, now)
            record = ImportTokenRecord(
                token_id=str(token_id),
                key_id=rec.key_id,
                region=self.region,
                algorithm=algorithm,
                key_spec=spec,
                valid_to=now + IMPORT_PARAMETERS_LIFETIME_SECONDS,
                secret_hex=secret.hex(),
                private_key_pem=private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
            )
            data["import_tokens"][record.token_id] = record.to_json()
        return {
            "KeyId": rec.arn,
            "ImportToken": bytes([_TOKEN_VERSION]) + token_id.bytes + secret,
            "PublicKey": private_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "ParametersValidTo": record.valid_to,
        }

    def _token(self, data: dict[str, Any], raw_token: bytes, rec: KeyRecord) -> ImportTokenRecord:
        invalid = _err(
            "InvalidImportTokenException",
            "The import token is invalid: pass the "
            "ImportToken bytes from the same GetParametersForImport response as the "
            "public key you wrapped the key material with.",
        )
        if len(raw_token) != 1 + 16 + 32 or raw_token[0] != _TOKEN_VERSION:
            raise invalid
        token_id = str(uuid.UUID(bytes=raw_token[1:17]))
        raw = data["import_tokens"].get(token_id)
        if raw is None or not secrets.compare_digest(
            bytes.fromhex(raw["secret_hex"]), raw_token[17:]
        ):
            raise invalid
        token = ImportTokenRecord.from_json(raw)
        if token.key_id != rec.key_id:
            raise _err(
                "InvalidImportTokenException",
                "The import token is associated with a "
                f"different KMS key ({key_arn(token.region, token.key_id)}); call "
                f"GetParametersForImport for {rec.arn}.",
            )
        return token

    def ImportKeyMaterial(self, params: dict[str, Any]) -> dict[str, Any]:
        """Unwrap and import key material; the key becomes usable (PendingImport → Enabled)."""
        raw_token = _b64(params.get("ImportToken"), "importToken")
        wrapped = _b64(params.get("EncryptedKeyMaterial"), "encryptedKeyMaterial")
        model = params.get("ExpirationModel", ExpirationModel.KEY_MATERIAL_EXPIRES.value)
        _enum(model, "expirationModel", [m.value for m in ExpirationModel])
        import_type = params.get("ImportType")
        if import_type is not None:
            _enum(import_type, "importType", ["NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"])
        with self._write() as (data, now):
            rec = self._lookup(data, params.get("KeyId"), now)
            self._require_external(rec)
            state = rec.state(now)
            if state not in (KeyState.PENDING_IMPORT, KeyState.ENABLED):
                raise self._invalid_state(rec, state)
            token = self._token(data, raw_token, rec)
            if now >= token.valid_to:
                raise _err(
                    "ExpiredImportTokenException",
                    f"The import token expired at {_utc(token.valid_to)}"
                    " (import tokens are valid for 24 hours). Call GetParametersForImport "
                    "again and wrap the key material with the new public key.",
                )
            valid_to = self._valid_to(params, model, now)
            private_key = serialization.load_pem_private_key(token.private_key_pem.encode(), None)
            assert isinstance(private_key, rsa.RSAPrivateKey)
            try:
                material = unwrap_key_material(private_key, wrapped, token.algorithm)
            except UnwrapError:
                raise _err(
                    "InvalidCiphertextException",
                    "KMS could not decrypt the encrypted "
                    f"key material with the wrapping key of this import token and "
                    f"{token.algorithm}. Wrap it with the PublicKey and the "
                    "WrappingAlgorithm of the same GetParametersForImport call.",
                ) from None
            if len(material) != SYMMETRIC_KEY_BYTES:
                raise _err(
                    "IncorrectKeyMaterialException",
                    "The key material of a "
                    f"SYMMETRIC_DEFAULT key must be 256 bits (32 bytes); got "
                    f"{len(material)} bytes.",
                )
            new_id = material_id(rec.key_id, material)
            if rec.first_material_id is None:
                if import_type == "EXISTING_KEY_MATERIAL":
                    raise _err(
                        "IncorrectKeyMaterialException",
                        "No key material was imported "
                        "into this KMS key before: use ImportType NEW_KEY_MATERIAL (or omit it).",
                    )
                rec.first_material_id = new_id
            elif new_id != rec.first_material_id:
                if import_type == "NEW_KEY_MATERIAL":
                    raise _err(
                        "UnsupportedOperationException",
                        "Importing new key material for on-demand rotation is not simulated.",
                    )
                raise _err(
                    "IncorrectKeyMaterialException",
                    "The key material is not the same "
                    "as the key material previously imported into this KMS key. A KMS key "
                    "with imported material accepts only that same material again.",
                )
            rec.imported = ImportedMaterial(
                material_hex=material.hex(),
                material_id=new_id,
                expiration_model=model,
                valid_to=valid_to,
            )
            self._save(data, rec)
        return {"KeyId": rec.arn, "KeyMaterialId": new_id}

    @staticmethod
    def _valid_to(params: dict[str, Any], model: str, now: float) -> float | None:
        has_valid_to = params.get("ValidTo") is not None
        if model == ExpirationModel.KEY_MATERIAL_DOES_NOT_EXPIRE.value:
            if has_valid_to:
                raise _err(
                    "ValidationException",
                    "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.",
                )
            return None
        if not has_valid_to:
            raise _err(
                "ValidationException",
                "ValidTo is required when ExpirationModel is "
                "KEY_MATERIAL_EXPIRES (the default); give a date within 365 days, or "
                "set ExpirationModel=KEY_MATERIAL_DOES_NOT_EXPIRE.",
            )
        valid_to = _epoch(params["ValidTo"], "validTo")
        if valid_to <= now:
            raise _err("ValidationException", "ValidTo must be in the future.")
        if valid_to > now + MAX_VALID_TO_SECONDS:
            raise _err("ValidationException", "ValidTo must be at most 365 days from now.")
        return valid_to

    def DeleteImportedKeyMaterial(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete imported material: the key is PendingImport until the same material returns."""
        with self._write() as (data, now):
            rec = self._lookup(data, params.get("KeyId"), now)
            self._require_external(rec)
            wanted = params.get("KeyMaterialId")
            if wanted and wanted != rec.first_material_id:
                raise _err(
                    "NotFoundException", f"Key material {wanted} is not associated with {rec.arn}."
                )
            rec.imported = None
            self._save(data, rec)
        result = {"KeyId": rec.arn}
        if rec.first_material_id:
            result["KeyMaterialId"] = rec.first_material_id
        return result
