"""Plain-language explanations of the errors a learner meets.

``explain(exc)`` returns a short text: what the error means and what to do next. In
a notebook, :func:`install_exception_hook` (called by ``start_lesson``) prints that
text, on a line of its own, under the normal traceback for PKCS#11 errors
(``pkcs11.exceptions.*``, which carry the ``CKR_*`` code names) and AWS errors (botocore
``ClientError``); lab errors already say what to do. The cell still fails, so nbval and
graded cells behave as usual. The texts are the one table in :mod:`labsupport.explanations`.
"""

from __future__ import annotations

import re
from typing import Any

import pkcs11.exceptions as p11e
from botocore.exceptions import ClientError

from labsupport.errors import LabError
from labsupport.explanations import (
    EXPLANATIONS,
    UNMAPPED_CKR,
    Explanation,
    Source,
    add,
    lookup,
)


def register_explanation(name: str, meaning: str, fix: str, ckr: str = "") -> None:
    """Add or replace the explanation for exception class ``name`` (or AWS error code).

    ``ckr`` is the PKCS#11 return-value name (e.g. ``CKR_PIN_INCORRECT``) for PKCS#11
    errors; leave it empty for AWS error codes. The entry goes into the one table,
    :data:`labsupport.explanations.EXPLANATIONS`.
    """
    source = Source.PKCS11 if ckr or hasattr(p11e, name) else Source.AWS
    add(Explanation(source, name, meaning, fix, ckr or name))


_UNMAPPED_RE = re.compile(r"Unmapped error code (0x[0-9a-fA-F]+)")


def explain(exc: BaseException) -> str:
    """Return a plain-language explanation of ``exc`` with a next step ('' if none is known)."""
    if isinstance(exc, LabError):
        return ""  # its message already says what to do
    match = _UNMAPPED_RE.search(str(exc)) if type(exc) is p11e.PKCS11Error else None
    if match and int(match.group(1), 16) in UNMAPPED_CKR:
        entry = EXPLANATIONS[UNMAPPED_CKR[int(match.group(1), 16)]]
        return entry.render(f"PKCS#11 error {entry.ckr} ({match.group(1)})")
    if isinstance(exc, p11e.PKCS11Error):
        for cls in type(exc).__mro__:
            found = lookup(cls.__name__, Source.PKCS11)
            if found:
                return found.render(f"PKCS#11 error {type(exc).__name__} ({found.ckr})")
    code = type(exc).__name__
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
    found = lookup(code, Source.AWS)
    return found.render(f"AWS error {code}") if found else ""


def _hook(shell: Any, etype: type, evalue: BaseException, tb: Any, tb_offset: Any = None) -> Any:
    structured = shell.InteractiveTB.structured_traceback(etype, evalue, tb, tb_offset=tb_offset)
    shell._showtraceback(etype, evalue, structured)
    text = explain(evalue)
    if text:
        # On a line of its own: the error's last line ends without a newline, and a
        # notebook shown as text would glue the two ("…4096💡 AWS error").
        print(f"\n{text}")
    return structured


def install_exception_hook(shell: Any) -> None:
    """Add explanations under PKCS#11, AWS and lab tracebacks in this IPython ``shell``
    (``start_lesson`` passes the running kernel's)."""
    from botocore.exceptions import ParamValidationError

    shell.set_custom_exc((p11e.PKCS11Error, ClientError, ParamValidationError), _hook)
