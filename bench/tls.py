"""The cost of a new connection to kcp: the official client's pool as built, against ours.

    python -m bench.tls [--connections 200] [--repeat 3]

Starts a private kcp (hack/kcp.sh), then, ``--repeat`` times and interleaved, opens
``--connections`` new connections through each pool, one GET of ``/api`` on each (the pool is
cleared after every request, so each request pays a full connection set-up), and reports the
CPU time per connection of this process and of kcp, and the wall time:

* *as built*: ``kubernetes.client.rest.RESTClientObject``'s urllib3 pool, which builds a TLS
  context per connection and loads the CA and client certificate into it each time;
* *ours*: :func:`pkg.runtime.rest._pool`, one context per transport, and TLS session resumption
  (each new connection offers the latest session ticket, so kcp runs an abbreviated handshake).

A controller opens one connection per watch (the placement translator about 60 as it starts), so
these costs count once per informer and again after every reconnect.  Medians of the runs, and
ratios ours / as built.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import urllib3

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes.client.rest import RESTClientObject

from pkg.runtime import rest
from pkg.runtime.kubeconfig import Endpoint, KubeconfigSource
from test.e2e.kcpserver import KcpServer


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _kcp_cpu(server: KcpServer) -> float:
    pid = int((server.dir / "kcp.pid").read_text())
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def as_built(endpoint: Endpoint) -> urllib3.PoolManager:
    endpoint.configuration.connection_pool_maxsize = rest.POOL_SIZE
    return RESTClientObject(endpoint.configuration).pool_manager


def measure(
    server: KcpServer, endpoint: Endpoint, make: Callable[[Endpoint], urllib3.PoolManager], n: int
) -> dict[str, float]:
    pool = make(endpoint)
    url = endpoint.server.rstrip("/") + "/api"
    headers = rest.RestClient(endpoint)._t.headers()
    cpu, kcp_cpu, wall = _cpu(), _kcp_cpu(server), time.monotonic()
    for _ in range(n):
        resp = pool.request("GET", url, headers=headers, retries=False)
        if resp.status != 200:
            raise SystemExit(f"GET {url}: {resp.status}")
        pool.clear()  # the next request opens a new connection
    return {
        "client_cpu_ms": (_cpu() - cpu) / n * 1e3,
        "kcp_cpu_ms": (_kcp_cpu(server) - kcp_cpu) / n * 1e3,
        "wall_ms": (time.monotonic() - wall) / n * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.tls", description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ks-bench-tls-"))
    server = KcpServer(work).start()
    try:
        endpoint = KubeconfigSource(kubeconfig=str(server.kubeconfig)).load()
        runs: dict[str, list[dict[str, float]]] = {"as built": [], "ours": []}
        for _ in range(args.repeat):
            runs["as built"].append(measure(server, endpoint, as_built, args.connections))
            runs["ours"].append(measure(server, endpoint, rest._pool, args.connections))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in runs.items()}
    print(f"per new connection and GET, median of {args.repeat} interleaved runs of {args.connections}")
    print(f"{'figure':<22}{'as built':>12}{'ours':>12}{'ours/as built':>16}")
    for key, label in (("client_cpu_ms", "client CPU"), ("kcp_cpu_ms", "kcp CPU"), ("wall_ms", "wall time")):
        a, o = med["as built"][key], med["ours"][key]
        print(f"{label:<22}{a:>10.2f}ms{o:>10.2f}ms{o / a:>15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
