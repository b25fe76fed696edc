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


__all__ = ["Role"]
