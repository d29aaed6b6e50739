"""Typed attributes: extra information a transport may expose.

A :class:`TypedAttributeSet` subclass names attributes (each an opaque
marker from :func:`typed_attribute`, annotated with the value's type). A
:class:`TypedAttributeProvider` maps markers to zero-argument getters, and
:meth:`TypedAttributeProvider.extra` looks one up with the annotated type,
so ``transport.extra(SocketAttribute.family)`` is typed as the family.
"""

from __future__ import annotations

__all__ = ["TypedAttributeProvider", "TypedAttributeSet", "typed_attribute"]

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar, final, overload

from ._exceptions import TypedAttributeLookupError

_T_Attr = TypeVar("_T_Attr")
_T_Default = TypeVar("_T_Default")

_MISSING: Final[Any] = object()
_NO_ATTRIBUTES: Final[Mapping[Any, Callable[[], Any]]] = MappingProxyType({})


def typed_attribute() -> Any:
    """Return a new, unique marker for a typed attribute.

    Typed as :data:`~typing.Any` so that the annotation on the
    :class:`TypedAttributeSet` member decides the type that
    :meth:`TypedAttributeProvider.extra` returns.
    """
    return object()


class TypedAttributeSet:
    """Base class for a collection of typed attributes.

    Every public member of a subclass must carry a type annotation.

    Raises:
        TypeError: at class creation, when a public member has no
            annotation.
    """

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotated: set[str] = set()
        for klass in cls.__mro__:
            annotated.update(inspect.get_annotations(klass))
        for name in vars(cls):
            if not name.startswith("_") and name not in annotated:
                raise TypeError(f"Attribute {name!r} of {cls.__qualname__} is missing its type annotation")


class TypedAttributeProvider:
    """Base class for objects that provide typed attributes."""

    __slots__ = ()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """Attribute markers mapped to getters of their values.

        A wrapper includes the attributes of what it wraps and may override
        them. A getter raises :exc:`TypedAttributeLookupError` when the
        value cannot be had. The default is an empty mapping.
        """
        return _NO_ATTRIBUTES

    @overload
    def extra(self, attribute: _T_Attr) -> _T_Attr: ...

    @overload
    def extra(self, attribute: _T_Attr, default: _T_Default) -> _T_Attr | _T_Default: ...

    @final
    def extra(self, attribute: Any, default: Any = _MISSING) -> Any:
        """Return the value of a typed attribute.

        Parameters:
            attribute: the marker, e.g. ``SocketAttribute.family``.
            default: returned when the attribute is absent or unavailable.

        Raises:
            TypedAttributeLookupError: the attribute is absent, or its getter
                raised it, and no ``default`` was given.
        """
        try:
            getter = self.extra_attributes[attribute]
        except KeyError:
            if default is _MISSING:
                raise TypedAttributeLookupError("Attribute not found") from None
            return default
        try:
            return getter()
        except TypedAttributeLookupError:
            if default is _MISSING:
                raise
            return default
