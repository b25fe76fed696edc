"""``StrEnum``: an enum whose members are strings and print as their value.

The standard library's :class:`enum.StrEnum` from Python 3.11; on Python 3.10 a class with
the same behaviour (``str(member) == member.value``, and ``f"{member}"`` too).
"""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """A string enum that prints as its value (``enum.StrEnum`` of Python 3.11)."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str.__format__(str(self.value), spec)


__all__ = ["StrEnum"]
