"""Real boto3 clients whose calls are answered in-process by the lab's simulators.

``aws.client("cloudhsmv2")`` returns a genuine botocore client. Its requests are
serialized by botocore as usual; just before they would go on the network, a
``before-send`` event handler hands them to the simulator registered for that
service, which answers with a wire-format HTTP response. botocore then parses it,
maps modeled errors to ``client.exceptions.*`` and runs paginators and waiters —
so the code a learner writes here runs unchanged against AWS.

Set ``CLOUDHSM_LAB_USE_AWS=1`` to get a plain boto3 client talking to real AWS.
"""

from labsupport.aws.inprocess import (
    AwsServiceError,
    JsonService,
    client,
    register_service,
    simulated_services,
)

__all__ = ["AwsServiceError", "JsonService", "client", "register_service", "simulated_services"]
