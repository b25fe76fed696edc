"""CloudHSMv2 clusters through a real boto3 client: create, describe, modify, delete, tags."""

from __future__ import annotations

import re
from typing import Any

import pytest
from cp_fixtures import (
    cloudhsm,
    describe,
    ec2,
    fast,
    freeze_normal_clock,
    new_cluster,
    subnet_ids,
    with_first_hsm,
)

from labsupport import aws, simulators
from labsupport.controlplane import LESSON_TAG, describe_cluster, list_clusters
from labsupport.controlplane.cluster import ClusterNotFound
from labsupport.controlplane.states import ClusterState

__all__ = ["cloudhsm", "ec2", "fast"]  # fixtures


def test_wire_format_is_json_1_1(cloudhsm: Any) -> None:
    seen: dict[str, str] = {}

    def spy(request: Any, **_: Any) -> None:
        seen.update(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )

    cloudhsm.meta.events.register_first("before-send.cloudhsmv2", spy)
    cloudhsm.describe_clusters()
    assert seen["Content-Type"] == "application/x-amz-json-1.1"
    assert seen["X-Amz-Target"] == "BaldrApiService.DescribeClusters"


def test_create_cluster_shows_create_in_progress_then_uninitialized(
    cloudhsm: Any, ec2: Any
) -> None:
    subnets = subnet_ids(ec2, 3)
    created = cloudhsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]
    assert re.fullmatch(r"cluster-[2-7a-z]{11}", created["ClusterId"])
    assert created["State"] == "CREATE_IN_PROGRESS"
    assert created["Hsms"] == []
    assert created["Mode"] == "FIPS"
    assert created["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "90"}
    assert re.fullmatch(r"sg-[0-9a-f]{17}", created["SecurityGroup"])
    assert sorted(created["SubnetMapping"].values()) == sorted(subnets)
    cluster = describe(cloudhsm, created["ClusterId"])
    assert cluster["State"] == "UNINITIALIZED"
    assert cluster["Certificates"] == {}  # no CSR before the first HSM
    assert cluster["CreateTimestamp"].tzinfo is not None


def test_transitional_state_lasts_on_the_normal_clock(workspace: Any, monkeypatch: Any) -> None:
    freeze_normal_clock(workspace, monkeypatch)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    ec2 = aws.client("ec2", workspace=workspace)
    cid = new_cluster(cloudhsm, ec2)
    assert describe(cloudhsm, cid)["State"] == "CREATE_IN_PROGRESS"
    from labsupport.workspace.clock import LabClock

    LabClock(workspace).advance(60)  # another kernel would see the same jump
    assert describe(cloudhsm, cid)["State"] == "UNINITIALIZED"


def test_create_cluster_validates_like_aws(cloudhsm: Any, ec2: Any) -> None:
    errors = cloudhsm.exceptions
    subnets = subnet_ids(ec2, 2)
    cases = [
        ({"HsmType": "hsm9.huge", "SubnetIds": subnets}, "Invalid HsmType"),
        ({"HsmType": "hsm1.medium", "SubnetIds": subnets, "Mode": "NON_FIPS"}, "FIPS mode only"),
        ({"HsmType": "hsm2m.medium", "SubnetIds": subnets, "Mode": "FAST"}, "enum value set"),
        ({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-0123456789abcdef0"]}, "does not exist"),
        ({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-xyz"]}, "regular expression"),
        ({"HsmType": "hsm2m.medium", "SubnetIds": [subnets[0], subnets[0]]}, "one subnet per"),
        (
            {
                "HsmType": "hsm2m.medium",
                "SubnetIds": subnets,
                "BackupRetentionPolicy": {"Type": "DAYS", "Value": "3"},
            },
            "between 7 and 379",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(errors.CloudHsmInvalidRequestException, match=message):
            cloudhsm.create_cluster(**kwargs)
    with pytest.raises(errors.CloudHsmTagException, match="reserved"):
        cloudhsm.create_cluster(
            HsmType="hsm2m.medium", SubnetIds=subnets, TagList=[{"Key": "aws:owner", "Value": "me"}]
        )
    # botocore's own validation still runs before the simulator
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        cloudhsm.create_cluster(HsmType="hsm2m.medium")
    assert cloudhsm.describe_clusters()["Clusters"] == []


def test_non_fips_hsm2m_and_hsm1(cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2, Mode="NON_FIPS")
    assert describe(cloudhsm, cid)["Mode"] == "NON_FIPS"
    cid1 = new_cluster(cloudhsm, ec2, HsmType="hsm1.medium")
    assert describe(cloudhsm, cid1)["HsmType"] == "hsm1.medium"


def test_describe_filters_and_paginator(cloudhsm: Any, ec2: Any) -> None:
    ids = [new_cluster(cloudhsm, ec2, count=1) for _ in range(5)]
    pages = list(
        cloudhsm.get_paginator("describe_clusters").paginate(PaginationConfig={"PageSize": 2})
    )
    assert [len(p["Clusters"]) for p in pages] == [2, 2, 1]
    assert [c["ClusterId"] for p in pages for c in p["Clusters"]] == ids
    assert (
        cloudhsm.describe_clusters(Filters={"clusterIds": ids[1:3]})["Clusters"][0]["ClusterId"]
        == ids[1]
    )
    assert len(cloudhsm.describe_clusters(Filters={"states": ["UNINITIALIZED"]})["Clusters"]) == 5
    assert cloudhsm.describe_clusters(Filters={"states": ["ACTIVE"]})["Clusters"] == []
    vpc = describe(cloudhsm, ids[0])["VpcId"]
    assert len(cloudhsm.describe_clusters(Filters={"vpcIds": [vpc]})["Clusters"]) == 5
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="filter"):
        cloudhsm.describe_clusters(Filters={"name": ["x"]})
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="NextToken"):
        cloudhsm.describe_clusters(NextToken="garbage!")
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="maxResults"):
        cloudhsm.describe_clusters(MaxResults=26)


def test_clusters_are_regional(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    new_cluster(cloudhsm, ec2)
    west = aws.client("cloudhsmv2", region_name="us-west-2", workspace=workspace)
    assert west.describe_clusters()["Clusters"] == []
    west_ec2 = aws.client("ec2", region_name="us-west-2", workspace=workspace)
    zones = {s["AvailabilityZone"] for s in west_ec2.describe_subnets()["Subnets"]}
    assert zones == {"us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"}
    with pytest.raises(west.exceptions.CloudHsmInvalidRequestException, match="does not exist"):
        west.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnet_ids(ec2, 1))


def test_delete_cluster(cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2)
    deleted = cloudhsm.delete_cluster(ClusterId=cid)["Cluster"]
    assert deleted["State"] == "DELETE_IN_PROGRESS"
    assert describe(cloudhsm, cid)["State"] == "DELETED"
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="already"):
        cloudhsm.delete_cluster(ClusterId=cid)
    with pytest.raises(cloudhsm.exceptions.CloudHsmResourceNotFoundException):
        cloudhsm.delete_cluster(ClusterId="cluster-aaaaaaaaaaa")
    with pytest.raises(
        cloudhsm.exceptions.CloudHsmInvalidRequestException, match="regular expression"
    ):
        cloudhsm.delete_cluster(ClusterId="my-cluster")


def test_delete_cluster_with_hsms_is_refused(cloudhsm: Any, ec2: Any) -> None:
    cid, hsm_id = with_first_hsm(cloudhsm, ec2)
    with pytest.raises(
        cloudhsm.exceptions.CloudHsmInvalidRequestException,
        match=f"still contains 1 HSM.*{hsm_id}.*DeleteHsm",
    ):
        cloudhsm.delete_cluster(ClusterId=cid)
    cloudhsm.delete_hsm(ClusterId=cid, HsmId=hsm_id)
    assert describe(cloudhsm, cid)["Hsms"] == []
    assert cloudhsm.delete_cluster(ClusterId=cid)["Cluster"]["State"] == "DELETE_IN_PROGRESS"


def test_delete_while_creating_is_refused(workspace: Any, monkeypatch: Any) -> None:
    freeze_normal_clock(workspace, monkeypatch)
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid = new_cluster(cloudhsm, aws.client("ec2", workspace=workspace))
    with pytest.raises(
        cloudhsm.exceptions.CloudHsmInvalidRequestException, match="CREATE_IN_PROGRESS"
    ):
        cloudhsm.delete_cluster(ClusterId=cid)


def test_modify_cluster_retention(cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2)
    out = cloudhsm.modify_cluster(
        ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "30"}
    )
    assert out["Cluster"]["BackupRetentionPolicy"]["Value"] == "30"
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="379"):
        cloudhsm.modify_cluster(
            ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "400"}
        )
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="Specify"):
        cloudhsm.modify_cluster(ClusterId=cid)
    with pytest.raises(cloudhsm.exceptions.CloudHsmInvalidRequestException, match="ACTIVE"):
        cid1 = new_cluster(cloudhsm, ec2, HsmType="hsm1.medium")
        cloudhsm.modify_cluster(ClusterId=cid1, HsmType="hsm2m.medium")


