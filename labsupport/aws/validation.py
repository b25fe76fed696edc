"""One input-validation path for every simulated service, driven by botocore's models.

botocore itself checks only that required members are present and that values have the
right Python type. AWS services also enforce the rest of the model — ``min``/``max``
(string and blob length, list and map size, number range), ``pattern`` and ``enum`` —
and answer a violation with a 400 error whose message follows one format::

    1 validation error detected: Value '²' at 'backupRetentionPolicy.value' failed to
    satisfy constraint: Member must satisfy regular expression pattern: [0-9]+

:func:`validate` walks an operation's input shape against the caller's parameters and
returns every violation in that format. The JSON simulators (cloudhsmv2, kms) run it on
each request they receive; :func:`install` runs it in the boto3 client for ec2 (query
protocol). So the lab checks the same constraints for cloudhsmv2, ec2 and kms from the
model instead of hand-copied regexes. Sensitive members and blobs are
never echoed (``Value '***' at 'plaintext' …``), as AWS does.

Values of the wrong Python type are skipped here: botocore's own validation reports them
right after. Semantic checks the model cannot express stay in each simulator.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel, Shape

#: The error code each service answers a constraint violation with (and HTTP 400).
VALIDATION_ERROR = {
    "cloudhsmv2": "CloudHsmInvalidRequestException",
    "kms": "ValidationException",
    "ec2": "InvalidParameterValue",
}
#: Members whose violations the service reports with a more specific modeled error.
PATH_ERRORS = {
    "cloudhsmv2": {"tagList": "CloudHsmTagException", "tagKeyList": "CloudHsmTagException"},
}
_MAX_SHOWN = 60

Matcher = Callable[[str], bool]


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service`` (loaded once per process)."""
    return _botocore_session().get_service_model(service)


@functools.cache
def operation_model(service: str, operation: str) -> OperationModel:
    """botocore's model of one operation of ``service``."""
    return service_model(service).operation_model(operation)


@functools.cache
def known_regions(service: str) -> list[str]:
    """Regions (all partitions) where botocore's endpoint data lists ``service``."""
    session = _botocore_session()
    regions: list[str] = []
    for partition in session.get_available_partitions():
        regions += session.get_available_regions(service, partition_name=partition)
    return regions


@functools.lru_cache(maxsize=1)
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


# Unicode general categories for the \p{..} classes AWS models use (Java regex syntax).
_CATEGORY = {"L": "L", "N": "N", "Z": "Z", "P": "P", "S": "S", "M": "M", "C": "C"}
_SINGLE_CLASS = re.compile(r"^\^?\(?\[(?P<body>(?:\\.|[^\]])*)\]\*\)?\$?$")


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Matcher | None:
    """A full-match predicate for a model ``pattern`` (Java syntax), or None if unusable.

    Python's ``re`` understands the models' patterns except ``\\p{L}``-style Unicode
    classes; the one form they appear in — a single repeated character class such as
    ``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$`` — is matched character by character with
    :mod:`unicodedata`.
    """
    if "\\p{" in pattern:
        match = _SINGLE_CLASS.match(pattern)
        if match is None:
            return None
        return _class_matcher(match.group("body"))
    try:
        compiled = re.compile(pattern, re.ASCII)  # Java's \d, \w and \s are ASCII-only
    except re.error:
        return None
    return lambda value: compiled.fullmatch(value) is not None


def _class_matcher(body: str) -> Matcher | None:
    categories: set[str] = set()
    rest = ""
    i = 0
    while i < len(body):
        if body.startswith("\\p{", i):
            end = body.index("}", i)
            name = body[i + 3 : end]
            if name not in _CATEGORY:
                return None
            categories.add(_CATEGORY[name])
            i = end + 1
        else:
            step = 2 if body[i] == "\\" else 1
            rest += body[i : i + step]
            i += step
    others = re.compile(f"[{rest}]") if rest else None

    def matches(value: str) -> bool:
        for char in value:
            if unicodedata.category(char)[0] in categories:
                continue
            if others is None or not others.fullmatch(char):
                return False
        return True

    return matches


def _show(value: Any, shape: Shape) -> str:
    if shape.metadata.get("sensitive") or shape.type_name == "blob":
        return "Value '***'"
    text = str(value)
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + "…"
    return f"Value '{text}'"


def _violation(value: Any, shape: Shape, path: str, constraint: str) -> str:
    return f"{_show(value, shape)} at '{path}' failed to satisfy constraint: {constraint}"


#: Container shapes and the Python types a value must have to be checked here (a value of
#: another type is botocore's own ParamValidationError, raised before this runs).
_CONTAINERS: dict[str, type | tuple[type, ...]] = {
    "structure": dict,
    "list": (list, tuple),
    "map": dict,
}


