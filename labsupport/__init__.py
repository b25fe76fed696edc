"""CloudHSM Lab support package.

The course notebooks import what they need from here::

    from labsupport import start_lesson, check, aws
    lab = start_lesson("02")
    cloudhsm = aws.client("cloudhsmv2")

Layers (see docs/architecture.md): ``workspace`` → ``hsm`` → ``controlplane`` (+ ``aws``)
→ ``client`` → ``kms`` → ``pedagogy``.
"""

from labsupport import aws
from labsupport.errors import LabError
from labsupport.pedagogy import check, explain, start_lesson
from labsupport.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["LabError", "Workspace", "__version__", "aws", "check", "explain", "start_lesson"]
