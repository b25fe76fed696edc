"""The console scripts: ``cloudhsm-cli``, ``configure-cli`` and ``configure-pkcs11``.

On an EC2 client these are ``/opt/cloudhsm/bin/cloudhsm-cli`` and
``/opt/cloudhsm/bin/configure-cli`` (``configure-pkcs11`` for the PKCS#11 library). Here
they act on the lab's client machine of the current lesson scope (``$CLOUDHSM_LAB_LESSON``,
else ``workspace``) in ``$CLOUDHSM_LAB_HOME``. Both configure tools write the one client
configuration that the lab's CLI and PKCS#11 library share (on AWS each tool writes its
own ``cloudhsm-cli.cfg`` / ``cloudhsm-pkcs11.cfg``).

``cloudhsm-cli interactive`` prints the ``aws-cloudhsm > `` prompt and reads commands
from standard input, a terminal or a pipe; ``cloudhsm-cli <command> …`` runs one command,
logging in first with ``CLOUDHSM_ROLE`` and ``CLOUDHSM_PIN=<username>:<password>`` when
they are set. JSON goes to standard output, lab hints to standard error; the exit status
is the command's ``error_code``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from labsupport.client.cli.result import CliResult
from labsupport.client.cli.shell import CloudHsmCli
from labsupport.client.users import Role, split_pin
from labsupport.errors import LabError

PROMPT = "aws-cloudhsm > "


def _emit(result: CliResult, out: TextIO = sys.stdout) -> None:
    if result.plain:
        if result.data:
            print(result.data, file=out)
    else:
        print(result.to_json(), file=out)
        if result.hint:
            print(f"lab hint: {result.hint}", file=sys.stderr)
    out.flush()


def _prompter(stdin: TextIO) -> Callable[[str], str]:
    def ask(prompt: str) -> str:
        if stdin.isatty():
            return getpass.getpass(prompt)
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = stdin.readline()
        if not line:
            raise LabError("No password on standard input (it ended).", "Pipe the password in.")
        return line.rstrip("\r\n")

    return ask


def _open_cli(stdin: TextIO) -> CloudHsmCli:
    from labsupport.client.client import connect
    from labsupport.workspace.home import Workspace

    client = connect(Workspace.open())
    return CloudHsmCli(client, prompt=_prompter(stdin))


def cloudhsm_cli(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    """``cloudhsm-cli interactive`` or ``cloudhsm-cli <command> [flags]``; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    stdin = stdin or sys.stdin
    if not words or words[0] in ("-h", "--help"):
        words = ["help"]
    if words[0] in ("-V", "--version"):
        print("cloudhsm-cli (CloudHSM Lab simulation of Client SDK 5)")
        return 0
    try:
        cli = _open_cli(stdin)
    except LabError as exc:
        _emit(CliResult(1, exc.problem, exc.fix))
        return 1
    try:
        if words[0] == "interactive":
            return _interactive(cli, words[1:], stdin)
        return _single(cli, words)
    finally:
        cli.close()
        cli.client.close()


def _interactive(cli: CloudHsmCli, rest: list[str], stdin: TextIO) -> int:
    if rest[:1] == ["--cluster-id"] and len(rest) >= 2 and rest[1] != cli.client.cluster_id:
        _emit(cli.run(f"cluster hsm-info --cluster-id {rest[1]}"))
        return 1
    while not cli.finished:
        sys.stdout.write(PROMPT)
        sys.stdout.flush()
        line = stdin.readline()
        if not line:
            sys.stdout.write("\n")
            break
        result = cli.run(line.strip())
        _emit(result)
    return 0


def _needs_login(words: list[str]) -> bool:
    from labsupport.client.cli.grammar import REGISTRY, Need, UsageError

    try:
        cmd, _ = REGISTRY.find(words)
    except UsageError:
        return False
    return cmd.need not in (Need.NOTHING, Need.UNACTIVATED_ADMIN) and cmd.name != "login"


def _single(cli: CloudHsmCli, words: list[str]) -> int:
    role, pin = os.environ.get("CLOUDHSM_ROLE"), os.environ.get("CLOUDHSM_PIN")
    if pin and words[0] != "help" and _needs_login(words):
        if not role:
            _emit(
                CliResult(
                    1,
                    "CLOUDHSM_PIN is set but CLOUDHSM_ROLE is not.",
                    "export CLOUDHSM_ROLE=crypto-user (or admin).",
                )
            )
            return 1
        try:
            username, password = split_pin(pin)
            cli.log_in(username, Role(role), password)
        except ValueError:
            _emit(
                CliResult(
                    1,
                    f"CLOUDHSM_ROLE={role!r} is not a role.",
                    "Use CLOUDHSM_ROLE=crypto-user or CLOUDHSM_ROLE=admin.",
                )
            )
            return 1
        except LabError as exc:
            _emit(CliResult(1, exc.problem, exc.fix))
            return 1
    result = cli.run_words(words)
    _emit(result)
    return result.error_code


