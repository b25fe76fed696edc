"""Every CloudHSM CLI command: its success shape and a refusal, through the console script
(``cloudhsm-cli interactive`` reading a pipe) and through the ``%cloudhsm_cli`` magic.

One script of command lines is played through both channels against a cluster made with
boto3 as lesson 02 teaches; each line says whether AWS would accept it and what to check.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli_fixtures import Cluster, Interactive, cluster_fixture, run_tool  # noqa: F401
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from labsupport.client.cli import REGISTRY, UsageError
from labsupport.client.cli.families.wrap import REFUSED as REFUSED_WRAPS
from labsupport.client.quorum import sign_token_file

Check = Callable[[Any], bool]
#: Wrap mechanisms the lab always refuses (SoftHSM lacks them).
REFUSED_MECHANISMS = tuple(REFUSED_WRAPS)


@dataclass(frozen=True)
class Step:
    """One command line of the script: accepted by AWS?, a check of ``data``, and what
    the learner does next outside the CLI (``then``, e.g. sign the token file it wrote)."""

    line: str
    ok: bool
    check: Check | None = None
    then: Callable[[Any], None] | None = None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


AES_DEFAULTS = {
    "encrypt": False, "decrypt": False, "wrap": False, "unwrap": False, "sign": True,
    "verify": True, "derive": False, "token": True, "extractable": True, "sensitive": True,
    "always-sensitive": True, "never-extractable": False, "local": True, "private": True,
    "modifiable": True, "destroyable": True, "trusted": False, "wrap-with-trusted": False,
}  # fmt: skip
AWS_ORDER = [
    "key-type", "label", "id", "check-value", "class", "encrypt", "decrypt", "token",
    "always-sensitive", "derive", "destroyable", "extractable", "local", "modifiable",
    "never-extractable", "private", "sensitive", "sign", "trusted", "unwrap", "verify", "wrap",
    "wrap-with-trusted", "key-length-bytes",
]  # fmt: skip


def _attrs(d: Any) -> dict:
    return d["key"]["attributes"]


def _aes_defaults(d: Any) -> bool:
    attrs = _attrs(d)
    return (
        list(attrs) == AWS_ORDER
        and all(attrs[k] == v for k, v in AES_DEFAULTS.items())
        and attrs["key-length-bytes"] == 32
        and attrs["check-value"].startswith("0x")
        and len(attrs["check-value"]) == 8
        and d["key"]["key-reference"].startswith("0x")
        and len(d["key"]["key-reference"]) == 18
        and d["key"]["key-info"]["key-quorum-values"]
        == {"manage-key-quorum-value": 0, "use-key-quorum-value": 0}
    )


def script(tmp: Path) -> list[tuple]:
    """(command line, accepted?, check of data) — in the order a learner would type them."""
    rsa_key = rsa.generate_private_key(65537, 2048)  # also admin's token-sign key
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem, ec_pem = tmp / "pub.pem", tmp / "ec.pem"
    for path, key in ((pem, rsa_key), (ec_pem, ec_key)):
        path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    message = b"hello cloudhsm"
    data = base64.b64encode(message).decode()
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    sig_pkcs = _b64(rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()))
    sig_pss = _b64(rsa_key.sign(message, pss, hashes.SHA256()))
    r, s = decode_dss_signature(ec_key.sign(message, ec.ECDSA(hashes.SHA256())))
    sig_ec = _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))  # PKCS #11: r || s
    zeros = _b64(bytes(256))
    reg, tok = tmp / "admin.registration", tmp / "admin.token"

    def sign_registration(_: Any) -> None:
        sign_token_file(reg, "admin", rsa_key)

    pages = [
        (f"key generate-symmetric aes --label page-{i} --key-length-bytes 16", True, None)
        for i in range(6)
    ]
    return [
        ("user list", True, lambda d: d["users"][0]["role"] == "unactivated-admin"),
        ("login --username admin --role admin --password admin-pw-1", False, None),
        ("cluster activate --password admin-pw-1", True,
         lambda d: d == "Cluster activation successful"),
        ("cluster activate --password admin-pw-1", False,
         lambda d: d == "Cluster has already been activated"),
        ("cluster hsm-info", True, lambda d: len(d["hsms"]) == 2 and "fips-state" in d["hsms"][0]),
        ("quorum token-sign list", False, lambda d: "logged-in" in d),
        ("quorum token-sign list-quorum-values", False, None),
        ("cluster hsm-info --cluster-id cluster-nope1234567", False, None),
        ("user create --username cu --role crypto-user --password cu-pass-1", False,
         lambda d: "admin" in d),
        ("login --username admin --role admin --password wrong-pw-1", False, None),
        ("login --username admin --role admin --password admin-pw-1", True,
         lambda d: d == {"username": "admin", "role": "admin"}),
        ("login --username admin --role admin --password admin-pw-1", False, None),
        ("key list", True, lambda d: d["total_key_count"] == 0),
        ("key list --filter attr.encrypt=true", False, lambda d: "admin" in d),
        ("quorum token-sign list-quorum-values", True,
         lambda d: d["user"] == 1 and d["quorum"] == 1),
        (f"quorum token-sign generate --service registration --token {reg}", True,
         lambda d: d == {"filepath": str(reg)}, sign_registration),
        (f"quorum token-sign generate --service user --token {tmp / 'no' / 'such.token'}", False,
         None),
        (f"user change-quorum token-sign register --public-key {pem} --signed-token {reg}", True,
         lambda d: d == {"username": "admin", "role": "admin"}),
        (f"user change-quorum token-sign register --public-key {pem} --signed-token {reg}", False,
         lambda d: "registration token" in d),  # a token is good once
        ("quorum token-sign set-quorum-value --service user --value 1", True,
         lambda d: d == "Set quorum value successful"),
        ("quorum token-sign set-quorum-value --service user --value 2", False,
         lambda d: "never be met" in d),  # one registered admin
        (f"quorum token-sign generate --service user --token {tok}", True, None),
        ("quorum token-sign list", True,
         lambda d: [(t["username"], t["service"]) for t in d["tokens"]] == [("admin", "user")]),
        ("quorum token-sign delete --scope user", True,
         lambda d: d == "Deleted 1 token(s) successfully"),
        ("user create --username cu --role cu --password cu-pass-1", False, None),
        ("user create --username cu --role crypto-user --password cu-pass-1", True,
         lambda d: d == {"username": "cu", "role": "crypto-user"}),
        ("user create --username Bob_2 --role crypto-user --password bob-pass-1", True,
         lambda d: d["username"] == "bob_2"),
        ("user create --username tmp --role crypto-user --password tmp-pass-1", True, None),
        ("user create --username CU --role crypto-user --password cu-pass-1", False,
         lambda d: "User already exists" in d),
        ("user create --username bad-name --role crypto-user --password x-pass-12", False, None),
        (f"user create --username {'u' * 32} --role crypto-user --password x-pass-12", False,
         lambda d: "31" in d),
        ("user list --verbose", False, lambda d: "unexpected argument '--verbose'" in d),
        ("user change-mfa token-sign --username cu --role crypto-user --deregister", True,
         lambda d: d == {"username": "cu", "role": "crypto-user"}),
        ("user change-mfa token-sign --username cu --role crypto-user --token t.json", False,
         None),
        ("user change-password --username tmp --role crypto-user --password tmp-pass-2", True,
         lambda d: d["username"] == "tmp"),
        ("user change-password --username tmp --role admin --password tmp-pass-2", False, None),
        ("user delete --username tmp --role crypto-user", True, lambda d: d["username"] == "tmp"),
        ("user delete --username admin --role admin", False, None),
        ("logout", True, lambda d: d == "Logout successful"),
        ("logout", False, lambda d: d == "This command needs a logged-in user."),
        ("login --username cu --role crypto-user --password cu-pass-1", True, None),
        ("user create --username x --role crypto-user --password x-pass-12", False, None),
        ("quorum token-sign delete --scope all", False, lambda d: "admins" in d),
        ("key generate-symmetric aes --label aes-1 --key-length-bytes 32", True, _aes_defaults),
        ("key generate-symmetric aes --label aes-2 --key-length-bytes 20", False, None),
        ("key generate-symmetric aes --key-length-bytes 16", False, lambda d: "--label" in d),
        (f"key generate-symmetric aes --label {'l' * 128} --key-length-bytes 16", False,
         lambda d: "127" in d),
        ("key generate-symmetric aes --label wk --key-length-bytes 32 "
         "--attributes wrap=true unwrap=true encrypt=true decrypt=true", True,
         lambda d: _attrs(d)["wrap"] and _attrs(d)["encrypt"] and _attrs(d)["sign"]),
        ("key generate-symmetric aes --label t --key-length-bytes 16 --attributes trusted=true",
         False, None),
        ("key generate-symmetric aes --label q --key-length-bytes 16 --use-key-quorum-value 9",
         False, lambda d: "at most 8" in d),
        ("key generate-symmetric aes --label q --key-length-bytes 16 --manage-key-quorum-value 1",
         False, lambda d: "does not simulate key quorum" in d),
        ("key generate-symmetric generic-secret --label hmac --key-length-bytes 32", True,
         lambda d: _attrs(d)["key-type"] == "generic-secret"),
        ("key generate-symmetric generic-secret --label h --key-length-bytes 0", False, None),
        ("key generate-asymmetric-pair rsa --public-label rpub --private-label rpriv "
         "--modulus-size-bits 2048 --public-exponent 65537 --private-attributes sign=true",
         True, lambda d: d["public_key"]["attributes"]["encrypt"] is True
         and d["public_key"]["attributes"]["verify"] is False
         and d["private_key"]["attributes"]["sign"] is True
         and d["public_key"]["attributes"]["modulus-size-bits"] == 2048
         and d["public_key"]["attributes"]["public-exponent"] == "0x010001"
         and d["public_key"]["attributes"]["check-value"]
         == d["private_key"]["attributes"]["check-value"]),
        ("key generate-asymmetric-pair rsa --public-label a --private-label b "
         "--modulus-size-bits 1024 --public-exponent 65537", False, lambda d: "2048" in d),
        ("key generate-asymmetric-pair ec --public-label epub --private-label epriv "
         "--curve secp224r1 --private-attributes sign=true --public-attributes verify=true",
         True, lambda d: d["public_key"]["attributes"]["key-length-bytes"] == 57
         and d["private_key"]["attributes"]["key-length-bytes"] == 122
         and d["private_key"]["attributes"]["curve"] == "secp224r1"
         and d["private_key"]["attributes"]["ec-point"].startswith("0x04")),
        ("key generate-asymmetric-pair ec --public-label a --private-label b --curve p999",
         False, None),
        *pages,
        ("key list", True, lambda d: d["total_key_count"] == 13 and d["returned_key_count"] == 10
         and d["next_token"] == "10" and set(d["matched_keys"][0]) == {"key-reference",
                                                                       "attributes"}),
        ("key list --starting-token 10", True,
         lambda d: d["returned_key_count"] == 3 and "next_token" not in d),
        ("key list --starting-token nope", False, None),
        ("key list --filter attr.label=aes-1 --verbose", True,
         lambda d: d["matched_keys"][0]["key-info"]["key-owners"][0]["username"] == "cu"),
        ("key list --filter attr.class=private-key attr.key-type=ec", True,
         lambda d: d["total_key_count"] == 1),
        ("key list --filter attr.colour=blue", False, None),
        ("key set-attribute --filter attr.label=aes-1 --name encrypt --value true", True,
         lambda d: d == {"message": "Attribute set successfully"}),
        ("key set-attribute --filter attr.label=aes-1 --name extractable --value false", False,
         None),
        ("key list --filter attr.label=aes-1 attr.encrypt=true", True,
         lambda d: d["total_key_count"] == 1),
        (f"key wrap aes-no-pad --payload-filter attr.label=aes-1 --wrapping-filter "
         f"attr.label=wk --path {tmp / 'w1'}", True,
         lambda d: set(d) == {"payload_key_reference", "wrapping_key_reference",
                              "wrapped_key_data"}),
        ("key wrap aes-no-pad --payload-filter attr.label=wk --wrapping-filter attr.label=aes-1",
         False, lambda d: "wrap=false" in d),
        (f"key unwrap aes-no-pad --filter attr.label=wk --key-type-class aes --label back "
         f"--data-path {tmp / 'w1'} --attributes encrypt=true", True,
         lambda d: _attrs(d)["local"] is False and _attrs(d)["encrypt"] is True),
        ("key unwrap aes-no-pad --filter attr.label=wk --key-type-class aes --label x "
         "--data bm90IGEga2V5", False, None),
        *[(f"key wrap {m} --payload-filter attr.label=aes-1 --wrapping-filter attr.label=epub"
           f"{' --hash-function sha1 --mgf mgf1-sha1' if m != 'rsa-pkcs' else ''}", False,
           lambda d: "wrap=false" in d) for m in ("rsa-oaep", "rsa-pkcs", "rsa-aes")],
        *[(f"key unwrap {m} --filter attr.label=rpriv --key-type-class aes --label x --data AAAA"
           f"{' --hash-function sha1 --mgf mgf1-sha1' if m != 'rsa-pkcs' else ''}", False, None)
          for m in ("rsa-oaep", "rsa-pkcs", "rsa-aes")],
        ("key set-attribute --filter attr.label=rpub --name wrap --value true", True, None),
        ("key set-attribute --filter attr.label=rpriv --name unwrap --value true", True, None),
        (f"key wrap rsa-oaep --payload-filter attr.label=aes-1 --wrapping-filter "
         f"attr.label=rpub --hash-function sha1 --mgf mgf1-sha1 --path {tmp / 'w2'}", True, None),
        (f"key unwrap rsa-oaep --filter attr.label=rpriv --key-type-class aes --label back2 "
         f"--hash-function sha1 --mgf mgf1-sha1 --data-path {tmp / 'w2'}", True,
         lambda d: _attrs(d)["key-type"] == "aes" and _attrs(d)["local"] is False),
        (f"key wrap rsa-aes --payload-filter attr.label=aes-1 --wrapping-filter "
         f"attr.label=rpub --hash-function sha1 --mgf mgf1-sha1 --path {tmp / 'w3'}", True,
         lambda d: set(d) == {"payload-key-reference", "wrapping-key-reference",
                              "wrapped-key-data"}),
        (f"key unwrap rsa-aes --filter attr.label=rpriv --key-type-class aes --label back3 "
         f"--hash-function sha1 --mgf mgf1-sha1 --data-path {tmp / 'w3'}", True, None),
        (f"key wrap rsa-pkcs --payload-filter attr.label=aes-1 --wrapping-filter "
         f"attr.label=rpub --path {tmp / 'w4'}", True, None),
        (f"key unwrap rsa-pkcs --filter attr.label=rpriv --key-type-class aes --label back4 "
         f"--data-path {tmp / 'w4'}", True, None),
        ("key wrap aes-gcm --payload-filter attr.label=aes-1 --wrapping-filter attr.label=wk",
         False, lambda d: "CKM_AES_GCM" in d),
        *[(f"key wrap {m} --payload-filter attr.label=aes-1 --wrapping-filter attr.label=wk",
           False, lambda d: "SoftHSM" in d) for m in REFUSED_MECHANISMS],
        *[(f"key unwrap {m} --filter attr.label=wk --key-type-class aes --label z --data AAAA",
           False, lambda d: "SoftHSM" in d) for m in REFUSED_MECHANISMS],
        (f"key import pem --path {pem} --label imported --key-type-class rsa-public "
         "--attributes verify=true", True,
         lambda d: d["message"] == "Successfully imported key"
         and d["key"]["attributes"]["local"] is False),
        (f"key import pem --path {pem} --label imported2 --key-type-class ec-public", False,
         None),
        (f"key import pem --path {ec_pem} --label imported3 --key-type-class ec-public "
         "--attributes verify=true", True,
         lambda d: d["key"]["attributes"]["curve"] == "secp256r1"),
        (f"crypto sign rsa-pkcs --key-filter attr.label=rpriv --hash-function sha256 "
         f"--data {data}", True, lambda d: len(base64.b64decode(d["signature"])) == 256),
        (f"crypto sign ecdsa --key-filter attr.label=rpriv --hash-function sha256 --data {data}",
         True, None),  # an RSA key: the HSM refuses the mechanism → checked below per channel
        (f"crypto sign rsa-pkcs-pss --key-filter attr.label=rpriv --hash-function sha256 "
         f"--mgf mgf1-sha256 --salt-length 32 --data {data}", True, None),
        (f"crypto sign ecdsa --key-filter attr.label=epriv --hash-function sha256 --data {data}",
         True, None),
        (f"crypto sign rsa-pkcs --key-filter attr.label=rpriv --hash-function sha256 "
         f"--data-type digest --data {data}", False, lambda d: "32 bytes" in d),
        (f"crypto sign rsa-pkcs-pss --key-filter attr.label=epriv --hash-function sha256 "
         f"--mgf mgf1-sha256 --salt-length 32 --data {data}", False, None),  # an EC key
        (f"crypto verify rsa-pkcs --key-filter attr.label=rpub --hash-function sha256 "
         f"--data {data} --signature {zeros}", False, None),
        (f"crypto verify rsa-pkcs --key-filter attr.label=imported --hash-function sha256 "
         f"--data {data} --signature {sig_pkcs}", True,
         lambda d: d == "Signature verified successfully"),
        (f"crypto verify rsa-pkcs-pss --key-filter attr.label=imported --hash-function sha256 "
         f"--mgf mgf1-sha256 --salt-length 32 --data {data} --signature {sig_pss}", True, None),
        (f"crypto verify rsa-pkcs-pss --key-filter attr.label=imported --hash-function sha256 "
         f"--mgf mgf1-sha256 --salt-length 32 --data {data} --signature {zeros}", False,
         lambda d: "verification failed" in d),
        (f"crypto verify ecdsa --key-filter attr.label=imported3 --hash-function sha256 "
         f"--data {data} --signature {sig_ec}", True, None),
        (f"crypto verify ecdsa --key-filter attr.label=imported3 --hash-function sha384 "
         f"--data {data} --signature {sig_ec}", False, None),  # signed over SHA-256
        ("key share --filter attr.label=aes-1 --username bob_2 --role crypto-user", True,
         lambda d: d == {"message": "Key shared successfully"}),
        ("key share --filter attr.label=aes-1 --username nobody --role crypto-user", False,
         None),
        ("key unshare --filter attr.label=aes-1 --username bob_2 --role crypto-user", True,
         lambda d: d == {"message": "Key unshared successfully"}),
        ("key unshare --filter attr.label=aes-1 --username nobody --role crypto-user", False,
         None),
        ("key replicate --filter attr.label=aes-1 --source-cluster-id a --destination-cluster-id "
         "b", False, lambda d: "clone" in d),
        ("key delete --filter attr.label=page-0", True,
         lambda d: d == {"message": "Key deleted successfully"}),
        ("key delete --filter attr.label=page-0", False, None),
        ("key delete --filter attr.key-type=aes", False, lambda d: "exactly one" in d),
        ("logout", True, None),
        ("login --username admin --role admin --password admin-pw-1", True, None),
        ("user delete --username cu --role crypto-user", False, lambda d: "owns" in d),
        ("key list --filter attr.class=secret-key --max-items 3", True,
         lambda d: d["returned_key_count"] == 3 and d["next_token"] == "3"
         and set(d["matched_keys"][0]) == {"key-reference", "attributes"}),
        ("key generate-symmetric aes --label a --key-length-bytes 16", False,
         lambda d: "crypto user" in d),
        ("help", True, None),
        ("help key wrap", True, None),
    ]  # fmt: skip


def steps(tmp: Path) -> list[Step]:
    """The script as :class:`Step` s; ECDSA with an RSA key is refused by the HSM
    (CKR_KEY_TYPE_INCONSISTENT)."""
    out = []
    for entry in script(tmp):
        step = Step(*entry)
        if "sign ecdsa" in step.line and "rpriv" in step.line:
            step = Step(step.line, False, step.check, step.then)
        out.append(step)
    return out


def _play(plan: list[Step], send: Callable[[str], dict[str, Any]]) -> None:
    """Run each step through ``send`` (one channel) and check its answer."""
    for step in plan:
        got = send(step.line)
        if "text" in got:  # help: plain text
            assert step.ok and ("Usage" in got["text"] or "Commands" in got["text"]), step.line
            continue
        assert got["error_code"] == (0 if step.ok else 1), f"{step.line}\n→ {got}"
        if step.check is not None:
            assert step.check(got["data"]), f"{step.line}\n→ {got['data']}"
        if step.then is not None:
            step.then(got["data"])


def test_the_script_shows_every_command_succeed_and_refuse(tmp_path: Path) -> None:
    """Coverage cannot rot: a new command fails here until the script shows it working
    (unless the lab always refuses it, ``Command.refused``) and refusing."""
    seen: dict[bool, set[str]] = {True: set(), False: set()}
    for step in steps(tmp_path):
        try:
            cmd, _ = REGISTRY.find(shlex.split(step.line))
        except UsageError:
            continue  # help
        seen[step.ok].add(cmd.name)
    missing = []
    for cmd in REGISTRY.commands.values():
        if cmd.name not in seen[False]:
            missing.append(f"{cmd.name}: no refusal")
        if cmd.refused and cmd.name in seen[True]:
            missing.append(f"{cmd.name}: the lab always refuses it, yet a step expects success")
        if not cmd.refused and cmd.name not in seen[True]:
            missing.append(f"{cmd.name}: no success")
    assert not missing, "script() lacks:\n" + "\n".join(missing)


def test_every_command_through_the_console_script(cluster, tmp_path: Path) -> None:
    configured = run_tool(
        "configure-cli", "--cluster-id", cluster.cluster_id, "--hsm-ca-cert", str(cluster.ca)
    )
    assert configured.returncode == 0, configured.stderr
    cli = Interactive()
    try:
        _play(steps(tmp_path), cli.send)
    finally:
        assert cli.close() == 0
    assert "Traceback" not in cli.errors(), cli.errors()


def test_every_command_through_the_magic(cluster, tmp_path: Path, capsys) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from labsupport.client.cli import magic
    from labsupport.client.cli.main import configure_cli

    assert (
        configure_cli(["--cluster-id", cluster.cluster_id, "--hsm-ca-cert", str(cluster.ca)]) == 0
    )
    capsys.readouterr()
    shell = InteractiveShell.instance()
    magic.load_ipython_extension(shell)
    magic.reset()

    def send(line: str) -> dict[str, Any]:
        got = shell.run_line_magic("cloudhsm_cli", line)
        printed = capsys.readouterr().out
        assert printed.strip() == str(got).strip()  # what the learner sees is AWS's JSON
        return {"text": got.data} if got.plain else got.to_dict()

    try:
        _play(steps(tmp_path), send)
        # a cell of several commands; $VARIABLES stay hidden in the echo
        shell.user_ns["PW"] = "cu-pass-1"
        many = shell.run_cell_magic(
            "cloudhsm_cli", "", "logout\nlogin --username cu --role crypto-user --password $PW"
        )
        echoed = capsys.readouterr().out
        assert [r.ok for r in many] == [True, True]
        assert "$PW" in echoed and "cu-pass-1" not in echoed
        # sign, then verify with the signature from the parsed result
        data = base64.b64encode(b"signed in the HSM").decode()
        signed = shell.run_line_magic(
            "cloudhsm_cli",
            f"crypto sign rsa-pkcs --key-filter attr.label=rpriv --hash-function sha256 "
            f"--data {data}",
        )
        shell.user_ns["SIG"] = signed.data["signature"]
        verify = (
            f"crypto verify rsa-pkcs --key-filter attr.label=rpub --hash-function sha256 "
            f"--data {data} --signature $SIG"
        )
        refused = shell.run_cell_magic("cloudhsm_cli", "", verify)[0]
        assert refused.error_code == 1 and "verify=false" in refused.data  # AWS's default
        shell.run_line_magic(
            "cloudhsm_cli", "key set-attribute --filter attr.label=rpub --name verify --value true"
        )
        assert shell.run_cell_magic("cloudhsm_cli", "", verify)[0].data == (
            "Signature verified successfully"
        )
        capsys.readouterr()
    finally:
        magic.reset()


def test_rules_about_logged_in_users(cluster) -> None:
    from labsupport import client as chsm

    chsm.configure(
        cluster_id=cluster.cluster_id, hsm_ca_cert=cluster.ca, workspace=cluster.workspace
    )
    client = chsm.connect(cluster.workspace)
    cli = client.cli
    try:
        assert cli.run("cluster activate", password="admin-pw-1").ok
        assert cli.run("login --username admin --role admin", password="admin-pw-1").ok
        assert cli.run("user create --username bob --role crypto-user", password="bob-pass-1").ok
        bob = client.login("bob:bob-pass-1")  # a PKCS#11 application logged in as bob
        busy = cli.run("user change-password --username bob --role crypto-user", password="x" * 9)
        assert busy.error_code == 1 and "logged in" in busy.data
        assert cli.run("user delete --username bob --role crypto-user").error_code == 1
        mine = cli.run("user change-password --username admin --role admin", password="admin-pw-2")
        assert mine.ok  # your own password, while you are logged in: allowed
        bob.close()
        assert cli.run("user change-password --username bob --role crypto-user", password="b" * 9)
        mismatch = cli.run("user create --username eve --role crypto-user")
        assert mismatch.error_code == 1 and "no terminal" in mismatch.data
    finally:
        cli.close()
        client.close()
