"""Grade a folder of learner notebooks: per learner, per notebook, per question.

Each notebook runs in a fresh kernel and scratch workspace with errors allowed;
every graded cell's result becomes one row. A notebook that is not valid JSON, or
whose kernel dies or times out, is reported as such — it never stops the run.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labsupport.authoring.cells import is_graded, question_ids
from labsupport.authoring.execute import run_notebook


class Outcome(str, enum.Enum):
    """Result of one question (or of a whole notebook that could not run)."""

    PASS = "pass"
    WRONG = "wrong"
    UNANSWERED = "unanswered"
    ERROR = "error"
    MISSING = "missing"
    MALFORMED = "malformed"
    CRASHED = "crashed"


@dataclass(frozen=True)
class Row:
    """One line of the grade report."""

    learner: str
    notebook: str
    question: str
    outcome: Outcome
    detail: str = ""


def find_notebooks(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(learner, notebook) pairs: a folder's sub-folders are learners; a loose file is its own."""
    found: list[tuple[str, Path]] = []
    for root in map(Path, paths):
        if root.is_file():
            found.append((root.parent.name or root.stem, root))
            continue
        for nb in sorted(root.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in nb.parts:
                continue
            rel = nb.relative_to(root)
            learner = rel.parts[0] if len(rel.parts) > 1 else nb.stem
            found.append((learner, nb))
    return found


def _cell_outcome(cell: nbformat.NotebookNode) -> tuple[Outcome, str]:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename, evalue = out.get("ename", ""), out.get("evalue", "")
            if ename == "NotImplementedError" or "no answer yet" in evalue:
                return Outcome.UNANSWERED, "not answered"
            if ename == "WrongAnswer":
                return Outcome.WRONG, evalue.splitlines()[0] if evalue else ""
            return Outcome.ERROR, f"{ename}: {evalue.splitlines()[0] if evalue else ''}"
    text = "".join(o.get("text", "") for o in cell.get("outputs", []))
    return (Outcome.PASS, "") if "correct" in text else (Outcome.ERROR, "no result printed")


def expected_questions(notebook_name: str, solutions: Path | None) -> list[str]:
    """Question ids of the solution notebook with the same name (empty if none)."""
    if solutions is None or not (solutions / notebook_name).exists():
        return []
    nb = nbformat.read(solutions / notebook_name, as_version=4)
    return [q for c in nb.cells if is_graded(c) for q in question_ids(c)]


def grade_notebook(
    learner: str, path: Path, solutions: Path | None = None, timeout: int = 300
) -> list[Row]:
    """Run one learner notebook and return a row per question."""
    name = path.name
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # any parse/validation problem is the learner's file
        return [Row(learner, name, "*", Outcome.MALFORMED, str(exc).splitlines()[0][:200])]
    try:
        run_notebook(nb, path.parent, allow_errors=True, timeout=timeout)
    except Exception as exc:  # kernel death, timeout: report, keep going
        return [Row(learner, name, "*", Outcome.CRASHED, f"{type(exc).__name__}: {exc}"[:200])]
    rows: list[Row] = []
    seen: set[str] = set()
    for cell in nb.cells:
        if not is_graded(cell):
            continue
        outcome, detail = _cell_outcome(cell)
        for qid in question_ids(cell):
            seen.add(qid)
            rows.append(Row(learner, name, qid, outcome, detail))
    for qid in expected_questions(name, solutions):
        if qid not in seen:
            rows.append(Row(learner, name, qid, Outcome.MISSING, "graded cell removed"))
    return rows


def grade(paths: Iterable[Path], solutions: Path | None = None) -> list[Row]:
    """Grade every notebook under ``paths``."""
    rows: list[Row] = []
    for learner, nb in find_notebooks(paths):
        rows.extend(grade_notebook(learner, nb, solutions))
    return rows


def to_csv(rows: list[Row]) -> str:
    """The rows as CSV text (header: learner,notebook,question,outcome,detail)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["learner", "notebook", "question", "outcome", "detail"])
    for r in rows:
        writer.writerow([r.learner, r.notebook, r.question, r.outcome.value, r.detail])
    return buf.getvalue()


def to_table(rows: list[Row]) -> str:
    """A readable fixed-width table of the rows plus a per-learner score line."""
    if not rows:
        return "No notebooks found."
    headers = ("learner", "notebook", "question", "outcome", "detail")
    data = [(r.learner, r.notebook, r.question, r.outcome.value, r.detail[:60]) for r in rows]
    widths = [max(len(h), *(len(d[i]) for d in data)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(d, widths, strict=True)) for d in data]
    scores: dict[str, list[int]] = {}
    for r in rows:
        s = scores.setdefault(r.learner, [0, 0])
        s[0] += r.outcome is Outcome.PASS
        s[1] += 1
    lines.append("")
    lines += [f"{learner}: {p}/{n} passed" for learner, (p, n) in scores.items()]
    return "\n".join(lines)


# --- Class view: learner by question -------------------------------------------------------

SYMBOLS: dict[Outcome, str] = {
    Outcome.PASS: "ok",
    Outcome.WRONG: "wrong",
    Outcome.UNANSWERED: "-",
    Outcome.ERROR: "error",
    Outcome.MISSING: "missing",
    Outcome.MALFORMED: "malformed",
    Outcome.CRASHED: "crashed",
}


@dataclass(frozen=True)
class ClassMatrix:
    """Outcomes per learner and question; a notebook that could not run counts for each of
    its questions (as known from the other learners' rows or the solution)."""

    learners: list[str]
    questions: list[str]
    cells: dict[tuple[str, str], Outcome]

    def pass_rate(self, question: str) -> float:
        """Share of learners (0..1) who answered ``question`` correctly."""
        if not self.learners:
            return 0.0
        passed = sum(self.cells.get((lr, question)) is Outcome.PASS for lr in self.learners)
        return passed / len(self.learners)

    def score(self, learner: str) -> tuple[int, int]:
        """(questions passed, questions in the matrix) for ``learner``."""
        passed = sum(self.cells.get((learner, q)) is Outcome.PASS for q in self.questions)
        return passed, len(self.questions)


def class_matrix(rows: list[Row]) -> ClassMatrix:
    """Fold the rows into a learner by question matrix (missing answers count as MISSING)."""
    learners = list(dict.fromkeys(r.learner for r in rows))
    per_notebook: dict[str, list[str]] = {}
    for r in rows:
        if r.question != "*":
            qs = per_notebook.setdefault(r.notebook, [])
            if r.question not in qs:
                qs.append(r.question)
    questions = [q for qs in per_notebook.values() for q in qs]
    cells: dict[tuple[str, str], Outcome] = {}
    for r in rows:
        if r.question == "*":  # the whole notebook failed to run
            targets = per_notebook.get(r.notebook) or [f"{r.notebook}:*"]
            if targets[0].endswith(":*") and targets[0] not in questions:
                questions.append(targets[0])
            for q in targets:
                cells[(r.learner, q)] = r.outcome
        else:
            cells[(r.learner, r.question)] = r.outcome
    for learner in learners:
        for q in questions:
            cells.setdefault((learner, q), Outcome.MISSING)
    return ClassMatrix(learners, questions, cells)


def to_class_table(rows: list[Row]) -> str:
    """The class at a glance: one line per learner, one column per question, pass rates."""
    m = class_matrix(rows)
    if not m.learners:
        return "No notebooks found."
    header = ["learner", *m.questions, "score"]
    body = [
        [lr, *(SYMBOLS[m.cells[(lr, q)]] for q in m.questions), "{}/{}".format(*m.score(lr))]
        for lr in m.learners
    ]
    footer = ["pass rate", *(f"{m.pass_rate(q):.0%}" for q in m.questions), ""]
    table = [header, *body, footer]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), sep, *map(fmt, body), sep, fmt(footer)])


def plot_pass_rates(rows: list[Row], path: Path) -> Path:
    """Write a bar chart (PNG) of the pass rate per question to ``path``; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m = class_matrix(rows)
    rates = [100 * m.pass_rate(q) for q in m.questions]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(m.questions) + 2), 3.5))
    try:
        bars = ax.bar(range(len(m.questions)), rates, color="tab:green")
        ax.set_xticks(range(len(m.questions)), m.questions, rotation=30, ha="right")
        ax.set_ylim(0, 105)
        ax.set_ylabel("learners correct (%)")
        ax.set_title(f"Pass rate per question ({len(m.learners)} learners)")
        ax.bar_label(bars, fmt="%.0f%%")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
