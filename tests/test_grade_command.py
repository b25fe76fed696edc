"""Grading without kernels: finding files, matching cells, splicing answers, reports."""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from pathlib import Path

import grade_fixtures as fx
import nbformat
import pytest

from labsupport.authoring.build import exercise_from_solution
from labsupport.authoring.grade import (
    ClassReport,
    NotebookResult,
    Outcome,
    QuestionResult,
    feedback_html,
    feedback_markdown,
    judge,
    parse_literal,
    plot_outcomes,
    to_csv,
    to_csv_questions,
    to_question_table,
    to_table,
)
from labsupport.authoring.submission import (
    GradedQuestion,
    NotebookKind,
    assemble,
    canonical_name,
    classify,
    discover,
    extract_answers,
    graded_questions,
    read_notebook,
    splice,
)
from labsupport.pedagogy import grading

EXERCISES = ["00_setup_check.ipynb", "01_hsm_cloudhsm_kms.ipynb"]
SOL = '### BEGIN SOLUTION\nanswer_q1 = "b, d"\n### END SOLUTION\ncheck("00.real_hsm", answer_q1)'


@pytest.mark.parametrize(
    "name",
    [
        "00_setup_check-Copy1.ipynb",
        "00_setup_check (1).ipynb",
        "Copy of 00_setup_check.ipynb",
        "00_setup_check-Copy2 (3).ipynb",
        "00_setup_check.ipynb",
    ],
)
def test_renamed_copies_map_to_their_exercise(name: str) -> None:
    assert canonical_name(name) == "00_setup_check.ipynb"


