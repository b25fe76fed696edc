"""Creating an hsm1.medium cluster warns about its FIPS 140-2 certificate's date."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from cp_fixtures import cloudhsm, ec2, fast, subnet_ids

from labsupport.controlplane.service import Hsm1MediumWarning

__all__ = ["cloudhsm", "ec2", "fast"]  # fixtures


def test_hsm1_medium_cluster_warns_with_the_date(cloudhsm: Any, ec2: Any) -> None:
    with pytest.warns(Hsm1MediumWarning, match=r"#4218.*2026-01-04.*hsm2m\.medium"):
        cloudhsm.create_cluster(HsmType="hsm1.medium", SubnetIds=subnet_ids(ec2, 2))


def test_hsm2m_medium_cluster_does_not_warn(cloudhsm: Any, ec2: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Hsm1MediumWarning)
        cloudhsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnet_ids(ec2, 2))
