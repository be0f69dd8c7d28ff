"""Informer memory and sync time over many objects, against a kcp of its own.

Starts kcp (hack/kcp.sh, a fresh root directory), creates ``--objects`` ConfigMaps of about
``--size`` bytes of JSON each in one namespace (from a thread pool), then runs informers over them:

* a timed run: list (``resourceVersion=0``, served whole by the watch cache) until synced, and the
  growth of the process's RSS with the cache in memory;
* a tracemalloc run: the bytes the cache retains per object once the informer has synced and
  stopped, with the objects as served and with ``managedFields`` dropped by a transform.

kcp is stopped (and its directory removed) at the end::

    python -m bench.informer_memory [--objects 10000] [--size 1024] [--workers 16]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pkg.runtime import kcp
from pkg.runtime.informer import Informer
from pkg.runtime.rest import RestClient
from pkg.runtime.store import Object
from test.e2e.kcpserver import KcpServer

NAMESPACE = "bench"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
SELECTOR = "bench=informer"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def configmap(i: int, size: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "informer", "shard": str(i % 10)}},
        "data": {"payload": ""},
    }
    # Pad to about `size` bytes of JSON as the server returns it (it adds uid, timestamps, fields).
    served_overhead = 405
    body["data"]["payload"] = "x" * max(0, size - len(json.dumps(body)) - served_overhead)
    return body


def create_objects(client: RestClient, count: int, size: int, workers: int) -> float:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda i: client.create(path, configmap(i, size)), range(count)):
            pass
    return time.perf_counter() - start


def strip_managed_fields(obj: Object) -> Object:
    obj["metadata"].pop("managedFields", None)
    return obj


def timed_sync(client: RestClient, count: int) -> tuple[float, int]:
    """Seconds from start to synced, and the RSS growth with the cache held."""
    gc.collect()
    rss_before = rss_bytes()
    informer = Informer(client, PATH, label_selector=SELECTOR)
    start = time.perf_counter()
    informer.start()
    assert informer.wait_for_cache_sync(600), "informer did not sync"
    elapsed = time.perf_counter() - start
    informer.stop()
    assert len(informer.indexer) == count, len(informer.indexer)
    gc.collect()
    grown = rss_bytes() - rss_before
    del informer
    return elapsed, grown


def traced_cache_bytes(client: RestClient, count: int, transform: Callable[[Object], Object] | None) -> int:
    """Bytes allocated while syncing that are still held once the informer has stopped (its cache)."""
    gc.collect()
    tracemalloc.start()
    informer = Informer(client, PATH, label_selector=SELECTOR, transform=transform)
    informer.start()
    assert informer.wait_for_cache_sync(600), "informer did not sync"
    informer.stop()
    gc.collect()
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(informer.indexer) == count
    return held


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024, help="approximate JSON bytes per object")
    parser.add_argument("--workers", type=int, default=16, help="threads creating the objects")
    args = parser.parse_args()

    server = KcpServer(Path(tempfile.mkdtemp(prefix="ks-bench-informer-")))
    try:
        started = time.perf_counter()
        server.start()
        print(f"kcp started in {time.perf_counter() - started:.1f}s ({server.dir})")
        client = kcp.cluster(server.client(), kcp.ROOT)
        client.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        took = create_objects(client, args.objects, args.size, args.workers)
        print(f"created {args.objects} ConfigMaps in {took:.1f}s ({args.objects / took:.0f}/s)")
        sample = client.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-00000")
        json_size = len(json.dumps(sample, separators=(",", ":")))
        print(f"one object as served: {json_size} bytes of JSON")

        elapsed, grown = timed_sync(client, args.objects)
        print(f"list+sync: {elapsed:.2f}s ({args.objects / elapsed:.0f} objects/s)")
        per_object = grown / args.objects
        print(f"RSS growth with the cache held: {grown / 2**20:.1f} MiB ({per_object:.0f} B/object)")
        for label, transform in [("as served", None), ("managedFields dropped", strip_managed_fields)]:
            held = traced_cache_bytes(client, args.objects, transform)
            print(
                f"cache ({label}), tracemalloc: {held / 2**20:.1f} MiB "
                f"({held / args.objects:.0f} B/object, {held / args.objects / json_size:.1f}x its JSON)"
            )
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
