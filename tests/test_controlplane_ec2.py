"""The simulated default VPC through a real boto3 ec2 client (EC2 query protocol, XML)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cp_fixtures import cloudhsm, ec2, fast, with_first_hsm

from labsupport import aws

__all__ = ["cloudhsm", "ec2", "fast"]


def test_default_vpc_has_one_subnet_per_az(ec2: Any) -> None:
    vpcs = ec2.describe_vpcs()["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["IsDefault"] is True
    assert vpcs[0]["CidrBlock"] == "172.31.0.0/16"
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    assert zones == [f"us-east-1{c}" for c in "abcdef"]
    subnets = ec2.describe_subnets()["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == zones
    assert all(s["VpcId"] == vpcs[0]["VpcId"] and s["DefaultForAz"] for s in subnets)
    nets = [ipaddress.ip_network(s["CidrBlock"]) for s in subnets]
    assert all(
        n.prefixlen == 20 and n.subnet_of(ipaddress.ip_network("172.31.0.0/16")) for n in nets
    )
    assert len(set(nets)) == len(nets)
    assert subnets[0]["AvailableIpAddressCount"] == 4091


def test_same_ids_across_clients_and_calls(workspace: Any, ec2: Any) -> None:
    first = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    again = aws.client("ec2", workspace=workspace).describe_subnets()["Subnets"]
    assert first == [s["SubnetId"] for s in again]


def test_filters_and_ids(ec2: Any) -> None:
    subnets = ec2.describe_subnets()["Subnets"]
    vpc_id = subnets[0]["VpcId"]
    assert (
        len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]) == 6
    )
    only_b = ec2.describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]}]
    )["Subnets"]
    assert [s["AvailabilityZone"] for s in only_b] == ["us-east-1b"]
    two = ec2.describe_subnets(SubnetIds=[subnets[2]["SubnetId"], subnets[4]["SubnetId"]])
    assert [s["SubnetId"] for s in two["Subnets"]] == [
        subnets[2]["SubnetId"],
        subnets[4]["SubnetId"],
    ]
    wildcard = ec2.describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": ["us-east-1[ab]", "*f"]}]
    )
    assert [s["AvailabilityZone"] for s in wildcard["Subnets"]] == ["us-east-1f"]
    az = ec2.describe_availability_zones(ZoneNames=["us-east-1c"])["AvailabilityZones"]
    assert az[0]["ZoneId"] == "use1-az3"


def test_ec2_errors(ec2: Any) -> None:
    with pytest.raises(ClientError) as err:
        ec2.describe_subnets(SubnetIds=["subnet-0123456789abcdef0"])
    assert err.value.response["Error"]["Code"] == "InvalidSubnetID.NotFound"
    assert "subnet-0123456789abcdef0" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match=r"InvalidSubnetID\.Malformed"):
        ec2.describe_subnets(SubnetIds=["my-subnet"])
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_subnets(Filters=[{"Name": "colour", "Values": ["blue"]}])
    with pytest.raises(ClientError, match=r"InvalidVpcID\.NotFound"):
        ec2.describe_vpcs(VpcIds=["vpc-0123456789abcdef0"])
    with pytest.raises(ClientError, match="DryRunOperation"):
        ec2.describe_subnets(DryRun=True)
    with pytest.raises(ClientError, match="not simulated"):
        ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    with pytest.raises(ClientError, match="Invalid availability zone"):
        ec2.describe_availability_zones(ZoneNames=["us-east-1z"])


def test_cluster_security_group_and_hsm_enis(cloudhsm: Any, ec2: Any) -> None:
    cid, _hsm_id = with_first_hsm(cloudhsm, ec2)
    cluster = cloudhsm.describe_clusters()["Clusters"][0]
    hsm = cluster["Hsms"][0]
    groups = ec2.describe_security_groups(GroupIds=[cluster["SecurityGroup"]])["SecurityGroups"]
    rule = groups[0]["IpPermissions"][0]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 2223, 2225)
    assert groups[0]["GroupName"] == f"cloudhsm-{cid}-sg"
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "private-ip-address", "Values": [hsm["EniIp"]]}]
    )["NetworkInterfaces"]
    assert [e["NetworkInterfaceId"] for e in enis] == [hsm["EniId"]]
    assert enis[0]["SubnetId"] == hsm["SubnetId"] and enis[0]["RequesterManaged"] is True
    assert enis[0]["Groups"][0]["GroupId"] == cluster["SecurityGroup"]
    subnet = ec2.describe_subnets(SubnetIds=[hsm["SubnetId"]])["Subnets"][0]
    assert subnet["AvailableIpAddressCount"] == 4090
    with pytest.raises(ClientError, match=r"InvalidGroup\.NotFound"):
        ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])


#: The filters each Describe call answers, as named in the EC2 API reference (the lab's
#: subset of them). EC2 names most filters after the response field in kebab case.
SUPPORTED_FILTERS = {
    "describe_availability_zones": {"zone-name", "zone-id", "region-name", "state", "zone-type"},
    "describe_vpcs": {
        "vpc-id",
        "is-default",
        "state",
        "cidr",
        "cidr-block-association.cidr-block",
        "owner-id",
    },
    "describe_subnets": {
        "vpc-id",
        "subnet-id",
        "availability-zone",
        "availability-zone-id",
        "availabilityZone",
        "default-for-az",
        "defaultForAz",
        "cidr-block",
        "state",
        "owner-id",
    },
    "describe_security_groups": {"group-id", "group-name", "vpc-id", "description", "owner-id"},
    "describe_network_interfaces": {
        "network-interface-id",
        "subnet-id",
        "vpc-id",
        "availability-zone",
        "private-ip-address",
        "addresses.private-ip-address",
        "group-id",
        "description",
        "status",
        "requester-managed",
    },
}


@pytest.mark.parametrize("operation", sorted(SUPPORTED_FILTERS))
def test_unknown_filter_lists_the_supported_ones(ec2: Any, operation: str) -> None:
    with pytest.raises(ClientError) as err:
        getattr(ec2, operation)(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    listed = err.value.response["Error"]["Message"].split("Supported filters: ")[1].rstrip(".")
    assert set(listed.split(", ")) == SUPPORTED_FILTERS[operation]
