"""Clocks that the runtime takes by injection: real time, and a fake time that tests step by hand.

Time is a float number of seconds on a monotonic scale; only differences mean anything.  Anything in
the runtime that sleeps does so through :meth:`Clock.wait` on a condition it owns, so a
:class:`FakeClock` can wake it when the test moves time past the deadline.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """The current time in seconds (monotonic: never goes backwards on its own)."""
        ...

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        """Wait on ``cond`` (its lock held by the caller) until notified or ``timeout`` seconds pass.

        As with :meth:`threading.Condition.wait`, the caller must re-check its predicate afterwards.
        """
        ...


class RealClock:
    """Wall time from :func:`time.monotonic`."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        cond.wait(max(timeout, 0.0))


@dataclass(eq=False)
class _Waiter:
    deadline: float
    cond: threading.Condition


class FakeClock:
    """A clock that moves only when told to (:meth:`step`, :meth:`set_time`).

    Waits registered through :meth:`wait` act as timers: moving time to or past a waiter's deadline
    notifies its condition.  Never call :meth:`step` while holding a condition a waiter uses.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._waiters: list[_Waiter] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def step(self, seconds: float) -> None:
        """Advance time by ``seconds`` and fire every waiter whose deadline has come."""
        with self._lock:
            due = self._advance(self._now + seconds)
        self._fire(due)

    def set_time(self, t: float) -> None:
        """Set the time to ``t`` (backwards too) and fire every waiter whose deadline has come."""
        with self._lock:
            due = self._advance(t)
        self._fire(due)

    def has_waiters(self) -> bool:
        """Whether some thread is waiting on this clock."""
        with self._lock:
            return bool(self._waiters)

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        if timeout <= 0:
            return
        with self._lock:
            waiter = _Waiter(self._now + timeout, cond)
            self._waiters.append(waiter)
        # The caller holds cond from here until cond.wait() releases it, so a step() that fires this
        # waiter in between blocks on cond and its notify cannot be lost.
        try:
            cond.wait()
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _advance(self, t: float) -> list[_Waiter]:
        self._now = t
        due = [w for w in self._waiters if w.deadline <= t]
        self._waiters = [w for w in self._waiters if w.deadline > t]
        return due

    @staticmethod
    def _fire(due: list[_Waiter]) -> None:
        for waiter in due:
            with waiter.cond:
                waiter.cond.notify_all()
