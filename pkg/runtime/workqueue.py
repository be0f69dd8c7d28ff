"""Work queues and rate limiters with the semantics of client-go's ``util/workqueue``, for threads.

Three queues, each extending the one before:

* :class:`Queue` is fair (first in, first out), stingy (an item added many times before a worker
  takes it is processed once) and exclusive (an item is held by at most one worker at a time, yet
  an add made while it is held is not lost: the item comes back once the worker calls ``done``).
* :class:`DelayingQueue` adds :meth:`~DelayingQueue.add_after`.
* :class:`RateLimitingQueue` adds :meth:`~RateLimitingQueue.add_rate_limited`, with the delay
  chosen by a :class:`RateLimiter`.

The canonical worker loop::

    while True:
        item, shutdown = q.get()
        if shutdown:
            return
        try:
            handle(item)
            q.forget(item)  # success: clear the item's failure history
        except Exception:
            q.add_rate_limited(item)  # failure: retry later, with backoff
        finally:
            q.done(item)  # always

Items must be hashable.  A queue with a non-empty ``name`` reports the ``workqueue_*`` metrics,
labelled ``name``, as client-go does; an unnamed queue reports none.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pkg.runtime.clock import Clock, RealClock
from pkg.runtime.metrics import PerRegistry

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)

UNFINISHED_WORK_UPDATE_PERIOD = 0.5
"""Seconds between refreshes of the unfinished-work gauges (client-go's 500 ms)."""

MAX_WAIT = 10.0
"""The delaying loop re-checks its heap at least this often, as insurance (client-go's ``maxWait``)."""

# client-go's prometheus.ExponentialBuckets(10e-9, 10, 12): 10 ns to 1000 s.
_DURATION_BUCKETS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


# --- metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Families:
    depth: Gauge
    adds: Counter
    queue_duration: Histogram
    work_duration: Histogram
    unfinished_work: Gauge
    longest_running: Gauge
    retries: Counter


def _build_families(registry: CollectorRegistry) -> _Families:
    label = ["name"]
    return _Families(
        depth=Gauge("workqueue_depth", "Current depth of workqueue", label, registry=registry),
        adds=Counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue", label, registry=registry
        ),
        queue_duration=Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            label,
            buckets=_DURATION_BUCKETS,
            registry=registry,
        ),
        work_duration=Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            label,
            buckets=_DURATION_BUCKETS,
            registry=registry,
        ),
        unfinished_work=Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
            "threads by observing the rate at which this increases.",
            label,
            registry=registry,
        ),
        longest_running=Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            label,
            registry=registry,
        ),
        retries=Counter(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            label,
            registry=registry,
        ),
    )


_families = PerRegistry(_build_families)


class _QueueMetrics(Generic[T]):
    """client-go's defaultQueueMetrics.  Called with the queue's lock held, except :meth:`retry`.

    ``depth`` counts dirty items (including those dirty again while processing); the queue
    duration runs from the first add to the get, the work duration from the get to the done.
    """

    def __init__(self, name: str, clock: Clock, families: _Families) -> None:
        self._clock = clock
        self._depth = families.depth.labels(name)
        self._adds = families.adds.labels(name)
        self._queue_duration = families.queue_duration.labels(name)
        self._work_duration = families.work_duration.labels(name)
        self._unfinished_work = families.unfinished_work.labels(name)
        self._longest_running = families.longest_running.labels(name)
        self._retries = families.retries.labels(name)
        self._added_at: dict[T, float] = {}
        self._started_at: dict[T, float] = {}

    def add(self, item: T) -> None:
        self._adds.inc()
        self._depth.inc()
        self._added_at.setdefault(item, self._clock.now())

    def get(self, item: T) -> None:
        now = self._clock.now()
        self._depth.dec()
        self._started_at[item] = now
        added_at = self._added_at.pop(item, None)
        if added_at is not None:
            self._queue_duration.observe(now - added_at)

    def done(self, item: T) -> None:
        started_at = self._started_at.pop(item, None)
        if started_at is not None:
            self._work_duration.observe(self._clock.now() - started_at)

    def update_unfinished_work(self) -> None:
        now = self._clock.now()
        ages = [now - t for t in self._started_at.values()]
        self._unfinished_work.set(sum(ages))
        self._longest_running.set(max(ages, default=0.0))

    def retry(self) -> None:
        self._retries.inc()


# --- Queue -------------------------------------------------------------------------------------


