"""Auto-graded review questions: ``check("00.q1", answer)``.

Answers are stored as salted PBKDF2 hashes in ``questions/<lesson>.json`` beside this
module, so neither the exercises nor labsupport contain them in plain text. (A
determined learner can still brute-force a multiple-choice answer; the hash keeps
honest learners from reading the answer by accident, which is all it is for.)

Right answer: one stable line is printed (nbval compares it with the stored output).
Wrong answer: :class:`WrongAnswer` is raised with a hint — under nbval that fails
the notebook, which is the auto-grading.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from labsupport.errors import LabError
from labsupport.pedagogy import progress

QUESTIONS_DIR = Path(__file__).with_name("questions")
_ITERATIONS = 20_000
_QID = re.compile(r"^(\d\d)\.[a-z0-9_]+$")


class AnswerKind(str, enum.Enum):
    """How an answer is normalised before hashing."""

    CHOICE = "choice"  # letters, case and order ignored: "b, D" == ["d", "b"]
    TEXT = "text"  # case, surrounding space and inner runs of space ignored
    NUMBER = "number"  # rounded to the question's `digits`
    SET = "set"  # iterable of texts, order and duplicates ignored
    BOOL = "bool"  # True/False (also "yes"/"no", "true"/"false")
    MAPPING = "mapping"  # dict of text → text, each side normalised as TEXT


class WrongAnswer(LabError, AssertionError):
    """The answer to a review question is not right (the message carries a hint)."""


@dataclass(frozen=True)
class Question:
    """A graded question as stored: its kind, salt, hash and hint — never the answer."""

    qid: str
    kind: AnswerKind
    salt: str
    digest: str
    hint: str
    digits: int = 0


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text (a str), got {type(value).__name__}")
    return re.sub(r"\s+", " ", value).strip().strip(".").casefold()


def normalize(kind: AnswerKind, answer: Any, digits: int = 0) -> str:
    """Canonical text of ``answer`` for a ``kind`` question (TypeError on a wrong type)."""
    if kind is AnswerKind.CHOICE:
        items = re.split(r"[\s,;]+", answer) if isinstance(answer, str) else list(answer)
        letters = sorted({_text(x) for x in items if str(x).strip()})
        if not letters or any(not re.fullmatch(r"[a-z]", x) for x in letters):
            raise TypeError("expected one or more choice letters, such as 'b' or 'a, c'")
        return ",".join(letters)
    if kind is AnswerKind.TEXT:
        return _text(answer)
    if kind is AnswerKind.NUMBER:
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            raise TypeError(f"expected a number, got {type(answer).__name__}")
        if not math.isfinite(answer):
            raise TypeError("expected a finite number")
        return f"{round(float(answer), digits):.{digits}f}"
    if kind is AnswerKind.SET:
        if isinstance(answer, (str, bytes)) or not isinstance(answer, Iterable):
            raise TypeError("expected a list or set of texts, such as {'admin', 'crypto-user'}")
        return "|".join(sorted({_text(x) for x in answer}))
    if kind is AnswerKind.BOOL:
        if isinstance(answer, bool):
            return str(answer).lower()
        if isinstance(answer, str) and _text(answer) in {"yes", "no", "true", "false"}:
            return "true" if _text(answer) in {"yes", "true"} else "false"
        raise TypeError("expected True or False")
    if kind is AnswerKind.MAPPING:
        if not isinstance(answer, Mapping):
            raise TypeError("expected a dict, such as {'ownership': 'you'}")
        return json.dumps({_text(k): _text(v) for k, v in answer.items()}, sort_keys=True)
    raise ValueError(f"unknown answer kind {kind}")


def _digest(salt: str, canonical: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", canonical.encode(), bytes.fromhex(salt), _ITERATIONS).hex()


def _lesson_file(qid: str) -> Path:
    match = _QID.match(qid)
    if not match:
        raise ValueError(f"question ids look like '02.state_machine', not {qid!r}")
    return QUESTIONS_DIR / f"{match.group(1)}.json"


@cache
def _load(path: Path) -> dict[str, Question]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        qid: Question(
            qid=qid,
            kind=AnswerKind(q["kind"]),
            salt=q["salt"],
            digest=q["digest"],
            hint=q["hint"],
            digits=q.get("digits", 0),
        )
        for qid, q in raw.items()
    }


def question(qid: str) -> Question:
    """The stored question ``qid`` (raises KeyError if no such question exists)."""
    found = _load(_lesson_file(qid)).get(qid)
    if found is None:
        raise KeyError(f"there is no review question {qid!r}")
    return found


def check(qid: str, answer: Any) -> None:
    """Grade ``answer`` to review question ``qid``.

    Prints ``✅ <qid>: correct`` when right; raises :class:`WrongAnswer` with a hint
    when wrong, or when the answer is missing or of the wrong type.
    """
    q = question(qid)
    if answer is None or answer is Ellipsis:
        raise WrongAnswer(f"{qid}: no answer yet.", "Replace the placeholder with your answer.")
    try:
        canonical = normalize(q.kind, answer, q.digits)
    except TypeError as exc:
        raise WrongAnswer(
            f"{qid}: this question wants a different kind of answer — {exc}.",
            "Change the type of your answer and run the cell again.",
        ) from None
    right = secrets.compare_digest(_digest(q.salt, canonical), q.digest)
    progress.record(qid, right)  # the contents notebook's progress view
    if not right:
        raise WrongAnswer(f"{qid}: not quite.", f"Hint: {q.hint}")
    print(f"✅ {qid}: correct")


def register_answer(
    qid: str, answer: Any, kind: AnswerKind | str, hint: str, digits: int = 0
) -> Question:
    """Author tool: store the salted hash of ``answer`` for ``qid`` (overwrites it).

    Run it once from a Python prompt, or with ``python -m labsupport add-question``;
    the plain answer lives only in the solution notebook.
    """
    kind = AnswerKind(kind)
    salt = secrets.token_hex(16)
    q = Question(qid, kind, salt, _digest(salt, normalize(kind, answer, digits)), hint, digits)
    path = _lesson_file(qid)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    entry = asdict(q)
    entry.pop("qid")
    entry["kind"] = kind.value
    if not digits:
        entry.pop("digits")
    data[qid] = entry
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    _load.cache_clear()
    return q
