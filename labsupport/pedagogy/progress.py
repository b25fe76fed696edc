"""The learner's progress: the latest result of every graded review question, per lesson.

:func:`~labsupport.pedagogy.grading.check` records each verdict in the workspace
(``state/progress.json``: question id → right or not, and when); the contents notebook
shows :func:`progress_table`. Only ids, verdicts and times are stored — never answers.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from labsupport.workspace import Workspace

STATE_NAME = "progress"
QUESTIONS_DIR = Path(__file__).resolve().parent / "questions"
BAR_WIDTH = 10


def record(qid: str, correct: bool, workspace: Workspace | None = None) -> None:
    """Remember the latest verdict for ``qid``; never raises (progress is a convenience)."""
    try:
        ws = workspace or Workspace.open()
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with ws.state(STATE_NAME).update() as data:
            data[qid] = {"correct": bool(correct), "at": now}
    except (OSError, ValueError):  # a read-only or damaged workspace must not break check()
        pass


@dataclass(frozen=True)
class LessonProgress:
    """How many of a lesson's graded questions the learner has answered, and answered right."""

    lesson: str
    questions: int
    attempted: int
    correct: int

    @property
    def bar(self) -> str:
        """A text progress bar of the right answers, e.g. ``■■■■■□□□□□``."""
        filled = round(BAR_WIDTH * self.correct / self.questions) if self.questions else 0
        return "■" * filled + "□" * (BAR_WIDTH - filled)


def lesson_progress(workspace: Workspace | None = None) -> list[LessonProgress]:
    """Progress per lesson, over every graded question the course defines."""
    ws = workspace or Workspace.open()
    results = ws.state(STATE_NAME).read()
    rows = []
    for path in sorted(QUESTIONS_DIR.glob("[0-9][0-9].json")):
        ids = list(json.loads(path.read_text(encoding="utf-8")))
        seen = [results[q] for q in ids if q in results]
        rows.append(
            LessonProgress(
                lesson=path.stem,
                questions=len(ids),
                attempted=len(seen),
                correct=sum(1 for r in seen if r.get("correct")),
            )
        )
    return rows


def progress_table(workspace: Workspace | None = None) -> str:
    """The learner's progress as a small text table, one line per lesson's exercise."""
    lines = ["exercise  right / questions  tried"]
    for p in lesson_progress(workspace):
        lines.append(f"{p.lesson:<8}  {p.bar} {p.correct:>2} / {p.questions:<2}  {p.attempted:>5}")
    return "\n".join(lines)
