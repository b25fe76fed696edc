"""The simulated EC2 API, just enough to find where a cluster lives.

``aws.client("ec2")`` answers DescribeAvailabilityZones, DescribeVpcs, DescribeSubnets,
DescribeSecurityGroups and DescribeNetworkInterfaces from the workspace's default VPC
(:mod:`labsupport.controlplane.vpc`) and its clusters: each cluster has a security group
allowing TCP 2223-2225 between its members, and each HSM an ENI in its subnet.

EC2 speaks the *EC2 query* protocol: botocore sends a form body
(``Action=DescribeSubnets&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-…``) and parses an
XML answer. The answer is built from the botocore service model itself, so every field
name is the one botocore expects. Errors use EC2's codes
(``InvalidSubnetID.NotFound``, ``InvalidParameterValue`` …).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree as ET

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from labsupport.aws.inprocess import AwsServiceError, http_response
from labsupport.aws.paging import InvalidPageToken, paginate
from labsupport.controlplane import ids
from labsupport.controlplane.cluster import ControlPlane
from labsupport.controlplane.records import ClusterRecord
from labsupport.controlplane.states import ClusterState
from labsupport.controlplane.vpc import VPC_CIDR, DefaultVpc, default_vpc
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_MODEL = None


def _service_model() -> Any:
    global _MODEL
    if _MODEL is None:
        _MODEL = botocore.session.get_session().get_service_model("ec2")
    return _MODEL


def ec2_error(code: str, message: str, status: int = 400) -> AwsServiceError:
    """An EC2 error (``code`` such as ``InvalidSubnetID.NotFound``)."""
    return AwsServiceError(code, message, status)


# --- request parsing ------------------------------------------------------------------------


class Query:
    """The form parameters of one EC2 query request."""

    def __init__(self, body: str) -> None:
        self.raw = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    @property
    def action(self) -> str:
        """The operation name (``Action=…``)."""
        return self.raw.get("Action", "")

    def get(self, name: str, default: str | None = None) -> str | None:
        """A scalar parameter."""
        return self.raw.get(name, default)

    def strings(self, prefix: str) -> list[str]:
        """A list parameter serialized as ``prefix.1``, ``prefix.2`` …"""
        pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)$")
        found = sorted((int(m.group(1)), v) for k, v in self.raw.items() if (m := pattern.match(k)))
        return [v for _, v in found]

    def filters(self) -> dict[str, list[str]]:
        """``Filter.N.Name`` / ``Filter.N.Value.M`` as ``{name: [values]}``."""
        out: dict[str, list[str]] = {}
        for key, name in self.raw.items():
            m = re.match(r"^Filter\.(\d+)\.Name$", key)
            if m:
                out.setdefault(name, []).extend(self.strings(f"Filter.{m.group(1)}.Value"))
        return out

    def dry_run(self) -> bool:
        """True if ``DryRun=true``."""
        return (self.raw.get("DryRun") or "").lower() == "true"


def _always_true(_: dict[str, Any]) -> str:
    """A filter field that is true for every item (e.g. `is-default` of the default VPC)."""
    return "true"


FilterField = str | Callable[[dict[str, Any]], Any]


def _filter_name(field: str) -> str:
    """EC2's filter name for a response field: ``NetworkInterfaceId`` → ``network-interface-id``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", field).lower()


def _filter_table(
    *fields: str, extra: dict[str, FilterField] | None = None
) -> dict[str, FilterField]:
    """The filters an operation supports: one per field, named as EC2 names them, plus ``extra``
    (filters whose names do not follow that rule, or that compute their value)."""
    return {**{_filter_name(f): f for f in fields}, **(extra or {})}


def _apply_filters(
    items: list[dict[str, Any]],
    filters: dict[str, list[str]],
    fields: dict[str, FilterField],
) -> list[dict[str, Any]]:
    """Keep the items every filter matches (``*`` and ``?`` wildcards, as EC2 does).

    ``fields`` maps each supported filter name to the response key it reads, or to a
    function of the item.
    """
    for name, values in filters.items():
        field = fields.get(name)
        if field is None:
            raise ec2_error(
                "InvalidParameterValue",
                f"The filter '{name}' is invalid. Supported filters: {', '.join(sorted(fields))}.",
            )
        patterns = [
            re.compile("^" + re.escape(v).replace(r"\*", ".*").replace(r"\?", ".") + "$")
            for v in values
        ]
        getter = (lambda i, key=field: i[key]) if isinstance(field, str) else field
        items = [i for i in items if any(p.match(str(getter(i))) for p in patterns)]
    return items


