"""The what resolver: one reconcile per EdgePlacement, keeping its resolved what in a store.

* :class:`WmwCaches` owns what is watched in each WMW: its Namespaces and CRDs, and one informer per
  resource that some placement there could select (at the WMW's preferred version).
* :class:`WhatResolver` (workqueue ``what-resolver``, key: the placement's logical cluster and name)
  resolves one placement against those caches (:func:`.resolve.resolve`) and puts the result into
  a :class:`WhatStore`, which tells its listeners the key when the result changed, as an informer
  would.
* :class:`PlacementIndex` says which placements of a WMW could select a resource, so an object
  change enqueues only those, and a Namespace change only those whose selection a Namespace's
  labels or existence can change.

Invariant: a placement's entry in the store was resolved from caches that had synced, with every
resource it could select watched; an entry is removed when its placement goes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from apis.edge.v2alpha1 import EdgePlacement
from apis.edge.v2alpha1.listers import EdgePlacementLister
from apis.machinery.meta import cluster_of
from pkg.controllers.what.resolve import CRDS, NAMESPACES, Resolved, ServedResource, resolve
from pkg.controllers.what.select import (
    CompiledPlacement,
    GroupResource,
    compile_placement,
    could_select,
    excluded,
)
from pkg.runtime import kcp, kube
from pkg.runtime.controller import Result
from pkg.runtime.discovery import APIResource, Discovery
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta, resource_version_of
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import Object

log = logging.getLogger(__name__)

NAME = "what-resolver"
Key = tuple[str, str]  # (WMW logical cluster, EdgePlacement name)
WAIT_FOR_CACHES = Result(requeue_after=0.5)


@dataclass
class Wmw:
    """What is watched in one WMW."""

    cluster: str
    client: RestClient
    path: str = ""
    namespaces: Informer | None = None
    crds: Informer | None = None
    sources: dict[GroupResource, tuple[str, Informer]] = field(default_factory=dict)  # gr -> (version, inf)


@dataclass(frozen=True)
class WmwEvents:
    """Where the caches' events go: an object of ``gr`` changed, a Namespace changed, or what the
    WMW serves changed (a CRD or an APIBinding)."""

    object_changed: Callable[[str, GroupResource], None]
    namespace_changed: Callable[[str], None]
    served_changed: Callable[[str], None]


class WmwCaches:
    """The informers of every watched WMW, shared by the what resolver (which reads the objects)
    and the translator's source reconciler (which annotates them)."""

    def __init__(
        self,
        all_clusters: RestClient,
        factory: SharedInformerFactory,
        discovery: Discovery,
        events: WmwEvents,
    ) -> None:
        self._all = all_clusters
        self._factory = factory
        self._discovery = discovery
        self._events = events
        self._lock = threading.Lock()
        self._wmws: dict[str, Wmw] = {}

    def get(self, cluster: str) -> Wmw | None:
        with self._lock:
            return self._wmws.get(cluster)

    def clusters(self) -> list[str]:
        with self._lock:
            return list(self._wmws)

    def ensure(self, cluster: str) -> Wmw:
        """The WMW's caches, its Namespace, CRD and APIBinding informers started."""
        with self._lock:
            st = self._wmws.get(cluster)
            if st is None:
                st = self._wmws[cluster] = Wmw(cluster, kcp.cluster(self._all, cluster))
            fresh = st.namespaces is None
            if fresh:
                st.namespaces = self._factory.informer(st.client, kube.NAMESPACES.path())
                st.crds = self._factory.informer(st.client, kube.CUSTOM_RESOURCE_DEFINITIONS.path())
        if fresh:
            assert st.namespaces is not None and st.crds is not None
            st.namespaces.add_event_handler(
                on_add=lambda o: self._events.namespace_changed(cluster),
                on_update=lambda o, n: self._if_changed(
                    o, n, lambda: self._events.namespace_changed(cluster)
                ),
                on_delete=lambda o: self._events.namespace_changed(cluster),
            )
            for inf in (st.crds, self._factory.informer(st.client, kcp.API_BINDINGS.path())):
                # A new CRD or APIBinding changes what the WMW serves: discover again.
                inf.add_event_handler(
                    on_add=lambda o: self._served_changed(st),
                    on_update=lambda o, n: self._served_changed(st),
                    on_delete=lambda o: self._served_changed(st),
                )
        if not st.path:
            try:
                st.path = kcp.logical_cluster_path(self._all, cluster) or cluster
            except ApiError:
                st.path = cluster
        return st

    def _served_changed(self, st: Wmw) -> None:
        self._discovery.invalidate(st.client)
        self._events.served_changed(st.cluster)

    @staticmethod
    def _if_changed(old: Any, new: Any, then: Callable[[], None]) -> None:
        if resource_version_of(old) != resource_version_of(new):
            then()

    def synced(self, st: Wmw) -> bool:
        return bool(st.namespaces and st.crds and st.namespaces.has_synced() and st.crds.has_synced())

    def resources(self, st: Wmw) -> dict[GroupResource, tuple[ServedResource, APIResource]]:
        """Every listable, placeable resource the WMW serves, with its defining CRD's name."""
        assert st.crds is not None
        crd_names: dict[tuple[str, str], str] = {}
        for crd in st.crds.list():
            spec = crd.get("spec") or {}
            names = spec.get("names") or {}
            crd_names[(str(spec.get("group", "")), str(names.get("plural", "")))] = Meta(crd).name
        out: dict[GroupResource, tuple[ServedResource, APIResource]] = {}
        for (group, resource), api in self._discovery.resources(st.client).items():
            gr = GroupResource(group, resource)
            if excluded(gr) or not api.listable:
                continue
            info = ServedResource(
                gr, api.kind, api.namespaced, api.versions, crd_names.get((group, resource))
            )
            out[gr] = (info, api)
        return out

    def source(self, st: Wmw, gr: GroupResource, api: APIResource) -> Informer[Object]:
        """The informer on ``gr`` in the WMW at its preferred version (started on first use)."""
        with self._lock:
            have = st.sources.get(gr)
        if have is not None and have[0] == api.preferred:
            return have[1]
        if have is not None:
            self._factory.remove(have[1].client, have[1].resource_path)
        inf = self._factory.informer(st.client, api.path(api.preferred))
        cluster = st.cluster
        inf.add_event_handler(
            on_add=lambda o: self._events.object_changed(cluster, gr),
            on_update=lambda o, n: self._if_changed(o, n, lambda: self._events.object_changed(cluster, gr)),
            on_delete=lambda o: self._events.object_changed(cluster, gr),
        )
        with self._lock:
            st.sources[gr] = (api.preferred, inf)
        return inf

    def snapshot(self, cluster: str, compiled: CompiledPlacement) -> Snapshot | None:
        """The WMW's cached objects of every resource ``compiled`` could select, and its CRDs
        (informers started on first use); None while one of them is still filling."""
        st = self.ensure(cluster)
        if not self.synced(st):
            return None
        resources = self.resources(st)
        objects: dict[GroupResource, list[Mapping[str, Any]]] = {}
        ready = True
        for gr, (_, api) in resources.items():
            if gr != CRDS and not could_select(compiled, gr):
                continue
            inf = self.source(st, gr, api)
            if not inf.has_synced():
                ready = False
                continue
            objects[gr] = list(inf.list())
        if not ready:
            return None
        assert st.namespaces is not None
        namespaces = {Meta(ns).name: dict(Meta(ns).labels) for ns in st.namespaces.list()}
        return Snapshot(st.path, {gr: info for gr, (info, _) in resources.items()}, objects, namespaces)

    def source_informer(self, cluster: str, gr: GroupResource) -> tuple[str, Informer[Object]] | None:
        """(version, informer) of the watched resource ``gr`` of a WMW, if watched."""
        with self._lock:
            st = self._wmws.get(cluster)
            return st.sources.get(gr) if st is not None else None

    def prune(self, cluster: str, keep: Callable[[GroupResource], bool]) -> None:
        """Stop watching the resources of a WMW that no placement there could select."""
        with self._lock:
            st = self._wmws.get(cluster)
            gone = [] if st is None else [gr for gr in st.sources if gr != CRDS and not keep(gr)]
            dropped = [st.sources.pop(gr)[1] for gr in gone] if st is not None else []
        for inf in dropped:
            self._factory.remove(inf.client, inf.resource_path)

    def drop(self, cluster: str) -> None:
        """Stop watching a WMW's resources (its Namespace and CRD informers are shared, kept)."""
        with self._lock:
            st = self._wmws.pop(cluster, None)
        if st is None:
            return
        for _, inf in st.sources.values():
            self._factory.remove(inf.client, inf.resource_path)


