"""Quorum (M of N) authentication for user management, with token-sign keys.

How it works on CloudHSM (CloudHSM CLI, "token-sign" strategy):

1. each approving admin makes an RSA-2048 key pair outside the HSM and registers the
   public key (``user change-quorum token-sign register --public-key … --signed-token …``,
   proving possession by signing a registration token);
2. an admin sets the quorum value of the ``user`` service
   (``quorum token-sign set-quorum-value --service user --value 2``) — from then on
   ``user create``, ``user delete`` and ``user change-password`` need approvals;
3. the admin who wants to run one of them asks the HSM for a token
   (``quorum token-sign generate --service user --token admin.token``): a JSON file with
   ``approval_data`` (raw data from the HSM), ``token`` (its SHA-256) and ``signatures``;
4. approvers sign the token bytes with their private key outside the HSM
   (``openssl pkeyutl -sign -pkeyopt digest:sha256`` — RSA PKCS#1 v1.5 over the
   SHA-256 digest, :func:`sign_token_file` does the same with ``cryptography``) and add
   ``{"username", "signature"}`` to the file;
5. the admin runs the command with ``--approval admin.token``; the HSM checks every
   signature against the registered keys, counts distinct approvers, and consumes the
   token (one operation per token). A token expires 600 s after it was generated (the
   lab clock) or when its owner logs out.

The settings live in the cluster document under ``"quorum"`` — like users, they are
part of what an HSM (and so a backup) holds.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from labsupport.client.errors import UserError
from labsupport.workspace.clock import LabClock
from labsupport.workspace.home import Workspace

TOKEN_TIMEOUT_SECONDS = 600
MAX_QUORUM = 8
TOKEN_VERSION = "2.0"


class QuorumService(str, enum.Enum):
    """Services with a quorum value (CloudHSM CLI ``--service``)."""

    USER = "user"  # user create / delete / change-password
    QUORUM = "quorum"  # set-quorum-value itself
    REGISTRATION = "registration"  # tokens that prove possession of a token-sign key


class QuorumError(UserError):
    """A quorum rule was not met (missing, expired or invalid approvals)."""


@dataclass(frozen=True)
class TokenInfo:
    """One outstanding token, as ``quorum token-sign list`` shows it."""

    username: str
    service: str
    approvals_required: int
    timeout_seconds: int

    def to_cli(self) -> dict[str, Any]:
        """The CLI's JSON shape."""
        return {
            "username": self.username,
            "service": self.service,
            "approvals-required": {"value": self.approvals_required},
            "number-of-approvals": {"value": 0},
            "token-timeout-seconds": {"value": self.timeout_seconds},
            "cluster-coverage": "full",
        }


class DocumentStore(Protocol):
    """What quorum needs of a cluster document (a ``client.clusterdata.ClusterStore``)."""

    workspace: Workspace

    def read(self) -> dict[str, Any]: ...

    def update(self) -> contextlib.AbstractContextManager[dict[str, Any]]: ...


def _now(store: DocumentStore) -> float:
    """The lab time of the cluster's lesson scope (tokens time out on it)."""
    return LabClock(store.workspace).now(store.read().get("owner") or None)


def _service(value: Any) -> QuorumService:
    try:
        return QuorumService(value)
    except ValueError:
        raise UserError(
            f"Unknown quorum service {value!r}.",
            "Use --service user (user management), quorum, or registration.",
        ) from None


def _section(data: dict[str, Any]) -> dict[str, Any]:
    quorum = data.setdefault("quorum", {})
    quorum.setdefault("values", {"user": 1, "quorum": 1})
    quorum.setdefault("keys", {})
    quorum.setdefault("tokens", {})
    return quorum


# -- the approver's side (outside the HSM) ------------------------------------------------------


def new_signing_key(private_path: Path, public_path: Path) -> rsa.RSAPrivateKey:
    """Make an approver's RSA-2048 token-sign key pair and write both PEM files (0600)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key


def sign_token(token_b64: str, private_key: rsa.RSAPrivateKey) -> str:
    """An approver's signature of a token: RSA PKCS#1 v1.5 over its SHA-256 bytes.

    The same as ``openssl pkeyutl -sign -pkeyopt digest:sha256 -in token.bin``.
    """
    token = base64.b64decode(token_b64)
    sig = private_key.sign(token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    return base64.b64encode(sig).decode()


def sign_token_file(path: Path | str, username: str, private_key: rsa.RSAPrivateKey) -> None:
    """Add ``username``'s signature to a token file (what an approving admin does)."""
    path = Path(path)
    doc = json.loads(path.read_text())
    doc.setdefault("signatures", []).append(
        {"username": username, "signature": sign_token(doc["token"], private_key)}
    )
    path.write_text(json.dumps(doc, indent=2))


