"""The command families of the CloudHSM CLI, one module each.

Each module registers its commands with :func:`labsupport.client.cli.grammar.command`
when it is imported. **To add a family** (for example ``quorum token-sign …``): write
``families/quorum.py`` with ``@command("quorum token-sign list", …)`` handlers, add
``"quorum"`` to :data:`FAMILIES`, and add its tests next to ``tests/test_cloudhsm_cli_*.py``.
"""

from __future__ import annotations

import importlib

#: Modules under this package that hold commands, in ``help`` order.
FAMILIES = ("cluster", "login", "user", "quorum", "key", "wrap", "crypto")


def load() -> None:
    """Import every family (idempotent): their commands are then in the registry."""
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.{name}")


__all__ = ["FAMILIES", "load"]
