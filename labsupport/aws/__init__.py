"""Real boto3 clients whose calls are answered in-process by the lab's simulators.

``aws.client("cloudhsmv2")`` returns a genuine botocore client. Its requests are
serialized by botocore as usual; just before they would go on the network, a
``before-send`` event handler hands them to the simulator :mod:`labsupport.simulators`
names for that service, which answers with a wire-format HTTP response. botocore then
parses it, maps modeled errors to ``client.exceptions.*`` and runs paginators and
waiters — so the code a learner writes here runs unchanged against AWS.

Set ``CLOUDHSM_LAB_USE_AWS=1`` to get a plain boto3 client talking to real AWS.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.client
from botocore import UNSIGNED
from botocore.config import Config

from labsupport.aws import validation
from labsupport.aws.inprocess import DEFAULT_REGION, ENV_USE_AWS, AwsServiceError, JsonService
from labsupport.aws.validation import known_regions
from labsupport.errors import LabError
from labsupport.workspace.home import Workspace

_BOTO_SESSION: boto3.session.Session | None = None


def _session() -> boto3.session.Session:
    # One boto3 session per process: it caches the loaded service models.
    global _BOTO_SESSION
    if _BOTO_SESSION is None:
        _BOTO_SESSION = boto3.session.Session()
    return _BOTO_SESSION


def simulated_services() -> list[str]:
    """Names of the AWS services the lab simulates."""
    from labsupport import simulators  # the composition root; imported on first use

    return simulators.simulated_services()


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
    from labsupport import simulators  # the composition root; imported on first use

    factory = simulators.SERVICES.get(service)
    if factory is None:
        raise LabError(
            f"CloudHSM Lab does not simulate {service!r}.",
            f"Use one of the simulated services: {', '.join(simulators.simulated_services())}.",
        )
    if region not in known_regions(service):
        raise LabError(
            f"{region!r} is not an AWS region where {service} exists (on AWS, the client "
            "would fail to reach an endpoint).",
            f"Use a region such as {DEFAULT_REGION} (region_name=… or AWS_DEFAULT_REGION); "
            f"{service} exists in: {', '.join(known_regions(service)[:8])}, …",
        )
    simulator = factory(workspace or Workspace.open(), region)
    config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1, "mode": "standard"})
    if "config" in kwargs:
        config = config.merge(kwargs.pop("config"))
    aws_client = _session().client(service, region_name=region, config=config, **kwargs)
    aws_client.meta.events.register(f"before-send.{service}", simulator.handle)
    if not isinstance(simulator, JsonService):
        validation.install(aws_client, service)  # query protocol: check the call's arguments
    return aws_client


__all__ = ["AwsServiceError", "JsonService", "client", "known_regions", "simulated_services"]
