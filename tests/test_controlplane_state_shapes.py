"""The control plane's state files are shape-checked on load: ``cloudhsmv2.json``,
``ec2.json`` and ``aws-pki.json``.

A document of the wrong shape (``{"regions": []}``, a field of the wrong type) is never
met by a ``KeyError``/``AttributeError`` inside a boto3 call: with a committed copy it is
restored with one warning line; without one, the call fails with one clear line that
names the file, what is wrong and the command that fixes it.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest
from cp_fixtures import cloudhsm, ec2, fast, initialized

from labsupport import aws, simulators
from labsupport.controlplane import activate_cluster, backups, pki
from labsupport.controlplane.records import (
    BackupRecord,
    ClusterRecord,
    HsmRecord,
    PkiRecord,
    StepRecord,
    validate_state,
)
from labsupport.controlplane.vpc import RegionNetwork, default_vpc, validate_ec2
from labsupport.errors import CorruptStateError
from labsupport.workspace import Workspace
from labsupport.workspace.statefile import StateShapeError

__all__ = ["cloudhsm", "ec2", "fast"]  # fixtures
pytestmark = pytest.mark.usefixtures("fast")

_CLUSTER = {
    "id": "cluster-abc",
    "region": "us-east-1",
    "hsm_type": "hsm2m.medium",
    "mode": "FIPS",
    "state": "ACTIVE",
    "created": 1.0,
    "vpc_id": "vpc-1",
    "security_group": "sg-1",
    "subnets": {},
    "retention": {},
    "hsms": {},
    "pki": {},
}
_REGION = {"vpc_id": "vpc-1", "default_security_group": "sg-1", "subnets": {"us-east-1a": "s-1"}}
_ROOT = {"certificate": "PEM", "key": "PEM"}

#: Per state file: documents of the wrong shape, and the path the error must name.
BAD: dict[str, list[tuple[Any, str]]] = {
    "cloudhsmv2": [
        ({"clusters": []}, "clusters must be an object"),
        ({"clusters": {"c": {**_CLUSTER, "hsms": []}}}, "clusters.c.hsms must be an object"),
        ({"clusters": {"c": {**_CLUSTER, "created": "yesterday"}}}, "clusters.c.created"),
        ({"backups": {"b": {"id": "b"}}}, "backups.b has no 'region'"),
    ],
    "ec2": [
        ({"regions": []}, "regions must be an object"),
        ({"regions": {"us-east-1": {**_REGION, "subnets": ["s-1"]}}}, "us-east-1.subnets"),
        ({"regions": {"us-east-1": {**_REGION, "vpc_id": 7}}}, "us-east-1.vpc_id must be a string"),
        ({"regions": {"us-east-1": {"vpc_id": "vpc-1"}}}, "has no 'default_security_group'"),
    ],
    "cloudhsm-backup-pbk": [
        ({"pbk": 5}, "pbk must be a string"),
        ({"pbk": "secret-not-hex"}, "pbk must be 64 hex digits"),
    ],
    "aws-pki": [
        ({"aws": [], "manufacturer": _ROOT}, "aws must be an object"),
        ({"aws": _ROOT}, "no 'manufacturer' root"),
        ({"aws": {**_ROOT, "key": None}, "manufacturer": _ROOT}, "aws.key must be a string"),
    ],
}
VALIDATORS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "cloudhsmv2": validate_state,
    "ec2": validate_ec2,
    "aws-pki": pki.validate_pki,
    "cloudhsm-backup-pbk": backups.validate_pbk,
}


def _use(workspace: Workspace, name: str) -> None:
    """Make the lab read state file ``name`` (through boto3 where a learner would)."""
    if name == "cloudhsmv2":
        aws.client("cloudhsmv2", workspace=workspace).describe_clusters()
    elif name == "ec2":
        aws.client("ec2", workspace=workspace).describe_subnets()
    elif name == "aws-pki":
        pki.simulated_roots(workspace)
    else:
        backups._pbk(workspace)  # what every backup and restore reads first


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_empty_document_is_a_fresh_start(workspace: Workspace, name: str) -> None:
    (workspace.state_dir / f"{name}.json").write_text("{}")
    _use(workspace, name)  # no error: missing tables are empty


@pytest.mark.parametrize(
    ("name", "document", "where"),
    [(name, doc, where) for name, cases in sorted(BAD.items()) for doc, where in cases],
)
def test_a_wrong_shape_is_named_by_the_validator(
    name: str, document: dict[str, Any], where: str
) -> None:
    with pytest.raises(StateShapeError, match=where.replace("'", ".")):
        VALIDATORS[name](json.loads(json.dumps(document)))


@pytest.mark.parametrize(
    ("name", "document", "where"),
    [(name, doc, where) for name, cases in sorted(BAD.items()) for doc, where in cases],
)
def test_a_wrong_shape_without_a_copy_fails_with_one_clear_line(
    workspace: Workspace, name: str, document: Any, where: str
) -> None:
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    (workspace.state_dir / f"{name}.json").write_text(json.dumps(document))
    with pytest.raises(Exception) as caught:
        _use(workspace, name)
    error = caught.value
    if name in ("aws-pki", "cloudhsm-backup-pbk"):
        assert isinstance(error, CorruptStateError)
    else:  # through boto3: the service's modeled internal error, not a KeyError
        assert type(error).__name__ in ("ClientError", "CloudHsmInternalFailureException")
    message = str(error)
    assert f"{name}.json" in message and where in message
    assert "python -m labsupport reset" in message
    for leak in ("KeyError", "AttributeError", "TypeError", "Traceback", "secret-not-hex"):
        assert leak not in message
    if name == "cloudhsmv2":  # whose clusters are lesson 02's is unknown: same clear error
        with pytest.raises(CorruptStateError, match="python -m labsupport reset"):
            simulators.reset(workspace, "02")
    simulators.reset(workspace)  # what `python -m labsupport reset` runs
    _use(workspace, name)  # and the fix the message names works


def test_a_wrong_shape_with_a_copy_is_restored(workspace: Workspace) -> None:
    vpc = default_vpc(workspace, "us-east-1")
    (workspace.state_dir / "ec2.json").write_text('{"regions": []}')
    with pytest.warns(RuntimeWarning, match="restored its last committed version"):
        subnets = aws.client("ec2", workspace=workspace).describe_subnets()["Subnets"]
    assert {s["SubnetId"] for s in subnets} == {s.subnet_id for s in vpc.subnets}


def test_region_records_round_trip() -> None:
    rec = RegionNetwork.from_json(_REGION, "regions.us-east-1")
    assert rec.subnets == {"us-east-1a": "s-1"}
    assert RegionNetwork.from_json(rec.to_json()) == rec
    root = pki.RootRecord.from_json(_ROOT, "aws")
    assert pki.RootRecord.from_json(root.to_json(), "aws") == root
    assert "PEM" not in repr(root).split("certificate=")[0] and "key=" not in repr(root)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON ``value`` fits the record field type ``hint``."""
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and hasattr(hint, "__required_keys__"):  # a nested record
        return isinstance(value, dict)
    return isinstance(value, origin or hint)


