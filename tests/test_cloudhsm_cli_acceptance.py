"""Issue #13's acceptance walk, as a learner on an EC2 client would type it.

A cluster made and initialized with boto3 (lesson 02) → ``configure-cli --cluster-id …
--hsm-ca-cert customerCA.crt`` → ``cloudhsm-cli interactive`` fed on a pipe activates the
cluster (answering ``Enter password:`` prompts), creates a crypto user, generates AES keys
with AWS's default attributes, pages ``key list`` at 10, answers an unknown flag with
``error_code`` 1 → single-command mode with ``CLOUDHSM_ROLE`` / ``CLOUDHSM_PIN``; and keys
made with the CLI and with PKCS#11 are usable from the other side.
"""

from __future__ import annotations

import json

import pytest
from cli_fixtures import Cluster, answers, cluster_fixture, run_tool  # noqa: F401
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.mechanisms import GCMParams

from labsupport import client as chsm


def test_acceptance_walk_in_the_terminal(cluster) -> None:
    configured = run_tool(
        "configure-cli", "--cluster-id", cluster.cluster_id, "--hsm-ca-cert", str(cluster.ca)
    )
    assert configured.returncode == 0, configured.stderr
    lines = [
        "cluster activate",
        "admin-pw-1",  # Enter password:
        "admin-pw-1",  # Confirm password:
        "login --username admin --role admin",
        "admin-pw-1",
        "user create --username cu --role crypto-user",
        "cu-pass-1",
        "cu-pass-1",
        "logout",
        "login --username cu --role crypto-user --password cu-pass-1",
        *[f"key generate-symmetric aes --label X{i} --key-length-bytes 32" for i in range(11)],
        "key list",
        "key list --starting-token 10",
        "user list --verbose",
        "quit",
    ]
    proc = run_tool("cloudhsm-cli", "interactive", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.count("Enter password:") == 3
    assert proc.stdout.count("Confirm password:") == 2
    got = answers(proc.stdout)
    assert got[0] == {"error_code": 0, "data": "Cluster activation successful"}
    assert got[2]["data"] == {"username": "cu", "role": "crypto-user"}
    first = got[5]["data"]["key"]["attributes"]
    assert (first["encrypt"], first["decrypt"], first["wrap"], first["unwrap"]) == (False,) * 4
    assert (first["sign"], first["verify"], first["extractable"]) == (True, True, True)
    page1, page2 = got[16]["data"], got[17]["data"]
    assert page1["returned_key_count"] == 10 and page1["next_token"] == "10"
    assert page1["total_key_count"] == 11
    assert page2["returned_key_count"] == 1 and "next_token" not in page2
    assert got[18]["error_code"] == 1 and "--verbose" in got[18]["data"]

    env = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "cu:cu-pass-1"}
    single = run_tool("cloudhsm-cli", "key", "list", "--filter", "attr.label=X3", env=env)
    assert single.returncode == 0, single.stdout + single.stderr
    listed = json.loads(single.stdout)["data"]
    assert listed["total_key_count"] == 1
    assert listed["matched_keys"][0]["attributes"] == {"label": "X3"}

    wrong = run_tool("cloudhsm-cli", "key", "list", env={**env, "CLOUDHSM_PIN": "cu:nope-nope"})
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["error_code"] == 1
    unknown = run_tool("cloudhsm-cli", "key", "list", "--colour", "blue", env=env)
    assert unknown.returncode == 1 and "unexpected argument '--colour'" in unknown.stdout


def test_no_configuration_is_a_clear_error(workspace) -> None:
    proc = run_tool("cloudhsm-cli", "user", "list")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not configured" in json.loads(proc.stdout)["data"]
    bad = run_tool("configure-cli", "-a", "10.0.0.300")
    assert bad.returncode == 1 and "not an IPv4 address" in bad.stderr


def test_configure_pkcs11_with_a_address_writes_the_same_configuration(cluster) -> None:
    from labsupport.aws import client as aws_client

    described = aws_client("cloudhsmv2", workspace=cluster.workspace).describe_clusters()
    ips = [h["EniIp"] for c in described["Clusters"] for h in c["Hsms"]]
    proc = run_tool(
        "configure-pkcs11", "-a", ips[0], "-a", ips[1], "--disable-key-availability-check"
    )
    assert proc.returncode == 0, proc.stderr
    config = chsm.load_config(cluster.workspace)
    assert config.enabled_ips == ips[:2] and config.disable_key_availability_check


@pytest.fixture
def active(cluster) -> Cluster:
    assert run_tool("configure-cli", "--cluster-id", cluster.cluster_id,
                    "--hsm-ca-cert", str(cluster.ca)).returncode == 0  # fmt: skip
    script = (
        "cluster activate --password admin-pw-1\n"
        "login --username admin --role admin --password admin-pw-1\n"
        "user create --username cu --role crypto-user --password cu-pass-1\n"
    )
    assert '"error_code": 1' not in run_tool("cloudhsm-cli", "interactive", stdin=script).stdout
    return cluster


def test_cli_keys_and_pkcs11_keys_are_the_same_keys(active: Cluster) -> None:
    env = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "cu:cu-pass-1"}
    made = run_tool(
        "cloudhsm-cli", "key", "generate-symmetric", "aes", "--label", "from-cli",
        "--key-length-bytes", "32", "--attributes", "encrypt=true", "decrypt=true", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout
    reference = json.loads(made.stdout)["data"]["key"]["key-reference"]

    client = chsm.connect(active.workspace)
    try:
        session = client.login("cu:cu-pass-1")
        key = session.get_key(label="from-cli")
        assert key.reference == reference
        iv = GCMParams(bytearray(12))  # the HSM writes its IV here
        blob = key.encrypt(b"made in the CLI", mechanism=Mechanism.AES_GCM, mechanism_param=iv)
        assert key.decrypt(blob, mechanism=Mechanism.AES_GCM, mechanism_param=iv) == (
            b"made in the CLI"
        )
        mine = session.generate_key(KeyType.AES, 256, label="from-pkcs11", store=True)
        assert mine[Attribute.ENCRYPT]  # python-pkcs11's defaults, not the CLI's
        session.close()
    finally:
        client.close()
    listed = run_tool(
        "cloudhsm-cli", "key", "list", "--filter", "attr.label=from-pkcs11", "--verbose", env=env
    )
    shown = json.loads(listed.stdout)["data"]["matched_keys"][0]
    assert shown["key-info"]["key-owners"][0]["username"] == "cu"
    assert shown["attributes"]["encrypt"] is True and shown["attributes"]["local"] is True
