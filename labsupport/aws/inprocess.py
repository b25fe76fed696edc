"""The botocore ``before-send`` bridge between boto3 clients and local simulators."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import botocore.client
from botocore import UNSIGNED
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from labsupport.workspace.home import Workspace

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


ServiceFactory = Callable[[Workspace, str], Any]
_SERVICES: dict[str, ServiceFactory] = {}


def register_service(name: str, factory: ServiceFactory) -> None:
    """Register the simulator factory for botocore service ``name``.

    ``factory(workspace, region)`` must return an object with a ``handle(request)``
    method usable as a botocore ``before-send`` handler.
    """
    _SERVICES[name] = factory


def simulated_services() -> list[str]:
    """Names of the AWS services the lab simulates."""
    _load_simulators()
    return sorted(_SERVICES)


def _load_simulators() -> None:
    from labsupport.layers import load_layers

    load_layers(("labsupport.controlplane", "labsupport.kms"))


_BOTO_SESSION: boto3.session.Session | None = None


def _session() -> boto3.session.Session:
    # One boto3 session per process: it caches the loaded service models.
    global _BOTO_SESSION
    if _BOTO_SESSION is None:
        _BOTO_SESSION = boto3.session.Session()
    return _BOTO_SESSION


def client(
    service: str,
    region_name: str | None = None,
    workspace: Workspace | None = None,
    **kwargs: Any,
) -> botocore.client.BaseClient:
    """Return a boto3 client for ``service``, answered by the lab's simulator.

    With ``CLOUDHSM_LAB_USE_AWS=1`` in the environment the client talks to real
    AWS with your normal credentials instead (charges apply!).
    """
    region = region_name or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    if os.environ.get(ENV_USE_AWS) == "1":
        return boto3.client(service, region_name=region, **kwargs)
    _load_simulators()
    if service not in _SERVICES:
        raise ValueError(
            f"CloudHSM Lab does not simulate {service!r}; simulated services: "
            f"{', '.join(simulated_services())}."
        )
    simulator = _SERVICES[service](workspace or Workspace.open(), region)
    config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1, "mode": "standard"})
    if "config" in kwargs:
        config = config.merge(kwargs.pop("config"))
    aws_client = _session().client(service, region_name=region, config=config, **kwargs)
    aws_client.meta.events.register(f"before-send.{service}", simulator.handle)
    return aws_client
