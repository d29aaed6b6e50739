"""refuse_subclasses: the concrete transports are final at run time too."""

from __future__ import annotations

from typing import final

import pytest

from transports.abc._final import refuse_subclasses


def test_subclassing_a_refusing_class_is_a_type_error_naming_it() -> None:
    @final
    @refuse_subclasses
    class Concrete:
        pass

    with pytest.raises(TypeError, match=r"Concrete is final: it cannot be subclassed"):
        type("Sub", (Concrete,), {})
    assert getattr(Concrete, "__final__", False) is True
    assert type(Concrete()) is Concrete  # instances are made as usual
