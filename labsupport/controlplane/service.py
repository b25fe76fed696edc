"""The simulated CloudHSMv2 API, answered in-process for a real boto3 client.

``aws.client("cloudhsmv2")`` sends each call here (see :mod:`labsupport.aws`). Every
operation validates its input the way the service does (botocore itself only checks
required fields and types), changes the workspace's control-plane state and answers in
the wire format botocore parses — so modeled errors arrive as
``cloudhsm.exceptions.CloudHsmInvalidRequestException`` and friends, and paginators work.

Operations: CreateCluster, DescribeClusters, InitializeCluster, ModifyCluster,
DeleteCluster, CreateHsm, DeleteHsm, DescribeBackups, DeleteBackup, RestoreBackup,
CopyBackupToRegion, ModifyBackupAttributes, TagResource, UntagResource, ListTags,
GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy.

Each resource's operations live in :mod:`labsupport.controlplane.api` (one module per
resource); this class composes them. AWS does not publish its error message texts; these
name the operation's resource, its state and what to do next, and keep AWS's exception
types.
"""

from __future__ import annotations

from labsupport.controlplane.api.backups import BackupOperations
from labsupport.controlplane.api.clusters import (
    HSM1_FIPS_NOTE,
    ClusterOperations,
    Hsm1MediumWarning,
)
from labsupport.controlplane.api.hsms import HsmOperations
from labsupport.controlplane.api.tags import TagOperations

__all__ = ["HSM1_FIPS_NOTE", "CloudHsmV2Service", "Hsm1MediumWarning"]


class CloudHsmV2Service(ClusterOperations, HsmOperations, BackupOperations, TagOperations):
    """The CloudHSMv2 operations of one workspace and region."""