# -- the HSM's side -----------------------------------------------------------------------------


class Quorum:
    """Quorum settings, registered keys and outstanding tokens of one cluster."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def value(self, service: QuorumService | str) -> int:
        """The quorum value (M) of ``service``; 1 means no approvals needed."""
        return int(
            self.store.read()
            .get("quorum", {})
            .get("values", {})
            .get(str(_service(service).value), 1)
        )

    def registered(self) -> list[str]:
        """Admins with a registered token-sign key."""
        return sorted(self.store.read().get("quorum", {}).get("keys", {}))

    def values(self) -> dict[str, int]:
        """Every service's quorum value (``list-quorum-values``)."""
        return {"user": self.value("user"), "quorum": self.value("quorum")}

    # -- tokens -------------------------------------------------------------------------

    def generate(self, username: str, service: QuorumService | str, path: Path | str) -> Path:
        """Write a new token file for ``username`` (one active token per user and service)."""
        svc = _service(service)
        now = _now(self.store)
        nonce = secrets.token_bytes(16)
        name = username.encode()[:31].ljust(32, b"\0")
        approval_data = struct.pack(">HHQ", 1, 3, int(now)) + nonce + name + svc.value.encode()
        token = hashlib.sha256(approval_data).digest()
        token_b64 = base64.b64encode(token).decode()
        with self.store.update() as data:
            tokens = _section(data)["tokens"]
            for tid, rec in list(tokens.items()):
                if rec["username"] == username and rec["service"] == svc.value:
                    del tokens[tid]
            tokens[token_b64] = {
                "username": username,
                "service": svc.value,
                "expires": now + TOKEN_TIMEOUT_SECONDS,
            }
        path = Path(path)
        path.write_text(
            json.dumps(
                {
                    "version": TOKEN_VERSION,
                    "approval_data": base64.b64encode(approval_data).decode(),
                    "token": token_b64,
                    "signatures": [],
                },
                indent=2,
            )
        )
        return path

    def tokens(self) -> list[TokenInfo]:
        """Outstanding (unexpired) tokens."""
        now = _now(self.store)
        out = []
        for rec in self.store.read().get("quorum", {}).get("tokens", {}).values():
            left = int(rec["expires"] - now)
            if left > 0:
                required = 1 if rec["service"] == "registration" else self.value(rec["service"])
                out.append(TokenInfo(rec["username"], rec["service"], required, left))
        return out

    def delete_tokens(self, username: str | None = None) -> int:
        """Delete the tokens of ``username`` (all when None); returns how many went."""
        with self.store.update() as data:
            tokens = _section(data)["tokens"]
            gone = [t for t, r in tokens.items() if username is None or r["username"] == username]
            for tid in gone:
                del tokens[tid]
        return len(gone)

    def _load(self, path: Path | str) -> dict[str, Any]:
        try:
            doc = json.loads(Path(path).read_text())
            approval_data = base64.b64decode(doc["approval_data"], validate=True)
            token = doc["token"]
        except (OSError, ValueError, KeyError, TypeError):
            raise QuorumError(
                f"{path} is not a quorum token file.",
                "Generate one with `quorum token-sign generate --service user --token FILE`.",
            ) from None
        if base64.b64encode(hashlib.sha256(approval_data).digest()).decode() != token:
            raise QuorumError(
                "The token file was altered: its token is not the SHA-256 of its approval_data.",
                "Generate a new token and have it signed again.",
            )
        return doc

    def _verified_approvers(self, doc: dict[str, Any], keys: dict[str, str]) -> list[str]:
        token = base64.b64decode(doc["token"])
        approvers: list[str] = []
        for entry in doc.get("signatures", []):
            name = str(entry.get("username", "")).lower()
            pem = keys.get(name)
            if pem is None:
                raise QuorumError(
                    f"{name or 'an approver'} has no registered token-sign key, so their "
                    "approval cannot count.",
                    "Approvers register with `user change-quorum token-sign register`.",
                )
            public = serialization.load_pem_public_key(pem.encode())
            try:
                sig = base64.b64decode(entry.get("signature", ""), validate=True)
                public.verify(sig, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))  # type: ignore[union-attr,call-arg]
            except (InvalidSignature, ValueError, TypeError):
                raise QuorumError(
                    f"The signature of {name} does not verify with {name}'s registered key: "
                    "the approval is forged or was made for another token.",
                    f"{name} must sign this token's bytes with their own private key.",
                ) from None
            if name not in approvers:
                approvers.append(name)
        return approvers

    def consume(self, actor: str, service: QuorumService | str, path: Path | str) -> list[str]:
        """Check a signed token file for ``actor``'s ``service`` operation and use it up.

        Returns the approvers. Raises :class:`QuorumError` if the token is unknown,
        expired, altered, or has fewer than M valid signatures from registered admins.
        """
        svc = _service(service)
        doc = self._load(path)
        now = _now(self.store)
        with self.store.update() as data:
            quorum = _section(data)
            rec = quorum["tokens"].get(doc["token"])
            if rec is None or rec["username"] != actor or rec["service"] != svc.value:
                raise QuorumError(
                    "This token was not issued to you for this service (or was already used).",
                    f"Generate a new one: `quorum token-sign generate --service {svc.value} "
                    "--token FILE`.",
                )
            if rec["expires"] <= now:
                del quorum["tokens"][doc["token"]]
                raise QuorumError(
                    f"The quorum token expired ({TOKEN_TIMEOUT_SECONDS} s after it was made).",
                    "Generate a new token and collect the signatures again.",
                )
            approvers = self._verified_approvers(doc, quorum["keys"])
            required = (
                1 if svc is QuorumService.REGISTRATION else int(quorum["values"].get(svc.value, 1))
            )
            if len(approvers) < required:
                raise QuorumError(
                    f"The token has {len(approvers)} valid approval(s); the {svc.value} service "
                    f"needs {required}.",
                    "Collect signatures from more admins with registered token-sign keys.",
                )
            del quorum["tokens"][doc["token"]]
        return approvers

    def require(
        self, actor: str, service: QuorumService | str, approval: Path | str | None
    ) -> None:
        """Enforce the quorum of ``service`` for one operation by ``actor``."""
        if self.value(service) <= 1 and approval is None:
            return
        if approval is None:
            raise QuorumError(
                "Quorum approval is required for this operation",
                f"Get a token (`quorum token-sign generate --service {_service(service).value} "
                "--token FILE`), have M admins sign it, and pass --approval FILE.",
            )
        self.consume(actor, service, approval)

    # -- settings ------------------------------------------------------------------------

    def register(self, username: str, public_key_pem: str, signed_token: Path | str) -> None:
        """Register ``username``'s token-sign public key (proved by a signed registration token)."""
        try:
            public = serialization.load_pem_public_key(public_key_pem.encode())
        except ValueError:
            raise UserError(
                "The public key is not a PEM public key.", "Pass the .pem of an RSA-2048 key."
            ) from None
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size != 2048:
            raise UserError(
                "Token-sign keys are RSA 2048-bit keys.", "Generate an RSA-2048 key pair."
            )
        doc = self._load(signed_token)
        with self.store.update() as data:
            quorum = _section(data)
            rec = quorum["tokens"].get(doc["token"])
            if rec is None or rec["username"] != username or rec["service"] != "registration":
                raise QuorumError(
                    "That is not your registration token.",
                    "Run `quorum token-sign generate --service registration --token FILE` "
                    "and sign it.",
                )
            names = {str(s.get("username", "")).lower() for s in doc.get("signatures", [])}
            if username not in names:
                raise QuorumError(
                    "The registration token is not signed by you.",
                    "Sign it with your new private key.",
                )
            self._verified_approvers(
                {
                    **doc,
                    "signatures": [s for s in doc["signatures"] if s.get("username") == username],
                },
                {username: public_key_pem},
            )
            quorum["keys"][username] = public_key_pem
            del quorum["tokens"][doc["token"]]

    def set_value(
        self,
        actor: str,
        service: QuorumService | str,
        value: int,
        approval: Path | str | None = None,
    ) -> None:
        """Set the quorum value (M) of ``service`` (needs the ``quorum`` service's quorum)."""
        svc = _service(service)
        if svc is QuorumService.REGISTRATION:
            raise UserError(
                "The registration service has no quorum value.", "Use --service user or quorum."
            )
        if not 1 <= value <= MAX_QUORUM:
            raise UserError(
                f"A quorum value is 1 to {MAX_QUORUM}, not {value}.", "Choose a smaller M."
            )
        registered = self.registered()
        if value > max(1, len(registered)):
            raise QuorumError(
                f"Only {len(registered)} admin(s) have a token-sign key; a quorum of {value} "
                "could never be met.",
                "Register more admins' keys first (user change-quorum token-sign register).",
            )
        self.require(actor, QuorumService.QUORUM, approval)
        with self.store.update() as data:
            _section(data)["values"][svc.value] = value


__all__ = [
    "MAX_QUORUM",
    "TOKEN_TIMEOUT_SECONDS",
    "Quorum",
    "QuorumError",
    "QuorumService",
    "TokenInfo",
    "new_signing_key",
    "sign_token",
    "sign_token_file",
]
