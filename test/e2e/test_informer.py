"""Informers against a real kcp: event order, cache convergence after a kcp restart, relist after
410 Gone, the wildcard (``/clusters/*``) cluster index, informer sharing in the factory; and, with a
record of the requests the reflector sends to kcp: bookmarks, list paging with ``continue`` tokens,
the list and watch parameters, 410 Gone after etcd compaction (of a continue token, of a watch's
resource version), and refused connections while kcp is down."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pkg.runtime import kcp
from pkg.runtime.clock import FakeClock
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.rest import ApiError, RestClient
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


def _no_managed_fields(obj: Object) -> Object:
    md = obj["metadata"]
    return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}


def _data_only(obj: Object) -> Object:
    """An informer's own transform: it sees the factory's output (no managedFields)."""
    assert "managedFields" not in obj["metadata"]
    return {"metadata": obj["metadata"], "keys": sorted(obj.get("data") or {})}


def test_an_informer_transform_runs_after_the_factory_one_and_keys_the_informer(admin: RestClient) -> None:
    factory = SharedInformerFactory(read_timeout=30, transform=_no_managed_fields)
    root = kcp.cluster(admin, kcp.ROOT)
    ns = namespace(root)
    label = unique("own")
    root.create(f"/api/v1/namespaces/{ns}/configmaps", configmap("listed", {"own": label}, a="1"))
    try:
        plain = factory.informer(root, "/api/v1/configmaps", f"own={label}")
        small = factory.informer(root, "/api/v1/configmaps", f"own={label}", transform=_data_only)
        assert small is not plain
        assert factory.informer(root, "/api/v1/configmaps", f"own={label}", transform=_data_only) is small
        assert factory.get(root, "/api/v1/configmaps", f"own={label}", transform=_data_only) is small
        factory.start()
        assert all(factory.wait_for_cache_sync(30).values())
        root.create(f"/api/v1/namespaces/{ns}/configmaps", configmap("watched", {"own": label}, b="2", c="3"))
        eventually(lambda: len(small.list()) == 2, what="the watched object in the transformed cache")
        got = {o["metadata"]["name"]: o for o in small.list()}
        assert got["listed"]["keys"] == ["a"] and got["watched"]["keys"] == ["b", "c"]
        assert "data" not in got["watched"]
        eventually(lambda: len(plain.list()) == 2, what="the watched object in the plain cache")
        assert all("data" in o and "managedFields" not in o["metadata"] for o in plain.list())
        assert factory.remove(root, "/api/v1/configmaps", f"own={label}", transform=_data_only)
        assert factory.get(root, "/api/v1/configmaps", f"own={label}") is plain
    finally:
        factory.shutdown()
        root.delete(f"/api/v1/namespaces/{ns}")


# --- What the reflector sends, and what kcp answers ------------------------------------------------
#
# A RecordingClient is the real RestClient talking to kcp, with a record of every list and watch
# request the informer makes (and, for lists, kcp's answer).  An optional ``before`` hook runs before
# a request is forwarded, so a test can hold a request back (a paused client) until kcp's state has
# moved on; kcp still answers every request itself.


@dataclass
class Sent:
    """One request the informer made: a list (``GET``) or a watch (``stream``)."""

    verb: str
    params: dict[str, Any]
    status: int = 200  # kcp's HTTP status for a list (watch errors come in the stream)
    meta: dict[str, Any] = field(default_factory=dict)  # a list answer's metadata
    names: list[str] = field(default_factory=list)  # a list answer's item names


class RecordingClient(RestClient):
    def __init__(self, inner: RestClient, before: Callable[[Sent], None] | None = None) -> None:
        super().__init__(inner.endpoint, inner.prefix, writes=inner.writes, _transport=inner._t)
        self.sent: list[Sent] = []
        self.before = before

    def _record(self, verb: str, params: Mapping[str, Any] | None) -> Sent:
        sent = Sent(verb, {k: v for k, v in (params or {}).items() if v is not None})
        self.sent.append(sent)
        if self.before is not None:
            self.before(sent)
        return sent

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        sent = self._record("list", params)
        try:
            answer = super().get(path, params)
        except ApiError as err:
            sent.status = err.status
            raise
        sent.meta = dict(answer.get("metadata") or {})
        sent.names = [item["metadata"]["name"] for item in answer.get("items") or []]
        return answer

    def stream(self, path: str, params: Mapping[str, Any], read_timeout: float) -> Iterator[dict[str, Any]]:
        self._record("watch", params)
        return super().stream(path, params, read_timeout)  # the generator itself: stop() can close it

    def lists(self) -> list[Sent]:
        return [s for s in self.sent if s.verb == "list"]

    def watches(self) -> list[Sent]:
        return [s for s in self.sent if s.verb == "watch"]


def compacted(client: RestClient, path: str, resource_version: str) -> bool:
    """Whether etcd has compacted ``resource_version`` away (an exact read of it is 410 Gone)."""
    try:
        client.get(path, {"resourceVersion": resource_version, "resourceVersionMatch": "Exact", "limit": 1})
    except ApiError as err:
        if err.gone:
            return True
        raise
    return False


def wait_compacted(client: RestClient, path: str, resource_version: str, timeout: float = 60.0) -> None:
    """Write (elsewhere) until kcp's compactor has passed ``resource_version``."""
    churn = namespace(client, "churn")
    deadline = time.monotonic() + timeout
    while not compacted(client, path, resource_version):
        assert time.monotonic() < deadline, f"resource version {resource_version} not compacted"
        client.create(f"/api/v1/namespaces/{churn}/configmaps", {"metadata": {"generateName": "c-"}})
        time.sleep(0.5)


