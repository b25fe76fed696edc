"""The cost model against figures worked out by hand (prices: the default PriceSheet)."""

from __future__ import annotations

import dataclasses

import pytest

from labsupport import costs
from labsupport.costs import PRICES


def test_default_prices_are_the_documented_ones() -> None:
    # The lesson text quotes these; change both together.
    assert (PRICES.hsm_hour, PRICES.kms_key_month, PRICES.kms_per_10k_requests) == (1.45, 1.0, 0.03)
    assert (PRICES.kms_free_requests, PRICES.hours_per_month) == (20_000, 730)
    assert "approximate" in PRICES.label().lower() and "2025" in PRICES.label()


def test_cloudhsm_pays_per_hsm_hour() -> None:
    # 2 HSMs x 730 h x $1.45 = $2,117.00 ; 3 HSMs = $3,175.50 ; 1 HSM for a day = $34.80
    assert costs.cloudhsm_monthly_cost(2) == pytest.approx(2117.00)
    assert costs.cloudhsm_monthly_cost(3) == pytest.approx(3175.50)
    assert costs.cloudhsm_monthly_cost(1, hours=24) == pytest.approx(34.80)
    assert costs.cloudhsm_monthly_cost(0) == 0


def test_kms_pays_per_key_and_request_after_the_free_tier() -> None:
    # 10 keys, no traffic: $10 ; traffic within the 20,000 free requests costs nothing
    assert costs.kms_monthly_cost(10, 0) == pytest.approx(10.00)
    assert costs.kms_monthly_cost(10, 20_000) == pytest.approx(10.00)
    # 1,020,000 requests: 1,000,000 billed = 100 x $0.03 = $3 -> $13
    assert costs.kms_monthly_cost(10, 1_020_000) == pytest.approx(13.00)
    # 1 key, 10,020,000 requests: $1 + 1,000 x $0.03 = $31
    assert costs.kms_monthly_cost(1, 10_020_000) == pytest.approx(31.00)


def test_custom_key_store_pays_both() -> None:
    # $13 of KMS (as above) + $2,117 for two HSMs
    assert costs.custom_key_store_monthly_cost(10, 1_020_000, hsms=2) == pytest.approx(2130.00)


def test_break_even_by_hand() -> None:
    # gap = 2,117 - 10 = $2,107 ; / $0.000003 per request = 702,333,333.3 ; + 20,000 free
    cross = costs.break_even_requests(keys=10, hsms=2)
    assert cross == pytest.approx(702_353_333.33, abs=0.01)
    # at the break-even point both services cost the same
    assert costs.kms_monthly_cost(10, cross) == pytest.approx(costs.cloudhsm_monthly_cost(2))
    # a few requests less: KMS is cheaper; more: CloudHSM is
    assert costs.kms_monthly_cost(10, cross * 0.99) < costs.cloudhsm_monthly_cost(2)
    assert costs.kms_monthly_cost(10, cross * 1.01) > costs.cloudhsm_monthly_cost(2)


def test_break_even_is_zero_when_key_fees_alone_cost_more() -> None:
    assert costs.break_even_requests(keys=3000, hsms=2) == 0.0


def test_break_even_follows_a_custom_price_sheet() -> None:
    # HSM at $1.60/h: 2 x 730 x 1.60 = $2,336 ; gap with 1 key = $2,335
    # -> 2,335 / 0.000003 + 20,000 = 778,353,333.3
    sheet = dataclasses.replace(PRICES, hsm_hour=1.60)
    assert costs.break_even_requests(1, 2, sheet) == pytest.approx(778_353_333.33, abs=0.01)


def test_requests_per_second() -> None:
    # 730 h x 3,600 s = 2,628,000 s per month
    assert costs.requests_per_second(2_628_000_000) == pytest.approx(1000.0)


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="requests"):
        costs.kms_monthly_cost(1, -5)
    with pytest.raises(ValueError, match="hsms"):
        costs.cloudhsm_monthly_cost(-1)


def test_plot_marks_each_cross_over() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labsupport.plots.costs import plot_monthly_costs

    ax = plot_monthly_costs(keys=10, hsms=[2, 3])
    try:
        labels = [line.get_label() for line in ax.get_lines()]
        assert "KMS, 10 keys" in labels
        assert any(label.startswith("CloudHSM, 2 HSMs") for label in labels)
        notes = [t.get_text() for t in ax.texts if t.get_text().startswith("break-even")]
        assert len(notes) == 2 and notes[0].startswith("break-even ≈ 702 M")
        assert any("Approximate us-east-1 prices" in t.get_text() for t in ax.texts)
        assert ax.get_xscale() == "log"
    finally:
        plt.close(ax.figure)
