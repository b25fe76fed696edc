"""Layer 6 — pedagogy: graded checks, error explanations, lesson start/reset helpers."""

from labsupport.pedagogy.explain import explain, install_exception_hook, register_explanation
from labsupport.pedagogy.grading import AnswerKind, WrongAnswer, check
from labsupport.pedagogy.lesson import Lesson, start_lesson

__all__ = [
    "AnswerKind",
    "Lesson",
    "WrongAnswer",
    "check",
    "explain",
    "install_exception_hook",
    "register_explanation",
    "start_lesson",
]
