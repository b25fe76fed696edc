"""State persists in the workspace: other processes see it; reads never write; waiters;
the quickstart and the benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cp_fixtures import cloudhsm, describe, ec2, fast, new_cluster, with_first_hsm

from labsupport import aws, simulators
from labsupport.controlplane import describe_cluster, list_clusters, quickstart
from labsupport.controlplane.states import ClusterState, HsmState
from labsupport.controlplane.waiters import WaitFailed, WaitTimeout, wait_for_cluster
from labsupport.workspace.clock import LabClock

__all__ = ["cloudhsm", "ec2", "fast"]


def _run(workspace: Any, code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "CLOUDHSM_LAB_HOME": str(workspace.root), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_another_process_sees_and_changes_the_cluster(
    workspace: Any, cloudhsm: Any, ec2: Any
) -> None:
    cid, hsm_id = with_first_hsm(cloudhsm, ec2)
    out = _run(
        workspace,
        f"""
        from labsupport import aws
        c = aws.client("cloudhsmv2").describe_clusters()["Clusters"][0]
        print(c["ClusterId"], c["State"], c["Hsms"][0]["HsmId"], c["Hsms"][0]["State"])
        az = sorted(c["SubnetMapping"])[1]
        aws.client("cloudhsmv2").delete_hsm(ClusterId="{cid}", HsmId="{hsm_id}")
    """,
        CLOUDHSM_LAB_CLOCK="fast",
    )
    assert out.split() == [cid, "UNINITIALIZED", hsm_id, "ACTIVE"]
    assert describe(cloudhsm, cid)["Hsms"] == []  # this process sees the other's change


def test_hsm_token_usable_from_another_process(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    cid, _hsm_id = with_first_hsm(cloudhsm, ec2)
    csr = describe(cloudhsm, cid)["Certificates"]["ClusterCsr"]
    out = _run(
        workspace,
        f"""
        import pkcs11
        from cryptography import x509
        from labsupport.controlplane import describe_cluster
        from labsupport.hsm.tokens import firmware_session, token_store
        from labsupport.crypto.x509 import public_key_from_token
        cluster = describe_cluster(None, "{cid}")
        with firmware_session(token_store(), cluster.hsms[0].token_label) as s:
            pub = s.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label="cluster-identity")
            csr = x509.load_pem_x509_csr(cluster.cluster_csr.encode())
            print(public_key_from_token(pub) == csr.public_key())
    """,
    )
    assert out.strip() == "True"
    assert describe_cluster(workspace, cid).cluster_csr == csr


def test_reads_do_not_write(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    new_cluster(cloudhsm, ec2)
    state = workspace.state_dir / "cloudhsmv2.json"
    before = state.stat().st_mtime_ns
    for _ in range(20):
        cloudhsm.describe_clusters()
        cloudhsm.describe_backups()
        ec2.describe_subnets()
    assert state.stat().st_mtime_ns == before


def test_state_survives_a_damaged_file(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    first = new_cluster(cloudhsm, ec2)
    second = new_cluster(cloudhsm, ec2)
    (workspace.state_dir / "cloudhsmv2.json").write_text("{broken")
    with pytest.warns(RuntimeWarning, match="restored its last committed version"):
        ids = [c["ClusterId"] for c in cloudhsm.describe_clusters()["Clusters"]]
    assert ids == [first, second]  # nothing committed is lost


@pytest.mark.parametrize("damage", ["{}", '{"clusters": []}', '{"clusters": {"c": {}}}', "[1]"])
def test_wrong_shape_is_restored_with_one_line(
    workspace: Any, cloudhsm: Any, ec2: Any, damage: str
) -> None:
    first = new_cluster(cloudhsm, ec2)
    (workspace.state_dir / "cloudhsmv2.json").write_text(damage)
    if damage == "{}":  # a valid, empty document: no clusters, no error
        assert cloudhsm.describe_clusters()["Clusters"] == []
        return
    with pytest.warns(RuntimeWarning) as seen:
        ids = [c["ClusterId"] for c in cloudhsm.describe_clusters()["Clusters"]]
    assert ids == [first]
    assert len(seen) == 1 and "restored its last committed version" in str(seen[0].message)


def test_waiter_follows_the_clock(workspace: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "100")  # 2 s of lab time → 20 ms
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid = new_cluster(cloudhsm, aws.client("ec2", workspace=workspace))
    cluster = wait_for_cluster(cloudhsm, cid, "UNINITIALIZED", poll=0.01, progress=False)
    assert cluster["State"] == "UNINITIALIZED"
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "normal")
    clock = LabClock(workspace)
    with clock.frozen():  # only advance() moves lab time, however slow the machine
        cloudhsm.delete_cluster(ClusterId=cid)
        with pytest.raises(WaitFailed, match="DELETE_IN_PROGRESS"):
            wait_for_cluster(cloudhsm, cid, "ACTIVE", poll=0.01, progress=False)
        clock.advance(5)
        assert wait_for_cluster(cloudhsm, cid, "DELETED", progress=False)["State"] == "DELETED"
        cid2 = new_cluster(cloudhsm, aws.client("ec2", workspace=workspace))
        with pytest.raises(WaitTimeout, match="CREATE_IN_PROGRESS"):
            wait_for_cluster(
                cloudhsm, cid2, "UNINITIALIZED", poll=0.01, timeout=0.05, progress=False
            )
        clock.advance(5)
        assert wait_for_cluster(cloudhsm, cid2, progress=False)["State"] == "UNINITIALIZED"
    with pytest.raises(WaitFailed, match="does not exist"):
        wait_for_cluster(cloudhsm, "cluster-ddddddddddd", progress=False)


def test_waiter_progress_goes_to_stdout(
    workspace: Any, cloudhsm: Any, ec2: Any, capsys: Any
) -> None:
    # stdout, not stderr: JupyterLab shows every stderr output as a pink box, even an
    # erased progress line. The line is erased at the end (leave=False).
    cid = new_cluster(cloudhsm, ec2)
    wait_for_cluster(cloudhsm, cid, "UNINITIALIZED")
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "UNINITIALIZED" in captured.out


def test_quickstart_initialized_cluster(workspace: Any, monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("CLOUDHSM_LAB_CLOCK", raising=False)  # quickstart fast-forwards itself
    cid, ca_cert, ca_key = quickstart.initialized_cluster(workspace, owner="03", hsm_count=3)
    cluster = describe_cluster(workspace, cid)
    assert cluster.state is ClusterState.INITIALIZED and cluster.owner == "03"
    assert [h.state for h in cluster.hsms] == [HsmState.ACTIVE] * 3
    assert len({h.availability_zone for h in cluster.hsms}) == 3
    assert ca_cert.name == "customerCA.crt" and ca_cert.read_text() == cluster.trust_anchor
    assert oct(ca_key.stat().st_mode & 0o777) == "0o600"
    again = quickstart.initialized_cluster(workspace, owner="03", hsm_count=1)
    assert [c.cluster_id for c in list_clusters(workspace)] == [again.cluster_id]
    simulators.reset(workspace, "03")
    assert not ca_cert.exists()


def test_draw_cluster(workspace: Any, cloudhsm: Any, ec2: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labsupport.plots.cluster import draw_cluster

    cid, hsm_id = with_first_hsm(cloudhsm, ec2)
    fig = draw_cluster(describe(cloudhsm, cid), ec2.describe_subnets()["Subnets"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert hsm_id in texts and any(t.startswith("ENI 172.31.") for t in texts)
    assert "no HSM" in texts  # the second AZ has no HSM yet
    assert any("172.31.0.0/20" in t for t in texts)
    plt.close(fig)


def test_wait_for_hsm_deletion(workspace: Any, monkeypatch: Any) -> None:
    from labsupport.controlplane.waiters import wait_for_hsm

    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "fast")
    cloudhsm = aws.client("cloudhsmv2", workspace=workspace)
    cid, hsm_id = with_first_hsm(cloudhsm, aws.client("ec2", workspace=workspace))
    monkeypatch.setenv("CLOUDHSM_LAB_CLOCK", "20")  # HSM deletion: 75 ms of lab time
    with LabClock(workspace).frozen():  # no lab time passes, however slow the machine
        cloudhsm.delete_hsm(ClusterId=cid, HsmId=hsm_id)
        assert describe(cloudhsm, cid)["Hsms"][0]["State"] == "DELETE_IN_PROGRESS"
    assert wait_for_hsm(cloudhsm, cid, hsm_id, "DELETED", poll=0.02, progress=False) == {}
    with pytest.raises(WaitFailed, match="DELETED"):
        wait_for_hsm(cloudhsm, cid, hsm_id, "ACTIVE", poll=0.02, progress=False)
