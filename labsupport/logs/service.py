"""The simulated CloudWatch Logs API (the read side CloudHSM's audit logs need).

Operations: DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents — with
their pagination tokens, time windows (milliseconds since the epoch, ``startTime``
inclusive, ``endTime`` exclusive) and the text filter-pattern syntax for unstructured
events: ``term1 term2`` (all must appear), ``?term1 ?term2`` (any), ``-term`` (must not
appear), ``"a phrase"``; matching is case-sensitive, as on AWS. JSON and space-delimited
patterns (``{ $.x = … }``, ``[a, b]``) are not simulated: they apply to structured
events, and CloudHSM's audit events are text.
"""

from __future__ import annotations

import base64
import binascii
import shlex
import zlib
from typing import Any

from labsupport.aws.inprocess import AwsServiceError, JsonService
from labsupport.hsm import audit
from labsupport.workspace.home import Workspace

ACCOUNT_ID = "111122223333"
NOT_FOUND = "ResourceNotFoundException"
INVALID = "InvalidParameterException"


def _invalid(message: str) -> AwsServiceError:
    return AwsServiceError(INVALID, message)


def _limit(params: dict[str, Any], maximum: int, default: int) -> int:
    limit = params.get("limit", default)
    if not 1 <= limit <= maximum:
        raise _invalid(f"limit must be between 1 and {maximum}, not {limit}.")
    return limit


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid(
            "The nextToken is not valid; pass the one the previous page returned."
        ) from None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _page(items: list[Any], params: dict[str, Any], key: str, size: int) -> dict[str, Any]:
    start = _offset(params.get("nextToken"))
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = _token(start + size)
    return out


def parse_pattern(pattern: str) -> tuple[list[str], list[str], list[str]]:
    """Split a text filter pattern into (all-of, any-of, none-of) terms."""
    try:
        words = shlex.split(pattern or "")
    except ValueError:
        raise _invalid(f"Invalid filterPattern {pattern!r}: a quote is not closed.") from None
    if words and (words[0].startswith("{") or words[0].startswith("[")):
        raise _invalid(
            "JSON and space-delimited filter patterns are not simulated; CloudHSM audit "
            'events are text — use terms such as CN_CREATE_USER or "User Name : alice".'
        )
    required, optional, excluded = [], [], []
    for word in words:
        if word.startswith("?") and len(word) > 1:
            optional.append(word[1:])
        elif word.startswith("-") and len(word) > 1:
            excluded.append(word[1:])
        else:
            required.append(word)
    return required, optional, excluded


def matches(message: str, pattern: tuple[list[str], list[str], list[str]]) -> bool:
    """True if ``message`` matches a parsed filter pattern."""
    required, optional, excluded = pattern
    if any(term not in message for term in required):
        return False
    if optional and not any(term in message for term in optional):
        return False
    return not any(term in message for term in excluded)


