"""What CloudHSM and KMS cost per month — a small model with labelled, approximate prices.

CloudHSM bills every HSM for every hour it exists, whether it works or idles; KMS bills
each customer-managed key per month and each request (after a monthly free tier). So
CloudHSM is a fixed cost and KMS a cost that grows with traffic: somewhere the two
lines cross. :func:`break_even_requests` finds that point;
:func:`labsupport.plots.costs.plot_monthly_costs` draws it.

The prices in :data:`PRICES` are **approximate** us-east-1 list prices (see
``PriceSheet.as_of``); they differ by region and HSM type and they change. Check
https://aws.amazon.com/cloudhsm/pricing/ and https://aws.amazon.com/kms/pricing/ before
using a figure for a real decision, and pass your own :class:`PriceSheet` to every
function (``dataclasses.replace(PRICES, hsm_hour=1.60)``).

Not modelled: taxes, data transfer, the EC2 instances your CloudHSM clients run on,
asymmetric/HMAC KMS requests (priced higher), KMS key-rotation charges, and the KMS
request quotas that cap how fast you may call KMS at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PriceSheet:
    """Unit prices in US dollars. Every figure is approximate; ``as_of`` says from when."""

    #: one HSM for one hour (hsm1.medium, us-east-1; other regions/types up to ~$1.60+)
    hsm_hour: float = 1.45
    #: one customer-managed KMS key for one month (AWS managed keys are free)
    kms_key_month: float = 1.00
    #: 10,000 symmetric KMS requests (Encrypt, Decrypt, GenerateDataKey, …)
    kms_per_10k_requests: float = 0.03
    #: requests per month that KMS does not charge for (free tier, per account)
    kms_free_requests: int = 20_000
    #: hours in the average month, as the AWS pricing calculator counts them
    hours_per_month: float = 730.0
    region: str = "us-east-1"
    as_of: str = "AWS list prices, 2025"

    @property
    def kms_per_request(self) -> float:
        """The price of one billed KMS request."""
        return self.kms_per_10k_requests / 10_000

    def label(self) -> str:
        """One line saying where the prices come from, for plot captions and tables."""
        return (
            f"Approximate {self.region} prices ({self.as_of}): HSM ${self.hsm_hour:.2f}/h; "
            f"KMS key ${self.kms_key_month:.2f}/month, ${self.kms_per_10k_requests:.2f} per "
            f"10,000 requests after {self.kms_free_requests:,} free. Check the AWS pricing pages."
        )


#: The default, approximate price sheet used by every function here.
PRICES = PriceSheet()


def _non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0 or math.isnan(value):
            raise ValueError(f"{name} must be zero or more, got {value}")


def cloudhsm_monthly_cost(
    hsms: int, prices: PriceSheet = PRICES, hours: float | None = None
) -> float:
    """Monthly cost of a CloudHSM cluster with ``hsms`` HSMs running ``hours`` hours.

    ``hours`` defaults to a whole month (``prices.hours_per_month``). The number of keys
    and of operations does not change the price: you pay for HSM-hours.
    """
    hours = prices.hours_per_month if hours is None else hours
    _non_negative(hsms=hsms, hours=hours)
    return hsms * hours * prices.hsm_hour


def kms_monthly_cost(keys: int, requests: float, prices: PriceSheet = PRICES) -> float:
    """Monthly cost of ``keys`` customer-managed KMS keys serving ``requests`` requests.

    The first ``prices.kms_free_requests`` requests of the month are free.
    """
    _non_negative(keys=keys, requests=requests)
    billed = max(0.0, requests - prices.kms_free_requests)
    return keys * prices.kms_key_month + billed * prices.kms_per_request


def custom_key_store_monthly_cost(
    keys: int, requests: float, hsms: int = 2, prices: PriceSheet = PRICES
) -> float:
    """Monthly cost of KMS keys in a CloudHSM-backed custom key store.

    You pay both: the KMS keys and requests as usual, and the cluster's HSM-hours (a
    custom key store needs at least two HSMs in different Availability Zones).
    """
    return kms_monthly_cost(keys, requests, prices) + cloudhsm_monthly_cost(hsms, prices)


def break_even_requests(keys: int, hsms: int, prices: PriceSheet = PRICES) -> float:
    """Requests per month at which KMS costs as much as a CloudHSM cluster of ``hsms`` HSMs.

    Below this volume KMS is cheaper; above it the cluster is. Returns 0.0 if the KMS
    key fees alone already cost more than the cluster.
    """
    gap = cloudhsm_monthly_cost(hsms, prices) - kms_monthly_cost(keys, 0, prices)
    if gap <= 0:
        return 0.0
    return prices.kms_free_requests + gap / prices.kms_per_request


def requests_per_second(requests_per_month: float, prices: PriceSheet = PRICES) -> float:
    """The average request rate (per second) that a monthly request count means."""
    return requests_per_month / (prices.hours_per_month * 3600)
