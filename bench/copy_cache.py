"""Memory per cached mailbox copy: the translator's compact form against the copy as served.

Starts kcp (hack/kcp.sh, a fresh root directory) and creates ``--copies`` projected copies in one
workspace (with the kube bindings a mailbox has), half ConfigMaps and half Deployments as
bench/scale.py's workload has them (ConfigMaps of about 1.5 KB; Deployments with the server's
defaults filled in).  Then, for each form, an
informer on them is synced and stopped, and tracemalloc counts the bytes its cache still holds:

* *as served*: the object less ``managedFields`` (the factory's transform, pkg/runtime/app.py);
* *compact*: what the translator caches (:func:`pkg.controllers.translator.project.compact`).

It also times the transform per object (CPU, best of ``--repeat``) over the served list, and
prints bytes per copy for each form and the ratio compact / as served::

    python -m bench.copy_cache [--copies 4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.informer_memory import traced_cache_bytes
from bench.scale import PROJECTED, Obj
from pkg import bootstrap
from pkg.controllers.translator.project import compact
from pkg.runtime import app, kcp
from pkg.runtime.rest import RestClient
from pkg.runtime.store import Object
from test.e2e.kcpserver import KcpServer

NAMESPACE = "copies"
SELECTOR = f"{PROJECTED}=yes"
TARGET = 1024
"""Bytes per cached copy the issue sets as the target."""


def copy_body(i: int) -> tuple[str, dict[str, Any]]:
    kind = "ConfigMap" if i % 2 == 0 else "Deployment"
    obj = Obj(0, kind, NAMESPACE, f"{kind.lower()}-{i:05d}", customized=i % 8 < 2)
    body = obj.source()
    body["metadata"]["labels"][PROJECTED] = "yes"
    return obj.collection(), body


def create_copies(client: RestClient, count: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: client.create(*copy_body(i)), range(count)))
    return time.perf_counter() - start


def served(obj: Object) -> Object:
    return app.drop_managed_fields(obj)


def compacted(obj: Object) -> Object:
    return compact(app.drop_managed_fields(obj))


def transform_seconds(items: list[Object], transform: Any, repeat: int) -> float:
    """CPU seconds per object for ``transform`` over fresh decodes of ``items`` (best of ``repeat``)."""
    text = [json.dumps(o) for o in items]
    best = float("inf")
    for _ in range(repeat):
        objs = [json.loads(t) for t in text]
        start = time.process_time()
        for o in objs:
            transform(o)
        best = min(best, time.process_time() - start)
    return best / max(1, len(items))


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.copy_cache", description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    count = args.copies - args.copies % 2
    root_dir = Path(tempfile.mkdtemp(prefix="ks-bench-copies-"))
    server = KcpServer(root_dir / "kcp")
    server.start()
    try:
        admin = server.client()
        bootstrap.init(admin)
        bootstrap.ensure_wmw(admin, "copies")  # serves Deployments, as a mailbox does
        client = kcp.cluster(admin, "root:copies")
        client.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        took = create_copies(client, count)
        print(f"created {count} copies (half ConfigMaps, half Deployments) in {took:.1f}s")
        kinds = ("ConfigMap", "Deployment")
        paths = [Obj(0, kind, NAMESPACE, "", False).collection() for kind in kinds]
        pages = [client.get(p, {"labelSelector": SELECTOR})["items"] for p in paths]
        listed = [o for page in pages for o in page]
        sizes = [len(json.dumps(served(page[-1]), separators=(",", ":"))) for page in pages]
        print(
            "one copy as served, less managedFields: "
            + ", ".join(f"{k} {v} B of JSON" for k, v in zip(kinds, sizes, strict=True))
        )
        rows = []
        for label, transform in (("as served", served), ("compact", compacted)):
            held = sum(traced_cache_bytes(client, count // 2, transform, p, SELECTOR) for p in paths)
            cpu = transform_seconds(listed, transform, args.repeat)
            rows.append((label, held / count, cpu))
        print(f"\n{'form':<12}{'bytes/copy':>12}{'transform µs/copy':>20}")
        for label, per, cpu in rows:
            print(f"{label:<12}{per:>12.0f}{cpu * 1e6:>20.1f}")
        (_, full, _), (_, small, _) = rows
        print(
            f"{'ratio':<12}{small / full:>11.2f}x  (compact / as served; target {TARGET} B per copy: "
            f"{'met' if small <= TARGET else 'not met'})"
        )
    finally:
        server.stop()
        shutil.rmtree(root_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
