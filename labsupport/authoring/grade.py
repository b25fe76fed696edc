"""Grade a class: per learner, per notebook, per question — trusting only ``solutions/``.

For each submitted exercise notebook (see :mod:`labsupport.authoring.submission`) the
grader builds the notebook to run from the instructor's solution with the learner's
answers spliced in, runs it isolated (:mod:`labsupport.authoring.sandbox`), collects the
value of every graded expression, and judges each value itself with
:func:`labsupport.pedagogy.grading.evaluate` against the hashes it loaded before any
learner code ran. Nothing a notebook prints counts. A notebook that cannot run gets a
"could not run: <why>" result and the class goes on.
"""

from __future__ import annotations

import ast
import csv
import enum
import html
import io
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from labsupport.authoring.build import exercise_from_solution
from labsupport.authoring.course import COURSE_ROOT, solutions_dir
from labsupport.authoring.sandbox import (
    PackageSnapshot,
    RunOutput,
    become_subreaper,
    check_run_as,
    descendants,
    kill_descendants,
    remove_scratch,
    run_isolated,
)
from labsupport.authoring.submission import (
    Assembly,
    GradedQuestion,
    NotebookKind,
    Submission,
    assemble,
    classify,
    discover,
    graded_questions,
    read_notebook,
)
from labsupport.authoring.worker import MAX_REPR
from labsupport.pedagogy import grading
from labsupport.pedagogy.grading import Verdict

DEFAULT_TIMEOUT_S = 300


class Outcome(str, enum.Enum):
    """Result of one question."""

    PASS = "pass"
    WRONG = "wrong"
    ERROR = "error"  # the learner's code for it raised an exception
    UNANSWERED = "unanswered"
    NOT_RUN = "could not run"


#: How the chart and tables group outcomes.
GROUPS: dict[Outcome, str] = {
    Outcome.PASS: "correct",
    Outcome.WRONG: "wrong",
    Outcome.ERROR: "wrong",
    Outcome.UNANSWERED: "unanswered",
    Outcome.NOT_RUN: "could not run",
}
SYMBOLS: dict[Outcome, str] = {
    Outcome.PASS: "ok",
    Outcome.WRONG: "wrong",
    Outcome.ERROR: "error",
    Outcome.UNANSWERED: "-",
    Outcome.NOT_RUN: "not-run",
}


@dataclass(frozen=True)
class QuestionResult:
    """One learner's result on one question."""

    learner: str
    notebook: str
    question: str
    outcome: Outcome
    points: float
    max_points: float
    detail: str = ""
    hint: str = ""


@dataclass
class NotebookResult:
    """One learner's exercise notebook: its questions, what stopped it, what was noticed."""

    learner: str
    notebook: str
    source: str
    questions: list[QuestionResult] = field(default_factory=list)
    problem: str = ""  # "" or why it could not (fully) run
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak_mib: float = 0.0  # the kernel's peak resident memory

    @property
    def score(self) -> float:
        """Points earned."""
        return sum(q.points for q in self.questions)

    @property
    def max_score(self) -> float:
        """Points available."""
        return sum(q.max_points for q in self.questions)


@dataclass
class ClassReport:
    """Everything one grading run found."""

    notebooks: list[NotebookResult]
    exercises: dict[str, list[str]]  # exercise file name → its question ids, in order
    points: dict[str, float]  # question id → points
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def learners(self) -> list[str]:
        """Learners in name order."""
        return sorted({nb.learner for nb in self.notebooks})

    @property
    def graded_exercises(self) -> list[str]:
        """Exercises at least one learner submitted, in course order."""
        seen = {nb.notebook for nb in self.notebooks}
        return [e for e in self.exercises if e in seen]

    def notebook(self, learner: str, exercise: str) -> NotebookResult | None:
        """The learner's result for an exercise (None if not submitted)."""
        return next(
            (n for n in self.notebooks if n.learner == learner and n.notebook == exercise), None
        )

    def max_score(self) -> float:
        """Points available across the exercises this class submitted."""
        return sum(self.points[q] for e in self.graded_exercises for q in self.exercises[e])

    def score(self, learner: str) -> float:
        """A learner's points across all their notebooks."""
        return sum(n.score for n in self.notebooks if n.learner == learner)

    def questions(self) -> list[QuestionResult]:
        """Every question result, learner by learner."""
        return [q for n in sorted(self.notebooks, key=_order) for q in n.questions]