def _only(items: list[dict[str, Any]], query: Query, param: str, key: str) -> list[dict[str, Any]]:
    """The items whose ``key`` is one of the ``param.N`` values, or all if none is given."""
    wanted = query.strings(param)
    return [i for i in items if i[key] in wanted] if wanted else items


def _paginate(items: list[Any], query: Query, key: str) -> dict[str, Any]:
    """One page of ``items`` under ``key`` (MaxResults bounds come from the model)."""
    size = query.get("MaxResults")
    try:
        page = paginate(query.action, items, query.get("NextToken"), int(size or 0), 1000)
    except InvalidPageToken as exc:
        raise ec2_error("InvalidParameterValue", str(exc)) from None
    out: dict[str, Any] = {key: page.items}
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


# --- XML serialization from the service model -------------------------------------------


def _to_xml(parent: ET.Element, tag: str, shape: Any, value: Any) -> None:
    node = ET.SubElement(parent, tag)
    kind = shape.type_name
    if kind == "structure":
        for member, member_shape in shape.members.items():
            if member in value and value[member] is not None:
                _to_xml(
                    node,
                    member_shape.serialization.get("name", member),
                    member_shape,
                    value[member],
                )
    elif kind == "list":
        item_name = shape.member.serialization.get("name", "member")
        for item in value:
            _to_xml(node, item_name, shape.member, item)
    elif kind == "boolean":
        node.text = "true" if value else "false"
    else:
        node.text = str(value)


def to_xml(operation: str, result: dict[str, Any]) -> bytes:
    """The XML EC2 would send for ``operation`` with ``result`` (botocore member names)."""
    shape = _service_model().operation_model(operation).output_shape
    root = ET.Element(f"{operation}Response", {"xmlns": XMLNS})
    ET.SubElement(root, "requestId").text = str(uuid.uuid4())
    for member, member_shape in shape.members.items():
        if member in result and result[member] is not None:
            _to_xml(
                root, member_shape.serialization.get("name", member), member_shape, result[member]
            )
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


def error_xml(code: str, message: str) -> bytes:
    """EC2's error document."""
    root = ET.Element("Response")
    error = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    ET.SubElement(root, "RequestID").text = str(uuid.uuid4())
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


# --- the service ----------------------------------------------------------------------------


