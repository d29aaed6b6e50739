"""Timeout validation and shared-budget accounting.

Every blocking method of every layer takes ``timeout`` in seconds, where
``0`` means "do not block" and :data:`math.inf` means "wait forever". A
method that blocks several times (``send_all``, a TLS handshake) spends
ONE budget: each step gets what is left of it. These helpers are the one
place where that arithmetic lives, for our layers and for third-party
transports alike.

The design keeps the common case cheap: an infinite budget never reads
the clock, and a finite one reads it once when created and once per
:func:`time_left` call, so an operation that succeeds on its first try
pays for a single clock read at most.
"""

from __future__ import annotations

__all__ = ["deadline_after", "time_left", "timeout_error", "validate_timeout"]

import errno
import math
from time import monotonic


def validate_timeout(timeout: float) -> float:
    """Check a timeout argument and return it unchanged.

    Parameters:
        timeout: seconds; ``0`` and :data:`math.inf` are valid.

    Raises:
        ValueError: ``timeout`` is negative or NaN.
        TypeError: ``timeout`` is not a real number (``None`` included:
            to wait forever, pass :data:`math.inf`).

    Returns:
        ``timeout`` itself.
    """
    # NaN fails every comparison, so one test rejects both NaN and negatives.
    try:
        if timeout >= 0:
            return timeout
    except TypeError:
        # None is the usual mistake: socket.settimeout(None) means "block".
        raise TypeError(
            f"timeout must be a number of seconds, or math.inf to wait forever, not {type(timeout).__name__}"
        ) from None
    if math.isnan(timeout):
        raise ValueError("timeout must not be NaN")
    raise ValueError("timeout must not be negative")


def deadline_after(timeout: float) -> float:
    """Start a budget of ``timeout`` seconds and return its deadline.

    The deadline is a :func:`time.monotonic` instant, or :data:`math.inf`
    for an infinite budget (then no clock is read). Pass it to
    :func:`time_left` before each blocking step.

    Raises:
        ValueError: ``timeout`` is negative or NaN.
        TypeError: ``timeout`` is not a real number.
    """
    if validate_timeout(timeout) == math.inf:
        return math.inf
    return monotonic() + timeout


def time_left(deadline: float) -> float:
    """Seconds left before ``deadline`` (from :func:`deadline_after`).

    Never negative: a spent budget gives ``0.0``, which asks the next step
    to try once without blocking and raise :exc:`TimeoutError` if it
    cannot make progress. An infinite deadline gives :data:`math.inf`.
    """
    if deadline == math.inf:
        return math.inf
    left = deadline - monotonic()
    return left if left > 0.0 else 0.0


def timeout_error(message: str | None = None) -> TimeoutError:
    """Build the :exc:`TimeoutError` a blocking method raises.

    Its ``errno`` is :data:`errno.ETIMEDOUT`, as for a socket timeout, and
    its message ``message``, by default "timed out" (what a socket with a
    timeout says; the system's text for ``ETIMEDOUT``, "Connection timed
    out", speaks of a connection that may not exist).
    """
    return TimeoutError(errno.ETIMEDOUT, message or "timed out")