class Queue(Generic[T]):
    """A fair, stingy, exclusive work queue (client-go's ``workqueue.Type``).

    Invariants, kept under one lock:

    * every item in the FIFO is dirty and not processing, and appears there once;
    * ``dirty`` holds the items that need processing; ``processing`` those handed out by
      :meth:`get` and not yet :meth:`done`;
    * an item both dirty and processing waits outside the FIFO until :meth:`done` puts it back,
      so no two workers ever hold the same item.
    """

    def __init__(
        self, name: str = "", *, clock: Clock | None = None, registry: CollectorRegistry | None = None
    ) -> None:
        self.name = name
        self.clock: Clock = RealClock() if clock is None else clock
        self._cond = threading.Condition()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._drain = False
        self._metrics: _QueueMetrics[T] | None = None
        self._tick_cond = threading.Condition()
        self._tick_stop = False
        if name:
            self._metrics = _QueueMetrics(name, self.clock, _families(registry))
            first_tick = self.clock.now() + UNFINISHED_WORK_UPDATE_PERIOD
            threading.Thread(
                target=self._update_unfinished_work_loop,
                args=(self._metrics, first_tick),
                name=f"workqueue-metrics-{name}",
                daemon=True,
            ).start()

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing.  Ignored after shutdown; a no-op if already dirty."""
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            if self._metrics is not None:
                self._metrics.add(item)
            self._dirty.add(item)
            if item in self._processing:
                return  # done() will queue it again
            self._queue.append(item)
            self._cond.notify()

    def __len__(self) -> int:
        """The number of items waiting for a worker.  Informational only: don't gate add/get on it."""
        with self._cond:
            return len(self._queue)

    def get(self) -> tuple[T | None, bool]:
        """Block until an item is ready, and return ``(item, False)``; or ``(None, True)`` on shutdown.

        After a shutdown the items already queued are still handed out; ``(None, True)`` comes once
        the FIFO is empty.  The caller must call :meth:`done` with the item it got.
        """
        with self._cond:
            while not self._queue and not self._shutting_down:
                self._cond.wait()
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            if self._metrics is not None:
                self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item: T) -> None:
        """Mark ``item`` as processed; if it was added again meanwhile, queue it again now."""
        with self._cond:
            if self._metrics is not None:
                self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            elif not self._processing:
                self._cond.notify()  # wakes shut_down_with_drain()

    def shut_down(self) -> None:
        """Refuse new items from now on; workers take what is queued, then get ``shutdown=True``."""
        with self._cond:
            self._drain = False
            self._shutting_down = True
            self._cond.notify_all()
        self._stop_background()

    def shut_down_with_drain(self) -> None:
        """Like :meth:`shut_down`, then wait until every item handed out has been marked done.

        Workers must call :meth:`done` on everything they got, or this blocks forever; a later
        :meth:`shut_down` from another thread ends the wait.
        """
        with self._cond:
            self._drain = True
            self._shutting_down = True
            self._cond.notify_all()
        self._stop_background()
        with self._cond:
            while self._processing and self._drain:
                self._cond.wait()

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def _stop_background(self) -> None:
        """Stop this queue's background threads.  Called without the queue's lock held."""
        with self._tick_cond:
            self._tick_stop = True
            self._tick_cond.notify_all()

    def _update_unfinished_work_loop(self, metrics: _QueueMetrics[T], next_tick: float) -> None:
        with self._tick_cond:
            while not self._tick_stop:
                now = self.clock.now()
                if now < next_tick:
                    self.clock.wait(self._tick_cond, next_tick - now)
                    continue
                with self._cond:
                    metrics.update_unfinished_work()
                while next_tick <= now:  # a ticker drops the ticks it missed
                    next_tick += UNFINISHED_WORK_UPDATE_PERIOD