class Ec2Service:
    """Read-only EC2 views of the simulated default VPC and the clusters in it."""

    service_name = "ec2"

    def __init__(self, workspace: Workspace, region: str) -> None:
        self.workspace = workspace
        self.region = region

    @classmethod
    def operations(cls) -> list[str]:
        """Names of the EC2 operations the lab answers."""
        return sorted(n for n in dir(cls) if n.startswith("Describe"))

    def handle(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        """botocore ``before-send`` handler: answer an EC2 query request in-process."""
        body = request.body or b""
        query = Query(body.decode() if isinstance(body, bytes) else str(body))
        content_type = "text/xml;charset=UTF-8"
        try:
            method = getattr(self, query.action, None)
            if method is None or not query.action.startswith("Describe"):
                raise ec2_error(
                    "UnsupportedOperation",
                    f"{query.action} is not simulated by CloudHSM Lab; the simulated ec2 "
                    f"supports: {', '.join(self.operations())}.",
                )
            if query.dry_run():
                raise ec2_error(
                    "DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412
                )
            result = method(query)
            return http_response(request, 200, to_xml(query.action, result), content_type)
        except AwsServiceError as err:
            return http_response(
                request, err.status, error_xml(err.code, err.message), content_type
            )
        except LabError as err:  # e.g. a damaged ec2.json: its own problem and fix, in full
            return http_response(request, 500, error_xml("InternalError", str(err)), content_type)
        except Exception as err:  # a lab bug: modeled 500, no traceback
            detail = (str(err).splitlines() or [""])[0][:200]
            message = (
                f"The simulated ec2 failed in {query.action} ({type(err).__name__}: {detail}). "
                "Run `python -m labsupport doctor`; reset the workspace if it persists."
            )
            return http_response(request, 500, error_xml("InternalError", message), content_type)

    # -- data ---------------------------------------------------------------------------

    def _vpc(self) -> DefaultVpc:
        return default_vpc(self.workspace, self.region)

    def _clusters(self) -> list[ClusterRecord]:
        return [
            c
            for c in ControlPlane(self.workspace).view()["clusters"].values()
            if c["region"] == self.region and c["state"] != ClusterState.DELETED
        ]

    def _check_ids(self, wanted: list[str], have: set[str], kind: str, code: str) -> None:
        missing = [w for w in wanted if w not in have]
        if missing:
            raise ec2_error(code, f"The {kind} ID '{missing[0]}' does not exist")

    # -- operations -------------------------------------------------------------------

    def DescribeAvailabilityZones(self, query: Query) -> dict[str, Any]:
        """The Availability Zones of this region."""
        zones = [
            {
                "ZoneName": s.availability_zone,
                "ZoneId": s.availability_zone_id,
                "RegionName": self.region,
                "State": "available",
                "OptInStatus": "opt-in-not-required",
                "GroupName": self.region,
                "NetworkBorderGroup": self.region,
                "ZoneType": "availability-zone",
                "Messages": [],
            }
            for s in self._vpc().subnets
        ]
        names = query.strings("ZoneName")
        for name in names:
            if name not in {z["ZoneName"] for z in zones}:
                raise ec2_error("InvalidParameterValue", f"Invalid availability zone: [{name}]")
        zones = _only(_only(zones, query, "ZoneName", "ZoneName"), query, "ZoneId", "ZoneId")
        zones = _apply_filters(
            zones,
            query.filters(),
            _filter_table("ZoneName", "ZoneId", "RegionName", "State", "ZoneType"),
        )
        return {"AvailabilityZones": zones}

    def DescribeVpcs(self, query: Query) -> dict[str, Any]:
        """The default VPC."""
        vpc = self._vpc()
        vpcs = [
            {
                "VpcId": vpc.vpc_id,
                "CidrBlock": VPC_CIDR,
                "State": "available",
                "DhcpOptionsId": "dopt-0" + vpc.vpc_id[-16:],
                "InstanceTenancy": "default",
                "IsDefault": True,
                "OwnerId": ids.ACCOUNT_ID,
                "CidrBlockAssociationSet": [
                    {
                        "AssociationId": "vpc-cidr-assoc-0" + vpc.vpc_id[-16:],
                        "CidrBlock": VPC_CIDR,
                        "CidrBlockState": {"State": "associated"},
                    }
                ],
            }
        ]
        wanted = query.strings("VpcId")
        self._check_ids(wanted, {vpc.vpc_id}, "vpc", "InvalidVpcID.NotFound")
        vpcs = _apply_filters(
            vpcs,
            query.filters(),
            _filter_table(
                "VpcId",
                "State",
                "OwnerId",
                extra={
                    "is-default": _always_true,
                    "cidr": "CidrBlock",
                    "cidr-block-association.cidr-block": "CidrBlock",
                },
            ),
        )
        return _paginate(vpcs, query, "Vpcs")

    def DescribeSubnets(self, query: Query) -> dict[str, Any]:
        """The default subnets, one per Availability Zone."""
        vpc = self._vpc()
        eni_count: dict[str, int] = {}
        for cluster in self._clusters():
            for hsm in cluster["hsms"].values():
                eni_count[hsm["subnet"]] = eni_count.get(hsm["subnet"], 0) + 1
        subnets: list[dict[str, Any]] = [
            {
                "SubnetId": s.subnet_id,
                "SubnetArn": f"arn:aws:ec2:{self.region}:{ids.ACCOUNT_ID}:subnet/{s.subnet_id}",
                "VpcId": s.vpc_id,
                "AvailabilityZone": s.availability_zone,
                "AvailabilityZoneId": s.availability_zone_id,
                "CidrBlock": s.cidr_block,
                "AvailableIpAddressCount": s.network.num_addresses
                - 5
                - eni_count.get(s.subnet_id, 0),
                "DefaultForAz": True,
                "MapPublicIpOnLaunch": True,
                "State": "available",
                "OwnerId": ids.ACCOUNT_ID,
                "AssignIpv6AddressOnCreation": False,
                "Ipv6CidrBlockAssociationSet": [],
            }
            for s in vpc.subnets
        ]
        wanted = query.strings("SubnetId")
        for subnet_id in wanted:
            if not ids.SUBNET_ID.match(subnet_id):
                raise ec2_error("InvalidSubnetID.Malformed", f'Invalid id: "{subnet_id}"')
        self._check_ids(
            wanted, {s["SubnetId"] for s in subnets}, "subnet", "InvalidSubnetID.NotFound"
        )
        subnets = _only(subnets, query, "SubnetId", "SubnetId")
        subnets = _apply_filters(
            subnets,
            query.filters(),
            _filter_table(
                "VpcId",
                "SubnetId",
                "AvailabilityZone",
                "AvailabilityZoneId",
                "CidrBlock",
                "State",
                "OwnerId",
                extra={
                    "availabilityZone": "AvailabilityZone",
                    "default-for-az": _always_true,
                    "defaultForAz": _always_true,
                },
            ),
        )
        return _paginate(subnets, query, "Subnets")

    def DescribeSecurityGroups(self, query: Query) -> dict[str, Any]:
        """The VPC's default group and one group per cluster (TCP 2223-2225 between members)."""
        vpc = self._vpc()
        groups = [
            {
                "GroupId": vpc.default_security_group,
                "GroupName": "default",
                "Description": "default VPC security group",
                "VpcId": vpc.vpc_id,
                "OwnerId": ids.ACCOUNT_ID,
                "IpPermissions": [
                    {
                        "IpProtocol": "-1",
                        "UserIdGroupPairs": [
                            {"GroupId": vpc.default_security_group, "UserId": ids.ACCOUNT_ID}
                        ],
                        "IpRanges": [],
                        "Ipv6Ranges": [],
                        "PrefixListIds": [],
                    }
                ],
                "IpPermissionsEgress": [_allow_all_egress()],
            }
        ]
        for cluster in self._clusters():
            sg = cluster["security_group"]
            groups.append(
                {
                    "GroupId": sg,
                    "GroupName": f"cloudhsm-{cluster['id']}-sg",
                    "Description": f"AWS CloudHSM {cluster['id']} security group",
                    "VpcId": cluster["vpc_id"],
                    "OwnerId": ids.ACCOUNT_ID,
                    "IpPermissions": [
                        {
                            "IpProtocol": "tcp",
                            "FromPort": 2223,
                            "ToPort": 2225,
                            "UserIdGroupPairs": [{"GroupId": sg, "UserId": ids.ACCOUNT_ID}],
                            "IpRanges": [],
                            "Ipv6Ranges": [],
                            "PrefixListIds": [],
                        }
                    ],
                    "IpPermissionsEgress": [_allow_all_egress()],
                }
            )
        wanted = query.strings("GroupId")
        for group_id in wanted:
            if group_id not in {g["GroupId"] for g in groups}:
                raise ec2_error(
                    "InvalidGroup.NotFound", f"The security group '{group_id}' does not exist"
                )
        groups = _only(groups, query, "GroupId", "GroupId")
        groups = _only(groups, query, "GroupName", "GroupName")
        groups = _apply_filters(
            groups,
            query.filters(),
            _filter_table("GroupId", "GroupName", "VpcId", "Description", "OwnerId"),
        )
        return _paginate(groups, query, "SecurityGroups")

    def DescribeNetworkInterfaces(self, query: Query) -> dict[str, Any]:
        """The ENIs of the HSMs (one per HSM, in the HSM's subnet)."""
        enis: list[dict[str, Any]] = []
        for cluster in self._clusters():
            for hsm in sorted(cluster["hsms"].values(), key=lambda h: h["created"]):
                enis.append(
                    {
                        "NetworkInterfaceId": hsm["eni_id"],
                        "SubnetId": hsm["subnet"],
                        "VpcId": cluster["vpc_id"],
                        "AvailabilityZone": hsm["az"],
                        "Description": f"CloudHSM {hsm['id']} ({cluster['id']})",
                        "OwnerId": ids.ACCOUNT_ID,
                        "RequesterId": "amazon-cloudhsm",
                        "RequesterManaged": True,
                        "Status": "in-use",
                        "InterfaceType": "interface",
                        "PrivateIpAddress": hsm["eni_ip"],
                        "PrivateIpAddresses": [
                            {"PrivateIpAddress": hsm["eni_ip"], "Primary": True}
                        ],
                        "Groups": [
                            {
                                "GroupId": cluster["security_group"],
                                "GroupName": f"cloudhsm-{cluster['id']}-sg",
                            }
                        ],
                        "SourceDestCheck": True,
                        "TagSet": [],
                    }
                )
        wanted = query.strings("NetworkInterfaceId")
        self._check_ids(
            wanted,
            {e["NetworkInterfaceId"] for e in enis},
            "networkInterface",
            "InvalidNetworkInterfaceID.NotFound",
        )
        enis = _only(enis, query, "NetworkInterfaceId", "NetworkInterfaceId")
        enis = _apply_filters(
            enis,
            query.filters(),
            _filter_table(
                "NetworkInterfaceId",
                "SubnetId",
                "VpcId",
                "AvailabilityZone",
                "PrivateIpAddress",
                "Description",
                "Status",
                extra={
                    "addresses.private-ip-address": "PrivateIpAddress",
                    "group-id": lambda e: e["Groups"][0]["GroupId"],
                    "requester-managed": _always_true,
                },
            ),
        )
        return _paginate(enis, query, "NetworkInterfaces")


def _allow_all_egress() -> dict[str, Any]:
    return {
        "IpProtocol": "-1",
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        "Ipv6Ranges": [],
        "PrefixListIds": [],
        "UserIdGroupPairs": [],
    }
