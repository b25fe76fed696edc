"""Workspace layer: layout, permissions, atomic state, corruption recovery, concurrency."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labsupport import simulators
from labsupport.errors import CorruptStateError, WorkspaceError
from labsupport.workspace import Workspace


def test_open_creates_private_layout(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "home")
    assert stat.S_IMODE(ws.root.stat().st_mode) == 0o700
    assert ws.token_dir.is_dir() and ws.state_dir.is_dir()
    assert f"directories.tokendir = {ws.token_dir}" in ws.softhsm_conf.read_text()


def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    os.chmod(root, 0o755)
    Workspace.open(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # never chmod what the lab did not create
    assert stat.S_IMODE((root / "state").stat().st_mode) == 0o700


def test_shared_sticky_home_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    ws = Workspace.open(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE(ws.state_dir.stat().st_mode) == 0o700


def test_world_writable_home_is_refused_with_a_fix(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    with pytest.raises(WorkspaceError, match="chmod go-w") as info:
        Workspace.open(loose)
    assert "CLOUDHSM_LAB_HOME" in str(info.value)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o777
    assert not (loose / "state").exists()


def test_default_home_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDHSM_LAB_HOME", str(tmp_path / "elsewhere"))
    assert Workspace.open().root == tmp_path / "elsewhere"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_workspace_says_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    os.chmod(root, 0o500)
    with pytest.raises(WorkspaceError, match="CLOUDHSM_LAB_HOME"):
        Workspace.open(root / "lab")


def test_workspace_under_a_file_says_what_to_do(tmp_path: Path) -> None:
    # Works as root too: a path whose parent is a regular file can never be created.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(WorkspaceError) as info:
        Workspace.open(blocker / "lab")
    assert "CLOUDHSM_LAB_HOME" in str(info.value)


def test_state_roundtrip_is_atomic_and_private(workspace: Workspace) -> None:
    sf = workspace.state("demo")
    assert sf.read() == {}
    with sf.update() as data:
        data["n"] = 1
    with sf.update() as data:
        data["n"] += 1
    assert sf.read() == {"n": 2}
    assert stat.S_IMODE(sf.path.stat().st_mode) == 0o600
    # The copy is of the last *commit*, so a damaged file loses nothing committed.
    assert json.loads(sf.backup.read_text()) == {"n": 2}
    leftovers = [p.name for p in workspace.state_dir.iterdir() if p.name.startswith(".demo")]
    assert leftovers == []


def test_a_same_stamp_rewrite_by_another_process_is_seen(workspace: Workspace) -> None:
    """ext4 stamps files with a coarse clock and reuses inodes: another process's rewrite
    of the same size within one tick has the same (mtime, size, inode). A reader that
    trusted that stamp served its stale copy, and a locked update wrote it back."""
    mine = workspace.state("demo")
    mine.replace({"hsm": "hsm-aaaaaaaaaaa"})
    assert mine.read() == {"hsm": "hsm-aaaaaaaaaaa"}  # now cached
    before = mine.path.stat()
    other = json.dumps({"hsm": "hsm-bbbbbbbbbbb"}, indent=1, sort_keys=True).encode()
    assert len(other) == before.st_size
    with open(mine.path, "r+b") as fh:  # same inode, same size
        fh.write(other)
    os.utime(mine.path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same tick
    assert mine.read() == {"hsm": "hsm-bbbbbbbbbbb"}
    with mine.update() as data:
        data["n"] = 1
    assert json.loads(mine.path.read_text()) == {"hsm": "hsm-bbbbbbbbbbb", "n": 1}


def test_failed_update_writes_nothing(workspace: Workspace) -> None:
    sf = workspace.state("demo")
    sf.replace({"keep": True})
    with pytest.raises(RuntimeError), sf.update() as data:
        data["keep"] = False
        raise RuntimeError("boom")
    assert sf.read() == {"keep": True}


def test_corrupted_state_is_recovered_from_backup(workspace: Workspace) -> None:
    sf = workspace.state("demo")
    sf.replace({"v": 1})
    sf.replace({"v": 2})
    sf.path.write_text('{"v": 3, trunc')  # e.g. edited by hand or a full disk
    fresh = workspace.state("demo")
    with pytest.warns(RuntimeWarning, match="restored its last committed version") as seen:
        assert fresh.read() == {"v": 2}  # the last commit, not one write behind
    assert len(seen) == 1 and "\n" not in str(seen[0].message)
    assert "outside the lab" in str(seen[0].message)  # says what may be lost
    assert list(workspace.state_dir.glob("demo.json.corrupt-*")), "damaged copy must be kept"


def test_wrong_shape_is_restored_not_a_raw_error(workspace: Workspace) -> None:
    from labsupport.workspace.statefile import StateFile, StateShapeError, expect

    def shape(data: dict) -> dict:
        expect(data.get("items"), dict, "items")
        return data

    sf = StateFile(workspace.state_dir / "shaped.json", {"items": {}}, validate=shape)
    sf.replace({"items": {"a": 1}})
    sf.path.write_text('{"items": []}')
    with pytest.warns(RuntimeWarning, match="items must be an object"):
        assert sf.read() == {"items": {"a": 1}}
    with pytest.raises(StateShapeError):
        shape({"items": 3})


def test_leftover_temp_files_are_swept(workspace: Workspace) -> None:
    sf = workspace.state("demo")
    sf.replace({"v": 1})
    (workspace.state_dir / ".demo.json.abc123").write_text("{half")
    assert [p.name for p in sf.leftover_temp_files()] == [".demo.json.abc123"]
    assert sf.sweep_temp_files() == 1 and sf.leftover_temp_files() == []


def test_corrupted_state_without_backup_explains(workspace: Workspace) -> None:
    sf = workspace.state("demo")
    sf.path.write_text("not json at all")
    with pytest.raises(CorruptStateError, match="labsupport reset"):
        sf.read()
    assert list(workspace.state_dir.glob("demo.json.corrupt-*"))


_WRITER = """
import sys
from labsupport.workspace import Workspace
sf = Workspace.open(sys.argv[1]).state("counter")
for _ in range(int(sys.argv[2])):
    with sf.update() as data:
        data["n"] = data.get("n", 0) + 1