class DelayingQueue(Queue[T]):
    """A :class:`Queue` whose items can also be added after a delay (client-go's ``delayingType``).

    Invariants: an item waits in the heap at most once (a second :meth:`add_after` of a waiting item
    keeps the earlier of the two ready times); items become ready in ready-time order, and leave the
    heap through :meth:`Queue.add`, so the usual dedup applies.  Waiting items are dropped on shutdown.
    """

    def __init__(
        self, name: str = "", *, clock: Clock | None = None, registry: CollectorRegistry | None = None
    ) -> None:
        super().__init__(name, clock=clock, registry=registry)
        self._wait_cond = threading.Condition()
        self._heap: list[tuple[float, int, T]] = []  # (ready_at, seq, item); seq breaks ties FIFO
        self._waiting: dict[T, tuple[float, int]] = {}  # item -> its live heap entry
        self._seq = itertools.count()
        self._loop_stop = False
        threading.Thread(target=self._waiting_loop, name=f"workqueue-delay-{name}", daemon=True).start()

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed (at once if ``delay <= 0``).

        Ignored after shutdown.  Each call counts as a retry in ``workqueue_retries_total``.
        """
        if self.shutting_down():
            return
        if self._metrics is not None:
            self._metrics.retry()
        if delay <= 0:
            self.add(item)
            return
        ready_at = self.clock.now() + delay
        with self._wait_cond:
            live = self._waiting.get(item)
            if live is not None and live[0] <= ready_at:
                return
            entry = (ready_at, next(self._seq))
            self._waiting[item] = entry  # any older entry for item is now stale
            heapq.heappush(self._heap, (*entry, item))
            self._wait_cond.notify()

    def num_waiting(self) -> int:
        """How many items are waiting for their delay to pass.  Informational only."""
        with self._wait_cond:
            return len(self._waiting)

    def _stop_background(self) -> None:
        super()._stop_background()
        with self._wait_cond:
            self._loop_stop = True
            self._heap.clear()
            self._waiting.clear()
            self._wait_cond.notify_all()

    def _waiting_loop(self) -> None:
        # Lock order: _wait_cond, then the queue's lock (inside add()); never the reverse.
        with self._wait_cond:
            while not self._loop_stop:
                now = self.clock.now()
                while self._heap and self._heap[0][0] <= now:
                    ready_at, seq, item = heapq.heappop(self._heap)
                    if self._waiting.get(item) == (ready_at, seq):
                        del self._waiting[item]
                        self.add(item)
                timeout = MAX_WAIT if not self._heap else min(self._heap[0][0] - now, MAX_WAIT)
                self.clock.wait(self._wait_cond, timeout)


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` that asks a :class:`RateLimiter` how long each retry should wait.

    :meth:`forget` only clears the limiter's history for an item: the worker still calls
    :meth:`~Queue.done`.  Remember to forget an item once it succeeds, or its backoff keeps growing.
    """

    def __init__(
        self,
        rate_limiter: RateLimiter[T] | None = None,
        name: str = "",
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, clock=clock, registry=registry)
        self.rate_limiter: RateLimiter[T] = (
            default_controller_rate_limiter(clock=self.clock) if rate_limiter is None else rate_limiter
        )

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter gives for it now."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking ``item``'s retries (its next backoff starts from the base again)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)


# --- rate limiters -----------------------------------------------------------------------------


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """Seconds ``item`` should wait before its next attempt; records the attempt."""
        ...

    def forget(self, item: T_contra) -> None:
        """Drop ``item``'s history, whether it succeeded or was given up."""
        ...

    def num_requeues(self, item: T_contra) -> int:
        """How many times ``item`` has been requeued (0 for limiters that do not count)."""
        ...


class ItemExponentialFailureRateLimiter(Generic[T]):
    """Per-item backoff: the n-th consecutive :meth:`when` for an item gives ``base * 2**(n-1)``.

    With the defaults that is 5 ms, 10 ms, 20 ms, ... capped at ``max_delay`` (1000 s).
    """

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        with self._lock:
            exp = self._failures.get(item, 0)
            self._failures[item] = exp + 1
        try:
            backoff = self.base_delay * 2.0**exp
        except OverflowError:
            return self.max_delay
        return min(backoff, self.max_delay)

    def forget(self, item: T) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter:
    """One token bucket shared by all items: ``qps`` tokens a second, holding at most ``burst``.

    It never blocks: like ``rate.Limiter.Reserve().Delay()`` in golang.org/x/time/rate, each
    :meth:`when` takes a token now, letting the balance go negative, and returns how long until the
    bucket would have refilled to pay for it.  The bucket starts full.  ``qps=math.inf`` means no limit.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"BucketRateLimiter needs qps > 0 and burst >= 1, got qps={qps} burst={burst}")
        self.qps = qps
        self.burst = burst
        self._clock: Clock = RealClock() if clock is None else clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def when(self, item: object) -> float:
        if math.isinf(self.qps):
            return 0.0
        with self._lock:
            now = self._clock.now()
            elapsed = now - min(self._last, now)  # time going backwards refills nothing
            tokens = min(self._tokens + elapsed * self.qps, float(self.burst)) - 1.0
            self._last = now
            self._tokens = tokens
        return -tokens / self.qps if tokens < 0 else 0.0

    def forget(self, item: object) -> None:
        pass

    def num_requeues(self, item: object) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The longest delay of several limiters.

    Every limiter is consulted on each :meth:`when` (so a bucket spends a token even when another
    limiter's delay wins); :meth:`num_requeues` is the largest count; :meth:`forget` goes to all.
    """

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        self.limiters = limiters

    def when(self, item: T) -> float:
        return max([limiter.when(item) for limiter in self.limiters], default=0.0)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max((limiter.num_requeues(item) for limiter in self.limiters), default=0)


def default_controller_rate_limiter(
    *,
    base_delay: float = 0.005,
    max_delay: float = 1000.0,
    qps: float = 10.0,
    burst: int = 100,
    clock: Clock | None = None,
) -> MaxOfRateLimiter[Hashable]:
    """client-go's ``DefaultControllerRateLimiter``: per-item exponential backoff (5 ms to 1000 s),
    and an overall 10 qps / 100 burst bucket that only bounds the total retry rate."""
    return MaxOfRateLimiter[Hashable](
        ItemExponentialFailureRateLimiter(base_delay, max_delay),
        BucketRateLimiter(qps, burst, clock=clock),
    )
