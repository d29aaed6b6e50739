"""Classes that are final at run time, not only for type checkers."""

from __future__ import annotations

__all__ = ["refuse_subclasses"]

from typing import Any, TypeVar

_C = TypeVar("_C", bound=type)


def refuse_subclasses(cls: _C) -> _C:
    """Make subclassing ``cls`` a :exc:`TypeError` naming it.

    For the concrete transports, which ``typing.final`` marks final for type
    checkers only: their slots, name-mangled state and hot paths are not
    written to be overridden, so a subclass would break in ways no test
    shows. Use it under ``@typing.final``. Private to the family.

    Raises:
        TypeError: at the creation of a subclass of ``cls``.
    """

    def __init_subclass__(subclass: type, /, **kwargs: Any) -> None:
        raise TypeError(f"{cls.__qualname__} is final: it cannot be subclassed")

    cls.__init_subclass__ = classmethod(__init_subclass__)  # type: ignore[assignment]
    return cls
