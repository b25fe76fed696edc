"""Live throughput measurement and plot (no timing assertions: counts and shapes only)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pkcs11
from crypto_fixtures import *  # noqa: F403

from labsupport.crypto.throughput import (
    CLOUDHSM_PUBLISHED,
    Throughput,
    lesson_benchmark,
    measure,
    throughput_table,
)
from labsupport.plots.throughput import plot_throughput


def test_measure_counts_calls() -> None:
    calls = []
    result = measure("noop", lambda: calls.append(1), budget_s=0.0, min_count=5)
    assert result.count == len(calls) == 5
    assert result.ops_per_second > 0
    capped = measure("noop", lambda: None, budget_s=10.0, max_count=7)
    assert capped.count == 7


def test_lesson_benchmark_measures_everything_and_cleans_up(session: pkcs11.Session) -> None:
    before = len(list(session.get_objects()))
    results = lesson_benchmark(session, budget_s=0.0)
    names = [r.operation for r in results]
    assert "RSA-2048 keygen" in names and "AES-256-GCM encrypt 1 KiB" in names
    assert set(CLOUDHSM_PUBLISHED) <= set(names)
    assert all(r.count >= 1 for r in results)
    assert len(list(session.get_objects())) == before
    table = throughput_table(results)
    assert len(table.splitlines()) == len(results)
    figure = plot_throughput(results)
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    assert len(axes.patches) == len(results)
    assert [t.get_text() for t in axes.get_yticklabels()][-1] == max(
        results, key=lambda r: r.ops_per_second
    ).operation


def test_throughput_text() -> None:
    line = str(Throughput("AES", 10, 0.5))
    assert "20 ops/s" in line and "(10 in 0.50 s)" in line
