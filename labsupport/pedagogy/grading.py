"""Auto-graded review questions: ``check("00.q1", answer)``.

Answers are stored as salted PBKDF2 hashes in ``questions/<lesson>.json`` beside this
module, so neither the exercises nor labsupport contain them in plain text. (A
determined learner can still brute-force a multiple-choice answer; the hash keeps
honest learners from reading the answer by accident, which is all it is for.)

Right answer: one stable line is printed (nbval compares it with the stored output).
Wrong answer: :class:`WrongAnswer` is raised with a hint — under nbval that fails
the notebook, which is the auto-grading. In Jupyter it shows as one short line and the
hint, never a traceback into this module.

:func:`evaluate` is the one judge: ``check()`` calls it in the learner's kernel, and
``python -m labsupport grade`` calls it in the grader's own process on the answer
values it collected (``CLOUDHSM_LAB_GRADING=1`` makes ``check()`` in a graded
kernel do nothing, so nothing printed there counts).
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
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
#: Set in a kernel run by the grader: ``check()`` then neither prints nor raises.
ENV_GRADING = "CLOUDHSM_LAB_GRADING"
#: A file of this name in the questions folder marks an assessment copy: no hashes are
#: shipped, ``check()`` records instead of judging (see docs/instructors.md).
ASSESSMENT_MARKER = "ASSESSMENT"
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

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: a tutor's one line and a hint,
        # not the grader's source.
        return [f"❌ {self.problem}", *([self.fix] if self.fix else [])]


class Verdict(str, enum.Enum):
    """What :func:`evaluate` decided about one answer."""

    RIGHT = "right"
    WRONG = "wrong"
    UNANSWERED = "unanswered"


@dataclass(frozen=True)
class Evaluation:
    """The verdict on one answer, the one-line message and the next step (a hint)."""

    qid: str
    verdict: Verdict
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Question:
    """A graded question as stored: its kind, salt, hash and hint — never the answer."""

    qid: str
    kind: AnswerKind
    salt: str
    digest: str
    hint: str
    digits: int = 0
    points: float = 1.0
    #: Per-item salted hashes (MAPPING: key → hash of its value; SET: hashes of the
    #: members) so feedback can say *which* items are off without storing them.
    items: tuple[tuple[str, str], ...] = ()


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
            points=float(q.get("points", 1)),
            items=tuple(
                sorted(q["items"].items())
                if isinstance(q.get("items"), dict)
                else ((d, "") for d in q.get("items", ()))
            ),
        )
        for qid, q in raw.items()
    }


def question(qid: str) -> Question:
    """The stored question ``qid`` (raises KeyError if no such question exists)."""
    found = _load(_lesson_file(qid)).get(qid)
    if found is None:
        raise KeyError(f"there is no review question {qid!r}")
    return found


def _item_digest(salt: str, item: str) -> str:
    return _digest(salt, "item:" + item)


def _item_feedback(q: Question, answer: Any) -> str:
    """Which items of a dict/set answer are off (empty when none were stored)."""
    if not q.items:
        return ""
    if q.kind is AnswerKind.MAPPING and isinstance(answer, Mapping):
        expected = dict(q.items)
        given = {
            _text(k): _text(v)
            for k, v in answer.items()
            if isinstance(k, str) and isinstance(v, str)
        }
        missing = sorted(set(expected) - set(given))
        extra = sorted(set(given) - set(expected))
        off = sorted(
            k
            for k, v in given.items()
            if k in expected
            and not secrets.compare_digest(_item_digest(q.salt, f"{k}={v}"), expected[k])
        )
        parts = []
        if off:
            parts.append(
                f"{len(expected) - len(off) - len(missing)} of {len(expected)} right; "
                f"look again at {', '.join(map(repr, off))}"
            )
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"not asked: {', '.join(map(repr, extra))}")
        return "; ".join(parts)
    if q.kind is AnswerKind.SET and isinstance(answer, Iterable):
        members = {d for d, _ in q.items}
        given = sorted({_text(x) for x in answer if isinstance(x, str)})
        wrong = [x for x in given if _item_digest(q.salt, x) not in members]
        right = len(given) - len(wrong)
        parts = [f"{right} of your {len(given)} items belong"]
        if wrong:
            parts.append(f"{', '.join(map(repr, wrong))} do{'es' if len(wrong) == 1 else ''} not")
        if right < len(members):
            parts.append(f"{len(members) - right} more to find")
        return "; ".join(parts)
    return ""


def grading_mode() -> bool:
    """True in a kernel started by ``python -m labsupport grade`` (answers judged outside)."""
    return os.environ.get(ENV_GRADING) == "1"


def evaluate(qid: str, answer: Any) -> Evaluation:
    """Judge ``answer`` to question ``qid`` against its stored hash (never raises for a
    wrong or missing answer; KeyError for an unknown question)."""
    q = question(qid)
    if answer is None or answer is Ellipsis:
        return Evaluation(
            qid,
            Verdict.UNANSWERED,
            f"{qid}: no answer yet.",
            "Replace the placeholder with your answer.",
        )
    try:
        canonical = normalize(q.kind, answer, q.digits)
    except (TypeError, ValueError) as exc:
        return Evaluation(
            qid,
            Verdict.WRONG,
            f"{qid}: this question wants a different kind of answer — {exc}.",
            "Change the type of your answer and run the cell again.",
        )
    if secrets.compare_digest(_digest(q.salt, canonical), q.digest):
        return Evaluation(qid, Verdict.RIGHT, f"✅ {qid}: correct")
    detail = _item_feedback(q, answer)
    return Evaluation(
        qid,
        Verdict.WRONG,
        f"{qid}: not quite{' — ' + detail if detail else ''}.",
        f"Hint: {q.hint}",
    )


def check(qid: str, answer: Any) -> None:
    """Grade ``answer`` to review question ``qid``.

    Prints ``✅ <qid>: correct`` when right; raises :class:`WrongAnswer` with a hint
    when wrong, or when the answer is missing or of the wrong type. In an assessment
    copy (no answers shipped) it only says the answer was recorded.
    """
    if grading_mode():
        return  # the grader evaluates the answer value itself, outside this kernel
    if (QUESTIONS_DIR / ASSESSMENT_MARKER).exists() and not _lesson_file(qid).exists():
        print(f"📝 {qid}: answer recorded — your instructor grades it.")
        return
    result = evaluate(qid, answer)
    if result.verdict is not Verdict.UNANSWERED:
        progress.record(qid, result.verdict is Verdict.RIGHT)  # the contents' progress view
    if result.verdict is not Verdict.RIGHT:
        raise WrongAnswer(result.message, result.fix)
    print(result.message)


def _items_of(kind: AnswerKind, salt: str, answer: Any) -> tuple[tuple[str, str], ...]:
    if kind is AnswerKind.MAPPING:
        return tuple(
            sorted(
                (_text(k), _item_digest(salt, f"{_text(k)}={_text(v)}")) for k, v in answer.items()
            )
        )
    if kind is AnswerKind.SET:
        return tuple((d, "") for d in sorted({_item_digest(salt, _text(x)) for x in answer}))
    return ()


def register_answer(
    qid: str,
    answer: Any,
    kind: AnswerKind | str,
    hint: str,
    digits: int = 0,
    points: float = 1.0,
) -> Question:
    """Author tool: store the salted hash of ``answer`` for ``qid`` (overwrites it).

    Run it once from a Python prompt, or with ``python -m labsupport add-question``;
    the plain answer is not stored (the solution notebook has it). ``points`` is what
    the question is worth in ``python -m labsupport grade``. Dict and set answers also
    store one salted hash per item, so a wrong answer's feedback names the items to
    look at again.
    """
    kind = AnswerKind(kind)
    salt = secrets.token_hex(16)
    q = Question(
        qid,
        kind,
        salt,
        _digest(salt, normalize(kind, answer, digits)),
        hint,
        digits,
        float(points),
        _items_of(kind, salt, answer),
    )
    path = _lesson_file(qid)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    entry = asdict(q)
    entry.pop("qid")
    entry["kind"] = kind.value
    if not digits:
        entry.pop("digits")
    if points == 1:
        entry.pop("points")
    else:
        entry["points"] = int(points) if float(points).is_integer() else float(points)
    if kind is AnswerKind.MAPPING:
        entry["items"] = dict(q.items)
    elif kind is AnswerKind.SET:
        entry["items"] = [d for d, _ in q.items]
    else:
        entry.pop("items")
    data[qid] = entry
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    _load.cache_clear()
    return q
