"""transports.composite: see the package README; its contents arrive with their issue."""

from __future__ import annotations

__all__: list[str] = []
