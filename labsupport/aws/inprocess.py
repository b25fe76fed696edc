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
    (``def CreateCluster(self, params: dict) -> dict``). Unknown operations answer
    with a modeled-looking ``UnsupportedOperation`` error naming the operation.
    """

    #: botocore service name, e.g. "cloudhsmv2"
    service_name: str = ""

    def __init__(self, workspace: Workspace, region: str) -> None:
        self.workspace = workspace
        self.region = region

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` with ``params`` and return the response dict."""
        method = getattr(self, operation, None)
        if method is None or operation.startswith("_"):
            raise AwsServiceError(
                "UnsupportedOperation",
                f"{operation} is not simulated by CloudHSM Lab; "
                f"the simulated {self.service_name} supports: {', '.join(self.operations())}.",
            )
        return method(params)

    @classmethod
    def operations(cls) -> list[str]:
        """Names of the operations this simulator answers."""
        return sorted(n for n in dir(cls) if n[:1].isupper() and callable(getattr(cls, n)))

    def handle(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        """botocore ``before-send`` handler: answer ``request`` in-process."""
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        operation = target.rsplit(".", 1)[-1]
        body = request.body or b"{}"
        params = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
        content_type = "application/x-amz-json-1.1"
        try:
            result = self.dispatch(operation, params)
            return http_response(request, 200, _dumps(result), content_type)
        except AwsServiceError as err:
            payload = {"__type": err.code, "message": err.message}
            return http_response(request, err.status, _dumps(payload), content_type)


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
