"""The composition root: which simulator answers which AWS service, and who cleans up a reset.

Everything the lab assembles from its layers is listed here, explicitly — no layer
registers itself when imported, and nothing is found by a module name in a string:

* :data:`SERVICES` — the simulator class behind ``aws.client(name)`` for each AWS
  service the lab answers in-process (:func:`labsupport.aws.client` reads it);
* :data:`RESET_STEPS` — each layer's clean-up of one lesson scope (or of everything),
  lowest layer first; :func:`reset` runs them, then removes the lesson's files.

To add a simulated service or a layer with state, add one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labsupport.client.clusterdata import reset_cluster_data
from labsupport.client.config import reset_config
from labsupport.controlplane.cluster import delete_clusters_owned_by
from labsupport.controlplane.ec2 import Ec2Service
from labsupport.controlplane.service import CloudHsmV2Service
from labsupport.hsm.tokens import reset_tokens
from labsupport.kms.reset import reset_kms
from labsupport.kms.service import KmsService
from labsupport.logs.service import LogsService, reset_logs
from labsupport.workspace.clock import LabClock
from labsupport.workspace.home import Workspace

#: ``factory(workspace, region)`` → an object whose ``handle(request)`` answers botocore.
ServiceFactory = Callable[[Workspace, str], Any]
#: ``step(workspace, lesson)`` removes what belongs to ``lesson`` (everything when None).
ResetStep = Callable[[Workspace, "str | None"], Any]

#: The AWS services the lab simulates, by botocore service name.
SERVICES: dict[str, ServiceFactory] = {
    "cloudhsmv2": CloudHsmV2Service,
    "ec2": Ec2Service,
    "kms": KmsService,
    "logs": LogsService,
}


def _reset_clock(workspace: Workspace, lesson: str | None) -> None:
    LabClock(workspace).reset(lesson)


#: Each layer's reset, lowest layer first (tokens, clock, control plane, client, KMS, logs).
RESET_STEPS: tuple[ResetStep, ...] = (
    reset_tokens,
    _reset_clock,
    delete_clusters_owned_by,
    reset_cluster_data,
    reset_config,
    reset_kms,
    reset_logs,
)


def simulated_services() -> list[str]:
    """Names of the AWS services the lab simulates."""
    return sorted(SERVICES)


def reset(workspace: Workspace, lesson: str | None = None) -> None:
    """Reset one lesson scope's state (``"02"``, ``"02-ex"``…), or everything when None.

    Every layer removes its part (tokens, lab-clock offsets, clusters, client state, KMS
    keys), then the lesson's files go (:meth:`Workspace.remove_lesson_files`).
    """
    for step in RESET_STEPS:
        step(workspace, lesson)
    workspace.remove_lesson_files(lesson)