class LogsService(JsonService):
    """CloudWatch Logs of one workspace and region (the CloudHSM audit log groups)."""

    service_name = "logs"

    def __init__(self, workspace: Workspace, region: str) -> None:
        super().__init__(workspace, region)

    def _arn(self, group: str, stream: str | None = None) -> str:
        arn = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{group}"
        return arn + (f":log-stream:{stream}" if stream else ":*")

    def _groups(self) -> list[dict[str, Any]]:
        return [g for g in audit.groups(self.workspace) if g.get("region") == self.region]

    def _group(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("logGroupName") or params.get("logGroupIdentifier") or ""
        name = name.split(":log-group:")[-1].removesuffix(":*")
        if not name:
            raise _invalid("Specify logGroupName (e.g. /aws/cloudhsm/cluster-igklspoyj5v).")
        for group in self._groups():
            if audit.log_group_name(group["cluster_id"]) == name:
                return group
        raise AwsServiceError(
            NOT_FOUND,
            f"The specified log group does not exist: {name}. CloudHSM creates "
            "/aws/cloudhsm/<cluster id> when an HSM of the cluster logs its first command.",
        )

    def _window(self, params: dict[str, Any]) -> tuple[int, int]:
        start = params.get("startTime", 0)
        end = params.get("endTime", 2**62)
        if start < 0 or end < 0:
            raise _invalid("startTime and endTime are milliseconds since the epoch (>= 0).")
        return start, end

    # -- operations ---------------------------------------------------------------------

    def DescribeLogGroups(self, params: dict[str, Any]) -> dict[str, Any]:
        """Log groups, optionally by name prefix or pattern (substring)."""
        prefix = params.get("logGroupNamePrefix") or ""
        pattern = params.get("logGroupNamePattern") or ""
        if prefix and pattern:
            raise _invalid("Specify logGroupNamePrefix or logGroupNamePattern, not both.")
        size = _limit(params, 50, 50)
        out = []
        for group in self._groups():
            name = audit.log_group_name(group["cluster_id"])
            if not name.startswith(prefix) or pattern.lower() not in name.lower():
                continue
            stored = sum(s["bytes"] for s in audit.streams(self.workspace, group["cluster_id"]))
            out.append(
                {
                    "logGroupName": name,
                    "creationTime": group["created"],
                    "metricFilterCount": 0,
                    "arn": self._arn(name),
                    "logGroupArn": self._arn(name).removesuffix(":*"),
                    "storedBytes": stored,
                    "logGroupClass": "STANDARD",
                }
            )
        out.sort(key=lambda g: g["logGroupName"])
        return _page(out, params, "logGroups", size)

    def DescribeLogStreams(self, params: dict[str, Any]) -> dict[str, Any]:
        """The streams of a group (one per HSM), by name or by last event time."""
        group = self._group(params)
        name = audit.log_group_name(group["cluster_id"])
        prefix = params.get("logStreamNamePrefix") or ""
        order = params.get("orderBy", "LogStreamName")
        if order not in ("LogStreamName", "LastEventTime"):
            raise _invalid(f"orderBy must be LogStreamName or LastEventTime, not {order!r}.")
        if order == "LastEventTime" and prefix:
            raise _invalid("logStreamNamePrefix cannot be used with orderBy LastEventTime.")
        size = _limit(params, 50, 50)
        items = [s for s in audit.streams(self.workspace, group["cluster_id"])]
        items = [s for s in items if s["name"].startswith(prefix)]
        key = (lambda s: s["name"]) if order == "LogStreamName" else (lambda s: s["last"])
        items.sort(key=key, reverse=bool(params.get("descending")))
        out = [
            {
                "logStreamName": s["name"],
                "creationTime": s["created"],
                "firstEventTimestamp": s["created"],
                "lastEventTimestamp": s["last"],
                "lastIngestionTime": s["last"],
                "arn": self._arn(name, s["name"]),
                "storedBytes": 0,  # AWS deprecated this field and always returns 0
            }
            for s in items
        ]
        return _page(out, params, "logStreams", size)

    def GetLogEvents(self, params: dict[str, Any]) -> dict[str, Any]:
        """The events of one stream in a time window, with forward/backward tokens."""
        group = self._group(params)
        stream = params["logStreamName"]
        if stream not in {s["name"] for s in audit.streams(self.workspace, group["cluster_id"])}:
            raise AwsServiceError(NOT_FOUND, f"The specified log stream does not exist: {stream}.")
        start, end = self._window(params)
        events = [
            e
            for e in audit.read_events(self.workspace, group["cluster_id"], stream)
            if start <= e.timestamp < end
        ]
        size = _limit(params, 10000, 10000)
        token = params.get("nextToken") or ""
        if token:
            direction, _, number = token.partition("/")
            if direction not in ("f", "b") or not number.isdigit():
                raise _invalid(
                    "The nextToken is not valid; use nextForwardToken or nextBackwardToken."
                )
            if direction == "f":
                lo = int(number)
                hi = min(len(events), lo + size)
            else:
                hi = int(number)
                lo = max(0, hi - size)
        elif params.get("startFromHead"):
            lo, hi = 0, min(len(events), size)
        else:
            hi = len(events)
            lo = max(0, hi - size)
        return {
            "events": [
                {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion}
                for e in events[lo:hi]
            ],
            "nextForwardToken": f"f/{hi}",
            "nextBackwardToken": f"b/{lo}",
        }

    def FilterLogEvents(self, params: dict[str, Any]) -> dict[str, Any]:
        """Events of a group matching a filter pattern, across streams, oldest first."""
        group = self._group(params)
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names and prefix:
            raise _invalid("Specify logStreamNames or logStreamNamePrefix, not both.")
        start, end = self._window(params)
        pattern = parse_pattern(params.get("filterPattern", ""))
        size = _limit(params, 10000, 10000)
        streams = [s["name"] for s in audit.streams(self.workspace, group["cluster_id"])]
        if names:
            streams = [s for s in streams if s in names]
        elif prefix:
            streams = [s for s in streams if s.startswith(prefix)]
        found = []
        for stream in streams:
            for e in audit.read_events(self.workspace, group["cluster_id"], stream):
                if start <= e.timestamp < end and matches(e.message, pattern):
                    found.append(e)
        found.sort(key=lambda e: (e.timestamp, e.stream, e.index))
        events = [
            {
                "logStreamName": e.stream,
                "timestamp": e.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion,
                "eventId": f"{e.timestamp:020d}{e.index:012d}{zlib.crc32(e.stream.encode()):010d}",
            }
            for e in found
        ]
        out = _page(events, params, "events", size)
        out["searchedLogStreams"] = [
            {"logStreamName": s, "searchedCompletely": True} for s in streams
        ]
        return out


def reset_logs(workspace: Workspace, lesson: str | None) -> None:
    """Reset hook: remove the log groups of ``lesson``'s clusters (all when None)."""
    audit.delete_groups_owned_by(workspace, lesson)
