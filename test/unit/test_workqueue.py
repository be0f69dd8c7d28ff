"""Queue, DelayingQueue and RateLimitingQueue semantics, and their metrics, on a fake clock."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from pkg.runtime.clock import FakeClock
from pkg.runtime.workqueue import (
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    Queue,
    RateLimitingQueue,
)


def eventually(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll until pred() holds; for effects of the queue's background threads."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def get_now(q: Queue[str]) -> str:
    item, shutdown = q.get()
    assert not shutdown and item is not None
    return item


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dq(clock: FakeClock) -> Iterator[DelayingQueue[str]]:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    yield q
    q.shut_down()


# --- Queue ------------------------------------------------------------------------------------


def test_fifo_and_dedup() -> None:
    q: Queue[str] = Queue()
    for item in ["a", "b", "a", "c", "b"]:
        q.add(item)
    assert len(q) == 3
    assert [get_now(q) for _ in range(3)] == ["a", "b", "c"]


def test_add_while_processing_requeues_once_after_done() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    assert get_now(q) == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0, "a held by a worker is not handed to another"
    q.done("a")
    assert len(q) == 1
    assert get_now(q) == "a"
    q.done("a")
    assert len(q) == 0


def test_done_without_new_add_does_not_requeue() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    get_now(q)
    q.done("a")
    assert len(q) == 0


def test_get_blocks_until_add() -> None:
    q: Queue[str] = Queue()
    got: list[str] = []
    worker = threading.Thread(target=lambda: got.append(get_now(q)))
    worker.start()
    worker.join(0.05)
    assert worker.is_alive() and not got
    q.add("a")
    worker.join(1)
    assert got == ["a"]


def test_shut_down_hands_out_queued_items_then_reports_shutdown() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    q.shut_down()
    q.add("c")
    assert q.shutting_down()
    assert [get_now(q), get_now(q)] == ["a", "b"]
    assert q.get() == (None, True)


def test_shut_down_wakes_blocked_getters() -> None:
    q: Queue[str] = Queue()
    results: list[tuple[str | None, bool]] = []
    workers = [threading.Thread(target=lambda: results.append(q.get())) for _ in range(3)]
    for w in workers:
        w.start()
    q.shut_down()
    for w in workers:
        w.join(1)
    assert results == [(None, True)] * 3


def test_shut_down_with_drain_waits_for_items_in_flight() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    get_now(q)
    drainer = threading.Thread(target=q.shut_down_with_drain)
    drainer.start()
    drainer.join(0.05)
    assert drainer.is_alive(), "a is still being processed"
    q.add("b")
    assert len(q) == 0, "no adds once shutting down"
    q.done("a")
    drainer.join(1)
    assert not drainer.is_alive()


def test_shut_down_cuts_a_drain_short() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    get_now(q)
    drainer = threading.Thread(target=q.shut_down_with_drain)
    drainer.start()
    drainer.join(0.05)
    assert drainer.is_alive()
    q.shut_down()
    drainer.join(1)
    assert not drainer.is_alive()


def test_shut_down_with_drain_returns_at_once_when_idle() -> None:
    q: Queue[str] = Queue()
    q.shut_down_with_drain()
    assert q.get() == (None, True)


def test_workers_never_share_an_item_and_no_update_is_lost() -> None:
    q: Queue[int] = Queue()
    keys = range(5)
    version = dict.fromkeys(keys, 0)  # bumped by the producer before each add
    seen = dict.fromkeys(keys, 0)  # the version a worker last started from
    in_flight: set[int] = set()
    lock = threading.Lock()
    overlaps: list[int] = []

    def worker() -> None:
        while True:
            key, shutdown = q.get()
            if shutdown or key is None:
                return
            with lock:
                if key in in_flight:
                    overlaps.append(key)
                in_flight.add(key)
                seen[key] = version[key]
            time.sleep(random.random() / 10_000)
            with lock:
                in_flight.discard(key)
            q.done(key)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    for w in workers:
        w.start()
    for _ in range(3000):
        key = random.choice(keys)
        with lock:
            version[key] += 1
        q.add(key)
    q.shut_down_with_drain()
    for w in workers:
        w.join(2)
    assert not overlaps
    assert seen == version, "every key was processed again after its last add"


# --- DelayingQueue ----------------------------------------------------------------------------


def test_add_after_becomes_ready_in_ready_time_order(clock: FakeClock, dq: DelayingQueue[str]) -> None:
    dq.add_after("a", 3)
    dq.add_after("b", 1)
    dq.add_after("c", 2)
    assert dq.num_waiting() == 3
    clock.step(0.999)
    assert len(dq) == 0
    clock.step(2.001)
    eventually(lambda: len(dq) == 3)
    assert [get_now(dq) for _ in range(3)] == ["b", "c", "a"]
    assert dq.num_waiting() == 0


def test_add_after_fires_when_its_time_comes(clock: FakeClock, dq: DelayingQueue[str]) -> None:
    dq.add_after("a", 1)
    dq.add_after("b", 2)
    clock.step(1)
    eventually(lambda: len(dq) == 1)
    assert dq.num_waiting() == 1
    clock.step(1)
    eventually(lambda: len(dq) == 2)


def test_add_after_keeps_the_earliest_ready_time(clock: FakeClock, dq: DelayingQueue[str]) -> None:
    dq.add_after("x", 5)
    dq.add_after("x", 1)  # earlier: wins
    dq.add_after("x", 3)  # later than the one waiting: ignored
    dq.add_after("sentinel", 6)
    assert dq.num_waiting() == 2
    clock.step(1)
    eventually(lambda: len(dq) == 1)
    assert get_now(dq) == "x"
    dq.done("x")
    clock.step(5)
    # The sentinel sorts after x's superseded 3 s and 5 s entries; once it is out, those were skipped.
    eventually(lambda: len(dq) == 1)
    assert get_now(dq) == "sentinel"
    assert len(dq) == 0


def test_add_after_without_delay_adds_at_once(dq: DelayingQueue[str]) -> None:
    dq.add_after("a", 0)
    dq.add_after("b", -1)
    assert len(dq) == 2
    assert dq.num_waiting() == 0


def test_add_after_of_an_item_in_flight_requeues_it_after_done(
    clock: FakeClock, dq: DelayingQueue[str]
) -> None:
    dq.add("a")
    get_now(dq)
    dq.add_after("a", 1)
    clock.step(1)
    eventually(lambda: dq.num_waiting() == 0)
    assert len(dq) == 0
    dq.done("a")
    assert get_now(dq) == "a"


def test_shut_down_drops_waiting_items(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 1)
    q.shut_down()
    q.add_after("b", 1)
    assert q.num_waiting() == 0
    clock.step(2)
    assert q.get() == (None, True)


def test_delaying_loop_heartbeat_survives_long_delays(clock: FakeClock, dq: DelayingQueue[str]) -> None:
    dq.add_after("a", 25)  # longer than MAX_WAIT: the loop wakes every 10 s and waits again
    for _ in range(24):
        clock.step(1)
    assert len(dq) == 0
    clock.step(1)
    eventually(lambda: len(dq) == 1)


# --- RateLimitingQueue ------------------------------------------------------------------------


def test_add_rate_limited_backs_off_and_forget_resets(clock: FakeClock) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
    for attempt, delay in enumerate([1.0, 2.0, 4.0], start=1):
        q.add_rate_limited("a")
        assert q.num_requeues("a") == attempt
        clock.step(delay - 0.5)
        assert len(q) == 0
        clock.step(0.5)
        eventually(lambda: len(q) == 1)
        get_now(q)
        q.done("a")
    q.forget("a")
    assert q.num_requeues("a") == 0
    q.add_rate_limited("a")
    clock.step(1.0)
    eventually(lambda: len(q) == 1)
    q.shut_down()


def test_default_rate_limiter_uses_the_queue_clock(clock: FakeClock) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    for i in range(101):
        q.add_rate_limited(f"k{i}")  # 100 from the burst at 5 ms, the 101st waits 100 ms for a token
    clock.step(0.005)
    eventually(lambda: len(q) == 100)
    clock.step(0.095)
    eventually(lambda: len(q) == 101)
    q.shut_down()


# --- metrics ----------------------------------------------------------------------------------


def test_metrics(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    q: DelayingQueue[str] = DelayingQueue("q", clock=clock, registry=registry)

    def value(metric: str) -> float | None:
        return registry.get_sample_value(metric, {"name": "q"})

    q.add("a")
    q.add("b")
    q.add("a")
    assert value("workqueue_adds_total") == 2
    assert value("workqueue_depth") == 2

    clock.step(2)
    assert get_now(q) == "a"
    assert value("workqueue_depth") == 1
    assert value("workqueue_queue_duration_seconds_count") == 1
    assert value("workqueue_queue_duration_seconds_sum") == 2

    clock.step(1.5)
    eventually(lambda: value("workqueue_unfinished_work_seconds") == 1.5)
    assert value("workqueue_longest_running_processor_seconds") == 1.5
    assert get_now(q) == "b"
    clock.step(0.5)
    eventually(lambda: value("workqueue_unfinished_work_seconds") == 2.5)
    assert value("workqueue_longest_running_processor_seconds") == 2.0

    q.add("a")  # dirty while processing: counted in depth although not yet in the FIFO
    assert value("workqueue_depth") == 1
    q.done("a")
    assert value("workqueue_work_duration_seconds_count") == 1
    assert value("workqueue_work_duration_seconds_sum") == 2.0

    q.add_after("c", 0)
    q.add_after("d", 1)
    assert value("workqueue_retries_total") == 2
    q.shut_down()


def test_unnamed_queue_reports_no_metrics() -> None:
    registry = CollectorRegistry()
    q: Queue[str] = Queue(registry=registry)
    q.add("a")
    assert registry.get_sample_value("workqueue_adds_total", {"name": ""}) is None


def test_queues_share_families_in_a_registry(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    one: Queue[str] = Queue("one", clock=clock, registry=registry)
    two: Queue[str] = Queue("two", clock=clock, registry=registry)
    one.add("a")
    two.add("a")
    two.add("b")
    assert registry.get_sample_value("workqueue_adds_total", {"name": "one"}) == 1
    assert registry.get_sample_value("workqueue_adds_total", {"name": "two"}) == 2
    one.shut_down()
    two.shut_down()
