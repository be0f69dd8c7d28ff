"""Reachability: waiters are woken once the server answers again, staggered, and only then."""

from __future__ import annotations

import random
import threading
import time

import urllib3

from pkg.runtime.informer import Backoff
from pkg.runtime.reachability import Reachability, unreachable
from pkg.runtime.rest import ApiError


class Waiter:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.woken = threading.Event()

    def wake(self, delay: float) -> None:
        self.delays.append(delay)
        self.woken.set()


class Probe:
    def __init__(self) -> None:
        self.answers = False
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answers


def test_a_successful_probe_wakes_every_waiter_once_with_staggered_delays() -> None:
    probe = Probe()
    r = Reachability(probe, probe_interval=0.01, per_waiter_spread=0.01, max_spread=0.5, rng=random.Random(1))
    waiters = [Waiter() for _ in range(100)]
    for w in waiters:
        r.wait(w)
    assert r.down
    deadline = time.monotonic() + 5
    while probe.calls < 3:  # probing while down, nobody woken
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not any(w.delays for w in waiters)
    probe.answers = True
    for w in waiters:
        assert w.woken.wait(5)
    time.sleep(0.05)
    assert [len(w.delays) for w in waiters] == [1] * 100
    delays = [w.delays[0] for w in waiters]
    assert all(0.0 <= d <= 0.5 for d in delays)  # 100 waiters x 0.01 s, capped at 0.5 s
    assert len(set(delays)) > 90  # spread out, not one instant
    assert max(delays) > 0.25
    assert not r.down and r.ups == 1


def test_another_clients_success_wakes_waiters_without_a_probe() -> None:
    r = Reachability(lambda: False, probe_interval=10.0, per_waiter_spread=0.0)
    w = Waiter()
    r.wait(w)
    r.succeeded()
    assert w.delays == [0.0]
    r.succeeded()  # already up: nobody to wake, nothing woken twice
    assert w.delays == [0.0]


def test_a_waiter_that_left_is_not_woken_and_the_prober_stops() -> None:
    probe = Probe()
    r = Reachability(probe, probe_interval=0.01)
    w = Waiter()
    r.wait(w)
    r.done(w)
    time.sleep(0.1)
    calls = probe.calls
    time.sleep(0.1)
    assert probe.calls == calls  # nobody waits: no more probes
    probe.answers = True
    r.succeeded()
    assert w.delays == []


def test_only_failures_without_an_answer_count_as_unreachable() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert unreachable(refused)
    assert unreachable(urllib3.exceptions.ProtocolError("reset"))
    assert unreachable(ConnectionResetError())
    wrapped = RuntimeError("watch failed at once")
    wrapped.__cause__ = urllib3.exceptions.ReadTimeoutError(None, "/", "timed out")  # type: ignore[arg-type]
    assert unreachable(wrapped)
    assert not unreachable(ApiError(503, "GET", "/x", {}))
    assert not unreachable(ApiError(404, "GET", "/x", {}))
    assert not unreachable(RuntimeError("very short watch"))


def test_backoff_reset_starts_over() -> None:
    b = Backoff(1.0, 30.0, jitter=0.0)
    assert [b.next() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    b.reset()
    assert b.next() == 1.0
