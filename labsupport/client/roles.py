"""CloudHSM user roles (kept apart so the cluster document and the user directory can both
use them without importing each other)."""

from __future__ import annotations

import enum


class Role(str, enum.Enum):
    """A CloudHSM user role, spelled as CloudHSM CLI prints it."""

    ADMIN = "admin"
    CRYPTO_USER = "crypto-user"
    UNACTIVATED_ADMIN = "unactivated-admin"
    APPLIANCE = "internal(APPLIANCE_USER)"

    def __str__(self) -> str:
        return self.value


__all__ = ["Role"]
