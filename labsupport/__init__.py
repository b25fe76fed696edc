"""CloudHSM Lab support package.

The course notebooks import what they need from here::

    from labsupport import start_lesson, check, aws
    lab = start_lesson("02")
    cloudhsm = aws.client("cloudhsmv2")

Layers (see docs/architecture.md): ``workspace`` → ``hsm`` → ``controlplane`` (+ ``aws``)
→ ``client`` → ``kms`` → ``pedagogy``.

The names below are imported on first use (PEP 562), so a process that needs only a corner
of the package — ``python -m labsupport env``, the grader's worker, a console script — does
not load boto3 and every layer first (about 0.2 s of CPU each time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labsupport import aws
    from labsupport.errors import LabError
    from labsupport.pedagogy import check, explain, start_lesson
    from labsupport.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["LabError", "Workspace", "__version__", "aws", "check", "explain", "start_lesson"]

#: public name -> (module, attribute in it, or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "aws": ("labsupport.aws", None),
    "LabError": ("labsupport.errors", "LabError"),
    "check": ("labsupport.pedagogy", "check"),
    "explain": ("labsupport.pedagogy", "explain"),
    "start_lesson": ("labsupport.pedagogy", "start_lesson"),
    "Workspace": ("labsupport.workspace", "Workspace"),
}


def __getattr__(name: str) -> Any:
    """Import a public name of the package when it is first used."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'labsupport' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
