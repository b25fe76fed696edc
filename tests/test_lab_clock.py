"""The one lab clock: per lesson scope, never backwards, reset with its scope, frozen for tests."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from labsupport import aws, simulators
from labsupport.pedagogy import start_lesson
from labsupport.workspace import Workspace
from labsupport.workspace.clock import LabClock, advance_clock, now, reset_clock
from labsupport.workspace.home import ENV_LESSON


def test_offsets_belong_to_one_scope(workspace: Workspace) -> None:
    clock = LabClock(workspace)
    with clock.frozen():
        base = clock.now("05-ex")
        clock.advance(3600, scope="05-lesson")
        assert clock.now("05-lesson") == base + 3600
        assert clock.now("05-ex") == base and clock.now("workspace") == base
        with pytest.raises(ValueError, match="forward"):
            clock.advance(-1, scope="05-lesson")


def test_frozen_clock_waits_for_advance(workspace: Workspace) -> None:
    clock = LabClock(workspace)
    with clock.frozen():
        first = clock.now()
        time.sleep(0.05)
        assert clock.now() == first  # wall time passed, lab time did not
        assert clock.advance(2) == first + 2
    assert clock.now() >= first + 2  # unfrozen: runs on, never back


def test_resetting_a_lesson_drops_its_scopes_offsets(workspace: Workspace) -> None:
    clock = LabClock(workspace)
    clock.advance(86400, scope="05-lesson")
    clock.advance(60, scope="05-ex")
    clock.advance(30, scope="04-lesson")
    simulators.reset(workspace, "05-lesson")
    assert clock.offset("05-lesson") == 0 and clock.offset("05-ex") == 60
    simulators.reset(workspace, "05")
    assert clock.offset("05-ex") == 0 and clock.offset("04-lesson") == 30
    simulators.reset(workspace)
    assert clock.reading().offsets == {}


def test_kms_advance_in_the_lesson_does_not_reach_the_exercise(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    kms = aws.client("kms", workspace=workspace)

    def import_parameters(scope: str) -> str:
        monkeypatch.setenv(ENV_LESSON, scope)
        key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        kms.get_parameters_for_import(
            KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
        return key

    lesson_key = import_parameters("05-lesson")
    exercise_key = import_parameters("05-ex")
    monkeypatch.setenv(ENV_LESSON, "05-lesson")
    later = advance_clock(days=31, workspace=workspace)
    assert later - now(workspace) < timedelta(minutes=1)
    kms.describe_key(KeyId=lesson_key)  # a read never writes; the next write applies expiry
    kms.create_key(Description="any write runs the KMS housekeeping")
    data = workspace.state("kms").read()
    tokens = {t["key_id"]: t for t in data["import_tokens"].values()}
    assert not tokens[lesson_key]["private_key_pem"]  # expired on the lesson's clock
    assert tokens[exercise_key]["private_key_pem"]  # still valid on the exercise's clock
    monkeypatch.setenv(ENV_LESSON, "05-ex")
    assert later - now(workspace) > timedelta(days=30)  # the exercise's time did not move


def test_start_lesson_resets_the_scope_clock(workspace: Workspace) -> None:
    lesson = start_lesson("05", workspace)
    advance_clock(days=31, workspace=workspace)
    assert LabClock(workspace).offset(lesson.scope) == 31 * 86400
    start_lesson("05", workspace, exercise=True)  # the exercise starts at real time
    assert LabClock(workspace).offset("05-ex") == 0
    start_lesson("05", workspace)  # a rerun of the lesson too
    assert LabClock(workspace).offset("05-lesson") == 0
    reset_clock(workspace)
