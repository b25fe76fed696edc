"""CloudHSM audit logs through a real boto3 CloudWatch Logs client."""

from __future__ import annotations

from typing import Any

import pytest
from cp_fixtures import fast
from pkcs11 import KeyType

from labsupport import aws
from labsupport.client.quickstart import connected_cluster
from labsupport.logs.service import matches, parse_pattern

__all__ = ["fast"]


@pytest.fixture
def ready(workspace: Any, fast: None) -> Any:
    ready = connected_cluster(workspace, owner="t", users=("alice",))
    yield ready
    ready.client.close()


def test_acceptance_stream_per_hsm_and_create_user_event(workspace: Any, ready: Any) -> None:
    logs = aws.client("logs", workspace=workspace)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    group = f"/aws/cloudhsm/{ready.cluster_id}"
    names = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert names == [group]
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/kms")["logGroups"] == []
    hsm_ids = sorted(
        h["HsmId"]
        for h in cloudhsm.describe_clusters(Filters={"clusterIds": [ready.cluster_id]})["Clusters"][
            0
        ]["Hsms"]
    )
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == hsm_ids
    found = logs.filter_log_events(logGroupName=group, filterPattern="CN_CREATE_USER")["events"]
    assert {e["logStreamName"] for e in found} == set(hsm_ids)  # one event per HSM
    event = found[0]["message"]
    assert "Opcode : CN_CREATE_USER (0x3)" in event and "User Name : alice" in event
    assert "User Type : CN_CRYPTO_USER (1)" in event
    # who created alice? the CN_LOGIN with the same session handle
    handle = next(
        line.split(" : ")[1] for line in event.splitlines() if line.startswith("Session Handle")
    )
    logins = logs.filter_log_events(
        logGroupName=group,
        logStreamNames=[found[0]["logStreamName"]],
        filterPattern=f'CN_LOGIN "Session Handle : {handle}"',
    )["events"]
    assert len(logins) == 1 and "User Name : admin" in logins[0]["message"]
    assert "CN_CRYPTO_OFFICER" in logins[0]["message"]


def test_key_events_sequence_numbers_and_get_log_events(workspace: Any, ready: Any) -> None:
    session = ready.login("alice")
    key = session.generate_key(KeyType.AES, 256, label="audited", store=True)
    session.get_key(label="audited").destroy()
    with pytest.raises(Exception):  # noqa: B017 - any failed login
        ready.client.login("alice:not-her-password")
    session.close()
    logs = aws.client("logs", workspace=workspace)
    group = f"/aws/cloudhsm/{ready.cluster_id}"
    generated = logs.filter_log_events(logGroupName=group, filterPattern="CN_GENERATE_KEY")
    assert len(generated["events"]) == 1  # on the HSM that made it
    home = generated["events"][0]["logStreamName"]
    assert f"Priv/Secret Key Handle : {key.handle:#018x}" in generated["events"][0]["message"]
    synced = logs.filter_log_events(
        logGroupName=group, filterPattern="CN_INSERT_MASKED_OBJECT_USER"
    )
    assert {e["logStreamName"] for e in synced["events"]} != {home}
    assert (
        len(
            logs.filter_log_events(logGroupName=group, filterPattern="CN_TOMBSTONE_OBJECT")[
                "events"
            ]
        )
        == 2
    )
    failed = logs.filter_log_events(
        logGroupName=group, filterPattern="CN_LOGIN RET_USER_LOGIN_FAILURE"
    )
    assert len(failed["events"]) == 2
    events = logs.get_log_events(logGroupName=group, logStreamName=home, startFromHead=True)
    seqs = [int(e["message"].splitlines()[1].split(" : ")[1], 16) for e in events["events"]]
    assert seqs == list(range(len(seqs)))  # no gaps
    again = logs.get_log_events(
        logGroupName=group, logStreamName=home, nextToken=events["nextForwardToken"]
    )
    assert again["events"] == []
    first_two = logs.get_log_events(
        logGroupName=group, logStreamName=home, startFromHead=True, limit=2
    )
    assert [e["message"] for e in first_two["events"]] == [
        e["message"] for e in events["events"][:2]
    ]


def test_filter_pagination_time_window_and_errors(workspace: Any, ready: Any) -> None:
    logs = aws.client("logs", workspace=workspace)
    group = f"/aws/cloudhsm/{ready.cluster_id}"
    everything = logs.filter_log_events(logGroupName=group)["events"]
    pages = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 3}
        )
    )
    assert [e for p in pages for e in p["events"]] == everything and len(pages) > 1
    last = everything[-1]["timestamp"]
    assert logs.filter_log_events(logGroupName=group, startTime=last + 1)["events"] == []
    assert logs.filter_log_events(logGroupName=group, endTime=last + 1)["events"] == everything
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/aws/cloudhsm/cluster-aaaaaaaaaaa")
    with pytest.raises(logs.exceptions.InvalidParameterException, match="JSON"):
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.user = alice }")


def test_filter_pattern_terms() -> None:
    text = "Opcode : CN_LOGIN (0xd)\nUser Name : alice"
    assert matches(text, parse_pattern("CN_LOGIN alice"))
    assert not matches(text, parse_pattern("CN_LOGIN bob"))
    assert matches(text, parse_pattern("?bob ?alice"))
    assert not matches(text, parse_pattern("CN_LOGIN -alice"))
    assert matches(text, parse_pattern('"User Name : alice"'))
    assert not matches(text, parse_pattern("cn_login"))  # case-sensitive
