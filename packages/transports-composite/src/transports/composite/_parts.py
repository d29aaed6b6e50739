"""Checking and closing the two parts of a stapled transport.

A stapled transport owns two parts, and closing it must close both: a part
left open leaks its file descriptor, and with pipes it can leave a child
process waiting forever for an EOF. So the second part is closed even when
closing the first raises, whatever the exception (a ``KeyboardInterrupt``
included).

What the caller then sees:

- neither part raised: nothing;
- exactly one part raised: that exception, re-raised unchanged (the same
  object, so ``except OSError`` and identity checks keep working);
- both raised: a :exc:`BaseExceptionGroup` holding both, the send part's
  first. :exc:`BaseExceptionGroup` builds an :exc:`ExceptionGroup` when
  both are :exc:`Exception` instances, so ``except ExceptionGroup`` (or
  ``except* OSError``) catches the usual case.

The error of the second close is never chained to the first one: the
second part is closed outside the ``except`` clause that caught the first
error, so neither exception gets a misleading ``__context__``.
"""

from __future__ import annotations

__all__ = ["check_part", "close_both"]

from transports.abc import BaseTransport


def check_part(name: str, part: object, expected: type) -> None:
    """Refuse a part of the wrong kind when the stapled transport is built.

    Without this check a wrong part would only fail later, at its first
    use, far from the mistake.

    Raises:
        TypeError: ``part`` is not an instance of ``expected``.
    """
    if not isinstance(part, expected):
        raise TypeError(f"{name} must be a {expected.__name__}, got {type(part).__qualname__}")


def close_both(first: BaseTransport, second: BaseTransport) -> None:
    """Close ``first``, then ``second`` even when closing ``first`` raised.

    Raises:
        BaseException: the one exception raised by exactly one of the two
            ``close()`` calls, unchanged.
        BaseExceptionGroup: both calls raised; the group holds both
            exceptions in call order (an :exc:`ExceptionGroup` when both
            are :exc:`Exception` instances).
    """
    first_error: BaseException | None = None
    try:
        first.close()
    except BaseException as exc:
        first_error = exc
    try:
        try:
            second.close()
        except BaseException as second_error:
            if first_error is None:
                raise
            raise BaseExceptionGroup("close() failed for both parts", [first_error, second_error]) from None
        if first_error is not None:
            raise first_error
    finally:
        # The local would otherwise keep a cycle: frame -> exception -> traceback -> frame.
        first_error = None
