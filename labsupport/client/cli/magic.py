"""The ``%cloudhsm_cli`` / ``%%cloudhsm_cli`` notebook magic.

::

    %cloudhsm_cli user list
    %cloudhsm_cli login --username admin --role admin --password $ADMIN_PASSWORD
    result = %cloudhsm_cli key list --max-items 5
    result.data["matched_keys"]

    %%cloudhsm_cli
    login --username alice --role crypto-user --password $ALICE_PASSWORD
    key generate-symmetric aes --label k1 --key-length-bytes 32
    logout

Each command prints AWS's pretty JSON and the magic returns the :class:`CliResult`
(a list of them for the cell form) for code to use. ``$VARIABLE`` is replaced by the
variable's value before the command runs, so a password never appears in the notebook.
The magic keeps one CLI session per kernel — like one ``cloudhsm-cli interactive`` —
on the client machine the lesson configured (``configure(...)`` / ``configure-cli``);
it reconnects when that configuration changes.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

from labsupport.client.cli.result import CliResult
from labsupport.client.cli.shell import CloudHsmCli
from labsupport.errors import LabError

_STATE: dict[str, Any] = {}


class MagicResult(CliResult):
    """A :class:`CliResult` the magic already printed (so the notebook does not repeat it)."""

    def _ipython_display_(self) -> None:
        pass


class MagicResults(list):
    """The results of a ``%%cloudhsm_cli`` cell, one per command (already printed)."""

    def _ipython_display_(self) -> None:
        pass


def _ask(prompt: str) -> str:
    try:
        return getpass.getpass(prompt)
    except Exception as exc:
        raise LabError(
            "This command needs a password and this notebook cannot prompt for one.",
            "Add --password $VARIABLE (the magic substitutes it; the value is not shown).",
        ) from exc


def _notebook_client(workspace: Any, cluster_id: str | None) -> Any:
    """The Client the notebook connected (``client = chsm.connect(...)``, or whose
    ``client.cli`` it holds) to this cluster."""
    from IPython import get_ipython

    from labsupport.client.client import Client

    shell = get_ipython()
    if shell is None:
        return None
    found = None
    for value in list(shell.user_ns.values()):
        if isinstance(value, CloudHsmCli):  # `cli = client.cli`: the same CLI session
            value = value.client
        if (
            isinstance(value, Client)
            and value.workspace.root == workspace.root
            and (cluster_id is None or value.cluster_id == cluster_id)
        ):
            found = value
    return found


def session() -> CloudHsmCli:
    """The kernel's CLI session on the configured client machine.

    When the notebook holds a connected ``Client`` for that cluster, the magic is that
    client's ``client.cli`` — one process, one CLI login state, and the CLI sees the
    PKCS#11 sessions the notebook opened (``user change-password`` refuses a logged-in
    user). Otherwise it connects its own client, as ``cloudhsm-cli`` does.
    """
    from labsupport.client import config
    from labsupport.client.client import connect
    from labsupport.workspace.home import Workspace

    workspace = Workspace.open()
    try:
        wanted = config.load_config(workspace).cluster_id
    except LabError:
        wanted = None
    adopted = _notebook_client(workspace, wanted)
    if adopted is not None:
        cli = adopted.cli
        if cli.prompt is None:
            cli.prompt = _ask
        return cli
    path = config.config_path(workspace)
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        stamp = (str(path), 0)
    cli = _STATE.get("cli")
    if cli is None or _STATE.get("stamp") != stamp or cli.client.cluster_id is None:
        if cli is not None:
            cli.close()
            cli.client.close()
        cli = CloudHsmCli(connect(workspace), prompt=_ask)
        _STATE.update(cli=cli, stamp=stamp)
    return cli


def reset() -> None:
    """Forget the kernel's CLI session (log out, close its client)."""
    cli = _STATE.pop("cli", None)
    _STATE.pop("stamp", None)
    if cli is not None:
        cli.close()
        cli.client.close()


def _run(line: str) -> MagicResult:
    try:
        cli = session()
    except LabError as exc:
        result = MagicResult(1, exc.problem, exc.fix)
    else:
        done = cli.run(line)
        result = MagicResult(done.error_code, done.data, done.hint, done.plain)
    print(result)
    return result


def cloudhsm_cli(line: str, cell: str | None = None) -> Any:
    """``%cloudhsm_cli <command>`` or a ``%%cloudhsm_cli`` cell of commands."""
    if cell is None:
        return _run(line)
    from IPython import get_ipython

    shell = get_ipython()
    results = MagicResults()
    for raw in cell.splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        print(f"aws-cloudhsm > {text}")  # as typed: $VARIABLES stay unexpanded
        expanded = shell.var_expand(text) if shell is not None else text
        results.append(_run(expanded))
    return results


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%cloudhsm_cli`` and ``%%cloudhsm_cli`` (``%load_ext …cli.magic``)."""
    ipython.register_magic_function(cloudhsm_cli, "line_cell", "cloudhsm_cli")


def _scripts_on_path() -> None:
    """Put the virtualenv's ``bin`` (cloudhsm-cli, configure-cli …) on PATH for ``!`` commands."""
    bindir = Path(sys.executable).parent
    path = os.environ.get("PATH", "")
    if (bindir / "cloudhsm-cli").exists() and str(bindir) not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(bindir), path]) if path else str(bindir)


def register(shell: Any) -> None:
    """Register the magic in the IPython ``shell`` (``start_lesson`` passes the kernel's).

    Also puts the console scripts on the kernel's PATH, so ``!configure-pkcs11 -a …``
    works in a notebook as in JupyterLab's terminal.
    """
    _scripts_on_path()
    load_ipython_extension(shell)


__all__ = ["MagicResult", "cloudhsm_cli", "load_ipython_extension", "register", "reset"]
