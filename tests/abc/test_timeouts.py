"""The public timeout helpers every layer shares."""

from __future__ import annotations

import errno
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports.abc import deadline_after, time_left, timeout_error, validate_timeout


@pytest.mark.parametrize("timeout", [0, 0.0, 1e-9, 1, 2.5, math.inf])
def test_valid_timeouts_returned_unchanged(timeout: float) -> None:
    assert validate_timeout(timeout) == timeout


@pytest.mark.parametrize("timeout", [-1e-9, -1, -math.inf])
def test_negative_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        validate_timeout(timeout)


def test_nan_timeout() -> None:
    with pytest.raises(ValueError, match="NaN"):
        validate_timeout(math.nan)


@pytest.mark.parametrize("timeout", ["1", None, b"1"])
def test_non_number_timeout(timeout: object) -> None:
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds, or math.inf to wait forever, not "):
        validate_timeout(timeout)  # type: ignore[arg-type]


def test_infinite_deadline_never_runs_out() -> None:
    deadline = deadline_after(math.inf)
    assert deadline == math.inf
    assert time_left(deadline) == math.inf


def test_zero_budget_is_spent_at_once() -> None:
    assert time_left(deadline_after(0)) == 0.0


def test_budget_shrinks_with_time() -> None:
    deadline = deadline_after(10.0)
    first = time_left(deadline)
    time.sleep(0.02)
    second = time_left(deadline)
    assert 0 < second < first <= 10.0
    assert first - second >= 0.015


def test_spent_budget_is_zero_not_negative() -> None:
    deadline = deadline_after(0.001)
    time.sleep(0.01)
    assert time_left(deadline) == 0.0


@pytest.mark.parametrize("timeout", [-1.0, math.nan])
def test_deadline_validates(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        deadline_after(timeout)


def test_timeout_error_has_etimedout() -> None:
    exc = timeout_error()
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, OSError)
    assert exc.errno == errno.ETIMEDOUT
    assert exc.strerror == "timed out"
    assert str(exc).endswith("] timed out")
    assert timeout_error("handshake timed out").strerror == "handshake timed out"


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_validate_accepts_exactly_non_negative(value: float) -> None:
    if value >= 0:
        assert validate_timeout(value) == value
    else:
        with pytest.raises(ValueError, match="timeout"):
            validate_timeout(value)


@given(st.floats(min_value=0, max_value=1e6))
def test_fresh_budget_never_exceeds_timeout(value: float) -> None:
    assert 0.0 <= time_left(deadline_after(value)) <= value
