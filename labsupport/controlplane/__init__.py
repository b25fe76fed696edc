"""Layer 3 — the simulated AWS CloudHSM control plane (``cloudhsmv2``) and default VPC (``ec2``).

Learners use it through real boto3 clients, exactly as against AWS::

    from labsupport import aws
    ec2 = aws.client("ec2")
    cloudhsm = aws.client("cloudhsmv2")
    subnets = ec2.describe_subnets()["Subnets"]
    cluster = cloudhsm.create_cluster(HsmType="hsm2m.medium",
                                      SubnetIds=[s["SubnetId"] for s in subnets[:2]])["Cluster"]

:mod:`labsupport.simulators` (the composition root) answers ``aws.client("cloudhsmv2")``
and ``aws.client("ec2")`` with them. State lives in the workspace
(``state/cloudhsmv2.json``), so a restarted kernel or a second notebook sees the same
clusters; each HSM is its own SoftHSM token (labelled with the HSM id), created by
CreateHsm and deleted by DeleteHsm. Transitional states (``CREATE_IN_PROGRESS`` …) end
after a few seconds on the lab clock (:mod:`~labsupport.controlplane.clock`;
``CLOUDHSM_LAB_CLOCK=fast`` makes them instant).

Ownership and reset: a cluster belongs to the lesson scope named by its
``cloudhsm-lab:lesson`` tag, else by ``$CLOUDHSM_LAB_LESSON`` at creation, else to
``"workspace"``; ``labsupport.simulators.reset(ws, lesson)`` removes that lesson's clusters,
backups and HSM tokens at once (:func:`delete_clusters_owned_by`).

Python API for other layers (read-only snapshots, no boto3 needed):

* :func:`describe_cluster(ws, cluster_id) <describe_cluster>` → :class:`Cluster` with
  ``state`` (:class:`ClusterState`), ``hsms`` (tuple of :class:`Hsm`: ``hsm_id``,
  ``eni_ip``, ``availability_zone``, ``subnet_id``, ``state`` (:class:`HsmState`),
  ``token_label``), and the PEM texts ``trust_anchor``, ``cluster_certificate``,
  ``cluster_csr``, ``hsm_certificate``, ``aws_hardware_certificate``,
  ``manufacturer_hardware_certificate``.
* :func:`list_clusters`, :func:`cluster_for_ip` (for ``configure -a <ENI IP>``).
* :func:`activate_cluster(ws, cluster_id) <activate_cluster>`: INITIALIZED → ACTIVE,
  what CloudHSM CLI's ``cluster activate`` does (records the activation backup).
* :func:`delete_clusters_owned_by` (the reset hook).
* :mod:`~labsupport.controlplane.quickstart`: ``initialized_cluster(ws, owner)`` runs all of
  lesson 02 in code for lessons that need a ready cluster.
* :mod:`~labsupport.controlplane.waiters`: ``wait_for_cluster`` / ``wait_for_hsm``, poll
  loops with a progress bar that work against AWS too.
* :mod:`~labsupport.controlplane.pki`: the cluster PKI (roots, chain checks, your CA).
"""

from labsupport.controlplane.cluster import (
    Cluster,
    ClusterNotFound,
    Hsm,
    activate_cluster,
    cluster_for_ip,
    delete_clusters_owned_by,
    describe_cluster,
    list_clusters,
)
from labsupport.controlplane.ec2 import Ec2Service
from labsupport.controlplane.service import CloudHsmV2Service
from labsupport.controlplane.states import (
    BackupState,
    ClusterMode,
    ClusterState,
    HsmState,
    HsmType,
)
from labsupport.workspace.home import ENV_LESSON, LESSON_TAG

__all__ = [
    "ENV_LESSON",
    "LESSON_TAG",
    "BackupState",
    "CloudHsmV2Service",
    "Cluster",
    "ClusterMode",
    "ClusterNotFound",
    "ClusterState",
    "Ec2Service",
    "Hsm",
    "HsmState",
    "HsmType",
    "activate_cluster",
    "cluster_for_ip",
    "delete_clusters_owned_by",
    "describe_cluster",
    "list_clusters",
]
