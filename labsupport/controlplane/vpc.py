"""The simulated default VPC of each region: one subnet per Availability Zone.

Like a new AWS account, every region has a default VPC ``172.31.0.0/16`` with one
default ``/20`` subnet per Availability Zone (``172.31.0.0/20``, ``172.31.16.0/20`` …).
Learners discover it with ``aws.client("ec2").describe_subnets()`` and pass subnet ids
to ``create_cluster``; every HSM then gets an ENI with a private IP in its subnet.

The VPC, subnet and security-group ids are random per workspace and created the first
time a region is looked at (the only write a describe call can cause, once).
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Any

from labsupport.controlplane import ids
from labsupport.controlplane.records import expect_keys
from labsupport.workspace.home import Workspace
from labsupport.workspace.statefile import StateFile, expect

#: ``state/ec2.json``: ``{"regions": {region: RegionNetwork.to_json()}}``.
STATE_NAME = "ec2"

VPC_CIDR = "172.31.0.0/16"

#: Availability Zone letters per region (as in a typical account); others get a, b, c.
REGION_ZONES: dict[str, str] = {
    "us-east-1": "abcdef",
    "us-east-2": "abc",
    "us-west-1": "bc",
    "us-west-2": "abcd",
    "ca-central-1": "abd",
    "eu-west-1": "abc",
    "eu-west-2": "abc",
    "eu-central-1": "abc",
    "eu-north-1": "abc",
    "ap-northeast-1": "acd",
    "ap-northeast-2": "abcd",
    "ap-southeast-1": "abc",
    "ap-southeast-2": "abc",
    "ap-south-1": "abc",
    "sa-east-1": "abc",
}

_DIRECTIONS = {
    "east": "e",
    "west": "w",
    "north": "n",
    "south": "s",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


@dataclass(frozen=True)
class Subnet:
    """A default subnet: one per Availability Zone."""

    subnet_id: str
    vpc_id: str
    availability_zone: str
    availability_zone_id: str
    cidr_block: str
    region: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The subnet's address range."""
        return ipaddress.IPv4Network(self.cidr_block)

    def usable_hosts(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        """First and last address AWS hands out (it reserves the first 4 and the last)."""
        net = self.network
        return net.network_address + 4, net.broadcast_address - 1

    def contains(self, ip: str) -> bool:
        """True if ``ip`` is an address AWS could assign in this subnet."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        first, last = self.usable_hosts()
        return first <= addr <= last  # type: ignore[operator]

    def allocate_ip(self, used: set[str]) -> str:
        """A random free private IP in this subnet (AWS picks one at random too)."""
        first, last = self.usable_hosts()
        span = int(last) - int(first) + 1
        for _ in range(1000):
            candidate = str(ipaddress.ip_address(int(first) + secrets.randbelow(span)))
            if candidate not in used:
                return candidate
        raise RuntimeError("no free IP address left in " + self.cidr_block)


@dataclass(frozen=True)
class DefaultVpc:
    """The default VPC of one region: its id, subnets and default security group."""

    region: str
    vpc_id: str
    default_security_group: str
    subnets: tuple[Subnet, ...]

    def subnet(self, subnet_id: str) -> Subnet | None:
        """The subnet with id ``subnet_id`` (None if it is not in this VPC)."""
        return next((s for s in self.subnets if s.subnet_id == subnet_id), None)


@dataclass(frozen=True)
class RegionNetwork:
    """What ``state/ec2.json`` keeps for one region: the default VPC's ids and one subnet id
    per Availability Zone (everything else about the VPC is derived from them)."""

    vpc_id: str
    default_security_group: str
    subnets: dict[str, str] = field(default_factory=dict)  # AZ name → subnet id

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in ``ec2.json``."""
        return {
            "vpc_id": self.vpc_id,
            "default_security_group": self.default_security_group,
            "subnets": dict(self.subnets),
        }

    @classmethod
    def from_json(cls, raw: Any, where: str = "region") -> RegionNetwork:
        """Read one region's entry, checking its shape (``StateShapeError`` naming the path)."""
        expect_keys(raw, {"vpc_id": str, "default_security_group": str, "subnets": dict}, where)
        for az, subnet_id in raw["subnets"].items():
            expect(subnet_id, str, f"{where}.subnets.{az}")
        return cls(raw["vpc_id"], raw["default_security_group"], dict(raw["subnets"]))


def validate_ec2(data: dict[str, Any]) -> dict[str, Any]:
    """Shape check of ``ec2.json`` (a missing ``regions`` table becomes empty)."""
    data.setdefault("regions", {})
    for region, raw in expect(data["regions"], dict, "regions").items():
        RegionNetwork.from_json(raw, f"regions.{region}")
    return data


def ec2_state(workspace: Workspace) -> StateFile:
    """The default VPCs' :class:`StateFile` (shape-checked on load)."""
    return workspace.state(STATE_NAME, {"regions": {}}, validate_ec2)


def zone_id(region: str, index: int) -> str:
    """AWS-style AZ id, e.g. ``use1-az1`` for the first AZ of us-east-1."""
    parts = region.split("-")
    short = parts[0] + "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1]) + parts[-1]
    return f"{short}-az{index + 1}"


def default_vpc(workspace: Workspace, region: str) -> DefaultVpc:
    """The default VPC of ``region`` in this workspace (created on first use)."""
    state = ec2_state(workspace)
    raw = state.read()["regions"].get(region)
    if raw is None:
        with state.update() as data:
            if region not in data["regions"]:
                letters = REGION_ZONES.get(region, "abc")
                data["regions"][region] = RegionNetwork(
                    vpc_id=ids.ec2_id("vpc"),
                    default_security_group=ids.ec2_id("sg"),
                    subnets={f"{region}{letter}": ids.ec2_id("subnet") for letter in letters},
                ).to_json()
            raw = data["regions"][region]
    entry = RegionNetwork.from_json(raw, f"regions.{region}")
    subnets = tuple(
        Subnet(
            subnet_id=subnet_id,
            vpc_id=entry.vpc_id,
            availability_zone=az,
            availability_zone_id=zone_id(region, i),
            cidr_block=f"172.31.{16 * i}.0/20",  # the i-th /20 of VPC_CIDR
            region=region,
        )
        for i, (az, subnet_id) in enumerate(sorted(entry.subnets.items()))
    )
    return DefaultVpc(region, entry.vpc_id, entry.default_security_group, subnets)