def _members(value: Any, shape: Shape, path: str) -> Iterator[tuple[Any, Shape, str]]:
    """Each value inside a container, with its shape and its path as AWS writes it."""
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                camel = name[:1].lower() + name[1:]  # AWS names members in lowerCamelCase
                yield value[name], member, f"{path}.{camel}" if path else camel
    elif kind == "list":
        for i, item in enumerate(value):
            yield item, shape.member, f"{path}.{i + 1}"
    else:
        for key, item in value.items():
            yield key, shape.key, f"{path}.key"
            yield item, shape.value, f"{path}.{key}"


def _check(value: Any, shape: Shape, path: str, out: list[str], wire: bool = False) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind in _CONTAINERS:
        if not isinstance(value, _CONTAINERS[kind]):
            return
        if kind != "structure":
            _size(value, shape, path, out, "length")
        for item, item_shape, item_path in _members(value, shape, path):
            _check(item, item_shape, item_path, out, wire)
        return
    if kind == "string":
        if not isinstance(value, str):
            return
        _size(value, shape, path, out, "length")
        enum = shape.enum
        if enum and value not in enum:
            out.append(
                _violation(
                    value, shape, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"
                )
            )
            return
        pattern = meta.get("pattern")
        if pattern:
            matches = compile_pattern(pattern)
            if matches is not None and not matches(value):
                out.append(
                    _violation(
                        value,
                        shape,
                        path,
                        f"Member must satisfy regular expression pattern: {pattern}",
                    )
                )
        return
    if kind == "blob":
        if isinstance(value, str):
            try:  # on the wire (JSON protocols) a blob is base64 text
                value = base64.b64decode(value, validate=True) if wire else value.encode()
            except (ValueError, binascii.Error):
                return  # the simulator reports malformed base64 itself
        if isinstance(value, (bytes, bytearray)):
            _size(value, shape, path, out, "length")
        return
    if kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if "min" in meta and value < meta["min"]:
            out.append(
                _violation(
                    value,
                    shape,
                    path,
                    f"Member must have value greater than or equal to {meta['min']}",
                )
            )
        if "max" in meta and value > meta["max"]:
            out.append(
                _violation(
                    value,
                    shape,
                    path,
                    f"Member must have value less than or equal to {meta['max']}",
                )
            )


def _size(value: Any, shape: Shape, path: str, out: list[str], what: str) -> None:
    meta = shape.metadata
    size = len(value)
    if "min" in meta and size < meta["min"]:
        out.append(
            _violation(
                value,
                shape,
                path,
                f"Member must have {what} greater than or equal to {meta['min']}",
            )
        )
    if "max" in meta and size > meta["max"]:
        out.append(
            _violation(
                value, shape, path, f"Member must have {what} less than or equal to {meta['max']}"
            )
        )


def validate(operation: OperationModel, params: dict[str, Any], wire: bool = False) -> list[str]:
    """Every constraint ``params`` violate in ``operation``'s input shape (AWS wording).

    ``wire`` means ``params`` is the decoded JSON body a simulator received (blobs are
    base64 text) rather than the Python arguments of a boto3 call.
    """
    shape = operation.input_shape
    if shape is None:
        return []
    out: list[str] = []
    _check(params, shape, "", out, wire)
    return out


def error_code(service: str, violations: list[str]) -> str:
    """The modeled error ``service`` answers ``violations`` with."""
    default = VALIDATION_ERROR.get(service, "ValidationException")
    specific = PATH_ERRORS.get(service, {})
    paths = {v.split(" at '", 1)[1].split("'", 1)[0].split(".", 1)[0] for v in violations}
    codes = {specific.get(p, default) for p in paths}
    return codes.pop() if len(codes) == 1 else default


def message(violations: list[str]) -> str:
    """The AWS-style message for a list of violations."""
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(violations)


def install(client: Any, service: str) -> None:
    """Validate every call of boto3 ``client`` against its model before it is sent.

    For query-protocol services (ec2), whose flattened wire parameters no longer match the
    model's shapes; JSON services validate the request they receive instead (see
    :meth:`labsupport.aws.inprocess.JsonService.dispatch`), so a refused call is still a
    request the service saw — as on AWS, where it is billed and logged. A violation raises
    the service's modeled validation error, HTTP 400.
    """

    def before_build(params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        violations = validate(model, params)
        if not violations:
            return
        code = error_code(service, violations)
        response = {
            "Error": {"Code": code, "Message": message(violations)},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        exc_class = client.exceptions.from_code(code)
        raise (
            exc_class(response, model.name)
            if exc_class is not ClientError
            else ClientError(response, model.name)
        )

    client.meta.events.register(f"before-parameter-build.{service}", before_build)
