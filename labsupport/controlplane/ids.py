"""AWS identifier formats, as the CloudHSMv2 and EC2 APIs write them.

CloudHSM ids are a prefix and 11 characters of the RFC 4648 base32 alphabet
(``cluster-igklspoyj5v``, ``hsm-ucdy4zmqbhd``, ``backup-ro5c4er4aac``); the API accepts
11-16. EC2 ids are a prefix and 17 lowercase hex digits (``subnet-0e358c43f3a8e2c2c``).
"""

from __future__ import annotations

import re
import secrets

_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"

#: Parsers for ARNs (the parts they name matter, not just the form). The forms of ids,
#: regions, AZs and IPs are checked from botocore's service model before a call is sent
#: (:mod:`labsupport.aws.validation`).
BACKUP_ARN = re.compile(
    r"^(arn:aws(-(us-gov))?:cloudhsm:(?P<region>[a-z]{2}(-(gov|isob|iso))?-"
    r"(east|west|north|south|central){1,2}-[0-9]):(?P<account>[0-9]{12}):backup/)?"
    r"(?P<id>backup-[2-7a-zA-Z]{11,16})$"
)
RESOURCE_ARN = re.compile(
    r"^arn:aws(-(us-gov))?:cloudhsm:(?P<region>[a-z]{2}(-(gov|isob|iso))?-"
    r"(east|west|north|south|central){1,2}-[0-9]):(?P<account>[0-9]{12}):"
    r"(?P<kind>backup|cluster|hsm)/(?P<id>(backup|cluster|hsm)-[2-7a-zA-Z]{11,16})$"
)
#: EC2 answers a malformed subnet id in a filter with InvalidSubnetID.Malformed.
SUBNET_ID = re.compile(r"^subnet-[0-9a-fA-F]{8,17}$")

#: The simulated AWS account (the placeholder account number of the AWS docs).
ACCOUNT_ID = "111122223333"


def _base32(n: int) -> str:
    return "".join(secrets.choice(_BASE32) for _ in range(n))


def cluster_id() -> str:
    """A new cluster id, e.g. ``cluster-igklspoyj5v``."""
    return "cluster-" + _base32(11)


def hsm_id() -> str:
    """A new HSM id, e.g. ``hsm-ucdy4zmqbhd``."""
    return "hsm-" + _base32(11)


def backup_id() -> str:
    """A new backup id, e.g. ``backup-ro5c4er4aac``."""
    return "backup-" + _base32(11)


def ec2_id(prefix: str) -> str:
    """A new EC2-style id: ``prefix`` + ``-`` + 17 hex digits (``eni-0a1b…``)."""
    return f"{prefix}-0{secrets.token_hex(8)}"


def arn(region: str, kind: str, resource_id: str) -> str:
    """The ARN of a CloudHSM resource (``kind`` is ``cluster``, ``hsm`` or ``backup``)."""
    return f"arn:aws:cloudhsm:{region}:{ACCOUNT_ID}:{kind}/{resource_id}"
