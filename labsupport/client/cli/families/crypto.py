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
from pkcs11 import KeyType, Mechanism

from labsupport.client.cli.families.key import require_true, require_type, select_one
from labsupport.client.cli.grammar import REGISTRY, Args, Flag, Kind, Need, command
from labsupport.crypto.hashes import HashAlg
from labsupport.errors import LabError

REGISTRY.category("crypto", "Cryptographic operations")
REGISTRY.category("crypto sign", "Sign data with a private key")
REGISTRY.category("crypto verify", "Verify a signature with a public key")

#: The hashes the CLI names (sha1 … sha512); PSS/DigestInfo details come from HashAlg.
HASHES = tuple(h.value for h in HashAlg)

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
        size = HashAlg(args.hash_function).digest_size
        if len(data) != size:
            raise LabError(
                f"A {args.hash_function} digest is {size} bytes; this one is {len(data)}.",
                "Pass the digest itself, or --data-type raw with the data.",
            )
        return data
    return hashlib.new(args.hash_function, data).digest()


def _plan(args: Args, scheme: str, key: Any) -> tuple[bytes, Mechanism, Any]:
    digest = _digest(args)
    alg = HashAlg(args.hash_function)
    if scheme == "rsa-pkcs":
        return alg.digest_info + digest, Mechanism.RSA_PKCS, None
    if scheme == "rsa-pkcs-pss":
        mgf = HashAlg(args.mgf.removeprefix("mgf1-")).mgf
        return digest, Mechanism.RSA_PKCS_PSS, (alg.mechanism, mgf, args.salt_length)
    return digest, Mechanism.ECDSA, None


#: The key type each signature scheme needs.
KEY_TYPES = {"rsa-pkcs": KeyType.RSA, "rsa-pkcs-pss": KeyType.RSA, "ecdsa": KeyType.EC}


def _check_key(key: Any, word: str, scheme: str) -> None:
    require_type(key, KEY_TYPES[scheme], f"{scheme} signatures")
    require_true(key, word)


def _sign(cli: Any, args: Args, scheme: str) -> dict[str, str]:
    if args.approval is not None:
        raise LabError("Key quorum is not enabled for this key.", "Drop --approval.")
    key = select_one(cli, [*args.key_filter, "attr.class=private-key"], "private key")
    _check_key(key, "sign", scheme)
    data, mechanism, param = _plan(args, scheme, key)
    signature = key.sign(data, mechanism=mechanism, mechanism_param=param)
    return {"key-reference": key.reference, "signature": base64.b64encode(signature).decode()}


def _verify(cli: Any, args: Args, scheme: str) -> str:
    key = select_one(cli, [*args.key_filter, "attr.class=public-key"], "public key")
    _check_key(key, "verify", scheme)
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
