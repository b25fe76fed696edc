"""The CloudHSM state machines, as enums (values are the API's strings).

Cluster::

    CREATE_IN_PROGRESS ─► UNINITIALIZED ─(InitializeCluster)─► INITIALIZE_IN_PROGRESS
        ─► INITIALIZED ─(cluster activate, CloudHSM CLI)─► ACTIVE
    any ─(DeleteCluster, no HSMs left)─► DELETE_IN_PROGRESS ─► DELETED
    ACTIVE ─(ModifyCluster HsmType)─► MODIFY_IN_PROGRESS ─► ACTIVE

HSM::

    CREATE_IN_PROGRESS ─► ACTIVE ─(DeleteHsm)─► DELETE_IN_PROGRESS ─► DELETED (gone)

Backup::

    CREATE_IN_PROGRESS ─► READY ─(DeleteBackup)─► PENDING_DELETION ─(7 days)─► DELETED
                                  ◄─(RestoreBackup)─┘
"""

from __future__ import annotations

from labsupport.strenum import StrEnum


class ClusterState(StrEnum):
    """States of a CloudHSM cluster (``Cluster.State``)."""

    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    UNINITIALIZED = "UNINITIALIZED"
    INITIALIZE_IN_PROGRESS = "INITIALIZE_IN_PROGRESS"
    INITIALIZED = "INITIALIZED"
    ACTIVE = "ACTIVE"
    UPDATE_IN_PROGRESS = "UPDATE_IN_PROGRESS"
    MODIFY_IN_PROGRESS = "MODIFY_IN_PROGRESS"
    ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
    DELETED = "DELETED"
    DEGRADED = "DEGRADED"


class HsmState(StrEnum):
    """States of one HSM (``Hsm.State``)."""

    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    ACTIVE = "ACTIVE"
    DEGRADED = "DEGRADED"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
    DELETED = "DELETED"


class BackupState(StrEnum):
    """States of a cluster backup (``Backup.BackupState``)."""

    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    READY = "READY"
    DELETED = "DELETED"
    PENDING_DELETION = "PENDING_DELETION"


class HsmType(StrEnum):
    """HSM hardware types. ``hsm1.medium``: FIPS 140-2 Level 3, FIPS mode only.
    ``hsm2m.medium``: FIPS 140-3 Level 3, cluster mode FIPS or NON_FIPS."""

    HSM1_MEDIUM = "hsm1.medium"
    HSM2M_MEDIUM = "hsm2m.medium"


class ClusterMode(StrEnum):
    """Cluster mode, fixed at creation (``NON_FIPS`` needs ``hsm2m.medium``)."""

    FIPS = "FIPS"
    NON_FIPS = "NON_FIPS"
