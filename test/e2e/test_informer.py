"""Informers against a real kcp: event order, cache convergence after a kcp restart, relist after
410 Gone, the wildcard (``/clusters/*``) cluster index, and informer sharing in the factory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pkg.runtime import kcp
from pkg.runtime.clock import FakeClock
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.rest import RestClient
from pkg.runtime.store import CLUSTER_INDEX, NAMESPACE_INDEX, Object, cluster_namespace_key
from test.e2e.kcpserver import KcpServer, unique

pytestmark = pytest.mark.kcp

EDGE = "/apis/edge.kubestellar.io/v2alpha1"


def eventually(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def normal(obj: Object) -> Object:
    """``obj`` without the empty ``kcp.io/original-api-version`` annotation.

    kcp v0.11.0 adds that annotation to the objects its watch cache loads from etcd when it starts
    (so they carry it in lists served from the cache after a restart) but not to objects it learns
    from its own watch; a consistent list (resourceVersion "") never has it.
    """
    annotations = obj["metadata"].get("annotations") or {}
    if annotations.get("kcp.io/original-api-version") != "":
        return obj
    rest = {k: v for k, v in annotations.items() if k != "kcp.io/original-api-version"}
    return {**obj, "metadata": {**obj["metadata"], "annotations": rest}}


def truth(client: RestClient, path: str, label_selector: str | None = None) -> dict[str, Object]:
    """A consistent list, keyed as the informer keys it, items completed with kind and apiVersion."""
    listed = client.get(path, {"labelSelector": label_selector})
    kind = listed["kind"].removesuffix("List")
    return {
        cluster_namespace_key(item): normal({"kind": kind, "apiVersion": listed["apiVersion"], **item})
        for item in listed["items"]
    }


def cache(informer: Informer) -> dict[str, Object]:
    return {key: normal(obj) for key, obj in informer.indexer.items()}


def converged(informer: Informer, client: RestClient, path: str, selector: str | None = None) -> bool:
    return cache(informer) == truth(client, path, selector)


class Recorder:
    """Records handler calls as (op, name, data) tuples."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.updates: list[tuple[Object, Object]] = []

    def on_add(self, obj: Object) -> None:
        self.calls.append(("add", obj["metadata"]["name"], obj.get("data")))

    def on_update(self, old: Object, new: Object) -> None:
        self.updates.append((old, new))
        self.calls.append(("update", new["metadata"]["name"], new.get("data")))

    def on_delete(self, obj: Object) -> None:
        self.calls.append(("delete", obj["metadata"]["name"], obj.get("data")))

    def register(self, informer: Informer) -> None:
        informer.add_event_handler(self.on_add, self.on_update, self.on_delete)


