"""One CloudHSM CLI command's answer: ``{"error_code": 0|1, "data": …}``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from labsupport.errors import LabError


@dataclass
class CliResult:
    """One CLI command's result: ``error_code`` (0 ok, 1 failed) and ``data``.

    ``str(result)`` and the notebook display are the JSON the real CLI prints (2-space
    indent); a failure adds one ``# lab hint:`` line saying what to do next.
    """

    error_code: int
    data: Any
    hint: str = field(default="", repr=False)
    #: ``help`` text: printed as it is, not as JSON (as the real CLI does).
    plain: bool = field(default=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when the command succeeded."""
        return self.error_code == 0

    def to_dict(self) -> dict[str, Any]:
        """``{"error_code": …, "data": …}`` — the parsed JSON."""
        return {"error_code": self.error_code, "data": self.data}

    def to_json(self) -> str:
        """The JSON the real CLI prints (2-space indent)."""
        return json.dumps({"error_code": self.error_code, "data": self.data}, indent=2)

    def __str__(self) -> str:
        if self.plain and isinstance(self.data, str):
            return self.data
        text = self.to_json()
        if self.hint:
            text += f"\n# lab hint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def __getitem__(self, name: str) -> Any:
        """``result["data"]`` / ``result["error_code"]``, as on the parsed JSON."""
        if name == "data":
            return self.data
        if name == "error_code":
            return self.error_code
        raise KeyError(name)

    def raise_for_error(self) -> CliResult:
        """Raise a :class:`LabError` if the command failed; else return self."""
        if not self.ok:
            raise LabError(str(self.data), self.hint)
        return self


__all__ = ["CliResult"]
