"""The learner's progress view: check() records verdicts, the contents notebook shows them."""

from __future__ import annotations

import pytest

from labsupport.pedagogy import grading, progress
from labsupport.workspace import Workspace


def test_check_records_right_and_wrong(workspace: Workspace) -> None:
    grading.check("00.cbc_length", 16)
    with pytest.raises(grading.WrongAnswer):
        grading.check("00.ex_moving", "a")
    rows = {p.lesson: p for p in progress.lesson_progress(workspace)}
    assert rows["00"].attempted == 2 and rows["00"].correct == 1
    assert rows["00"].questions == 3
    assert rows["01"].attempted == 0
    saved = workspace.state(progress.STATE_NAME).read()
    assert set(saved) == {"00.cbc_length", "00.ex_moving"}
    assert all(set(v) == {"correct", "at"} for v in saved.values())  # no answers stored


def test_table_has_one_line_per_exercise(workspace: Workspace) -> None:
    grading.check("00.cbc_length", 16)
    table = progress.progress_table(workspace).splitlines()
    assert table[0].startswith("exercise")
    assert table[1].startswith("00") and " 1 / 3" in table[1]
    assert len(table) == 1 + len(progress.lesson_progress(workspace))