"""


def test_two_processes_never_lose_an_update(workspace: Workspace) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(workspace.root), "150", name])
        for name in ("kernel-a", "kernel-b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert workspace.state("counter").read()["n"] == 300


def test_reset_runs_every_layer_and_clears_lesson_files(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    steps = (*simulators.RESET_STEPS, lambda ws, lesson: seen.append(lesson))
    monkeypatch.setattr(simulators, "RESET_STEPS", steps)
    (workspace.lesson_dir("02") / "customerCA.crt").write_text("x")
    (workspace.lesson_dir("03") / "keep.txt").write_text("x")
    simulators.reset(workspace, "02")
    assert not (workspace.root / "lessons" / "02").exists()
    assert (workspace.root / "lessons" / "03" / "keep.txt").exists()
    simulators.reset(workspace)
    assert not (workspace.root / "lessons").exists()
    assert seen == ["02", None]
    assert workspace.softhsm_conf.exists()


def test_scopes_of_a_lesson_and_its_exercise_are_separate() -> None:
    from labsupport.workspace import belongs_to

    assert belongs_to("02-ex", "02") and belongs_to("02-lesson", "02")
    assert not belongs_to("02-ex", "02-lesson") and not belongs_to("02-lesson", "02-ex")
    assert not belongs_to("03-lesson", "02") and belongs_to("03-lesson", None)


def test_repair_reports_summarise_in_field_order() -> None:
    from labsupport.controlplane.reconcile import Repairs
    from labsupport.hsm.tokens import ReconcileReport

    empty = Repairs()
    assert not empty and empty.summary() == ""
    repairs = Repairs(orphan_tokens=["hsm-b", "hsm-a"], rolled_back_creates=["hsm-c"], temp_files=2)
    assert repairs
    assert repairs.summary() == (
        "rolled back interrupted CreateHsm of hsm-c; deleted tokens of HSMs that no longer "
        "exist: hsm-a, hsm-b; removed 2 leftover temporary file(s)"
    )
    assert not ReconcileReport() and ReconcileReport(lost_tokens=["t"]).summary() == (
        "forgot tokens whose directory is gone: t"
    )