def test_tags(cloudhsm: Any, ec2: Any) -> None:
    cid = new_cluster(cloudhsm, ec2, TagList=[{"Key": "team", "Value": "pki"}])
    cloudhsm.tag_resource(
        ResourceId=cid, TagList=[{"Key": "env", "Value": "lab"}, {"Key": "team", "Value": "crypto"}]
    )
    tags = {t["Key"]: t["Value"] for t in cloudhsm.list_tags(ResourceId=cid)["TagList"]}
    assert tags == {"team": "crypto", "env": "lab"}
    cloudhsm.untag_resource(ResourceId=cid, TagKeyList=["env"])
    assert cloudhsm.list_tags(ResourceId=cid)["TagList"] == [{"Key": "team", "Value": "crypto"}]
    assert describe(cloudhsm, cid)["TagList"] == [{"Key": "team", "Value": "crypto"}]
    cloudhsm.tag_resource(
        ResourceId=cid, TagList=[{"Key": f"k{i}", "Value": "v"} for i in range(30)]
    )
    pages = list(
        cloudhsm.get_paginator("list_tags").paginate(
            ResourceId=cid, PaginationConfig={"PageSize": 10}
        )
    )
    assert sum(len(p["TagList"]) for p in pages) == 31
    with pytest.raises(cloudhsm.exceptions.CloudHsmResourceLimitExceededException):
        cloudhsm.tag_resource(
            ResourceId=cid, TagList=[{"Key": f"x{i}", "Value": "v"} for i in range(25)]
        )
    with pytest.raises(cloudhsm.exceptions.CloudHsmTagException, match="bad#key"):
        cloudhsm.tag_resource(ResourceId=cid, TagList=[{"Key": "bad#key", "Value": "v"}])
    with pytest.raises(cloudhsm.exceptions.CloudHsmResourceNotFoundException):
        cloudhsm.list_tags(ResourceId="cluster-bbbbbbbbbbb")