def configmap(name: str, labels: dict[str, str], **data: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


def namespace(client: RestClient, prefix: str = "inf") -> str:
    name = unique(prefix)
    client.create("/api/v1/namespaces", {"metadata": {"name": name}})
    return name


@pytest.fixture
def informers() -> Iterator[list[Informer]]:
    """Informers a test starts; all stopped afterwards."""
    started: list[Informer] = []
    yield started
    for informer in started:
        assert informer.stop(), f"informer {informer.name} did not stop"


def test_events_in_order_and_cache_equals_a_fresh_list(
    initialized: RestClient, wmw: str, informers: list[Informer]
) -> None:
    client = kcp.cluster(initialized, wmw)
    ns = namespace(client)
    labels = {"informer-test": unique("l")}
    selector = f"informer-test={labels['informer-test']}"
    path = f"/api/v1/namespaces/{ns}/configmaps"
    inf = Informer(client, path, label_selector=selector)
    informers.append(inf)

    # The first handler blocks on its first call: the watch must go on regardless.
    gate = threading.Event()
    recorder = Recorder()

    def blocking_add(obj: Object) -> None:
        gate.wait(30)
        recorder.on_add(obj)

    inf.add_event_handler(blocking_add, recorder.on_update, recorder.on_delete)
    inf.start()
    assert inf.wait_for_cache_sync(30)
    assert inf.list() == []

    client.create(path, configmap("a", labels, v="1"))
    client.create(path, configmap("b", labels, v="1"))
    client.patch(f"{path}/a", {"data": {"v": "2"}})
    client.delete(f"{path}/b")
    client.create(path, configmap("c", labels, v="1"))
    client.create(path, configmap("unlabelled", {}, v="1"))  # not selected
    client.patch(f"{path}/c", {"data": {"v": "2"}})
    client.delete(f"{path}/a")
    eventually(lambda: converged(inf, client, path, selector), what="the cache to converge")
    assert recorder.calls == []  # the handler is still blocked, the cache is not
    gate.set()

    expected = [
        ("add", "a", {"v": "1"}),
        ("add", "b", {"v": "1"}),
        ("update", "a", {"v": "2"}),
        ("delete", "b", {"v": "1"}),
        ("add", "c", {"v": "1"}),
        ("update", "c", {"v": "2"}),
        ("delete", "a", {"v": "2"}),
    ]
    eventually(lambda: len(recorder.calls) >= len(expected), what="all notifications")
    assert recorder.calls == expected
    assert [old["data"] for old, _ in recorder.updates] == [{"v": "1"}, {"v": "1"}]

    # The cache equals a fresh list, object for object; and it is indexed by namespace and cluster.
    assert cache(inf) == truth(client, path, selector)
    assert [o["metadata"]["name"] for o in inf.by_index(NAMESPACE_INDEX, ns)] == ["c"]
    cluster = kcp.cluster_of(inf.list()[0])
    assert cluster and inf.get(f"{cluster}|{ns}/c") is not None
    assert [o["metadata"]["name"] for o in inf.by_index(CLUSTER_INDEX, cluster)] == ["c"]

    # A handler added now gets the cache first.
    late = Recorder()
    reg = inf.add_event_handler(late.on_add, late.on_update, late.on_delete)
    eventually(reg.has_synced, what="the late handler to sync")
    assert late.calls == [("add", "c", {"v": "2"})]

    # stop() ends the watch at once, not after the read timeout.
    started = time.monotonic()
    assert inf.stop(timeout=5)
    assert time.monotonic() - started < 2


def test_resumes_after_kcp_restart_and_converges(
    private_kcp: Callable[..., KcpServer], informers: list[Informer]
) -> None:
    server = private_kcp()
    client = kcp.cluster(server.client(), kcp.ROOT)
    ns = namespace(client)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    labels = {"app": "restart"}
    for i in range(6):
        client.create(path, configmap(f"cm{i}", labels, v="1"))

    clock = FakeClock()  # holds the informer in backoff until the test steps it
    inf = Informer(client, path, label_selector="app=restart", read_timeout=10, clock=clock)
    informers.append(inf)
    recorder = Recorder()
    recorder.register(inf)
    inf.start()
    assert inf.wait_for_cache_sync(30)
    assert len(inf.list()) == 6

    server.stop()
    eventually(clock.has_waiters, what="the informer to back off while kcp is down")
    server.start()  # same root directory and ports; a new admin token

    # While the informer still waits, a second client changes things.
    other = kcp.cluster(server.client(), kcp.ROOT)
    other.delete(f"{path}/cm0")
    other.delete(f"{path}/cm1")
    other.patch(f"{path}/cm2", {"data": {"v": "2"}})
    other.create(path, configmap("cm6", labels, v="1"))
    assert clock.has_waiters() and len(inf.list()) == 6  # it has seen none of that
    before = len(recorder.calls)

    def stepped_and_converged() -> bool:
        if clock.has_waiters():
            clock.step(60.0)
        return converged(inf, other, path, "app=restart")

    eventually(stepped_and_converged, timeout=90, what="the cache to converge after the restart")
    eventually(lambda: len(recorder.calls) >= before + 4, what="the notifications")
    after = recorder.calls[before:]
    # Deletes carry the last known object, whether they came from watch events or a relist.
    assert ("delete", "cm0", {"v": "1"}) in after
    assert ("delete", "cm1", {"v": "1"}) in after
    assert ("update", "cm2", {"v": "2"}) in after
    assert ("add", "cm6", {"v": "1"}) in after

    # The watch is live again.
    other.create(path, configmap("cm7", labels, v="1"))
    eventually(lambda: inf.get(f"{kcp.cluster_of(inf.list()[0])}|{ns}/cm7"), what="cm7 in the cache")


def test_resume_from_too_old_resource_version_relists(
    initialized: RestClient, wmw: str, informers: list[Informer]
) -> None:
    # EdgePlacements in a WMW come from an APIBinding made after kcp started, so the watch cache
    # serving them starts well after resource version 1: a watch from "1" gets 410 Gone.
    client = kcp.cluster(initialized, wmw)
    path = f"{EDGE}/edgeplacements"

    def placement(name: str) -> Object:
        return {
            "apiVersion": "edge.kubestellar.io/v2alpha1",
            "kind": "EdgePlacement",
            "metadata": {"name": name},
        }

    for name in ["p1", "p2"]:
        client.create(path, placement(name))
    clock = FakeClock()
    inf = Informer(client, path, clock=clock)
    informers.append(inf)
    recorder = Recorder()
    recorder.register(inf)
    inf.start()
    assert inf.wait_for_cache_sync(30)
    eventually(lambda: inf.stats.watches == 1, what="the watch")
    assert inf.stats.lists == 1

    inf.restart_watch(resource_version="1")
    eventually(lambda: inf.stats.expired == 1 and clock.has_waiters(), what="410 Gone and a backoff")
    # The informer waits to relist; what changes meanwhile it can only learn from the relist.
    client.delete(f"{path}/p1")
    client.create(path, placement("p3"))
    clock.step(60.0)
    eventually(lambda: converged(inf, client, path), what="the relist")
    assert inf.stats.lists == 2
    names = [(op, name) for op, name, _ in recorder.calls]
    assert sorted(names[:2]) == [("add", "p1"), ("add", "p2")]  # a list's order is the server's
    # The relist: p2 is known (update), p3 is new (add), p1 vanished (delete with its last state).
    assert sorted(names[2:]) == [("add", "p3"), ("delete", "p1"), ("update", "p2")]


def test_wildcard_informer_indexes_objects_by_cluster(
    kcp_server: KcpServer, initialized: RestClient, wmw: str, informers: list[Informer]
) -> None:
    other_path = f"root:{unique('inf')}"
    other = kcp.ensure_workspace(initialized, other_path)
    try:
        clusters = {wmw: kcp.wait_workspace_ready(initialized, wmw).cluster, other_path: other.cluster}
        label = unique("w")
        for path in clusters:
            c = kcp.cluster(initialized, path)
            ns = namespace(c)
            c.create(f"/api/v1/namespaces/{ns}/configmaps", configmap("cm", {"wildcard": label}))

        shard = kcp.wildcard(kcp_server.client(kcp.ALLCLUSTERS_CONTEXT))
        inf = Informer(shard, "/api/v1/configmaps", label_selector=f"wildcard={label}")
        informers.append(inf)
        inf.start()
        assert inf.wait_for_cache_sync(30)
        eventually(lambda: len(inf.list()) == 2, what="both objects")
        for cluster in clusters.values():
            [obj] = inf.by_index(CLUSTER_INDEX, cluster)
            assert cluster_namespace_key(obj).startswith(f"{cluster}|")
        assert sorted(inf.indexer.index_values(CLUSTER_INDEX)) == sorted(clusters.values())

        # Watched (not listed) objects are indexed too.
        c = kcp.cluster(initialized, other_path)
        ns = namespace(c)
        c.create(f"/api/v1/namespaces/{ns}/configmaps", configmap("cm2", {"wildcard": label}))
        eventually(lambda: len(inf.by_index(CLUSTER_INDEX, other.cluster)) == 2, what="the watched object")
    finally:
        kcp.delete_workspace(initialized, other_path)


def test_factory_shares_one_informer_per_key(admin: RestClient) -> None:
    factory = SharedInformerFactory(read_timeout=30)
    root = kcp.cluster(admin, kcp.ROOT)
    try:

        def by_name(obj: Object) -> list[str]:
            return [obj["metadata"]["name"]]

        first = factory.informer(root, "/api/v1/configmaps", label_selector="a=b")
        again = kcp.cluster(admin, kcp.ROOT)  # another client with the same prefix
        second = factory.informer(again, "/api/v1/configmaps/", "a=b", indexers={"n": by_name})
        assert second is first
        assert "n" in first.indexer.indexer_names()
        other = factory.informer(root, "/api/v1/configmaps")
        assert other is not first
        assert factory.informer(kcp.cluster(admin, "root:compute"), "/api/v1/configmaps") is not other

        factory.start()
        assert all(factory.wait_for_cache_sync(30).values())
        late = factory.informer(root, "/api/v1/namespaces")  # asked for while running: starts at once
        assert late.wait_for_cache_sync(30)
        assert any(o["metadata"]["name"] == "default" for o in late.list())

        assert factory.remove(root, "/api/v1/namespaces")
        assert late.stopped and factory.get(root, "/api/v1/namespaces") is None
        assert not factory.remove(root, "/api/v1/namespaces")
        assert factory.informer(root, "/api/v1/namespaces") is not late  # a new one
    finally:
        factory.shutdown()
    assert factory.informers() == {}
