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
