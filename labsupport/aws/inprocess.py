"""The botocore ``before-send`` bridge: what every in-process simulator is built on.

:class:`JsonService` turns a botocore request into a method call and its answer (or an
:class:`AwsServiceError`) into the wire response botocore parses. Which simulator
answers which service is decided in :mod:`labsupport.simulators`; the boto3 client is
made by :func:`labsupport.aws.client`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from labsupport.aws import validation
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

#: ``CLOUDHSM_LAB_USE_AWS=1``: ``aws.client`` returns a plain boto3 client for real AWS.
ENV_USE_AWS = "CLOUDHSM_LAB_USE_AWS"
DEFAULT_REGION = "us-east-1"


class AwsServiceError(Exception):
    """Raised by a simulator operation; becomes the modeled AWS error on the client side.

    ``code`` is the error shape name from the service model (e.g.
    ``CloudHsmInvalidRequestException``); ``status`` the HTTP status (4xx are not retried).
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class _Body:
    """The minimal raw-body object botocore reads an ``AWSResponse`` from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any):
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def http_response(
    request: AWSPreparedRequest, status: int, body: bytes, content_type: str
) -> AWSResponse:
    """Build the ``AWSResponse`` botocore will parse as if it came from the network."""
    headers = {
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return AWSResponse(request.url, status, headers, _Body(body))


class JsonService:
    """Base class for simulators of JSON-protocol services (cloudhsmv2, kms).

    Subclasses define one method per operation, named like the API
    (``def CreateCluster(self, params: dict) -> dict``). Every answer is a modeled
    response: an operation the lab does not simulate raises :attr:`unsupported_error`
    naming the ones it does; an :class:`AwsServiceError` becomes its modeled error; a
    :class:`~labsupport.errors.LabError` (a locked or damaged workspace, a missing
    token) or any other exception becomes :attr:`internal_error` (HTTP 500) with a clear
    message — never a raw Python exception through boto3.
    """

    #: botocore service name, e.g. "cloudhsmv2"
    service_name: str = ""
    #: modeled error for an operation the lab does not simulate
    unsupported_error: str = "UnsupportedOperationException"
    #: modeled 5xx error for a failure inside the simulator (None: the model's *Internal* one)
    internal_error: str | None = None

    def __init__(self, workspace: Workspace, region: str) -> None:
        self.workspace = workspace
        self.region = region

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` with ``params`` and return the response dict."""
        method = getattr(self, operation, None)
        if method is None or operation.startswith("_") or operation not in self.operations():
            raise AwsServiceError(
                self.unsupported_error,
                f"{operation} is not simulated by CloudHSM Lab; "
                f"the simulated {self.service_name} supports: {', '.join(self.operations())}.",
            )
        violations = validation.validate(
            validation.operation_model(self.service_name, operation), params, wire=True
        )
        if violations:
            raise AwsServiceError(
                validation.error_code(self.service_name, violations), validation.message(violations)
            )
        return method(params)

    @classmethod
    def operations(cls) -> list[str]:
        """Names of the operations this simulator answers."""
        return sorted(n for n in dir(cls) if n[:1].isupper() and callable(getattr(cls, n)))

    def _internal_code(self) -> str:
        """The service's modeled HTTP 500 error (e.g. ``KMSInternalException``)."""
        if self.internal_error:
            return self.internal_error
        # e.g. KMSInternalException
        for shape in validation.service_model(self.service_name).error_shapes:
            if "Internal" in shape.name:
                return shape.name
        return "InternalFailure"

    def handle(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        """botocore ``before-send`` handler: answer ``request`` in-process."""
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        operation = target.rsplit(".", 1)[-1]
        body = request.body or b"{}"
        content_type = "application/x-amz-json-1.1"
        try:
            try:
                params = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
            except (ValueError, UnicodeDecodeError):
                raise AwsServiceError(
                    "SerializationException", "The request body is not valid JSON."
                ) from None
            result = self.dispatch(operation, params)
            return http_response(request, 200, _dumps(result), content_type)
        except AwsServiceError as err:
            payload = {"__type": err.code, "message": err.message}
            return http_response(request, err.status, _dumps(payload), content_type)
        except LabError as err:
            payload = {"__type": self._internal_code(), "message": str(err)}
            return http_response(request, 500, _dumps(payload), content_type)
        except Exception as err:  # anything else is a lab bug: say so, modeled, no traceback
            detail = (str(err).splitlines() or [""])[0][:200]
            payload = {
                "__type": self._internal_code(),
                "message": f"The simulated {self.service_name} failed in {operation} "
                f"({type(err).__name__}: {detail}). This is a CloudHSM Lab bug, not your "
                "code: run `python -m labsupport doctor`, and report it if it persists.",
            }
            return http_response(request, 500, _dumps(payload), content_type)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    # botocore's JSON parser turns epoch numbers into datetimes for timestamp shapes.
    if hasattr(value, "timestamp"):
        return value.timestamp()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"cannot serialize {type(value).__name__}")