ETCD_KCP_ARGS = "--watch-cache-sizes=configmaps#0 --etcd-compaction-interval=2s"
"""ConfigMaps served straight from etcd (no watch cache, so ``limit`` pages even at resource version
"0" and a watch resumes from etcd), and etcd compacted every 2 s (kcp's default is 5 min)."""


@pytest.fixture(scope="module")
def etcd_kcp(module_private_kcp: Callable[..., KcpServer]) -> KcpServer:
    """A private kcp for this module's paging, compaction and refused-connection tests."""
    return module_private_kcp(ETCD_KCP_ARGS)


QUIET = "informer-test=quiet"


def test_bookmarks_advance_the_resource_version_without_events(
    initialized: RestClient, wmw: str, informers: list[Informer]
) -> None:
    """kcp v0.11 sends BOOKMARK events where asked (from its watch cache, 2 s before a watch's
    timeout, once the cache has seen an event); the informer resumes from a bookmark's version."""
    client = kcp.cluster(initialized, wmw)
    quiet, busy = namespace(client, "quiet"), namespace(client, "busy")
    path = f"/api/v1/namespaces/{quiet}/secrets"
    stop = threading.Event()

    def churn() -> None:  # writes elsewhere, so the resource version moves on and the cache sees events
        while not stop.wait(0.3):
            client.create(f"/api/v1/namespaces/{busy}/secrets", {"metadata": {"generateName": "s-"}})

    writer = threading.Thread(target=churn, daemon=True)
    writer.start()
    try:
        # kcp itself: a watch asking for bookmarks gets them, and nothing else, from a collection
        # that nothing enters (no Secret has that label; a namespace may get a token Secret).
        listed = client.get(path, {"labelSelector": QUIET})["metadata"]["resourceVersion"]
        params = {
            "watch": "true",
            "resourceVersion": listed,
            "timeoutSeconds": 4,
            "allowWatchBookmarks": "true",
            "labelSelector": QUIET,
        }
        events = list(client.stream(path, params, 30))
        assert events and {e["type"] for e in events} == {"BOOKMARK"}
        assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(listed)

        rec = RecordingClient(client)
        inf = Informer(rec, path, label_selector=QUIET, min_watch_timeout=3)
        informers.append(inf)
        recorder = Recorder()
        recorder.register(inf)
        inf.start()
        assert inf.wait_for_cache_sync(30)
        list_rv = inf.last_resource_version
        eventually(lambda: len(rec.watches()) >= 3, timeout=60, what="three watches")
        watched = [int(w.params["resourceVersion"]) for w in rec.watches()[:3]]
        assert watched[0] == int(list_rv)
        assert watched[0] < watched[1] < watched[2]  # each resumed from a bookmark of the one before
        assert recorder.calls == [] and inf.list() == []  # no object event came
        assert len(rec.lists()) == 1 and inf.stats.failures == 0
    finally:
        stop.set()
        writer.join(5)


