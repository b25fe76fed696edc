"""The OpenSSL launcher: real openssl + the PKCS#11 engine on the lab cluster's HSM tokens.

Covers the user checks (password, lockout counting, ownership and sharing), refusal of
anything that would export a key or bypass the cluster, that no internal token PIN is on
any command line, in any environment or log, and a real TLS round trip (openssl s_server
with the key in an HSM, Python's ssl client verifying the chain) that survives deleting
the HSM the server uses.

Skips only when the PKCS#11 engine is not installed locally; under CI it must run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from labsupport.crypto.x509 import public_key_from_token
from labsupport.hsm.tokens import firmware_session, token_store
from labsupport.openssl import engine_available, read_requests, requests_path
from labsupport.openssl.launcher import (
    KeyExportRefused,
    LauncherError,
    OutputWatcher,
    key_uri,
    parse_command,
)
from labsupport.openssl.requests import SpyParser

sys.path.insert(0, str(Path(__file__).parent))
from client_fixtures import build, pin
from localcluster import make_ca

if not engine_available():
    if os.environ.get("CI"):
        pytest.fail(
            "OpenSSL's PKCS#11 engine is missing under CI: .ci/run must install "
            "libengine-pkcs11-openssl",
            pytrace=False,
        )
    pytest.skip(
        "OpenSSL's PKCS#11 engine (libengine-pkcs11-openssl) is not installed; "
        "`./lab setup` installs it",
        allow_module_level=True,
    )

LAUNCHER = [sys.executable, "-m", "labsupport.openssl"]


# -- fixtures ---------------------------------------------------------------------------


def _ec_keypair(session: Any, label: str) -> tuple[Any, Any]:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    # Non-extractable, as a TLS or CA key should be: the launcher must keep it so.
    return params.generate_keypair(
        store=True, label=label, private_template={Attribute.EXTRACTABLE: False}
    )


def _make_lab(workspace: Any, hsm_count: int, rsa: bool = False) -> Any:
    lab = build(workspace, hsm_count)
    alice = lab.login("alice")
    lab.alice_pub, lab.alice_priv = _ec_keypair(alice, "tls-key")
    bob = lab.login("bob")
    lab.bob_pub, lab.bob_priv = _ec_keypair(bob, "bob-key")
    if rsa:  # RSA for TLS: the engine needs the public half of a server key (see launcher)
        lab.rsa_pub, lab.rsa_priv = alice.generate_keypair(
            KeyType.RSA,
            2048,
            store=True,
            label="web-key",
            private_template={Attribute.EXTRACTABLE: False},
        )
    return lab


@pytest.fixture
def lab(workspace: Any) -> Any:
    """Two HSMs; alice owns EC key ``tls-key``, bob owns ``bob-key``."""
    lab = _make_lab(workspace, 2)
    yield lab
    lab.client.close()


@pytest.fixture
def lab3(workspace: Any) -> Any:
    """Three HSMs (one can go and keys stay on two); alice also owns RSA ``web-key``."""
    lab = _make_lab(workspace, 3, rsa=True)
    yield lab
    lab.client.close()


def launch(workspace: Any, args: list[str], user_pin: str | None, **kw: Any) -> Any:
    env = dict(os.environ, CLOUDHSM_LAB_HOME=str(workspace.root))
    env.pop("CLOUDHSM_PIN", None)
    if user_pin is not None:
        env["CLOUDHSM_PIN"] = user_pin
    return subprocess.run(
        [*LAUNCHER, *args], env=env, capture_output=True, text=True, timeout=60, **kw
    )


def internal_pins(workspace: Any) -> list[str]:
    """Every token's internal PINs, read from tokens.json as the sandbox's owner could."""
    records = json.loads((workspace.state_dir / "tokens.json").read_text())
    return [r[name] for r in records.values() for name in ("user_pin", "so_pin")]


# -- command-line checks (no cluster needed) -------------------------------------------


def test_parse_finds_keys_and_their_options() -> None:
    slots = parse_command(["x509", "-req", "-in", "a.csr", "-CAkey", "cloudhsm:ca", "-out", "c"])
    assert [(s.index, s.option, s.name) for s in slots] == [(5, "-CAkey", "ca")]


@pytest.mark.parametrize(
    "argv",
    [
        ["pkey", "-in", "cloudhsm:tls-key", "-out", "stolen.pem"],
        ["rsa", "-in", "cloudhsm:tls-key"],
        ["pkcs12", "-export", "-inkey", "cloudhsm:tls-key"],
    ],
)
def test_export_subcommands_are_refused(argv: list[str]) -> None:
    with pytest.raises(KeyExportRefused, match="cannot leave the HSM"):
        parse_command(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dgst", "-sign", "pkcs11:token=x;object=y", "f"], "pkcs11: URIs"),
        (["dgst", "-sign", "org.openssl.engine:pkcs11:label_x", "f"], "pkcs11: URIs"),
        (["dgst", "-engine", "pkcs11", "-sign", "k", "f"], "chooses OpenSSL's engine"),
        (["dgst", "-keyform", "engine", "-sign", "k", "f"], "added by the launcher"),
        (["dgst", "-sha256", "cloudhsm:tls-key"], "does not take a private key"),
        (["-sign", "cloudhsm:x"], "subcommand first"),
    ],
)
def test_reserved_or_misplaced_options_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(LauncherError, match=message):
        parse_command(argv)


def test_key_uri_percent_encodes_token_and_id() -> None:
    uri = key_uri("hsm a;b", 0x1002)
    assert uri == "pkcs11:token=hsm%20a%3Bb;id=%00%00%00%00%00%00%10%02;type=private"


def test_spy_parser_keeps_operations_and_drops_the_pin() -> None:
    spy = """\
