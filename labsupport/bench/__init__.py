"""Benchmarks of the lab itself (``python -m labsupport bench``), kept out of the layers.

* :mod:`~labsupport.bench.controlplane` — cluster set-up time and boto3 calls/s through
  the in-process handler;
* :mod:`~labsupport.bench.client` — the Client SDK layer's ops/s as ratios to raw
  python-pkcs11, and key-synchronization times.

Each module has ``run(size: BenchSize) -> dict`` (:mod:`~labsupport.bench.size`: full, quick or
smoke); :data:`SECTIONS` lists them in report order.
"""

from labsupport.bench import client, controlplane

SECTIONS = (controlplane, client)

__all__ = ["SECTIONS", "client", "controlplane"]