class WhatStore:
    """Each placement's :class:`Resolved`, by key; listeners hear the keys whose entry changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, Resolved] = {}
        self._listeners: list[Callable[[Key], None]] = []

    def add_listener(self, listener: Callable[[Key], None]) -> None:
        self._listeners.append(listener)

    def get(self, key: Key) -> Resolved | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: Key, resolved: Resolved) -> bool:
        """Store ``resolved``; False (and nothing heard) when it is the same as what is there."""
        with self._lock:
            if resolved.same(self._items.get(key)):
                return False
            self._items[key] = resolved
        for listener in self._listeners:
            listener(key)
        return True

    def delete(self, key: Key) -> None:
        with self._lock:
            gone = self._items.pop(key, None)
        if gone is not None:
            for listener in self._listeners:
                listener(key)


class PlacementIndex:
    """The compiled placements of each WMW, and which of them could select a resource."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[str, dict[str, CompiledPlacement]] = {}
        self._by_gr: dict[tuple[str, GroupResource], frozenset[str]] = {}

    def set(self, key: Key, compiled: CompiledPlacement | None) -> None:
        cluster, name = key
        with self._lock:
            placements = self._compiled.setdefault(cluster, {})
            if compiled is None:
                placements.pop(name, None)
            elif placements.get(name) == compiled:
                return
            else:
                placements[name] = compiled
            if not placements:
                del self._compiled[cluster]
            self._by_gr = {k: v for k, v in self._by_gr.items() if k[0] != cluster}

    def placements(self, cluster: str) -> list[str]:
        with self._lock:
            return sorted(self._compiled.get(cluster, {}))

    def selecting(self, cluster: str, gr: GroupResource) -> frozenset[str]:
        """The placements of ``cluster`` that could select objects of ``gr``."""
        with self._lock:
            found = self._by_gr.get((cluster, gr))
            if found is None:
                placements = self._compiled.get(cluster, {})
                found = frozenset(n for n, c in placements.items() if could_select(c, gr))
                self._by_gr[(cluster, gr)] = found
            return found

    def namespace_sensitive(self, cluster: str) -> frozenset[str]:
        """The placements of ``cluster`` whose selection a Namespace change can change: those with
        namespace selectors, or that could select Namespaces or namespaced objects (a Namespace
        that goes takes its objects' namespace labels with it)."""
        with self._lock:
            placements = dict(self._compiled.get(cluster, {}))
        return frozenset(
            n
            for n, c in placements.items()
            if any(cl.namespace_selectors_given for cl in c.downsync) or could_select(c, NAMESPACES)
        )

    def could_select_any(self, cluster: str, gr: GroupResource) -> bool:
        return bool(self.selecting(cluster, gr))


