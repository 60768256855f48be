"""A string that never shows itself: API keys, SSH private keys, model credentials."""

from __future__ import annotations

from typing import Final

MASK: Final = "****"


class Secret:
    """Holds a secret value; `repr`, `str` and formatting show only a mask.

    Call `reveal()` at the one place the value must leave the process (an HTTP
    header, a 0600 file). Everything else can log, print or raise with a
    `Secret` in hand without leaking it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        """The seed's convention: a short prefix to tell keys apart, the rest hidden."""
        return self._value[:4] + MASK if len(self._value) >= 16 else MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    __str__ = masked

    def __format__(self, spec: str) -> str:
        return self.masked()

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        raise TypeError("a Secret cannot be pickled")
