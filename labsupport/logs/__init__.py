"""A simulated Amazon CloudWatch Logs holding CloudHSM audit logs, via a real boto3 client.

    from labsupport import aws
    logs = aws.client("logs")
    logs.describe_log_streams(logGroupName=f"/aws/cloudhsm/{cluster_id}")
    logs.filter_log_events(logGroupName=..., filterPattern="CN_CREATE_USER")

Every HSM of a cluster writes its audit log to the log group ``/aws/cloudhsm/<cluster id>``,
one log stream per HSM id, one event per management command (see
:mod:`labsupport.hsm.audit` for the event format and what is modelled). Crypto
operations (encrypt, sign…) are not logged, as on AWS. Log groups outlive their cluster,
as on AWS, until the lesson that made them is reset.
"""

from labsupport.hsm.audit import AuditEvent, Opcode, emit, log_group_name, read_events
from labsupport.logs.service import LogsService, reset_logs

__all__ = [
    "AuditEvent",
    "LogsService",
    "Opcode",
    "emit",
    "log_group_name",
    "read_events",
    "reset_logs",
]