def _order(nb: NotebookResult) -> tuple[str, str]:
    return nb.learner, nb.notebook


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}".rstrip("0")


def _one_line(text: str, limit: int = 200) -> str:
    return re.sub(r"\s+", " ", text).strip()[:limit]


# --- turning collected values into outcomes --------------------------------------------------

_NUMPY_CALL = re.compile(r"^\w+(\.\w+)*\.(float|int|uint|bool_|str_)\d*$")


def parse_literal(text: str) -> Any:
    """The Python value of an answer's repr (plain literals only; ValueError otherwise)."""
    if len(text) > MAX_REPR:
        raise ValueError("the answer is too long to grade")
    value = ast.literal_eval(text)  # the repr string, as the kernel displayed it
    if not isinstance(value, str):
        raise ValueError("unexpected display of the answer")
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("the answer is not a plain value (str, number, list, set, dict)") from None


def judge(
    learner: str,
    notebook: str,
    q: GradedQuestion,
    record: dict[str, Any] | None,
    problem: str,
    missing: bool,
) -> QuestionResult:
    """One question's result from the run's record for its cell."""
    question = grading.question(q.qid)
    mk = lambda o, d="", pts=0.0, hint="": QuestionResult(  # noqa: E731
        learner, notebook, q.qid, o, pts, question.points, _one_line(d), hint
    )
    if record is None:
        return mk(Outcome.NOT_RUN, problem or "the run stopped before this cell")
    if missing:
        return mk(Outcome.UNANSWERED, "graded cell missing from the submission")
    if record.get("status") == "error":
        ename = str(record.get("ename", ""))
        if ename == "NotImplementedError":
            return mk(Outcome.UNANSWERED, "not answered")
        if ename == "NameError":  # the answer's name was never given a value
            return mk(Outcome.UNANSWERED, f"not answered ({record.get('evalue', '')})")
        return mk(Outcome.ERROR, f"your code raised {ename}: {record.get('evalue', '')}")
    got = record.get("answers", {}).get(q.qid)
    if not got or not got.get("ok"):
        return mk(Outcome.UNANSWERED, f"no value for {q.expression}")
    try:
        value = parse_literal(str(got.get("repr", "")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        return mk(Outcome.WRONG, str(exc), hint=question.hint)
    result = grading.evaluate(q.qid, value)
    if result.verdict is Verdict.RIGHT:
        return mk(Outcome.PASS, pts=question.points)
    if result.verdict is Verdict.UNANSWERED:
        return mk(Outcome.UNANSWERED, "not answered")
    return mk(Outcome.WRONG, result.message, hint=result.fix)


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Course:
    """The instructor's side, loaded once before any learner code runs."""

    solutions: dict[str, nbformat.NotebookNode]
    exercises: dict[str, nbformat.NotebookNode]
    lessons: dict[str, nbformat.NotebookNode]
    questions: dict[str, list[str]]
    points: dict[str, float]
    problems: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path | None = None) -> Course:
        """Read ``solutions/`` (default: beside the installed package) and its questions."""
        folder = Path(folder) if folder else solutions_dir()
        if not folder.is_dir():
            raise FileNotFoundError(f"no solutions folder at {folder}")
        sols, exs, lessons, qids, points = {}, {}, {}, {}, {}
        unknown: list[str] = []
        for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
            sol = nbformat.read(path, as_version=4)
            sols[path.name] = sol
            exs[path.name] = exercise_from_solution(sol)
            lesson = folder.parent / "notebooks" / path.name
            if not lesson.exists():
                lesson = COURSE_ROOT / "notebooks" / path.name
            if lesson.exists():
                lessons[path.name] = nbformat.read(lesson, as_version=4)
            ids = []
            for cell in sol.cells:
                if cell.cell_type == "code" and "graded" in cell.metadata.get("tags", []):
                    ids += [q.qid for q in graded_questions(cell.source) if q.qid not in ids]
            known = []
            for qid in ids:
                try:
                    points[qid] = grading.question(qid).points  # loads (caches) every hash now
                except (KeyError, ValueError):
                    unknown.append(f"{path.name}: {qid} has no stored answer and is not graded")
                    continue
                known.append(qid)
            qids[path.name] = known
        return cls(sols, exs, lessons, qids, points, unknown)


@dataclass
class _Job:
    submission: Submission
    assembly: Assembly | None = None
    result: NotebookResult | None = None


def _prepare(course: Course, sub: Submission) -> tuple[_Job | None, str]:
    job = _Job(sub)
    try:
        nb = read_notebook(sub.path)
    except (ValueError, OSError) as exc:
        job.result = NotebookResult(
            sub.learner, sub.exercise, str(sub.path), problem=f"could not run: {exc}"
        )
        return job, ""
    kind = classify(nb, course.exercises[sub.exercise], course.lessons.get(sub.exercise))
    if kind is NotebookKind.LESSON:
        lesson = f"it is lesson {sub.exercise[:2]}, not its exercise"
        return None, f"{sub.learner}: skipped {sub.path.name} ({lesson})"
    if kind is NotebookKind.UNKNOWN:
        return None, f"{sub.learner}: skipped {sub.path.name} (not this course's exercise)"
    job.assembly = assemble(course.solutions[sub.exercise], course.exercises[sub.exercise], nb)
    return job, ""


def _finish(course: Course, job: _Job, out: RunOutput) -> NotebookResult:
    sub, asm = job.submission, job.assembly
    assert asm is not None
    by_cell = {int(r["cell"]): r for r in out.records if r.get("type") == "cell"}
    problem = "" if out.ended == "ok" else f"could not run: {out.detail}"
    res = NotebookResult(
        sub.learner,
        sub.exercise,
        str(sub.path),
        problem=problem,
        notes=list(asm.notes),
        seconds=out.seconds,
        peak_mib=out.peak_mib,
    )
    for cell, qs in sorted(asm.graded.items()):
        for q in qs:
            if q.qid not in course.points:
                continue  # no stored answer: reported once, when the course was loaded
            res.questions.append(
                judge(
                    sub.learner, sub.exercise, q, by_cell.get(cell), problem, q.qid in asm.missing
                )
            )
    return res


def grade(
    paths: Iterable[Path],
    solutions: Path | None = None,
    timeout: int = DEFAULT_TIMEOUT_S,
    jobs: int = 1,
    run_as: str | None = None,
    progress: Callable[[NotebookResult], None] | None = None,
) -> ClassReport:
    """Grade every exercise notebook under ``paths`` (files, folders, zip/tar archives)."""
    started = time.monotonic()
    if run_as and (why := check_run_as(run_as)):
        raise PermissionError(why)
    course = Course.load(solutions)
    snapshot = PackageSnapshot.take()
    become_subreaper()
    before = descendants(os.getpid())
    with tempfile.TemporaryDirectory(prefix="cloudhsm-lab-grade-") as tmp:
        scratch = Path(tmp)
        found = discover(paths, course.solutions, scratch / "unpacked")
        warnings = [*course.problems, *found.warnings]
        jobs_list: list[_Job] = []
        for sub in found.submissions:
            job, warning = _prepare(course, sub)
            if warning:
                warnings.append(warning)
            if job is not None:
                jobs_list.append(job)
        lock = threading.Lock()
        counter = iter(range(1, 1_000_000))

        def run(job: _Job) -> NotebookResult:
            if job.result is not None:
                res = job.result
                res.questions = [
                    QuestionResult(
                        res.learner,
                        res.notebook,
                        q,
                        Outcome.NOT_RUN,
                        0,
                        course.points[q],
                        res.problem,
                    )
                    for q in course.questions[res.notebook]
                ]
            else:
                with lock:
                    n = next(counter)
                jobdir = scratch / f"run-{n:04d}"
                jobdir.mkdir()
                asm = job.assembly
                assert asm is not None
                nbformat.write(asm.notebook, jobdir / "notebook.ipynb")
                (jobdir / "job.json").write_text(
                    json.dumps(
                        {
                            "timeout": timeout,
                            "cwd": str(jobdir / "work"),
                            "graded": {
                                str(i): [{"qid": q.qid, "expression": q.expression} for q in qs]
                                for i, qs in asm.graded.items()
                            },
                        }
                    )
                )
                try:
                    out = run_isolated(jobdir, snapshot, timeout, run_as)
                finally:
                    with lock:
                        tampered = snapshot.changed()
                        if tampered:
                            keep = Path(tempfile.mkdtemp(prefix="cloudhsm-lab-changed-"))
                            snapshot.restore(tampered, keep)
                            warnings.append(
                                f"the course package changed while {job.submission.learner}'s "
                                f"{job.submission.exercise} ran ({', '.join(tampered[:3])}); "
                                f"restored — grades are unaffected; the changed files are in "
                                f"{keep}"
                            )
                    remove_scratch(jobdir)
                res = _finish(course, job, out)
            if progress:
                with lock:
                    progress(res)
            return res

        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                results = list(pool.map(run, jobs_list))
        finally:
            kill_descendants(before)
    return ClassReport(
        sorted(results, key=_order),
        course.questions,
        course.points,
        warnings,
        time.monotonic() - started,
    )


# --- reports -------------------------------------------------------------------------------


def _cell(report: ClassReport, learner: str, exercise: str) -> str:
    nb = report.notebook(learner, exercise)
    if nb is None:
        return "not submitted"
    if nb.problem and not any(q.outcome is not Outcome.NOT_RUN for q in nb.questions):
        return "could not run"
    text = f"{_fmt(nb.score)}/{_fmt(nb.max_score)}"
    return text + (" (partly run)" if nb.problem else "")


def to_table(report: ClassReport) -> str:
    """The class at a glance: a line per learner, a column per notebook, the total."""
    if not report.notebooks:
        return "No exercise notebooks found."
    exercises = report.graded_exercises
    header = ["learner", *(e[:2] for e in exercises), "score"]
    body = [
        [
            lr,
            *(_cell(report, lr, e) for e in exercises),
            f"{_fmt(report.score(lr))}/{_fmt(report.max_score())}",
        ]
        for lr in report.learners
    ]
    return _columns([header, *body])


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([fmt(rows[0]), "  ".join("-" * w for w in widths), *map(fmt, rows[1:])])


def to_question_table(report: ClassReport) -> str:
    """Learner by question: ok / wrong / error / - (unanswered) / not-run, and pass rates."""
    qids = [q for e in report.graded_exercises for q in report.exercises[e]]
    if not qids or not report.notebooks:
        return "No exercise notebooks found."
    cells = {(q.learner, q.question): q.outcome for q in report.questions()}
    rows = [["learner", *qids]]
    for lr in report.learners:
        rows.append([lr, *(SYMBOLS[cells[(lr, q)]] if (lr, q) in cells else "n/a" for q in qids)])
    rates = []
    for q in qids:
        got = [cells[(lr, q)] for lr in report.learners if (lr, q) in cells]
        rates.append(f"{sum(o is Outcome.PASS for o in got) / len(got):.0%}" if got else "")
    rows.append(["pass rate", *rates])
    return _columns(rows)


def to_csv(report: ClassReport) -> str:
    """One row per learner: learner, score, max_score, status, a column per notebook, notes."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    exercises = report.graded_exercises
    w.writerow(
        ["learner", "score", "max_score", "status", *(Path(e).stem for e in exercises), "notes"]
    )
    for lr in report.learners:
        problems = [
            f"{n.notebook[:2]}: {n.problem}"
            for n in report.notebooks
            if n.learner == lr and n.problem
        ]
        notes = [
            f"{n.notebook[:2]}: {x}" for n in report.notebooks if n.learner == lr for x in n.notes
        ]
        w.writerow(
            [
                lr,
                _fmt(report.score(lr)),
                _fmt(report.max_score()),
                _one_line(problems[0], 300) if problems else "graded",
                *(_cell(report, lr, e) for e in exercises),
                _one_line("; ".join(problems[1:] + notes), 1000),
            ]
        )
    return buf.getvalue()


def to_csv_questions(report: ClassReport) -> str:
    """Long form: one row per learner and question."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["learner", "notebook", "question", "outcome", "points", "max_points", "detail"])
    for q in report.questions():
        w.writerow(
            [
                q.learner,
                q.notebook,
                q.question,
                q.outcome.value,
                _fmt(q.points),
                _fmt(q.max_points),
                _one_line(q.detail, 300),
            ]
        )
    return buf.getvalue()


_MARK = {
    Outcome.PASS: "✅",
    Outcome.WRONG: "❌",
    Outcome.ERROR: "❌",
    Outcome.UNANSWERED: "⭕",
    Outcome.NOT_RUN: "⚠️",
}


def feedback_markdown(report: ClassReport, learner: str) -> str:
    """A learner's feedback: score, then per notebook each question with a hint when
    wrong (never the answer), and what the grader noticed about the file."""
    lines = [
        f"# Feedback for {learner}",
        "",
        f"**Score: {_fmt(report.score(learner))} / {_fmt(report.max_score())}**",
        "",
    ]
    for exercise in report.graded_exercises:
        nb = report.notebook(learner, exercise)
        lines.append(f"## {exercise}")
        if nb is None:
            lines += ["", "Not submitted.", ""]
            continue
        lines += ["", f"{_fmt(nb.score)} / {_fmt(nb.max_score)} points.", ""]
        if nb.problem:
            lines += [f"> ⚠️ {nb.problem}", ""]
        for q in nb.questions:
            text = {Outcome.PASS: "correct", Outcome.UNANSWERED: "not answered"}.get(
                q.outcome, q.detail or q.outcome.value
            )
            if q.outcome is Outcome.UNANSWERED and q.detail not in {"", "not answered"}:
                text = q.detail
            lines.append(
                f"- {_MARK[q.outcome]} `{q.question}` ({_fmt(q.points)}/"
                f"{_fmt(q.max_points)}): {text}"
            )
            if q.hint and q.outcome in {Outcome.WRONG, Outcome.ERROR}:
                lines.append(f"  - {q.hint}")
        if nb.notes:
            lines += ["", "Noticed in your file:", *(f"- {n}" for n in nb.notes)]
        lines.append("")
    return "\n".join(lines)


def feedback_html(report: ClassReport, learner: str) -> str:
    """The same feedback as a standalone HTML page."""
    out = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>Feedback for {html.escape(learner)}</title>",
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}"
        "code{background:#eee}</style>",
    ]
    in_list = False
    for line in feedback_markdown(report, learner).splitlines():
        esc = html.escape(line)
        esc = re.sub(r"`([^`]+)`", r"<code>\1</code>", esc)
        esc = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", esc)
        item = re.match(r"^(\s*)- (.*)", esc)
        if item and not in_list:
            out.append("<ul>")
            in_list = True
        if not item and in_list:
            out.append("</ul>")
            in_list = False
        if item:
            out.append(f"<li>{item.group(2)}</li>")
        elif esc.startswith("## "):
            out.append(f"<h2>{esc[3:]}</h2>")
        elif esc.startswith("# "):
            out.append(f"<h1>{esc[2:]}</h1>")
        elif esc.startswith("&gt; "):
            out.append(f"<blockquote>{esc[5:]}</blockquote>")
        elif esc.strip():
            out.append(f"<p>{esc}</p>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out) + "\n"


def write_feedback(report: ClassReport, folder: Path, fmt: str = "md") -> list[Path]:
    """Write one feedback file per learner (``md`` or ``html``); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for lr in report.learners:
        safe = re.sub(r"[^A-Za-z0-9_.@-]+", "_", lr) or "learner"
        path = folder / f"{safe}.{fmt}"
        text = feedback_html(report, lr) if fmt == "html" else feedback_markdown(report, lr)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def plot_outcomes(report: ClassReport, path: Path) -> Path:
    """Stacked bars per question: correct / wrong / unanswered / could not run (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    qids = [q for e in report.graded_exercises for q in report.exercises[e]]
    results = report.questions()
    groups = ["correct", "wrong", "unanswered", "could not run"]
    colors = {
        "correct": "tab:green",
        "wrong": "tab:red",
        "unanswered": "tab:gray",
        "could not run": "tab:orange",
    }
    counts = {
        g: [sum(1 for r in results if r.question == q and GROUPS[r.outcome] == g) for q in qids]
        for g in groups
    }
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(qids) + 2), 4))
    try:
        bottom = [0] * len(qids)
        for g in groups:
            ax.bar(range(len(qids)), counts[g], bottom=bottom, label=g, color=colors[g])
            bottom = [b + c for b, c in zip(bottom, counts[g], strict=True)]
        ax.set_xticks(range(len(qids)), qids, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("learners")
        ax.set_title(f"Outcome per question ({len(report.learners)} learners)")
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
