"""Plain-language explanations of the errors a learner meets.

``explain(exc)`` returns a short text: what the error means and what to do next. In
a notebook, :func:`install_exception_hook` (called by ``start_lesson``) shows PKCS#11
errors (``pkcs11.exceptions.*``, which carry the ``CKR_*`` code names), AWS errors
(botocore ``ClientError``) and lab errors as a tutor would: the traceback keeps only the
frames of the learner's own code (:func:`learner_frames`), a lab error is shown without the
internal error it was raised from (its message already says what to do), and the
explanation follows on a line of its own. The cell still fails, so nbval and graded cells
behave as usual. The texts are the one table in :mod:`labsupport.explanations`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
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


#: Set to 1 to see every frame of an error, the lab's and the libraries' own included.
ENV_FULL_TRACEBACKS = "CLOUDHSM_LAB_FULL_TRACEBACKS"


def _library_roots() -> tuple[str, ...]:
    """Folders of code that is not the learner's: this package, the standard library,
    installed packages (IPython's own frames among them)."""
    paths = sysconfig.get_paths()
    roots = {
        str(Path(__file__).resolve().parents[1]),
        *(paths[k] for k in ("stdlib", "purelib", "platlib")),
    }
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots)


def learner_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` with only the learner's own frames (notebook cells, files they wrote), or None
    if it has none. A tutor points at the line you wrote, not at the library's insides."""
    roots = _library_roots()
    kept = []
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        # Relative names are compiled extensions' sources (``pkcs11/_pkcs11.pyx``) and
        # ``<frozen …>`` modules; IPython names each cell's code by an absolute path.
        mine = os.path.isabs(filename) or filename.startswith("<ipython-input")
        if mine and not os.path.realpath(filename).startswith(roots):
            kept.append(tb)
        tb = tb.tb_next
    trimmed = None
    for frame in reversed(kept):
        trimmed = TracebackType(trimmed, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return trimmed


@contextlib.contextmanager
def _chain_hidden(exc: BaseException, hide: bool) -> Iterator[None]:
    """While rendering, leave out the exception a lab error was raised from (the lab's
    internal cause: its message already says what went wrong and what to do)."""
    if not hide:
        yield
        return
    saved = exc.__cause__, exc.__suppress_context__
    exc.__cause__, exc.__suppress_context__ = None, True
    try:
        yield
    finally:
        exc.__cause__, exc.__suppress_context__ = saved


def _hook(shell: Any, etype: type, evalue: BaseException, tb: Any, tb_offset: Any = None) -> Any:
    if hasattr(evalue, "_render_traceback_"):  # e.g. a wrong answer: a tutor's line and a hint
        structured = evalue._render_traceback_()
        shell._showtraceback(etype, evalue, structured)
        return structured
    full = os.environ.get(ENV_FULL_TRACEBACKS, "") not in ("", "0")
    mine = None if full else learner_frames(tb)
    if mine is not None:
        tb, tb_offset = mine, 0  # IPython's own frames are gone already
    with _chain_hidden(evalue, hide=not full and isinstance(evalue, LabError)):
        structured = shell.InteractiveTB.structured_traceback(
            etype, evalue, tb, tb_offset=tb_offset
        )
    shell._showtraceback(etype, evalue, structured)
    text = explain(evalue)
    if text:
        # On a line of its own: the error's last line ends without a newline, and a
        # notebook shown as text would glue the two ("…4096💡 AWS error").
        print(f"\n{text}")
    return structured


def install_exception_hook(shell: Any) -> None:
    """Show PKCS#11, AWS and lab errors in this IPython ``shell`` as a tutor would
    (``start_lesson`` passes the running kernel's): only the frames of the learner's own
    code, a lab error without the internal error it was raised from, and the plain-language
    explanation on a line of its own. ``CLOUDHSM_LAB_FULL_TRACEBACKS=1`` shows every frame."""
    from botocore.exceptions import ParamValidationError

    shell.set_custom_exc((p11e.PKCS11Error, ClientError, ParamValidationError, LabError), _hook)