def test_python_view_and_ownership_reset(
    workspace: Any, cloudhsm: Any, ec2: Any, monkeypatch: Any
) -> None:
    mine = new_cluster(cloudhsm, ec2, TagList=[{"Key": LESSON_TAG, "Value": "02"}])
    monkeypatch.setenv("CLOUDHSM_LAB_LESSON", "02-ex")
    exercise = new_cluster(cloudhsm, ec2)
    monkeypatch.delenv("CLOUDHSM_LAB_LESSON")
    other = new_cluster(cloudhsm, ec2)
    view = describe_cluster(workspace, mine)
    assert view.state is ClusterState.UNINITIALIZED and view.owner == "02"
    assert describe_cluster(workspace, exercise).owner == "02-ex"
    assert describe_cluster(workspace, other).owner == "workspace"
    assert [c.cluster_id for c in list_clusters(workspace)] == [mine, exercise, other]
    simulators.reset(workspace, "02")
    assert [c["ClusterId"] for c in cloudhsm.describe_clusters()["Clusters"]] == [other]
    with pytest.raises(ClusterNotFound, match=mine):
        describe_cluster(workspace, mine)
    simulators.reset(workspace)
    assert cloudhsm.describe_clusters()["Clusters"] == []


def test_reset_deletes_hsm_tokens(
    workspace: Any, cloudhsm: Any, ec2: Any, monkeypatch: Any
) -> None:
    from labsupport.hsm import token_store

    monkeypatch.setenv("CLOUDHSM_LAB_LESSON", "02")
    _cid, hsm_id = with_first_hsm(cloudhsm, ec2)
    store = token_store(workspace)
    assert store.record(hsm_id).owner == "02"
    simulators.reset(workspace, "02")
    assert hsm_id not in store.records()
    assert cloudhsm.describe_clusters()["Clusters"] == []
