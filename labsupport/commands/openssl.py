"""``openssl``: run the real openssl with cluster keys (``CLOUDHSM_PIN`` + ``cloudhsm:<label>``)."""

from __future__ import annotations

import argparse

NAME = "openssl"
HELP = (
    "run openssl with a cluster key that stays in the HSM: CLOUDHSM_PIN=<user>:<password> "
    "python -m labsupport openssl dgst -sha256 -sign cloudhsm:<label> FILE"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything after ``openssl`` is openssl's own command line."""
    parser.add_argument("args", nargs=argparse.REMAINDER, help="openssl subcommand and options")


def run(args: argparse.Namespace) -> int:
    """Run the launcher (see :mod:`labsupport.openssl.launcher`)."""
    from labsupport.openssl.launcher import main

    return main(args.args)
