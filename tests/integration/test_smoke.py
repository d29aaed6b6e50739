"""All four distributions installed together import side by side."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


@pytest.mark.parametrize("layer", ["abc", "selector", "socket", "composite"])
def test_layer_imports_from_one_namespace(layer: str) -> None:
    module = importlib.import_module(f"transports.{layer}")
    assert (Path(module.__file__ or "").parent / "py.typed").is_file()
    assert isinstance(module.__all__, list)


def test_namespace_spans_all_layers() -> None:
    import transports

    # PEP 420: no __init__.py, so the namespace has no __file__ of its own.
    assert getattr(transports, "__file__", None) is None
    assert len(list(transports.__path__)) >= 1


@pytest.mark.parametrize(
    "name",
    [
        "transports.socket.SocketStreamTransport",
        "transports.socket.SocketDatagramTransport",
        "transports.socket.SSLStreamTransport",
        "transports.socket.SocketProxy",
        "transports.composite.StapledStreamTransport",
        "transports.composite.StapledDatagramTransport",
        "transports.composite.TLSStreamTransport",
    ],
)
def test_final_classes_are_final_at_run_time(name: str) -> None:
    module_name, _, class_name = name.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert getattr(cls, "__final__", False) is True  # for type checkers
    with pytest.raises(TypeError, match=rf"{class_name} is final"):
        type("Subclass", (cls,), {})