def test_list_pages_follow_continue_tokens_then_the_watch_starts_at_the_list(
    etcd_kcp: KcpServer, informers: list[Informer]
) -> None:
    client = kcp.cluster(etcd_kcp.client(), kcp.ROOT)
    ns = namespace(client)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        client.create(path, configmap(f"cm{i}", {"app": "paged"}, v="1"))
    client.create(path, configmap("other", {"app": "other"}, v="1"))

    rec = RecordingClient(client)
    inf = Informer(rec, path, label_selector="app=paged", page_size=2, min_watch_timeout=300)
    informers.append(inf)
    recorder = Recorder()
    recorder.register(inf)
    inf.start()
    assert inf.wait_for_cache_sync(30)
    eventually(lambda: rec.watches(), what="the watch")

    pages = rec.lists()
    assert pages[0].params == {"resourceVersion": "0", "limit": 2, "labelSelector": "app=paged"}
    for before, after in itertools.pairwise(pages):
        assert after.params == {"limit": 2, "continue": before.meta["continue"], "labelSelector": "app=paged"}
    assert "continue" not in pages[-1].meta and len(pages) >= 4  # 7 objects, 2 a page
    assert all(len(p.names) <= 2 for p in pages)
    listed = [name for p in pages for name in p.names]
    assert sorted(listed) == [f"cm{i}" for i in range(7)]  # every object once
    eventually(lambda: len(recorder.calls) >= 7, what="the notifications")
    assert sorted(recorder.calls) == [("add", f"cm{i}", {"v": "1"}) for i in range(7)]
    assert converged(inf, client, path, "app=paged")

    [watch] = rec.watches()
    rv = watch.params.pop("resourceVersion")
    timeout = watch.params.pop("timeoutSeconds")
    assert rv == pages[-1].meta["resourceVersion"] == inf.last_resource_version
    assert 300 <= timeout <= 600
    assert watch.params == {"watch": "true", "allowWatchBookmarks": "true", "labelSelector": "app=paged"}

    client.create(path, configmap("cm7", {"app": "paged"}, v="1"))
    eventually(lambda: ("add", "cm7", {"v": "1"}) in recorder.calls, what="the watched object")


def test_a_continue_token_compacted_away_relists_from_etcd(
    etcd_kcp: KcpServer, informers: list[Informer]
) -> None:
    """The client pauses between two pages until etcd has compacted the list's version: kcp answers
    410 Gone to the continue token, and the informer lists again as a consistent read ("")."""
    client = kcp.cluster(etcd_kcp.client(), kcp.ROOT)
    ns = namespace(client)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(5):
        client.create(path, configmap(f"cm{i}", {"app": "compacted"}, v="1"))
    paused = False

    def pause_once(sent: Sent) -> None:
        nonlocal paused
        if sent.verb == "list" and "continue" in sent.params and not paused:
            paused = True
            first = rec.lists()[0]
            wait_compacted(client, path, first.meta["resourceVersion"])
            client.delete(f"{path}/cm0")  # meanwhile, changes the next list must show
            client.create(path, configmap("cm5", {"app": "compacted"}, v="1"))

    rec = RecordingClient(client, before=pause_once)
    clock = FakeClock()
    inf = Informer(rec, path, label_selector="app=compacted", page_size=2, clock=clock)
    informers.append(inf)
    recorder = Recorder()
    recorder.register(inf)
    inf.start()
    eventually(
        lambda: inf.stats.expired == 1 and clock.has_waiters(), timeout=90, what="410 Gone and a backoff"
    )
    assert not inf.has_synced()
    clock.step(60.0)
    assert inf.wait_for_cache_sync(30)

    lists = rec.lists()
    sel = {"labelSelector": "app=compacted"}
    assert lists[0].params == {"resourceVersion": "0", "limit": 2, **sel}
    assert lists[1].params == {"limit": 2, "continue": lists[0].meta["continue"], **sel}
    assert lists[1].status == 410
    assert lists[2].params == {"resourceVersion": "", "limit": 2, **sel}  # a consistent read, paginated
    assert all(s.status == 200 for s in lists[2:])
    assert sorted(n for s in lists[2:] for n in s.names) == [f"cm{i}" for i in range(1, 6)]
    assert inf.stats.lists == 1 and inf.stats.failures == 1
    eventually(lambda: len(recorder.calls) >= 5, what="the notifications")
    added = [("add", f"cm{i}", {"v": "1"}) for i in range(1, 6)]
    assert sorted(recorder.calls) == added  # nothing from the half-done first list
    assert converged(inf, client, path, "app=compacted")


