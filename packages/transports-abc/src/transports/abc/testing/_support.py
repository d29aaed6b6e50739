"""What the stream and datagram checks share: threads with a deadline, clear failures."""

from __future__ import annotations

__all__ = [
    "INVALID_TIMEOUTS",
    "Background",
    "after_a_while",
    "check",
    "check_after_close",
    "check_attributes",
    "elapsed",
    "expect",
    "failures_as_assertions",
]

import errno
import functools
import math
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from transports.abc._base import BaseTransport
from transports.abc._exceptions import TypedAttributeLookupError
from transports.abc._typed_attributes import typed_attribute

_T = TypeVar("_T")
_P = ParamSpec("_P")

#: Timeouts every blocking method must refuse before any I/O, with the
#: exception it must raise.
INVALID_TIMEOUTS: tuple[tuple[Any, type[Exception]], ...] = (
    (-1.0, ValueError),
    (-math.inf, ValueError),
    (math.nan, ValueError),
    (None, TypeError),
)

# An attribute no transport defines, for the lookup-error checks.
_UNKNOWN_ATTRIBUTE: Any = typed_attribute()


def failures_as_assertions(check_function: Callable[_P, None]) -> Callable[_P, None]:
    """Make every failure of ``check_function`` an :exc:`AssertionError`.

    A transport that raises where it should not (``send_eof`` of one that
    claims to half-close, a second ``close()``) fails the check like any
    other difference; the exception is chained.
    """

    @functools.wraps(check_function)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            check_function(*args, **kwargs)
        except AssertionError:
            raise
        except Exception as exc:
            raise AssertionError(f"{check_function.__name__}: unexpected {type(exc).__name__}: {exc}") from exc

    return run


def check(condition: bool, message: str) -> None:
    """Raise :exc:`AssertionError` with ``message`` unless ``condition``.

    (Not the ``assert`` statement, which ``python -O`` removes.)
    """
    if not condition:
        raise AssertionError(message)


def expect(
    exception: type[BaseException], call: Callable[[], Any], what: str, *, errno_value: int | None = None
) -> BaseException:
    """Call ``call`` and return what it raised, which must be an ``exception``.

    Raises:
        AssertionError: ``call`` returned, raised something else, or raised
            an :exc:`OSError` whose ``errno`` is not ``errno_value``.
    """
    try:
        result = call()
    except exception as exc:
        if errno_value is not None:
            got = getattr(exc, "errno", None)
            check(
                got == errno_value,
                f"{what}: expected {exception.__name__} with errno {errno.errorcode.get(errno_value, errno_value)}, "
                f"got errno {got}: {exc!r}",
            )
        return exc
    except BaseException as exc:
        raise AssertionError(f"{what}: expected {exception.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{what}: expected {exception.__name__}, but it returned {result!r}")


class Background:
    """A call running in a thread of its own, joined with a deadline.

    The checks run the peer side of an exchange (or the call a close from
    another thread must end) this way, so that a transport that hangs makes
    a check fail instead of blocking for ever. The thread is a daemon: one
    stuck in a broken transport does not keep the process alive.
    """

    def __init__(self, call: Callable[[], Any], name: str) -> None:
        self._call = call
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"transports-check-{name}", daemon=True)
        self._name = name
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._call()
        except BaseException as exc:
            self._error = exc

    def finished_within(self, seconds: float) -> bool:
        """Wait at most ``seconds`` for the call to end; whether it did."""
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def result(self, seconds: float) -> Any:
        """The call's result, within ``seconds``.

        Raises:
            AssertionError: the call did not end in time, or raised (the
                exception is chained).
        """
        check(self.finished_within(seconds), f"{self._name}: still running after {seconds} s")
        if self._error is not None:
            raise AssertionError(f"{self._name} failed: {type(self._error).__name__}: {self._error}") from self._error
        return self._result

    def error(self, seconds: float) -> BaseException | None:
        """What the call raised (or :data:`None`), within ``seconds``.

        Raises:
            AssertionError: the call did not end in time.
        """
        check(self.finished_within(seconds), f"{self._name}: still running after {seconds} s")
        return self._error


def check_after_close(transport: BaseTransport, operations: dict[str, Callable[[], Any]]) -> None:
    """Close ``transport`` twice and check what every call does afterwards.

    Raises:
        AssertionError: close() raised the second time, ``is_closed()`` is
            false, or an operation did not raise ``OSError(EBADF)``.
    """
    transport.close()
    transport.close()  # idempotent
    check(transport.is_closed(), "is_closed() is false after close()")
    for name, operation in operations.items():
        expect(OSError, operation, f"{name} after close()", errno_value=errno.EBADF)


def check_attributes(transport: BaseTransport) -> None:
    """Every typed attribute getter returns or raises TypedAttributeLookupError; unknown keys are refused.

    Raises:
        AssertionError: a getter raised anything else, or an unknown
            attribute was not refused, or its default not returned.
    """
    for attribute, getter in transport.extra_attributes.items():
        try:
            getter()
        except TypedAttributeLookupError:
            pass
        except Exception as exc:
            raise AssertionError(f"the getter of {attribute!r} raised {type(exc).__name__}: {exc}") from exc
    expect(TypedAttributeLookupError, lambda: transport.extra(_UNKNOWN_ATTRIBUTE), "extra() of an unknown attribute")
    marker = object()
    check(transport.extra(_UNKNOWN_ATTRIBUTE, marker) is marker, "extra(unknown, default) did not return the default")


def elapsed(started: float) -> float:
    """Seconds since the :func:`time.monotonic` instant ``started``."""
    return time.monotonic() - started


def after_a_while(call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)`` after 0.2 s: a peer that answers late."""
    time.sleep(0.2)
    return call(*args)
