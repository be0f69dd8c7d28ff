"""A controller: worker threads feeding keys from a rate-limiting queue to a reconciler.

This ports controller-runtime's ``internal/controller`` worker loop and ``reconcileHandler``.  The
queue guarantees that no two workers reconcile the same key at once, and that a key added while it
is being reconciled is reconciled again afterwards.  What happens after a reconcile:

=================================  =========================================  ===================
outcome                            queue                                      ``result`` label
=================================  =========================================  ===================
raises :class:`TerminalError`      nothing (logged; not retried)              ``error``
raises a *transient* error         ``add_after`` the rate limiter's delay,    ``error``
                                   capped at :data:`TRANSIENT_RETRY_CAP`
                                   (logged)
raises any other exception         ``add_rate_limited`` (logged)              ``error``
``Result(requeue_after=d)``, d>0   ``forget``, then ``add_after(d)``          ``requeue_after``
``Result(requeue=True)``           ``add_rate_limited``                       ``requeue``
``Result()`` or ``None``           ``forget``                                 ``success``
=================================  =========================================  ===================

``requeue_after`` wins over ``requeue``.  An exception never ends a worker.

A transient error says nothing about the key: the leader fence refused the write
(:class:`~pkg.runtime.rest.FencedError`: the lease is not renewed yet) or the server did not
answer.  Its per-item backoff still grows from 5 ms, but never past the cap: a key that failed a
few dozen times during a kcp outage would otherwise wait up to client-go's 1000 s after the server
and the lease are back, while nothing else would wake it (its objects did not change).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pkg.runtime import reachability
from pkg.runtime.metrics import PerRegistry
from pkg.runtime.rest import FencedError
from pkg.runtime.workqueue import RateLimitingQueue

K = TypeVar("K", bound=Hashable)

_log = logging.getLogger(__name__)

TRANSIENT_RETRY_CAP = 2.0
"""The longest wait before retrying a key whose reconcile failed with a transient error."""


def transient(err: BaseException) -> bool:
    """Whether ``err`` is about the process's standing, not the key: fenced, or no answer."""
    return isinstance(err, FencedError) or reachability.unreachable(err)


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next.  The zero value means: done, forget the key's failures."""

    requeue: bool = False
    requeue_after: float | None = None


class TerminalError(Exception):
    """Raised by a reconciler for an error retrying cannot fix: counted and logged, not requeued."""


Reconciler = Callable[[K], Result | None]

# controller-runtime's reconcile_time_seconds buckets.
_RECONCILE_TIME_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9),
    *(1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60),
)


@dataclass(frozen=True)
class _Families:
    reconcile_total: Counter
    reconcile_errors: Counter
    terminal_errors: Counter
    reconcile_time: Histogram
    max_concurrent: Gauge
    active_workers: Gauge


def _build_families(registry: CollectorRegistry) -> _Families:
    ctrl = ["controller"]
    return _Families(
        reconcile_total=Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            [*ctrl, "result"],
            registry=registry,
        ),
        reconcile_errors=Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ctrl,
            registry=registry,
        ),
        terminal_errors=Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            ctrl,
            registry=registry,
        ),
        reconcile_time=Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ctrl,
            buckets=_RECONCILE_TIME_BUCKETS,
            registry=registry,
        ),
        max_concurrent=Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ctrl,
            registry=registry,
        ),
        active_workers=Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ctrl,
            registry=registry,
        ),
    )


_families = PerRegistry(_build_families)


