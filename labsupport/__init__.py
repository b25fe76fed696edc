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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labsupport import aws
    from labsupport.errors import LabError
    from labsupport.pedagogy import check, explain, start_lesson
    from labsupport.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["LabError", "Workspace", "__version__", "aws", "check", "explain", "start_lesson"]


def __getattr__(name: str) -> Any:
    """Import a public name of the package when it is first used."""
    # ``import labsupport.x as value``, not ``from labsupport import x``: the latter asks this
    # package for the attribute first, i.e. calls this function again.
    if name == "aws":
        import labsupport.aws as value
    elif name == "LabError":
        from labsupport.errors import LabError as value
    elif name in ("check", "explain", "start_lesson"):
        import labsupport.pedagogy as pedagogy

        value = getattr(pedagogy, name)
    elif name == "Workspace":
        from labsupport.workspace import Workspace as value
    else:
        raise AttributeError(f"module 'labsupport' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