def test_discover_folders_archives_copies_and_strays(tmp_path: Path) -> None:
    cls = tmp_path / "class"
    fx.write(fx.solution(), cls / "ana")
    fx.write(fx.solution(), cls / "ana", "00_setup_check-Copy1.ipynb")  # duplicate: ignored
    fx.write(fx.solution(), cls / "ben", "00_setup_check (1).ipynb")  # only copy: graded
    (cls / "ben" / "notes.txt").write_text("hi")
    fx.write(fx.solution(), tmp_path / "zipped")
    with zipfile.ZipFile(cls / "cho.zip", "w") as zf:
        zf.write(tmp_path / "zipped" / fx.LESSON, f"work/{fx.LESSON}")
    with tarfile.open(cls / "dev.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "zipped" / fx.LESSON, fx.LESSON)
    (cls / "eve.zip").write_bytes(b"not a zip")
    fx.write(fx.solution(), cls / "fay", "99_unknown.ipynb")
    found = discover([cls], EXERCISES, tmp_path / "unpacked")
    got = {(s.learner, s.path.name) for s in found.submissions}
    assert got == {
        ("ana", fx.LESSON),
        ("ben", "00_setup_check (1).ipynb"),
        ("cho", fx.LESSON),
        ("dev", fx.LESSON),
    }
    text = "\n".join(found.warnings)
    assert "00_setup_check-Copy1.ipynb ignored" in text
    assert "skipped notes.txt" in text and "could not unpack eve.zip" in text
    assert "skipped 99_unknown.ipynb" in text


def test_zip_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../escaped.ipynb", "{}")
    found = discover([tmp_path / "evil.zip"], EXERCISES, tmp_path / "unpacked" / "x")
    assert not found.submissions and "outside the folder" in found.warnings[0]
    assert not (tmp_path / "escaped.ipynb").exists()


def test_lesson_notebook_is_told_from_its_exercise() -> None:
    sol = fx.solution()
    ex = exercise_from_solution(sol)
    lesson = nbformat.read(fx.ROOT / "notebooks" / fx.LESSON, as_version=4)
    assert classify(lesson, ex, lesson) is NotebookKind.LESSON
    assert classify(sol, ex, lesson) is NotebookKind.EXERCISE
    assert classify(ex, ex, lesson) is NotebookKind.EXERCISE


def test_a_4_4_file_with_cell_ids_is_read(tmp_path: Path) -> None:
    raw = nbformat.writes(fx.solution())
    path = tmp_path / "x.ipynb"
    path.write_text(raw.replace('"nbformat_minor": 4', '"nbformat_minor": 4'))
    assert len(read_notebook(path).cells) == len(fx.solution().cells)
    path.write_text("{ not json")
    with pytest.raises(ValueError, match="not JSON"):
        read_notebook(path)


def test_answers_are_spliced_into_the_solution_cell() -> None:
    learner = '# YOUR CODE HERE\nanswer_q1 = "a"\ncheck("00.real_hsm", answer_q1)'
    answers = extract_answers(SOL, learner)
    assert answers == {0: ["# YOUR CODE HERE", 'answer_q1 = "a"']}
    assert splice(SOL, answers).splitlines()[-1] == 'check("00.real_hsm", answer_q1)'


def test_an_edited_check_line_is_restored() -> None:
    learner = 'answer_q1 = "a"\nprint("✅ 00.real_hsm: correct")'
    out = splice(SOL, extract_answers(SOL, learner))
    assert out.endswith('check("00.real_hsm", answer_q1)') and 'answer_q1 = "a"' in out


def test_untouched_placeholder_stays() -> None:
    ex = '# YOUR CODE HERE\nraise NotImplementedError()\ncheck("00.real_hsm", answer_q1)'
    assert "raise NotImplementedError()" in splice(SOL, extract_answers(SOL, ex))


def test_question_ids_come_from_the_solution_code_not_comments() -> None:
    src = '# check("00.fake", 1)\nx = 1\ncheck("00.real", x + 1)\ncheck("00.real", x)'
    assert graded_questions(src) == [GradedQuestion("00.real", "x + 1")]


def test_assembly_reports_missing_duplicated_and_extra_cells() -> None:
    first, second, *_ = fx.qids()
    sol = fx.solution()
    ex = exercise_from_solution(sol)
    learner = fx.solution()
    graded = [c for c in learner.cells if "graded" in c.metadata.get("tags", [])]
    learner.cells.remove(graded[1])  # 00.cbc_length removed
    learner.cells.insert(
        learner.cells.index(graded[0]) + 1, nbformat.v4.new_code_cell(graded[0].source)
    )  # duplicated
    learner.cells.insert(3, nbformat.v4.new_code_cell("helper = 42"))  # extra
    asm = assemble(sol, ex, learner)
    notes = "\n".join(asm.notes)
    assert asm.missing == set(second)
    assert f"graded cell {', '.join(first)} appears more than once" in notes
    assert "extra code cell" in notes
    qids = [q.qid for qs in asm.graded.values() for q in qs]
    assert qids == [q for ids in fx.qids() for q in ids]  # each question once, from the solution


def test_parse_literal_accepts_plain_values_only() -> None:
    assert parse_literal(repr(repr({"a": "b"}))) == {"a": "b"}
    assert parse_literal(repr(repr({"x", "y"}))) == {"x", "y"}
    with pytest.raises(ValueError):
        parse_literal(repr("<object at 0x1>"))


def _record(status: str = "ok", **answers: object) -> dict:
    return {
        "status": status,
        "answers": {q: {"ok": True, "repr": repr(repr(v))} for q, v in answers.items()},
    }


@pytest.fixture
def demo_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(grading, "QUESTIONS_DIR", tmp_path)
    grading._load.cache_clear()
    grading.register_answer("99.demo", "b, d", "choice", "two letters")
    yield "99.demo"
    grading._load.cache_clear()


@pytest.mark.parametrize(
    ("record", "outcome"),
    [
        (_record(**{"99.demo": "d, b"}), Outcome.PASS),
        (_record(**{"99.demo": "a"}), Outcome.WRONG),
        (_record(**{"99.demo": None}), Outcome.UNANSWERED),
        ({"status": "error", "ename": "NotImplementedError"}, Outcome.UNANSWERED),
        ({"status": "error", "ename": "ZeroDivisionError", "evalue": "x"}, Outcome.ERROR),
        (None, Outcome.NOT_RUN),
    ],
)
def test_judge(record: dict | None, outcome: Outcome, demo_question: str) -> None:
    got = judge("ana", fx.LESSON, GradedQuestion(demo_question, "answer_q1"), record, "", False)
    assert got.outcome is outcome
    assert got.points == (1 if outcome is Outcome.PASS else 0) and got.max_points == 1


def _report() -> ClassReport:
    def nb(learner: str, outcomes: list[Outcome], problem: str = "") -> NotebookResult:
        qs = [
            QuestionResult(
                learner,
                fx.LESSON,
                q,
                o,
                float(o is Outcome.PASS),
                1.0,
                "not quite\nline two" if o is Outcome.WRONG else "",
                "Hint: think",
            )
            for q, o in zip(["00.a", "00.b"], outcomes, strict=True)
        ]
        return NotebookResult(learner, fx.LESSON, "x", qs, problem, ["extra code cell 3 kept"])

    return ClassReport(
        [
            nb("ana", [Outcome.PASS, Outcome.PASS]),
            nb("ben", [Outcome.WRONG, Outcome.UNANSWERED]),
            nb("cho", [Outcome.NOT_RUN] * 2, "could not run: timed out after 5 s"),
        ],
        {fx.LESSON: ["00.a", "00.b"], "01_x.ipynb": ["01.a"]},
        {"00.a": 1.0, "00.b": 1.0, "01.a": 3.0},
    )


def test_csv_one_row_per_learner() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    assert [(r["learner"], r["score"], r["max_score"]) for r in rows] == [
        ("ana", "2", "2"),
        ("ben", "0", "2"),
        ("cho", "0", "2"),
    ]
    assert rows[2]["00_setup_check"] == "could not run"
    assert rows[2]["status"] == "00: could not run: timed out after 5 s"
    assert rows[0]["00_setup_check"] == "2/2" and rows[0]["notes"] == "00: extra code cell 3 kept"


def test_long_csv_has_no_line_breaks_in_cells() -> None:
    text = to_csv_questions(_report())
    assert len(text.splitlines()) == 1 + 6
    assert "not quite line two" in text


def test_tables_and_feedback() -> None:
    report = _report()
    assert to_table(report).splitlines()[3].split() == ["ben", "0/2", "0/2"]
    assert to_question_table(report).splitlines()[-1].split() == ["pass", "rate", "33%", "33%"]
    md = feedback_markdown(report, "ben")
    assert "❌ `00.a`" in md and "Hint: think" in md and "extra code cell" in md
    assert "<li>" in feedback_html(report, "ben") and "<script" not in feedback_html(report, "x")


def test_chart(tmp_path: Path) -> None:
    assert (
        plot_outcomes(_report(), tmp_path / "c.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    )