@dataclass(frozen=True)
class Snapshot:
    """What a WMW's caches hold for resolving placements there."""

    path: str
    resources: Mapping[GroupResource, ServedResource]
    objects: Mapping[GroupResource, Sequence[Mapping[str, Any]]]
    namespaces: Mapping[str, Mapping[str, str]]  # Namespace name -> its labels


class Sources(Protocol):
    """Where the what resolver reads a WMW (:class:`WmwCaches`, or an in-memory view in tests)."""

    def snapshot(self, cluster: str, compiled: CompiledPlacement) -> Snapshot | None:
        """The WMW's objects of every resource ``compiled`` could select (and its CRDs), or None
        while a cache is still filling."""
        ...


class WhatResolver:
    """Reconciles one EdgePlacement: resolves its what against its WMW's caches into the store."""

    def __init__(
        self,
        placements: EdgePlacementLister,
        sources: Sources,
        store: WhatStore,
        index: PlacementIndex,
    ) -> None:
        self._placements = placements
        self._sources = sources
        self._store = store
        self._index = index

    def reconcile(self, key: Key) -> Result | None:
        cluster, name = key
        ep = self._placements.get(cluster, name)
        if ep is None or ep.metadata.deletion_timestamp is not None:
            self._index.set(key, None)
            self._store.delete(key)  # the translator decides when the WMW's caches may go
            return None
        compiled, _ = compile_placement(ep.spec)
        self._index.set(key, compiled)
        snap = self._sources.snapshot(cluster, compiled)
        if snap is None:
            return WAIT_FOR_CACHES
        resolved = resolve(ep.spec, snap.path, snap.resources, snap.objects, snap.namespaces)
        if self._store.put(key, resolved):
            log.log(
                V(2),
                "resolved what placement=%s:%s objects=%d upsync=%d problems=%d",
                cluster,
                name,
                len(resolved.parts),
                len(compiled.upsync),
                len(resolved.problems),
            )
        return None

    # -- event routing: which placements an event concerns -----------------------------------------

    def placement_keys(self, ep: EdgePlacement) -> list[Key]:
        return [(cluster_of(ep), ep.metadata.name or "")]

    def for_object(self, cluster: str, gr: GroupResource) -> list[Key]:
        """The placements of the object's own WMW that could select an object of ``gr``; a CRD
        also changes what its custom objects imply, so it concerns every placement there."""
        if gr == CRDS:
            return self.for_wmw(cluster)
        return [(cluster, n) for n in sorted(self._index.selecting(cluster, gr))]

    def for_namespace(self, cluster: str) -> list[Key]:
        return [(cluster, n) for n in sorted(self._index.namespace_sensitive(cluster))]

    def for_wmw(self, cluster: str) -> list[Key]:
        return [(cluster, n) for n in self._index.placements(cluster)]


def enqueue_all(enqueue: Callable[[Key], None], keys: Iterable[Key]) -> None:
    for key in keys:
        enqueue(key)