class Controller(Generic[K]):
    """Runs ``workers`` threads that reconcile the keys put in ``queue``.

    The default queue is a :class:`RateLimitingQueue` named after the controller, with client-go's
    default controller rate limiter (5 ms to 1000 s per key, 10 qps / 100 burst overall).
    Durations are measured on the queue's clock.
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler[K],
        queue: RateLimitingQueue[K] | None = None,
        *,
        workers: int = 1,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"controller {name}: workers must be >= 1, got {workers}")
        self.name = name
        self.reconciler = reconciler
        self.queue: RateLimitingQueue[K] = (
            RateLimitingQueue(name=name, registry=registry) if queue is None else queue
        )
        self.workers = workers
        self._threads: list[threading.Thread] = []
        self._abandon = threading.Event()  # set by stop(drain=False): skip what is still queued
        families = _families(registry)
        self._total = {
            result: families.reconcile_total.labels(name, result)
            for result in ("success", "error", "requeue", "requeue_after")
        }
        self._errors = families.reconcile_errors.labels(name)
        self._terminal_errors = families.terminal_errors.labels(name)
        self._time = families.reconcile_time.labels(name)
        self._active = families.active_workers.labels(name)
        families.max_concurrent.labels(name).set(workers)

    def enqueue(self, key: K) -> None:
        self.queue.add(key)

    def start(self) -> None:
        """Start the worker threads.  A controller starts once."""
        if self._threads:
            raise RuntimeError(f"controller {self.name} was already started")
        _log.info("Starting workers controller=%s workerCount=%d", self.name, self.workers)
        self._threads = [
            threading.Thread(target=self._worker, name=f"{self.name}-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, drain: bool = True, timeout: float | None = None) -> bool:
        """Shut the queue down and wait for the workers; ``True`` if they all ended within ``timeout``.

        With ``drain`` the workers first reconcile every key already queued (keys waiting on a
        delay are dropped); without it they only finish the reconciles in progress.
        """
        _log.info("Shutdown signal received, waiting for all workers to finish controller=%s", self.name)
        if not drain:
            self._abandon.set()
        self.queue.shut_down()  # workers still get what is queued, then see shutdown
        for thread in self._threads:
            thread.join(timeout)
        stopped = not any(thread.is_alive() for thread in self._threads)
        if stopped:
            _log.info("All workers finished controller=%s", self.name)
        return stopped

    def run(self, stop: threading.Event, drain: bool = True) -> None:
        """Start, block until ``stop`` is set, then stop (the shape of a manager runnable)."""
        self.start()
        stop.wait()
        self.stop(drain)

    def process_next_work_item(self) -> bool:
        """Take one key and reconcile it; ``False`` once the queue is shut down and empty."""
        item, shutdown = self.queue.get()
        if shutdown:
            return False
        key = cast(K, item)
        try:
            if not self._abandon.is_set():
                self._active.inc()
                try:
                    self._reconcile_handler(key)
                finally:
                    self._active.dec()
        finally:
            self.queue.done(key)
        return True

    def _worker(self) -> None:
        while True:
            try:
                if not self.process_next_work_item():
                    return
            except Exception:  # a failure outside the reconciler, e.g. in a rate limiter
                _log.exception("Worker error controller=%s", self.name)

    def _reconcile_handler(self, key: K) -> None:
        clock = self.queue.clock
        # controller-runtime's reconcileID tags the error lines below; it is made only when one is
        # logged: uuid4 reads os.urandom, a system call that gives up the GIL, and in a busy process
        # each worker then waits up to a switch interval to get it back, on every reconcile.
        start = clock.now()
        try:
            result = self.reconciler(key) or Result()
        except TerminalError:
            self._terminal_errors.inc()
            self._errors.inc()
            self._total["error"].inc()
            _log.exception(
                "Reconciler error controller=%s key=%s reconcileID=%s terminal=true",
                self.name,
                key,
                uuid.uuid4(),
            )
        except Exception as err:
            if transient(err):
                delay = min(self.queue.rate_limiter.when(key), TRANSIENT_RETRY_CAP)
                self.queue.add_after(key, delay)
            else:
                self.queue.add_rate_limited(key)
            self._errors.inc()
            self._total["error"].inc()
            _log.exception(
                "Reconciler error controller=%s key=%s reconcileID=%s", self.name, key, uuid.uuid4()
            )
        else:
            if result.requeue_after is not None and result.requeue_after > 0:
                self.queue.forget(key)
                self.queue.add_after(key, result.requeue_after)
                self._total["requeue_after"].inc()
            elif result.requeue:
                self.queue.add_rate_limited(key)
                self._total["requeue"].inc()
            else:
                self.queue.forget(key)
                self._total["success"].inc()
        finally:
            self._time.observe(clock.now() - start)