13: C_Login
[in] hSession = 0x1
[in] userType = CKU_USER
[in] pPin[ulPinLen] 000055d567da5e90 / 8
    00000000  31 32 33 34 61 62 63 64                          1234abcd
Returned:  0 CKR_OK

16: C_GetAttributeValue
[in] hSession = 0x1
[in] hObject = 0x2
[in] pTemplate[1]:
    CKA_ID                000055d567e05b69 / 255
[out] pTemplate[1]:
    CKA_ID                000055d567e05b69 / 8
    00000000  00 00 00 00 00 10 00 02                          ........
Returned:  0 CKR_OK

44: C_SignInit
[in] hSession = 0x1
[in] pMechanism->type = CKM_ECDSA
[in] hKey = 0x2
Returned:  0 CKR_OK

45: C_Sign
[in] hSession = 0x1
Returned:  0 CKR_OK
"""
    seen: list[tuple[str, str, bytes | None, str]] = []
    SpyParser(lambda *a: seen.append(a)).feed_lines(spy.splitlines())
    assert seen == [("C_Sign", "CKM_ECDSA", bytes.fromhex("0000000000100002"), "CKR_OK")]
    assert "1234abcd" not in repr(seen)


# -- against the cluster --------------------------------------------------------------------


def test_missing_credentials_say_how_to_give_them(lab: Any, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    r = launch(lab.workspace, ["dgst", "-sign", "cloudhsm:tls-key", str(tmp_path / "f")], None)
    assert r.returncode == 1
    assert "CLOUDHSM_PIN is not set" in r.stderr


def test_wrong_password_is_refused_and_counted(lab: Any, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    args = ["dgst", "-sha256", "-sign", "cloudhsm:tls-key", "-out", str(tmp_path / "s")]
    r = launch(lab.workspace, [*args, str(tmp_path / "f")], "alice:not-her-password")
    assert r.returncode == 1
    assert "Wrong password for alice (4 more wrong passwords lock the account)" in r.stderr
    assert not (tmp_path / "s").exists()
    assert lab.client.users.get("alice").failed_logins == 1


def test_another_users_key_is_refused_until_shared(lab: Any, tmp_path: Path) -> None:
    data = tmp_path / "f"
    data.write_text("release 1.0\n")
    args = ["dgst", "-sha256", "-sign", "cloudhsm:bob-key", "-out", str(tmp_path / "s"), str(data)]
    r = launch(lab.workspace, args, pin("alice"))
    assert r.returncode == 1
    assert "alice has no private key 'bob-key'" in r.stderr
    assert "key share --filter attr.label=bob-key --username alice" in r.stderr
    # by reference too
    ref_args = [*args[:3], f"cloudhsm:{lab.bob_priv.reference}", *args[4:]]
    assert "no private key" in launch(lab.workspace, ref_args, pin("alice")).stderr

    lab.bob_priv.share("alice")  # shared users may use (sign with) a key
    r = launch(lab.workspace, args, pin("alice"))
    assert r.returncode == 0, r.stderr
    public = public_key_from_token(lab.bob_pub)
    public.verify((tmp_path / "s").read_bytes(), data.read_bytes(), ec.ECDSA(hashes.SHA256()))


def test_unknown_label_is_refused(lab: Any, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    r = launch(lab.workspace, ["dgst", "-sign", "cloudhsm:nope", str(tmp_path / "f")], pin("bob"))
    assert r.returncode == 1
    assert "bob has no private key 'nope'" in r.stderr


def test_sign_runs_in_an_hsm_and_the_key_stays_sensitive(lab: Any, tmp_path: Path) -> None:
    data = tmp_path / "release.tar"
    data.write_bytes(os.urandom(4096))
    sig = tmp_path / "release.sig"
    args = ["dgst", "-sha256", "-sign", "cloudhsm:tls-key", "-out", str(sig), str(data)]
    r = launch(lab.workspace, args, pin("alice"))
    assert r.returncode == 0, r.stderr
    public = public_key_from_token(lab.alice_pub)
    public.verify(sig.read_bytes(), data.read_bytes(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(sig.read_bytes(), data.read_bytes() + b"!", ec.ECDSA(hashes.SHA256()))

    ops = [q for q in read_requests(lab.workspace) if q.operation == "C_Sign"]
    assert len(ops) == 1
    assert ops[0].key == lab.alice_priv.reference
    assert ops[0].mechanism == "CKM_ECDSA" and ops[0].result == "CKR_OK"
    assert ops[0].hsm_id in lab.alice_priv.hsms

    # The HSM copies stay sensitive, and the cluster still reports the key non-extractable.
    assert lab.alice_priv[Attribute.EXTRACTABLE] is False
    for hsm_id in lab.alice_priv.hsms:
        token = next(h.token_label for h in lab.client.hsms if h.hsm_id == hsm_id)
        with firmware_session(token_store(lab.workspace), token, rw=False) as s:
            objs = list(
                s.get_objects(
                    {
                        Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                        Attribute.ID: lab.alice_priv.handle.to_bytes(8, "big"),
                    }
                )
            )
            assert [o[Attribute.SENSITIVE] for o in objs] == [True]


def test_ec_key_where_openssl_needs_its_public_half_is_explained(lab: Any, tmp_path: Path) -> None:
    args = ["s_server", "-cert", str(tmp_path / "c.pem"), "-key", "cloudhsm:tls-key"]
    r = launch(lab.workspace, args, pin("alice"))
    assert r.returncode == 1
    assert "needs the public half of EC key 'tls-key'" in r.stderr
    assert "Use an RSA key here" in r.stderr


def test_export_is_refused_against_the_cluster(lab: Any, tmp_path: Path) -> None:
    out = tmp_path / "stolen.pem"
    r = launch(lab.workspace, ["pkey", "-in", "cloudhsm:tls-key", "-out", str(out)], pin("alice"))
    assert r.returncode == 1
    assert "cannot leave the HSM" in r.stderr
    assert not out.exists()


# -- TLS: a real server with the key in an HSM, a real client, failover -------------------


def _issue(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, public: Any) -> Any:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _https_get(port: int, cafile: Path) -> tuple[str, bytes, str]:
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            body = b""
            while chunk := tls.recv(4096):
                body += chunk
            peer = tls.getpeercert()
            subject = dict(x[0] for x in peer["subject"])["commonName"]
            return tls.version() or "", body, subject


def _scan_processes(secrets_: list[str]) -> int:
    """Read every readable /proc/*/cmdline and environ; assert no secret; return count."""
    seen = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for name in ("cmdline", "environ"):
            try:
                data = (proc / name).read_bytes().decode(errors="replace")
            except OSError:
                continue
            seen += 1
            for secret in secrets_:
                assert secret not in data, f"a token PIN is visible in /proc/{proc.name}/{name}"
    return seen


@pytest.mark.slow
def test_tls_round_trip_with_the_key_in_an_hsm_and_failover(lab3: Any, tmp_path: Path) -> None:
    ca_key, ca = make_ca("Test Lab CA")
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert = _issue(ca_key, ca, public_key_from_token(lab3.rsa_pub))
    certfile = tmp_path / "server.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    port = _free_port()
    env = dict(os.environ, CLOUDHSM_LAB_HOME=str(lab3.workspace.root), CLOUDHSM_PIN=pin("alice"))
    server = subprocess.Popen(
        [
            *LAUNCHER,
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(certfile),
            "-key",
            "cloudhsm:web-key",
            "-www",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = OutputWatcher(server)
    try:
        out.wait_for("ACCEPT", timeout=30)
        version, body, subject = _https_get(port, cafile)
        assert version.startswith("TLSv1.")
        assert subject == "localhost"
        assert body.startswith(b"HTTP/1.0 200 ok")

        pins = internal_pins(lab3.workspace)
        assert _scan_processes(pins) > 10
        first = [q for q in read_requests(lab3.workspace) if q.operation == "C_Sign"]
        assert first and first[-1].result == "CKR_OK"
        serving = first[-1].hsm_id

        # Delete the HSM the server uses: the launcher restarts openssl on another one.
        lab3.cluster.remove_hsm(serving)
        out.wait_for(
            "ACCEPT",
            timeout=30,
            start=out.lines.index(next(line for line in out.lines if "ACCEPT" in line)) + 1,
        )
        for _ in range(50):
            try:
                version, body, _ = _https_get(port, cafile)
                break
            except (ConnectionRefusedError, ssl.SSLError):
                time.sleep(0.1)
        assert body.startswith(b"HTTP/1.0 200 ok")
        after = [q for q in read_requests(lab3.workspace) if q.operation == "C_Sign"]
        assert after[-1].hsm_id != serving and after[-1].result == "CKR_OK"
        assert any(q.operation == "failover" for q in read_requests(lab3.workspace))
        _scan_processes(pins)
    finally:
        server.terminate()
        server.wait(timeout=10)
        # openssl runs in the launcher's process group: if the launcher died early (a failed
        # run), its openssl would outlive the test holding the port — kill the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    output = "\n".join(out.lines)
    for secret in [*internal_pins(lab3.workspace), pin("alice")]:
        assert secret not in output
        assert secret not in requests_path(lab3.workspace).read_text()
    for log in lab3.workspace.root.rglob("*.log"):
        for secret in internal_pins(lab3.workspace):
            assert secret not in log.read_text(errors="replace")
