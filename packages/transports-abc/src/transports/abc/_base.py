"""The root of every transport."""

from __future__ import annotations

__all__ = ["BaseTransport"]

from abc import ABCMeta, abstractmethod
from types import TracebackType
from typing import Self

from ._typed_attributes import TypedAttributeProvider


class BaseTransport(TypedAttributeProvider, metaclass=ABCMeta):
    """Base class for a data transport.

    A transport is a context manager: leaving the ``with`` block calls
    :meth:`close`.
    """

    __slots__ = ("__weakref__",)

    @abstractmethod
    def close(self) -> None:
        """Close the transport.

        Idempotent: closing a closed transport does nothing and never raises.
        """
        raise NotImplementedError

    @abstractmethod
    def is_closed(self) -> bool:
        """Return :data:`True` once :meth:`close` has been called."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Call :meth:`close`."""
        self.close()