# -- configure-cli / configure-pkcs11 ----------------------------------------------------------


def _configure_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write the lab client's configuration (as /opt/cloudhsm/bin/" + prog + ").",
    )
    parser.add_argument(
        "-a",
        dest="hsm_ips",
        action="append",
        metavar="<ENI IP>",
        help="ENI IP of an HSM in the cluster (repeat for several)",
    )
    parser.add_argument("--cluster-id", help="find the HSMs' IPs with DescribeClusters")
    parser.add_argument(
        "--hsm-ca-cert",
        metavar="<customerCA.crt>",
        help="trust anchor (default: the client machine's customerCA.crt)",
    )
    parser.add_argument("--region", help="AWS Region of the cluster (for --cluster-id)")
    parser.add_argument("--endpoint", help="CloudHSM API endpoint (the lab answers in-process)")
    check = parser.add_mutually_exclusive_group()
    check.add_argument(
        "--disable-key-availability-check",
        action="store_true",
        help="let a one-HSM cluster use its keys (development only)",
    )
    check.add_argument(
        "--enable-key-availability-check",
        action="store_true",
        help="the default: a token key must be on at least 2 HSMs",
    )
    parser.add_argument("--log-level", choices=("error", "warn", "info", "debug", "trace"))
    return parser


def _configure(prog: str, argv: list[str] | None) -> int:
    from labsupport.client import config as client_config
    from labsupport.workspace.home import Workspace

    args = _configure_parser(prog).parse_args(argv)
    if bool(args.hsm_ips) == bool(args.cluster_id):
        print(f"{prog}: give -a <ENI IP> or --cluster-id <id> (one of them).", file=sys.stderr)
        return 2
    workspace = Workspace.open()
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        config = client_config.configure(
            args.hsm_ips if args.hsm_ips else None,
            cluster_id=args.cluster_id,
            region=region,
            hsm_ca_cert=args.hsm_ca_cert,
            disable_key_availability_check=args.disable_key_availability_check,
            workspace=workspace,
        )
        if args.log_level:
            config = replace(config, log_level=args.log_level)
            client_config.save_config(config, workspace)
    except LabError as exc:
        print(f"{prog}: {exc.problem}\n  next step: {exc.fix}", file=sys.stderr)
        return 1
    servers = ", ".join(config.enabled_ips)
    print(f"{prog}: wrote {_shown(client_config.config_path(workspace), workspace.root)}")
    print(f"  cluster {config.cluster_id or '(found on connect)'}; HSM ENI IPs: {servers}")
    print(f"  trust anchor: {_shown(config.hsm_ca_file, workspace.root)}")
    if config.disable_key_availability_check:
        print("  key availability check: DISABLED (development only)")
    return 0


def _shown(path: Path, root: Path) -> str:
    """A path inside the lab home as ``$CLOUDHSM_LAB_HOME/…`` (the same on every machine)."""
    try:
        return "$CLOUDHSM_LAB_HOME/" + str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def configure_cli(argv: list[str] | None = None) -> int:
    """``configure-cli -a <ENI IP> | --cluster-id <id> [--hsm-ca-cert …] [--region …]``."""
    return _configure("configure-cli", argv)


def configure_pkcs11(argv: list[str] | None = None) -> int:
    """``configure-pkcs11`` — the same options as configure-cli."""
    return _configure("configure-pkcs11", argv)


def run_cloudhsm_cli() -> None:
    """Console-script entry point of ``cloudhsm-cli``."""
    try:
        sys.exit(cloudhsm_cli())
    except BrokenPipeError:  # `cloudhsm-cli key list | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def run_configure_cli() -> None:
    """Console-script entry point of ``configure-cli``."""
    sys.exit(configure_cli())


def run_configure_pkcs11() -> None:
    """Console-script entry point of ``configure-pkcs11``."""
    sys.exit(configure_pkcs11())


__all__ = ["PROMPT", "cloudhsm_cli", "configure_cli", "configure_pkcs11"]
