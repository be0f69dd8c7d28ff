"""Controller: what each reconcile outcome does to the queue, metrics, workers and shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from pkg.runtime.clock import FakeClock
from pkg.runtime.controller import TRANSIENT_RETRY_CAP, Controller, Reconciler, Result, TerminalError
from pkg.runtime.rest import FencedError
from pkg.runtime.workqueue import RateLimitingQueue


def eventually(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


_envs: list[Env] = []


@pytest.fixture(autouse=True)
def _shut_down_queues() -> Iterator[None]:
    yield
    while _envs:
        _envs.pop().queue.shut_down()


class Env:
    """A controller named "c" on a fake clock and a private registry, driven one item at a time."""

    def __init__(self, reconciler: Reconciler[str], workers: int = 1) -> None:
        _envs.append(self)
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            name="c", clock=self.clock, registry=self.registry
        )
        self.ctrl = Controller("c", reconciler, self.queue, workers=workers, registry=self.registry)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"controller": "c", **labels})

    def total(self, result: str) -> float | None:
        return self.metric("controller_runtime_reconcile_total", result=result)

    def step_until_ready(self, delay: float) -> None:
        """Check the queued key is not ready just before ``delay``, then that it is ready at ``delay``."""
        self.clock.step(delay - 0.0005)
        assert len(self.queue) == 0
        self.clock.step(0.0005)
        eventually(lambda: len(self.queue) == 1)


def test_success_forgets_the_key() -> None:
    env = Env(lambda key: Result())
    env.queue.rate_limiter.when("k")
    env.ctrl.enqueue("k")
    assert env.ctrl.process_next_work_item()
    assert env.queue.num_requeues("k") == 0
    assert env.total("success") == 1
    assert env.queue.num_waiting() == 0 and len(env.queue) == 0


def test_none_counts_as_success() -> None:
    env = Env(lambda key: None)
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    assert env.total("success") == 1


def test_error_is_retried_with_exponential_backoff() -> None:
    calls: list[float] = []

    def reconcile(key: str) -> Result:
        calls.append(env.clock.now())
        if len(calls) <= 3:
            raise RuntimeError("not yet")
        return Result()

    env = Env(reconcile)
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    for delay in (0.005, 0.01, 0.02):
        env.step_until_ready(delay)
        env.ctrl.process_next_work_item()
    assert calls == pytest.approx([0.0, 0.005, 0.015, 0.035])
    assert env.total("error") == 3
    assert env.metric("controller_runtime_reconcile_errors_total") == 3
    assert env.total("success") == 1
    assert env.queue.num_requeues("k") == 0


def _retried_after(err: Exception, delays: list[float]) -> None:
    """A key failing with ``err`` once per delay is ready again exactly after each of ``delays``
    (not a moment before), and its success then forgets the failures."""
    calls: list[float] = []

    def reconcile(key: str) -> Result:
        calls.append(env.clock.now())
        if len(calls) <= len(delays):
            raise err
        return Result()

    env = Env(reconcile)
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    for delay in delays:
        env.clock.step(delay - 0.0005)
        assert len(env.queue) == 0, f"ready before {delay} s"
        env.clock.step(0.001)  # a margin over the clock's float sums
        eventually(lambda: len(env.queue) == 1)
        env.ctrl.process_next_work_item()
    assert len(calls) == len(delays) + 1
    assert env.queue.num_requeues("k") == 0 and env.total("success") == 1


@pytest.mark.parametrize(
    "err",
    [
        FencedError("PUT x refused: this process does not hold the leader lease"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=["fenced", "no answer"],
)
def test_a_transient_error_backs_off_no_longer_than_the_cap(err: Exception) -> None:
    """A kcp outage fails a key many times in a row (connection refused, then the closed fence
    until the lease is renewed); its retries must keep coming within the cap afterwards."""
    grown = [0.005 * 2.0**i for i in range(14)]  # 5 ms ... 41 s uncapped
    _retried_after(err, [min(d, TRANSIENT_RETRY_CAP) for d in grown])


def test_any_other_error_keeps_the_full_exponential_backoff() -> None:
    _retried_after(RuntimeError("bad"), [0.005 * 2.0**i for i in range(12)])  # up to 10.24 s


def test_terminal_error_is_not_requeued() -> None:
    def reconcile(key: str) -> Result:
        raise TerminalError("bad spec")

    env = Env(reconcile)
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    assert env.queue.num_waiting() == 0 and len(env.queue) == 0
    assert env.metric("controller_runtime_terminal_reconcile_errors_total") == 1
    assert env.metric("controller_runtime_reconcile_errors_total") == 1
    assert env.total("error") == 1


def test_requeue_after_forgets_then_waits_exactly() -> None:
    env = Env(lambda key: Result(requeue=True, requeue_after=30.0))  # requeue_after wins
    env.queue.rate_limiter.when("k")
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    assert env.queue.num_requeues("k") == 0
    env.step_until_ready(30.0)
    assert env.total("requeue_after") == 1
    assert env.total("requeue") == 0


def test_requeue_is_rate_limited() -> None:
    env = Env(lambda key: Result(requeue=True))
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    env.step_until_ready(0.005)
    env.ctrl.process_next_work_item()
    env.step_until_ready(0.01)
    assert env.queue.num_requeues("k") == 2
    assert env.total("requeue") == 2


def test_zero_requeue_after_is_plain_success() -> None:
    env = Env(lambda key: Result(requeue_after=0.0))
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    assert env.total("success") == 1
    assert env.queue.num_waiting() == 0


def test_metrics_time_and_active_workers() -> None:
    active: list[float | None] = []

    def reconcile(key: str) -> Result:
        active.append(env.metric("controller_runtime_active_workers"))
        env.clock.step(0.25)
        return Result()

    env = Env(reconcile, workers=3)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert env.total(result) == 0, "series exist from the start"
    assert env.metric("controller_runtime_max_concurrent_reconciles") == 3
    env.ctrl.enqueue("k")
    env.ctrl.process_next_work_item()
    assert active == [1]
    assert env.metric("controller_runtime_active_workers") == 0
    assert env.metric("controller_runtime_reconcile_time_seconds_count") == 1
    assert env.metric("controller_runtime_reconcile_time_seconds_sum") == 0.25


def test_errors_are_logged_key_value(caplog: pytest.LogCaptureFixture) -> None:
    def reconcile(key: str) -> Result:
        raise ValueError("boom")

    env = Env(reconcile)
    env.ctrl.enqueue("ns/name")
    with caplog.at_level(logging.ERROR, logger="pkg.runtime.controller"):
        env.ctrl.process_next_work_item()
    (record,) = caplog.records
    assert "Reconciler error controller=c key=ns/name reconcileID=" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


# --- with worker threads ----------------------------------------------------------------------


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.CRITICAL, logger="pkg.runtime.controller"):
        yield


@pytest.mark.usefixtures("quiet_logs")
def test_an_exception_does_not_kill_the_worker() -> None:
    done = threading.Event()

    def reconcile(key: str) -> Result:
        if key == "bad":
            raise RuntimeError("boom")
        done.set()
        return Result()

    env = Env(reconcile, workers=1)
    env.ctrl.start()
    env.ctrl.enqueue("bad")
    eventually(lambda: env.queue.num_waiting() == 1)  # bad waits for its 5 ms on the fake clock
    env.ctrl.enqueue("good")
    assert done.wait(2)
    assert env.ctrl.stop(timeout=2)


@pytest.mark.usefixtures("quiet_logs")
def test_a_worker_survives_a_failing_rate_limiter() -> None:
    class Broken:
        def when(self, item: object) -> float:
            raise OSError("limiter broke")

        def forget(self, item: object) -> None:
            pass

        def num_requeues(self, item: object) -> int:
            return 0

    seen: list[str] = []

    def reconcile(key: str) -> Result:
        seen.append(key)
        if key == "bad":
            raise RuntimeError("boom")
        return Result()

    queue: RateLimitingQueue[str] = RateLimitingQueue(Broken())
    ctrl = Controller("c", reconcile, queue, registry=CollectorRegistry())
    ctrl.start()
    ctrl.enqueue("bad")
    ctrl.enqueue("good")
    eventually(lambda: seen == ["bad", "good"])
    assert ctrl.stop(timeout=2)


def test_workers_never_reconcile_one_key_concurrently() -> None:
    lock = threading.Lock()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    count = [0]

    def reconcile(key: str) -> Result:
        with lock:
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            count[0] += 1
        time.sleep(0.0002)
        with lock:
            in_flight.discard(key)
        return Result()

    queue: RateLimitingQueue[str] = RateLimitingQueue()
    ctrl = Controller("c", reconcile, queue, workers=8, registry=CollectorRegistry())
    ctrl.start()
    for i in range(2000):
        ctrl.enqueue(f"k{i % 4}")
        if i % 50 == 0:
            time.sleep(0.001)
    assert ctrl.stop(timeout=5)
    assert not overlaps
    assert count[0] > 4


@pytest.mark.parametrize("drain", [True, False])
def test_stop_finishes_in_flight_and_drains_on_request(drain: bool) -> None:
    started = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def reconcile(key: str) -> Result:
        seen.append(key)
        started.set()
        release.wait(2)
        return Result()

    env = Env(reconcile)
    for key in ("a", "b", "c"):
        env.ctrl.enqueue(key)
    env.queue.add_after("later", 1.0)
    env.ctrl.start()
    assert started.wait(2)
    stopper = threading.Thread(target=env.ctrl.stop, kwargs={"drain": drain})
    stopper.start()
    eventually(env.queue.shutting_down)
    stopper.join(0.05)
    assert stopper.is_alive(), "stop waits for the reconcile in progress"
    release.set()
    stopper.join(2)
    assert not stopper.is_alive()
    assert seen == (["a", "b", "c"] if drain else ["a"])
    env.ctrl.enqueue("d")
    assert len(env.queue) == 0


def test_run_until_stop_event() -> None:
    seen = threading.Event()
    ctrl: Controller[str] = Controller("c", lambda key: seen.set(), registry=CollectorRegistry())
    stop = threading.Event()
    runner = threading.Thread(target=ctrl.run, args=(stop,))
    runner.start()
    ctrl.enqueue("k")
    assert seen.wait(2)
    stop.set()
    runner.join(2)
    assert not runner.is_alive()


def test_start_twice_and_bad_worker_count() -> None:
    ctrl: Controller[str] = Controller("c", lambda key: None, registry=CollectorRegistry())
    ctrl.start()
    with pytest.raises(RuntimeError):
        ctrl.start()
    ctrl.stop()
    with pytest.raises(ValueError):
        Controller("c", lambda key: None, workers=0, registry=CollectorRegistry())
