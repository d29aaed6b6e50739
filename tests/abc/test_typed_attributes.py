"""Typed attributes: markers, sets, providers and lookups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from transports.abc import (
    TypedAttributeLookupError,
    TypedAttributeProvider,
    TypedAttributeSet,
    typed_attribute,
)


class ColourAttribute(TypedAttributeSet):
    name: str = typed_attribute()
    depth: int = typed_attribute()


class ShadeAttribute(ColourAttribute):
    shade: float = typed_attribute()


class Inner(TypedAttributeProvider):
    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {ColourAttribute.name: lambda: "inner", ColourAttribute.depth: lambda: 8}


class Outer(TypedAttributeProvider):
    def __init__(self, inner: Inner) -> None:
        self.inner = inner

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {**self.inner.extra_attributes, ColourAttribute.name: lambda: "outer"}


def _unavailable() -> Any:
    raise TypedAttributeLookupError("not now")


class Flaky(TypedAttributeProvider):
    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {ShadeAttribute.shade: _unavailable}


def test_markers_are_unique() -> None:
    assert typed_attribute() is not typed_attribute()
    assert len({ColourAttribute.name, ColourAttribute.depth, ShadeAttribute.shade}) == 3


def test_subclass_inherits_markers() -> None:
    assert ShadeAttribute.name is ColourAttribute.name


def test_missing_annotation_rejected_at_class_creation() -> None:
    with pytest.raises(TypeError, match="annotation"):

        class Broken(TypedAttributeSet):
            fine: int = typed_attribute()
            unannotated = typed_attribute()


def test_private_names_need_no_annotation() -> None:
    class WithPrivate(TypedAttributeSet):
        _helper = 3
        public: int = typed_attribute()

    assert WithPrivate._helper == 3


def test_default_provider_has_no_attributes() -> None:
    provider = TypedAttributeProvider()
    assert dict(provider.extra_attributes) == {}
    with pytest.raises(TypedAttributeLookupError):
        provider.extra(ColourAttribute.name)
    assert provider.extra(ColourAttribute.name, None) is None


def test_lookup_values() -> None:
    inner = Inner()
    assert inner.extra(ColourAttribute.name) == "inner"
    assert inner.extra(ColourAttribute.depth) == 8


def test_wrapper_includes_and_overrides_wrapped() -> None:
    outer = Outer(Inner())
    assert outer.extra(ColourAttribute.name) == "outer"
    assert outer.extra(ColourAttribute.depth) == 8


def test_absent_attribute_uses_default() -> None:
    sentinel = object()
    assert Inner().extra(ShadeAttribute.shade, sentinel) is sentinel
    assert Inner().extra(ShadeAttribute.shade, default=1.5) == 1.5


def test_absent_attribute_without_default() -> None:
    with pytest.raises(TypedAttributeLookupError, match="not found"):
        Inner().extra(ShadeAttribute.shade)


def test_getter_lookup_error_propagates_without_default() -> None:
    with pytest.raises(TypedAttributeLookupError, match="not now"):
        Flaky().extra(ShadeAttribute.shade)


def test_getter_lookup_error_gives_default() -> None:
    assert Flaky().extra(ShadeAttribute.shade, 0.25) == 0.25


def test_other_getter_errors_propagate_even_with_default() -> None:
    class Failing(TypedAttributeProvider):
        @property
        def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
            return {ColourAttribute.depth: lambda: 1 // 0}

    with pytest.raises(ZeroDivisionError):
        Failing().extra(ColourAttribute.depth, 0)


def test_lookup_error_is_lookup_error() -> None:
    assert issubclass(TypedAttributeLookupError, LookupError)
