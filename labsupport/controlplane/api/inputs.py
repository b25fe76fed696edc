"""Modeled errors and the input checks botocore skips (it validates only required fields,
types and the model's own constraints; see :mod:`labsupport.aws.validation`).

AWS does not publish its error message texts; these name the operation's resource, its
state and what to do next, and keep AWS's exception types.
"""

from __future__ import annotations

import enum
from typing import Any

from labsupport.aws.inprocess import AwsServiceError
from labsupport.aws.paging import InvalidPageToken, paginate
from labsupport.controlplane.states import HsmType

INVALID = "CloudHsmInvalidRequestException"
NOT_FOUND = "CloudHsmResourceNotFoundException"
TAG_ERROR = "CloudHsmTagException"
LIMIT = "CloudHsmResourceLimitExceededException"

#: AWS quotas that matter in a lab.
MAX_HSMS_PER_CLUSTER = 28
MAX_TAGS = 50
DEFAULT_RETENTION_DAYS = "90"
CLUSTER_FILTERS = {"clusterIds", "vpcIds", "states"}
BACKUP_FILTERS = {"backupIds", "sourceBackupIds", "clusterIds", "states", "neverExpires"}
TAG_PUNCTUATION = set("_.:/=+-@ ")


def invalid(message: str) -> AwsServiceError:
    """A ``CloudHsmInvalidRequestException`` with ``message``."""
    return AwsServiceError(INVALID, message)


def not_found(message: str) -> AwsServiceError:
    """A ``CloudHsmResourceNotFoundException`` with ``message``."""
    return AwsServiceError(NOT_FOUND, message)


def page_of(
    operation: str, items: list[Any], params: dict[str, Any], limit: int, key: str
) -> dict[str, Any]:
    """One page of ``items`` under ``key`` (MaxResults bounds come from the model)."""
    try:
        page = paginate(operation, items, params.get("NextToken"), params.get("MaxResults"), limit)
    except InvalidPageToken as exc:
        raise invalid(str(exc)) from None
    out: dict[str, Any] = {key: page.items}
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def parse_filters(
    params: dict[str, Any], allowed: set[str], states: type[enum.Enum]
) -> dict[str, list[str]]:
    """The ``Filters`` map, with the values AWS documents checked (not silently ignored)."""
    filters = params.get("Filters") or {}
    for name, values in filters.items():
        if name not in allowed:
            raise invalid(f"Invalid filter {name!r}. Valid filters: {', '.join(sorted(allowed))}.")
        if name == "states":
            valid = [s.value for s in states]
            bad = [v for v in values if v not in valid]
            if bad:
                raise invalid(
                    f"Invalid value {bad[0]!r} for filter 'states'. Valid states: "
                    f"{', '.join(valid)}."
                )
        if name == "neverExpires":
            bad = [v for v in values if v.lower() not in ("true", "false")]
            if bad or len(values) != 1:
                raise invalid(
                    "The neverExpires filter takes one value, 'True' or 'False'"
                    + (f", not {bad[0]!r}." if bad else ".")
                )
    return filters


def check_tags(tags: list[dict[str, str]]) -> None:
    """Check a TagList as CloudHSM does (count, reserved prefix, lengths, characters)."""
    if len(tags) > MAX_TAGS:
        raise AwsServiceError(TAG_ERROR, f"A resource can have at most {MAX_TAGS} tags.")
    for tag in tags:
        key, value = tag["Key"], tag.get("Value", "")
        if key.lower().startswith("aws:"):
            raise AwsServiceError(
                TAG_ERROR, f"Tag key {key!r} is not allowed: the prefix 'aws:' is reserved for AWS."
            )
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise AwsServiceError(
                TAG_ERROR, "Tag keys must have 1-128 characters and values at most 256."
            )
        for text in (key, value):
            if any(not (c.isalnum() or c in TAG_PUNCTUATION) for c in text):
                raise AwsServiceError(
                    TAG_ERROR,
                    f"Tag {key!r} contains characters that are not allowed. Use letters, "
                    "digits, spaces and _ . : / = + - @",
                )


def retention_policy(policy: dict[str, Any] | None) -> dict[str, str]:
    """The ``BackupRetentionPolicy`` to store (90 days when none is given), checked."""
    if policy is None:
        return {"Type": "DAYS", "Value": DEFAULT_RETENTION_DAYS}
    if policy.get("Type", "DAYS") != "DAYS":
        raise invalid(f"Invalid BackupRetentionPolicy Type {policy.get('Type')!r}: use DAYS.")
    value = str(policy.get("Value", DEFAULT_RETENTION_DAYS))
    if not (value.isascii() and value.isdigit()) or not 7 <= int(value) <= 379:
        raise invalid(
            f"Invalid BackupRetentionPolicy Value {value!r}: keep backups between 7 and 379 days."
        )
    return {"Type": "DAYS", "Value": str(int(value))}


def parse_hsm_type(value: Any) -> HsmType:
    """``value`` as an :class:`HsmType`, or the modeled error listing the valid types."""
    try:
        return HsmType(value)
    except ValueError:
        raise invalid(
            f"Invalid HsmType {value!r}. Valid HSM types: {', '.join(t.value for t in HsmType)}."
        ) from None
