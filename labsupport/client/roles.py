"""CloudHSM user roles (kept apart so the cluster document and the user directory can both
use them without importing each other)."""

from __future__ import annotations

from labsupport.strenum import StrEnum


class Role(StrEnum):
    """A CloudHSM user role, spelled as CloudHSM CLI prints it."""

    ADMIN = "admin"
    CRYPTO_USER = "crypto-user"
    UNACTIVATED_ADMIN = "unactivated-admin"
    APPLIANCE = "internal(APPLIANCE_USER)"


#: The roles CloudHSM CLI's ``--role`` flags take, in the order its help lists them.
CLI_ROLES: tuple[str, ...] = (Role.CRYPTO_USER.value, Role.ADMIN.value)

__all__ = ["CLI_ROLES", "Role"]
