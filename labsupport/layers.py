"""The layer packages that register themselves on import, and the one way to load them.

``labsupport.controlplane`` and ``labsupport.kms`` register their boto3 simulators,
and they and ``labsupport.client`` register reset hooks. They are imported lazily so
that ``import labsupport`` stays fast and free of circular imports.
"""

from __future__ import annotations

import importlib

#: Packages that register simulators or reset hooks on import, lowest layer first.
LAYER_PACKAGES = ("labsupport.controlplane", "labsupport.client", "labsupport.kms")


def load_layers(packages: tuple[str, ...] = LAYER_PACKAGES) -> None:
    """Import ``packages`` (default: every layer) so their registrations have run."""
    for name in packages:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing layer is fine; a broken one is not
                raise
