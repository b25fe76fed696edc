"""Wait for a cluster or an HSM to reach a state — the poll loop you write against AWS.

boto3 has no waiters for CloudHSMv2, so code that creates a cluster polls
``describe_clusters`` until the state changes. These helpers do exactly that through
the client you pass in (so they work unchanged against real AWS), showing a progress
line with the current state and the elapsed time::

    cluster = wait_for_cluster(cloudhsm, cluster_id, "UNINITIALIZED")
    hsm = wait_for_hsm(cloudhsm, cluster_id, hsm_id, "ACTIVE")

Against the lab they poll every half second; against AWS (``CLOUDHSM_LAB_USE_AWS=1``)
every 15 seconds, for up to an hour.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from tqdm import tqdm

from labsupport.aws.inprocess import ENV_USE_AWS
from labsupport.errors import LabError

#: States from which the awaited state can no longer be reached.
CLUSTER_DEAD_ENDS = {"DELETE_IN_PROGRESS", "DELETED"}
HSM_DEAD_ENDS = {"DELETE_IN_PROGRESS", "DELETED"}


class WaitTimeout(LabError):
    """The resource did not reach the awaited state in time."""


class WaitFailed(LabError):
    """The resource entered a state from which the awaited one cannot be reached."""


def _defaults(poll: float | None, timeout: float | None) -> tuple[float, float]:
    on_aws = os.environ.get(ENV_USE_AWS) == "1"
    return (
        poll if poll is not None else (15.0 if on_aws else 0.5),
        timeout if timeout is not None else (3600.0 if on_aws else 120.0),
    )


def _wait(
    describe: Callable[[], tuple[str, Any]],
    label: str,
    wanted: set[str],
    dead_ends: set[str],
    poll: float,
    timeout: float,
    progress: bool,
) -> Any:
    start = time.monotonic()
    bar = tqdm(
        total=None,
        desc=label,
        bar_format="{desc} [{elapsed}]",
        file=sys.stdout,  # stderr would leave an empty pink box in Jupyter
        disable=not progress,
        leave=False,
    )
    try:
        while True:
            state, item = describe()
            bar.set_description_str(f"{label}: {state}")
            if state in wanted:
                return item
            if state in dead_ends:
                raise WaitFailed(
                    f"{label} is {state}; it will never become {' or '.join(sorted(wanted))}.",
                    "Check that you are waiting for the right resource, or create a new one.",
                )
            if time.monotonic() - start > timeout:
                raise WaitTimeout(
                    f"{label} is still {state} after {timeout:.0f} seconds.",
                    "Call the wait again to keep waiting; on AWS, HSM creation can take 15 "
                    "minutes.",
                )
            bar.update(0)
            time.sleep(poll)
    finally:
        bar.close()


def _states(states: str | Iterable[str]) -> set[str]:
    return {states} if isinstance(states, str) else set(states)


def _dead_ends(wanted: set[str], dead_ends: set[str]) -> set[str]:
    # Waiting for a deletion to finish: DELETE_IN_PROGRESS is the way there, not a dead end.
    return set() if wanted & dead_ends else dead_ends


def _describe_one(cloudhsm: Any, cluster_id: str) -> dict[str, Any]:
    """The cluster as ``describe_clusters`` shows it, or :class:`WaitFailed` if it is gone."""
    found = cloudhsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"]
    if not found:
        raise WaitFailed(
            f"Cluster {cluster_id} does not exist.",
            "Check the cluster id (describe_clusters() lists your clusters).",
        )
    return found[0]


def wait_for_cluster(
    cloudhsm: Any,
    cluster_id: str,
    states: str | Iterable[str] = "UNINITIALIZED",
    *,
    poll: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Poll ``describe_clusters`` until cluster ``cluster_id`` is in one of ``states``.

    Returns the cluster as ``describe_clusters`` shows it. Raises :class:`WaitTimeout`
    or :class:`WaitFailed` (e.g. the cluster is being deleted).
    """
    wanted = _states(states)
    poll, timeout = _defaults(poll, timeout)

    def describe() -> tuple[str, Any]:
        cluster = _describe_one(cloudhsm, cluster_id)
        return cluster["State"], cluster

    return _wait(
        describe,
        cluster_id,
        wanted,
        _dead_ends(wanted, CLUSTER_DEAD_ENDS),
        poll,
        timeout,
        progress,
    )


def wait_for_hsm(
    cloudhsm: Any,
    cluster_id: str,
    hsm_id: str,
    states: str | Iterable[str] = "ACTIVE",
    *,
    poll: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Poll ``describe_clusters`` until HSM ``hsm_id`` is in one of ``states``.

    Returns the HSM as it appears in the cluster's ``Hsms`` list (waiting for
    ``"DELETED"`` returns ``{}`` once the HSM has left the list).
    """
    wanted = _states(states)
    poll, timeout = _defaults(poll, timeout)

    def describe() -> tuple[str, Any]:
        for hsm in _describe_one(cloudhsm, cluster_id)["Hsms"]:
            if hsm["HsmId"] == hsm_id:
                return hsm["State"], hsm
        return "DELETED", {}

    return _wait(
        describe, hsm_id, wanted, _dead_ends(wanted, HSM_DEAD_ENDS), poll, timeout, progress
    )
