"""check(): hashing, normalisation, hints, wrong types; no plaintext answers shipped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labsupport.pedagogy import grading
from labsupport.pedagogy.grading import AnswerKind, WrongAnswer, check, normalize

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def questions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(grading, "QUESTIONS_DIR", tmp_path)
    grading._load.cache_clear()
    yield tmp_path
    grading._load.cache_clear()


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        (AnswerKind.CHOICE, "b, D", ["d", "b"]),
        (AnswerKind.CHOICE, "a;c", "c a"),
        (AnswerKind.TEXT, "  Crypto   User. ", "crypto user"),
        (AnswerKind.NUMBER, 16, 16.0),
        (AnswerKind.SET, ["Admin", "crypto-user", "admin"], {"crypto-user", "admin"}),
        (AnswerKind.BOOL, "yes", True),
        (AnswerKind.MAPPING, {"Owner": "You "}, {"owner": "you"}),
    ],
)
def test_equivalent_answers_normalise_alike(kind: AnswerKind, a: object, b: object) -> None:
    assert normalize(kind, a) == normalize(kind, b)


def test_right_answer_prints_one_stable_line(questions: Path, capsys) -> None:
    grading.register_answer("99.demo", "b, d", "choice", "two letters")
    check("99.demo", "D,b")
    assert capsys.readouterr().out == "✅ 99.demo: correct\n"


def test_wrong_answer_raises_with_hint(questions: Path) -> None:
    grading.register_answer("99.demo", "b", "choice", "think about tamper resistance")
    with pytest.raises(WrongAnswer, match="think about tamper resistance"):
        check("99.demo", "a")


@pytest.mark.parametrize("placeholder", [None, ...])
def test_missing_answer_is_reported(questions: Path, placeholder: object) -> None:
    grading.register_answer("99.demo", 3, "number", "count them")
    with pytest.raises(WrongAnswer, match="no answer yet"):
        check("99.demo", placeholder)


def test_wrong_type_is_explained(questions: Path) -> None:
    grading.register_answer("99.demo", 3, "number", "count them")
    with pytest.raises(WrongAnswer, match="expected a number"):
        check("99.demo", "three")


def test_answers_are_stored_salted_and_hashed(questions: Path) -> None:
    grading.register_answer("99.a", "secret-answer", "text", "h")
    grading.register_answer("99.b", "secret-answer", "text", "h")
    raw = (questions / "99.json").read_text()
    assert "secret-answer" not in raw
    data = json.loads(raw)
    assert data["99.a"]["digest"] != data["99.b"]["digest"], "salts must differ"


def test_unknown_question_and_bad_id(questions: Path) -> None:
    with pytest.raises(KeyError):
        check("99.nothing", "a")
    with pytest.raises(ValueError):
        check("not-an-id", "a")


def test_every_graded_question_of_the_course_is_registered() -> None:
    ids = set()
    for nb in [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]:
        ids |= set(re.findall(r'check\(\\?\s*\\"(\d\d\.\w+)\\"', nb.read_text()))
    assert ids, "no graded questions found"
    for qid in sorted(ids):
        grading.question(qid)  # raises KeyError when the hash was never stored


def test_wrong_answer_shows_one_line_and_a_hint_not_a_traceback(questions: Path) -> None:
    grading.register_answer("99.demo", "b", "choice", "think about tamper resistance")
    with pytest.raises(WrongAnswer) as info:
        check("99.demo", "a")
    lines = info.value._render_traceback_()
    assert lines == ["❌ 99.demo: not quite.", "Hint: think about tamper resistance"]
    assert "grading.py" not in "".join(lines)


def test_dict_answer_feedback_names_the_items_to_revisit(questions: Path) -> None:
    right = {"java": "cloudhsm", "s3": "kms", "oracle": "cloudhsm"}
    grading.register_answer("99.map", right, "mapping", "which service?")
    result = grading.evaluate("99.map", {"java": "kms", "s3": "kms", "extra": "x"})
    assert result.verdict is grading.Verdict.WRONG
    assert "1 of 3 right" in result.message and "'java'" in result.message
    assert "missing 'oracle'" in result.message and "not asked: 'extra'" in result.message
    assert "cloudhsm" not in result.message  # never states the answer
    raw = (questions / "99.json").read_text()
    assert "cloudhsm" not in raw


def test_set_answer_feedback_counts_members(questions: Path) -> None:
    grading.register_answer("99.set", {"admin", "crypto-user"}, "set", "two roles")
    msg = grading.evaluate("99.set", ["admin", "root"]).message
    assert "1 of your 2 items belong" in msg and "'root' does not" in msg and "1 more" in msg


def test_points_are_stored_and_read(questions: Path) -> None:
    grading.register_answer("99.p", 3, "number", "count", points=2)
    assert grading.question("99.p").points == 2
    grading.register_answer("99.q", 3, "number", "count")
    assert grading.question("99.q").points == 1


def test_check_in_a_graded_kernel_neither_prints_nor_raises(
    questions: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    grading.register_answer("99.demo", "b", "choice", "h")
    monkeypatch.setenv(grading.ENV_GRADING, "1")
    check("99.demo", "a")
    assert capsys.readouterr().out == ""


def test_assessment_copy_records_without_judging(questions: Path, capsys) -> None:
    (questions / grading.ASSESSMENT_MARKER).write_text("")
    check("98.anything", "a")
    assert "answer recorded" in capsys.readouterr().out
