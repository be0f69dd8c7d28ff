"""Threads or asyncio?  The measurement behind pkg/runtime's choice of threads.

Against a private kcp, the same N GET requests of one ConfigMap are made with C concurrent workers
in two ways: threads over our RestClient (urllib3, the official client's transport), and asyncio
tasks over aiohttp (the transport of the official client's ``kubernetes.aio``).  Printed: requests
per second and client CPU per request for each, and the ratio asyncio / threads.

    python -m bench.concurrency [--requests 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

from pkg.runtime import kcp
from pkg.runtime.rest import RestClient
from test.e2e.kcpserver import KcpServer

PATH = "/api/v1/namespaces/default/configmaps/bench"


def threads(client: RestClient, n: int, c: int) -> tuple[float, float]:
    per = n // c

    def work() -> None:
        for _ in range(per):
            client.get(PATH)

    workers = [threading.Thread(target=work) for _ in range(c)]
    cpu, wall = time.process_time(), time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - wall, time.process_time() - cpu


async def _aio(url: str, headers: dict[str, str], ctx: ssl.SSLContext, n: int, c: int) -> None:
    connector = aiohttp.TCPConnector(ssl=ctx, limit=c)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def work(count: int) -> None:
            for _ in range(count):
                async with session.get(url) as resp:
                    resp.raise_for_status()
                    await resp.json()

        await asyncio.gather(*(work(n // c) for _ in range(c)))


def aio(client: RestClient, n: int, c: int) -> tuple[float, float]:
    cfg = client.endpoint.configuration
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    headers = {"Authorization": client.endpoint.authorization() or "", "Accept": "application/json"}
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(_aio(client.url(PATH), headers, ctx, n, c))
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    server = KcpServer(Path(tempfile.mkdtemp(prefix="ks-bench-concurrency-")))
    server.start()
    try:
        admin = server.client()
        ws = kcp.ensure_workspace(admin, "root:bench-concurrency")
        c = kcp.cluster(admin, ws.path)
        kcp.wait_for("namespace default", lambda: c.get("/api/v1/namespaces/default"), 60)
        c.create(
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "bench"}, "data": {"k": "v" * 1024}},
        )
        threads(c, 200, args.concurrency)  # warm up both
        aio(c, 200, args.concurrency)
        t_wall, t_cpu = threads(c, args.requests, args.concurrency)
        a_wall, a_cpu = aio(c, args.requests, args.concurrency)
        n = args.requests
        print(f"{n} GETs, {args.concurrency} concurrent, against kcp on 127.0.0.1")
        print(f"{'transport':<24}{'req/s':>10}{'client CPU ms/req':>20}")
        print(f"{'threads + urllib3':<24}{n / t_wall:>10.0f}{1000 * t_cpu / n:>20.3f}")
        print(f"{'asyncio + aiohttp':<24}{n / a_wall:>10.0f}{1000 * a_cpu / n:>20.3f}")
        print(f"ratio asyncio/threads: throughput {t_wall / a_wall:.2f}, CPU per request {a_cpu / t_cpu:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
