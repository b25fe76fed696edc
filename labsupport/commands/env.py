"""``env``: shell exports so standard tools can inspect the lab tokens."""

from __future__ import annotations

import argparse
import shlex

from labsupport.hsm.module import find_module
from labsupport.workspace.home import Workspace

NAME = "env"
HELP = "print shell exports (SOFTHSM2_CONF, PKCS11_MODULE) for pkcs11-tool / softhsm2-util"


def exports() -> dict[str, str]:
    """The variables to export, by name."""
    ws = Workspace.open()
    return {
        "CLOUDHSM_LAB_HOME": str(ws.root),
        "SOFTHSM2_CONF": str(ws.softhsm_conf),
        "PKCS11_MODULE": str(find_module()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """Print ``export NAME=value`` lines (use: ``eval "$(python -m labsupport env)"``)."""
    for name, value in exports().items():
        print(f"export {name}={shlex.quote(value)}")
    print('# then e.g.: pkcs11-tool --module "$PKCS11_MODULE" --list-slots')
    return 0