def test_a_watch_resumed_after_compaction_gets_410_and_relists(
    etcd_kcp: KcpServer, informers: list[Informer]
) -> None:
    """The client pauses before its second watch until etcd has compacted the version it resumes
    from: kcp ends that watch with an ERROR event (410), and the informer relists."""
    client = kcp.cluster(etcd_kcp.client(), kcp.ROOT)
    ns = namespace(client)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for name in ["a", "b"]:
        client.create(path, configmap(name, {"app": "resumed"}, v="1"))
    paused = False

    def pause_second_watch(sent: Sent) -> None:
        nonlocal paused
        if sent.verb == "watch" and len(rec.watches()) == 2 and not paused:
            paused = True
            # A watch from R reads etcd from R+1, which a compaction that has just passed R keeps:
            # wait until R+1 is compacted too, or the watch may resume and see no 410.
            wait_compacted(client, path, str(int(sent.params["resourceVersion"]) + 1))
            client.delete(f"{path}/a")
            client.patch(f"{path}/b", {"data": {"v": "2"}})
            client.create(path, configmap("c", {"app": "resumed"}, v="1"))

    rec = RecordingClient(client, before=pause_second_watch)
    clock = FakeClock()
    inf = Informer(rec, path, label_selector="app=resumed", min_watch_timeout=3, clock=clock)  # ends in 3-6 s
    informers.append(inf)
    recorder = Recorder()
    recorder.register(inf)
    inf.start()
    assert inf.wait_for_cache_sync(30)
    eventually(
        lambda: inf.stats.expired == 1 and clock.has_waiters(), timeout=90, what="410 Gone and a backoff"
    )
    clock.step(60.0)
    eventually(lambda: converged(inf, client, path, "app=resumed"), what="the relist")

    first, second = rec.watches()[:2]
    assert first.params["resourceVersion"] == second.params["resourceVersion"]  # no event, no bookmark
    relist = rec.lists()[1]
    # No limit: a "not older than" read at the version the watch failed from.
    assert relist.params == {
        "resourceVersion": first.params["resourceVersion"],
        "labelSelector": "app=resumed",
    }
    assert inf.stats.lists == 2
    eventually(lambda: len(recorder.calls) >= 5, what="the notifications")
    assert sorted(recorder.calls[2:]) == [
        ("add", "c", {"v": "1"}),
        ("delete", "a", {"v": "1"}),
        ("update", "b", {"v": "2"}),
    ]
    eventually(lambda: len(rec.watches()) >= 3, what="a new watch")
    assert rec.watches()[2].params["resourceVersion"] == relist.meta["resourceVersion"]


def test_a_refused_connection_is_watched_again_without_relisting_and_recovers(
    etcd_kcp: KcpServer, informers: list[Informer]
) -> None:
    """kcp stopped: the open watch breaks and every new one is refused; the informer backs off and
    watches again (no list while kcp is down).  kcp restarted: it catches up and watches live."""
    client = kcp.cluster(etcd_kcp.client(), kcp.ROOT)
    ns = namespace(client)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for name in ["a", "b"]:
        client.create(path, configmap(name, {}, v="1"))
    rec = RecordingClient(client)
    clock = FakeClock()
    inf = Informer(rec, path, read_timeout=10, clock=clock)
    informers.append(inf)
    inf.start()
    assert inf.wait_for_cache_sync(30)
    eventually(lambda: rec.watches(), what="the watch")

    etcd_kcp.stop()
    down = len(rec.sent)
    for n in range(1, 4):  # refused watches, each after a backoff
        eventually(lambda n=n: clock.has_waiters() and inf.stats.failures >= n, what=f"refusal {n}")
        clock.step(60.0)
    eventually(lambda: clock.has_waiters() and len(rec.sent) >= down + 3, what="three requests while down")
    sent_while_down = rec.sent[down:]
    assert [s.verb for s in sent_while_down] == ["watch"] * len(sent_while_down)
    assert len(rec.lists()) == 1
    assert {s.params["resourceVersion"] for s in sent_while_down} == {rec.lists()[0].meta["resourceVersion"]}

    etcd_kcp.start()
    other = kcp.cluster(etcd_kcp.client(), kcp.ROOT)  # a new admin token; the informer's client reloads it
    other.delete(f"{path}/a")
    other.create(path, configmap("c", {}, v="1"))

    def stepped_and_converged() -> bool:
        if clock.has_waiters():
            clock.step(60.0)
        return converged(inf, other, path)

    eventually(stepped_and_converged, timeout=90, what="the cache to converge after the restart")
    other.create(path, configmap("d", {}, v="1"))
    eventually(lambda: any(o["metadata"]["name"] == "d" for o in inf.list()), what="d in the cache")
