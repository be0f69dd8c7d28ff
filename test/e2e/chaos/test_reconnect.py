"""Informers after a kcp outage long enough to push their backoffs toward 30 s: once kcp answers
again they resume soon (pkg/runtime/reachability.py), not one long backoff later, and they do not
all relist at once.  The bound is generous (a loaded 2-core machine); bench/reconnect.py measures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from pkg.runtime import kcp
from pkg.runtime.informer import Informer
from pkg.runtime.reachability import for_client
from test.e2e.kcpserver import KcpServer, unique

INFORMERS = 12
OUTAGE = 40.0  # seconds kcp stays down: refused requests back off 0.8, 1.6, ... up to 30 s (x1-2)
RESUMED_WITHIN = 20.0  # seconds after kcp answers again; a backoff left to run would take up to 60


@pytest.fixture
def informers() -> Iterator[list[Informer]]:
    made: list[Informer] = []
    yield made
    for inf in made:
        inf.stop()


def _eventually(cond: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_informers_resume_soon_after_kcp_answers_again(
    private_kcp: Callable[..., KcpServer], informers: list[Informer]
) -> None:
    server = private_kcp()
    client = kcp.cluster(server.client(), kcp.ROOT)
    namespaces = [unique("rc") for _ in range(INFORMERS)]
    for ns in namespaces:
        client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    for ns in namespaces:
        inf = Informer(client, f"/api/v1/namespaces/{ns}/configmaps", read_timeout=10)
        informers.append(inf)
        inf.start()
    for inf in informers:
        assert inf.wait_for_cache_sync(60)
    lists_before = sum(inf.stats.lists for inf in informers)

    server.stop()
    time.sleep(OUTAGE)
    failures = [inf.stats.failures for inf in informers]
    assert min(failures) >= 3, failures  # each backed off several times: its next wait is long
    server.start()
    other = kcp.cluster(server.client(), kcp.ROOT)  # kcp issued a new admin token
    for ns in namespaces:
        other.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "after"}})

    def resumed() -> bool:
        return all(any(o["metadata"]["name"] == "after" for o in inf.list()) for inf in informers)

    seconds = _eventually(resumed, RESUMED_WITHIN, "every informer sees the object created after the restart")
    print(f"\nresumed {seconds:.1f}s after kcp was ready again (outage {OUTAGE:.0f}s)")
    hub = for_client(client)
    assert hub is not None and hub.ups >= 1 and not hub.down
    # No relist storm: at most one relist each (a watch from before the restart may be too old for
    # kcp's new watch cache: 410, relist), none for the refused watches while kcp was down.
    assert sum(inf.stats.lists for inf in informers) <= lists_before + INFORMERS
