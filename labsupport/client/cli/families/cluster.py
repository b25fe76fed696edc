"""``cluster activate`` and ``cluster hsm-info``."""

from __future__ import annotations

from typing import Any

from labsupport.client.cli import backend
from labsupport.client.cli.grammar import REGISTRY, Args, Flag, Need, command

REGISTRY.category("cluster", "Cluster commands")

PASSWORD = Flag(
    "--password",
    "Optional: Plaintext admin's password. If you do not include this argument "
    "you will be prompted for it",
    secret=True,
)


@command("cluster activate", "Activate a cluster", Need.UNACTIVATED_ADMIN, PASSWORD)
def activate(cli: Any, args: Args) -> str:
    """Set the built-in admin's password; the cluster becomes ACTIVE."""
    from labsupport.client import resolver

    password = cli.password(args, confirm=True)
    cli.client.users.activate(password)  # "Cluster has already been activated" when it is
    resolver.mark_active(cli.client.workspace, cli.client.cluster_id)
    cli.client.poll(force=True)
    return "Cluster activation successful"


@command(
    "cluster hsm-info",
    "List info about each HSM in the cluster",
    Need.NOTHING,
    modelled="vendor, model and versions are the SoftHSM token's; fips-state is the text AWS "
    "prints for a FIPS-mode hsm1, which SoftHSM is not",
)
def hsm_info(cli: Any, args: Args) -> dict[str, Any]:
    """One entry per ACTIVE HSM, in the documented shape."""
    hsms = []
    for endpoint, token in backend.hsm_tokens(cli.client):
        slot = token.slot
        hw, fw = slot.hardware_version, slot.firmware_version
        hsms.append(
            {
                "vendor": str(token.manufacturer_id).strip(),
                "model": str(token.model).strip(),
                "serial-number": endpoint.hsm_id,
                "hardware-version-major": str(hw[0]),
                "hardware-version-minor": str(hw[1]),
                "firmware-version-major": str(fw[0]),
                "firmware-version-minor": str(fw[1]),
                "firmware-build-number": "0",
                "firmware-id": f"SoftHSM-{fw[0]}.{fw[1]}",
                "fips-state": "2 [FIPS mode with single factor authentication]",
            }
        )
    return {"hsms": hsms}
