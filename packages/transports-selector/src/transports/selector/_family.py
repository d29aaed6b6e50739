"""What the other layers of the family may use of this one, besides its public names.

Two kinds of things, both checked by a repository test:

- the private helpers below, which ``transports.socket`` and
  ``transports.composite`` import from here and from nowhere else in this
  package;
- :data:`SUBCLASSING_SURFACE`: the protected members of
  :class:`~transports.selector.SelectorBaseTransport` and its stream and
  datagram bases that a transport of another layer may use or override.
  Any other underscore name of those classes is this layer's own. The
  documentation of the selector layer describes each member
  ("The subclassing surface").

Neither is public: names and behaviour may change in any release.
"""

from __future__ import annotations

__all__ = ["IOV_MAX", "SUBCLASSING_SURFACE"]

from typing import Final

from ._stream import IOV_MAX

SUBCLASSING_SURFACE: Final = frozenset(
    {
        # Waiting and retrying.
        "_retry",
        "_after_would_block",
        "_wait_held",
        "_new_read_poller",
        "_read_poller",
        "_retry_interval",
        "_selector_factory",
        # The receive engine.
        "_RECEIVE_TARGET",
        "_receive",
        "_receive_after_would_block",
        "_receive_waiting_first",
        "_receive_noblock",
        "_read_waits_first",
        "_read_would_block",
        "_read_probe_found_data",
        "_wait_readable",
        # Closing from another thread.
        "_closing",
        "_descriptor_users",
        "_pending_close",
        "_release_descriptor",
        # Writing.
        "_send_all_rest",
        "_send_all_vectored",
    }
)