def _check_record(rec: dict[str, Any], record_type: type, where: str) -> None:
    hints = typing.get_type_hints(record_type)
    undeclared = sorted(set(rec) - set(hints))
    assert not undeclared, f"{where}: keys the code writes but {record_type.__name__} lacks"
    for key, value in rec.items():
        assert _matches(value, hints[key]), f"{where}.{key}={value!r} is not {hints[key]}"


def test_the_records_declare_what_the_control_plane_writes(
    workspace: Workspace, cloudhsm: Any, ec2: Any
) -> None:
    """Drive every kind of write (create, initialize, activate, tag, copy, restore, delete,
    policy) and check each stored record against its TypedDict, key by key."""
    cid, _, _ = initialized(cloudhsm, ec2)
    activate_cluster(workspace, cid)
    backup_id = cloudhsm.describe_backups()["Backups"][0]["BackupId"]
    cloudhsm.tag_resource(ResourceId=cid, TagList=[{"Key": "team", "Value": "lab"}])
    cloudhsm.tag_resource(ResourceId=backup_id, TagList=[{"Key": "keep", "Value": "yes"}])
    cloudhsm.modify_backup_attributes(BackupId=backup_id, NeverExpires=True)
    arn = cloudhsm.describe_backups()["Backups"][0]["BackupArn"]
    cloudhsm.put_resource_policy(ResourceArn=arn, Policy='{"Version": "2012-10-17"}')
    cloudhsm.copy_backup_to_region(DestinationRegion="eu-west-1", BackupId=backup_id)
    subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
    clone = cloudhsm.create_cluster(
        HsmType="hsm2m.medium",
        SubnetIds=[s["SubnetId"] for s in subnets[:2]],
        SourceBackupId=backup_id,
    )["Cluster"]["ClusterId"]
    cloudhsm.create_hsm(ClusterId=clone, AvailabilityZone=subnets[0]["AvailabilityZone"])
    last = cloudhsm.describe_backups()["Backups"][-1]["BackupId"]
    cloudhsm.modify_backup_attributes(BackupId=last, NeverExpires=False)
    cloudhsm.delete_backup(BackupId=last)

    data = json.loads((workspace.state_dir / "cloudhsmv2.json").read_text())
    assert data["clusters"] and data["backups"]
    for name, cluster in data["clusters"].items():
        _check_record(cluster, ClusterRecord, f"clusters.{name}")
        _check_record(cluster["pki"], PkiRecord, f"clusters.{name}.pki")
        for hsm_id, hsm in cluster["hsms"].items():
            _check_record(hsm, HsmRecord, f"clusters.{name}.hsms.{hsm_id}")
    for name, backup in data["backups"].items():
        _check_record(backup, BackupRecord, f"backups.{name}")
    for name, cluster in data["clusters"].items():
        for step in cluster.get("next", []):
            _check_record(step, StepRecord, f"clusters.{name}.next")
