"""``bench [--quick | --smoke] [--json]``: measure the lab's speed and print the figures.

Sections are the modules of :mod:`labsupport.bench`, each with ``run(size) -> dict``:
the control plane (cluster set-up time, boto3 calls/s through the in-process handler)
and the client layer (ops/s vs raw python-pkcs11 as ratios, key-sync times).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from labsupport.authoring.execute import scratch_workspace
from labsupport.bench.size import BenchSize

NAME = "bench"
HELP = "benchmark the simulator and client layer (ratios vs raw python-pkcs11)"


def collect(size: BenchSize = BenchSize.FULL) -> dict[str, Any]:
    """Run every benchmark section in a scratch workspace; merge the results."""
    from labsupport.bench import SECTIONS

    results: dict[str, Any] = {"bench_size": size.value}
    with scratch_workspace():
        for module in SECTIONS:
            results.update(module.run(size))
    return results


def _print_human(results: dict[str, Any]) -> None:
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k:<28} {v:.3f}" if isinstance(v, float) else f"  {k:<28} {v}")
        else:
            print(f"{key:<30} {value:.3f}" if isinstance(value, float) else f"{key:<30} {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--quick or --smoke, --json."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller counts (about half a minute)")
    size.add_argument(
        "--smoke",
        action="store_true",
        help="every section once with the smallest counts: checks the bench runs; "
        "its figures mean nothing",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Measure and print."""
    size = BenchSize.SMOKE if args.smoke else BenchSize.QUICK if args.quick else BenchSize.FULL
    results = collect(size)
    if not results:
        print("no benchmark sections are available")
        return 1
    if args.json:
        print(json.dumps(results, sort_keys=True))
    else:
        _print_human(results)
    return 0
