"""``crypto sign|verify rsa-pkcs|rsa-pkcs-pss|ecdsa``.

The flags are the user guide's (``--key-filter``, ``--hash-function``, ``--data`` base64 or
``--data-path``, ``--data-type raw|digest``). The success output shapes are **modelled**
(the pages show none): sign answers ``{"key-reference", "signature"}`` (base64), verify
answers ``"Signature verified successfully"``; a bad signature is ``error_code`` 1.

As in CloudHSM's Client SDK 5, raw data is hashed on the client and the HSM signs the
digest (SoftHSM 2.6 also lacks ``CKM_ECDSA_SHA256``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import MGF, Attribute, Mechanism

from labsupport.client.cli.families.key import select_one
from labsupport.client.cli.grammar import REGISTRY, Args, Flag, Kind, Need, command
from labsupport.errors import LabError

REGISTRY.category("crypto", "Cryptographic operations")
REGISTRY.category("crypto sign", "Sign data with a private key")
REGISTRY.category("crypto verify", "Verify a signature with a public key")

HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")
_PSS = {
    "sha1": (Mechanism.SHA_1, MGF.SHA1),
    "sha224": (Mechanism.SHA224, MGF.SHA224),
    "sha256": (Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512, MGF.SHA512),
}
# DigestInfo prefixes (RFC 8017 §9.2 note 1) for RSA PKCS #1 v1.5 over a digest.
_DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

COMMON = (
    Flag(
        "--key-filter",
        "Key reference (e.g. key-reference=0xabc) or space separated list of "
        "key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select "
        "a matching key",
        required=True,
        kind=Kind.LIST,
    ),
    Flag("--hash-function", "Hash algorithm", required=True, choices=HASHES),
    Flag("--data-path", "The path to the file containing the data"),
    Flag("--data", "Base64 Encoded data"),
    Flag(
        "--data-type", "The type of data passed in, either raw or digest", choices=("raw", "digest")
    ),
    Flag("--approval", "Filepath of signed quorum token file to approve operation"),
)
PSS = (
    Flag(
        "--mgf",
        "Mask generation function",
        required=True,
        choices=tuple(f"mgf1-{h}" for h in HASHES),
    ),
    Flag("--salt-length", "Salt length in bytes", required=True, convert=int),
)
SIGNATURE = (
    Flag("--signature-path", "The path to the file containing the signature"),
    Flag("--signature", "Base64 encoded signature"),
)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise LabError(f"{what} is not valid base64.", f"Encode {what} with base64.") from None


def _one_of(args: Args, inline: str, path: str, what: str) -> bytes:
    given_inline, given_path = args.get(inline), args.get(path)
    flag_a, flag_b = "--" + inline.replace("_", "-"), "--" + path.replace("_", "-")
    if (given_inline is None) == (given_path is None):
        raise LabError(f"Give exactly one of {flag_a} or {flag_b}.", f"Pass the {what}.")
    if given_inline is not None:
        return _b64(given_inline, flag_a)
    try:
        return Path(given_path).expanduser().read_bytes()
    except OSError as exc:
        raise LabError(f"Cannot read {given_path}: {exc.strerror}.", "Check the path.") from None


def _digest(args: Args) -> bytes:
    data = _one_of(args, "data", "data_path", "data")
    if args.data_type == "digest":
        if len(data) != hashlib.new(args.hash_function).digest_size:
            raise LabError(
                f"A {args.hash_function} digest is {hashlib.new(args.hash_function).digest_size} "
                f"bytes; this one is {len(data)}.",
                "Pass the digest itself, or --data-type raw with the data.",
            )
        return data
    return hashlib.new(args.hash_function, data).digest()


def _plan(args: Args, scheme: str, key: Any) -> tuple[bytes, Mechanism, Any]:
    digest = _digest(args)
    if scheme == "rsa-pkcs":
        return _DIGEST_INFO[args.hash_function] + digest, Mechanism.RSA_PKCS, None
    if scheme == "rsa-pkcs-pss":
        hash_mech, _ = _PSS[args.hash_function]
        mgf = _PSS[args.mgf.removeprefix("mgf1-")][1]
        return digest, Mechanism.RSA_PKCS_PSS, (hash_mech, mgf, args.salt_length)
    return digest, Mechanism.ECDSA, None


def _check_key(key: Any, capability: Attribute, word: str) -> None:
    if not key[capability]:
        raise LabError(
            f"Key {key.reference} has {word}=false (AWS's default for keys the CLI generates), "
            f"so the HSM refuses to {word} with it.",
            f"key set-attribute --filter key-reference={key.reference} --name {word} --value true",
        )


def _sign(cli: Any, args: Args, scheme: str) -> dict[str, str]:
    if args.approval is not None:
        raise LabError("Key quorum is not enabled for this key.", "Drop --approval.")
    key = select_one(cli, [*args.key_filter, "attr.class=private-key"], "private key")
    _check_key(key, Attribute.SIGN, "sign")
    data, mechanism, param = _plan(args, scheme, key)
    signature = key.sign(data, mechanism=mechanism, mechanism_param=param)
    return {"key-reference": key.reference, "signature": base64.b64encode(signature).decode()}


def _verify(cli: Any, args: Args, scheme: str) -> str:
    key = select_one(cli, [*args.key_filter, "attr.class=public-key"], "public key")
    _check_key(key, Attribute.VERIFY, "verify")
    signature = _one_of(args, "signature", "signature_path", "signature")
    data, mechanism, param = _plan(args, scheme, key)
    try:
        ok = key.verify(data, signature, mechanism=mechanism, mechanism_param=param)
    except (pkcs11.exceptions.SignatureInvalid, pkcs11.exceptions.SignatureLenRange):
        ok = False
    if not ok:
        raise LabError(
            "Signature verification failed: the signature does not match this data and key.",
            "Check the data, the hash function and the key (it must be the signing key's "
            "public half).",
        )
    return "Signature verified successfully"


for _scheme, _extra, _title in (
    ("rsa-pkcs", (), "the RSA-PKCS mechanism"),
    ("rsa-pkcs-pss", PSS, "the RSA-PKCS-PSS mechanism"),
    ("ecdsa", (), "the ECDSA mechanism"),
):

    def _make(scheme: str, extra: tuple, title: str) -> None:
        @command(
            f"crypto sign {scheme}",
            f"Sign with {title}",
            Need.CRYPTO_USER,
            *COMMON,
            *extra,
            modelled="the output shape",
        )
        def sign(cli: Any, args: Args) -> dict[str, str]:
            return _sign(cli, args, scheme)

        @command(
            f"crypto verify {scheme}",
            f"Verify with {title}",
            Need.CRYPTO_USER,
            *COMMON,
            *extra,
            *SIGNATURE,
            modelled="the output shape",
        )
        def verify(cli: Any, args: Args) -> str:
            return _verify(cli, args, scheme)

    _make(_scheme, _extra, _title)
