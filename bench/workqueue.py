"""Workqueue throughput: items per second through N worker threads with a trivial reconcile.

Each run adds ``--items`` distinct keys from one producer while the workers take them, then shuts
the queue down and waits for the workers.  The baseline is a plain ``queue.Queue`` with the same
workers (ended by one sentinel each), measured in the same process, so the ratio says what
client-go's semantics (dedup, exclusive processing, done()) cost on top of a FIFO::

    python -m bench.workqueue [--items 100000] [--workers 1 2 4 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from pkg.runtime.workqueue import Queue

Run = Callable[[int, int], float]


def reconcile(item: int) -> None:
    pass


def _timed(workers: list[threading.Thread], produce: Callable[[], None]) -> float:
    start = time.perf_counter()
    for w in workers:
        w.start()
    produce()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def baseline(items: int, n: int) -> float:
    q: queue.Queue[int | None] = queue.Queue()

    def worker() -> None:
        while (item := q.get()) is not None:
            reconcile(item)

    def produce() -> None:
        for i in range(items):
            q.put(i)
        for _ in range(n):
            q.put(None)

    return _timed([threading.Thread(target=worker) for _ in range(n)], produce)


def workqueue(items: int, n: int, name: str = "") -> float:
    q: Queue[int] = Queue(name, registry=CollectorRegistry())

    def worker() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown or item is None:
                return
            reconcile(item)
            q.done(item)

    def produce() -> None:
        for i in range(items):
            q.add(i)
        q.shut_down()  # workers take what is left, then exit

    return _timed([threading.Thread(target=worker) for _ in range(n)], produce)


def with_metrics(items: int, n: int) -> float:
    return workqueue(items, n, name="bench")


def best_rate(run: Run, items: int, n: int, repeat: int) -> float:
    return items / min(run(items, n) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    print(f"{args.items} items, trivial reconcile, best of {args.repeat}; items/s (ratio to queue.Queue)")
    print(f"{'workers':>7}  {'queue.Queue':>11}  {'workqueue':>17}  {'workqueue+metrics':>17}")
    for n in args.workers:
        base = best_rate(baseline, args.items, n, args.repeat)
        plain = best_rate(workqueue, args.items, n, args.repeat)
        metered = best_rate(with_metrics, args.items, n, args.repeat)
        print(
            f"{n:>7}  {base:>11,.0f}  {plain:>9,.0f} ({plain / base:.2f})  "
            f"{metered:>9,.0f} ({metered / base:.2f})"
        )


if __name__ == "__main__":
    main()
