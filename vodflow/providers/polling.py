"""Bounded waiting for a remote object to reach a final state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    interval: float,
    max_wait: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> tuple[T, bool]:
    """Call `fetch` until `done(value)` or `max_wait` seconds pass; returns (last value, whether done).

    Fetches at least once; never sleeps past the deadline. Errors from `fetch` propagate.
    """
    deadline = clock() + max(0.0, max_wait)
    while True:
        value = fetch()
        if done(value):
            return value, True
        remaining = deadline - clock()
        if remaining <= 0:
            return value, False
        sleep(min(max(interval, 0.0), remaining))
