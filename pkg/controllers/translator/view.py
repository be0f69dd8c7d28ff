"""What the translator's reconcilers share: one :class:`View` and one :class:`Reports`.

The :class:`View` owns the caches (the edge listers, the WMW caches of the what resolver, the
informers on mailbox copies), the desired snapshot that the join reconciler computes, and the
memory of our own writes, under one lock.  Reconcilers read it and never keep state of their own
that another reconciler reads.  :class:`Reports` holds which copies wait or were refused, per
mailbox, and enqueues the placements whose ``Projected`` condition that changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from apis.edge.v2alpha1 import constants as api
from apis.edge.v2alpha1.listers import (
    CustomizerLister,
    EdgePlacementLister,
    LocationLister,
    SinglePlacementSliceLister,
    SyncerConfigLister,
)
from apis.edge.v2alpha1.naming import is_mailbox_name
from apis.machinery.resource import group_version_path
from pkg.controllers.translator.desired import Desired, mailbox_of
from pkg.controllers.translator.project import compact
from pkg.controllers.what.controller import WhatStore, WmwCaches
from pkg.controllers.what.resolve import NAMESPACES, CopyKey
from pkg.controllers.what.select import GroupResource, excluded
from pkg.controllers.written import Written
from pkg.runtime import kcp, kube
from pkg.runtime.controller import Result
from pkg.runtime.discovery import APIResource, Discovery
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.meta import Meta
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import CLUSTER_INDEX, NAME_INDEX, name_index

log = logging.getLogger(__name__)

NAME = "placement-translator"
PROJECTED_SELECTOR = f"{api.PROJECTED_LABEL}=yes"
RETRY_SOON = Result(requeue_after=1.0)
PROBES = 8
"""Requests in flight at once while probing which kube exports kcp serves across clusters."""
WAIT_REPORTED_AFTER = 10.0  # seconds a copy may wait for its resource before placements say so
SourceKey = tuple[str, CopyKey]  # (WMW logical cluster, object)
PlacementKey = tuple[str, str]  # (WMW logical cluster, EdgePlacement name)


@dataclass
class Mailbox:
    cluster: str
    client: RestClient
    copies: dict[tuple[GroupResource, str], Informer] = field(default_factory=dict)  # (gr, version)


def _ignore(_: Any) -> None:
    return None


@dataclass
class Queues:
    """The translator's workqueues, as the reconcilers enqueue into each other's."""

    join: Callable[[str], None] = _ignore
    mailbox: Callable[[str], None] = _ignore
    source: Callable[[SourceKey], None] = _ignore
    placement: Callable[[PlacementKey], None] = _ignore


@dataclass
class Listers:
    placements: EdgePlacementLister
    slices: SinglePlacementSliceLister
    locations: LocationLister
    customizers: CustomizerLister
    syncer_configs: SyncerConfigLister


class View:
    """The caches, the desired snapshot and the own-write memory, shared by every reconciler.

    Invariants: ``desired()`` is the last complete join (never a partial one); ``annotated`` holds
    every source object we put an executing-count on and have not removed it from; ``clean``
    holds the (mailbox, cluster) pairs whose last reconcile against the current snapshot wrote
    nothing and left nothing to do."""

    def __init__(
        self,
        all_clusters: RestClient,
        espw_path: str,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        discovery: Discovery,
        listers: Listers,
        workspaces: Informer,
        caches: WmwCaches,
        whats: WhatStore,
        queues: Queues,
    ) -> None:
        self.all = all_clusters
        self.espw_path = espw_path
        self.factory = factory
        self.recorder = recorder
        self.discovery = discovery
        self.listers = listers
        self.workspaces = workspaces
        # The mailbox controller adds the same index: one index when both share this informer.
        workspaces.add_indexers({NAME_INDEX: name_index})
        self.caches = caches
        self.whats = whats
        self.queues = queues
        self.written = Written()
        self._lock = threading.Lock()
        self._desired: Desired | None = None
        self._annotated: set[SourceKey] = set()
        self._clean: set[tuple[str, str]] = set()
        self._mailboxes: dict[str, Mailbox] = {}
        self._mailbox_by_cluster: dict[str, str] = {}
        self.shared: dict[tuple[GroupResource, str], Informer] = {}  # /clusters/* informers on copies
        self.bound: dict[GroupResource, tuple[str, tuple[str, ...], str]] = {}  # identity, versions, storage
        self._natives: dict[GroupResource, APIResource] = {}
        # Every Namespace of every cluster in one informer (a mailbox's own, projected or not,
        # say where its copies can go): one watch however many mailboxes there are.
        self.namespaces: Informer = factory.informer(kcp.wildcard(all_clusters), kube.NAMESPACES.path())
        self.namespaces.add_event_handler(
            on_add=lambda o: self._copy_event_any(NAMESPACES, o),
            on_update=lambda o, n: self._copy_event_any(NAMESPACES, n),
            on_delete=lambda o: self._copy_event_any(NAMESPACES, o, deleted=True),
        )

    # -- the desired snapshot ----------------------------------------------------------------------

    def desired(self) -> Desired | None:
        with self._lock:
            return self._desired

    def set_desired(self, desired: Desired, mailbox_by_cluster: dict[str, str]) -> Desired | None:
        """Replace the snapshot; the previous one."""
        with self._lock:
            previous, self._desired = self._desired, desired
            self._mailbox_by_cluster = mailbox_by_cluster
            return previous

    # -- bookkeeping ---------------------------------------------------------------------------------

    def annotated(self) -> set[SourceKey]:
        with self._lock:
            return set(self._annotated)

    def annotate(self, key: SourceKey) -> None:
        with self._lock:
            self._annotated.add(key)

    def unannotate(self, key: SourceKey) -> bool:
        """Forget ``key``; True when it was the last annotated object of its WMW."""
        with self._lock:
            if key not in self._annotated:
                return False
            self._annotated.discard(key)
            return not any(c == key[0] for c, _ in self._annotated)

    def is_clean(self, mailbox: str, cluster: str) -> bool:
        with self._lock:
            return (mailbox, cluster) in self._clean

    def set_clean(self, mailbox: str, cluster: str, clean: bool, desired: Desired | None = None) -> None:
        """Mark the mailbox clean (only if ``desired`` is still the snapshot) or dirty."""
        with self._lock:
            if not clean:
                self._clean.discard((mailbox, cluster))
            elif desired is self._desired:
                self._clean.add((mailbox, cluster))

    # -- workspaces ----------------------------------------------------------------------------------

    def mailbox_workspace(self, name: str) -> Mapping[str, Any] | None:
        """The workspace under root called ``name``, if it is a mailbox (by the name index: a
        mailbox reconcile must not scan every workspace, there is one per mailbox)."""
        if not is_mailbox_name(name):
            return None
        found = self.workspaces.by_index(NAME_INDEX, name)
        return found[0] if found else None

    def mailbox_workspaces(self) -> dict[str, Mapping[str, Any]]:
        """Workspaces under root that are mailboxes, by name."""
        out: dict[str, Mapping[str, Any]] = {}
        for ws in self.workspaces.list():
            name = Meta(ws).name
            if is_mailbox_name(name):
                out[name] = ws
        return out

    # -- mailbox copies ------------------------------------------------------------------------------

    def setup_copy_informers(self) -> None:
        """One ``/clusters/*`` informer per resource a mailbox can hold, on projected copies only.

        Natively served resources need nothing more; resources that mailboxes get from the kube
        exports in root:compute need the export's identity hash.  These informers cover every
        mailbox at once, so a stale copy of any such resource is found, after a restart too.
        Resources defined by CRDs inside a mailbox cannot be listed in full across clusters; those
        get a per-mailbox informer when a copy needs one.  The kube exports are every APIExport
        in root:compute (TMC's ``kubernetes`` and those ``init`` adds).
        """
        compute = kcp.cluster(self.all, kcp.COMPUTE_WORKSPACE)
        try:
            exports = compute.get(kcp.API_EXPORTS.path()).get("items") or []
        except ApiError as e:
            log.warning("kube exports not listed workspace=%s err=%s", kcp.COMPUTE_WORKSPACE, e.status)
            exports = []
        schemas: dict[str, Mapping[str, Any]] = {}
        if exports:  # one LIST instead of a GET per schema
            for schema in compute.get(kcp.API_RESOURCE_SCHEMAS.path()).get("items") or []:
                schemas[Meta(schema).name] = schema.get("spec") or {}
        for export in exports:
            identity = kcp.export_identity(export)
            for schema_name in (export.get("spec") or {}).get("latestResourceSchemas") or []:
                spec = schemas.get(schema_name)
                if spec is None:
                    log.warning("resource schema of a kube export not found name=%s", schema_name)
                    continue
                gr = GroupResource(
                    str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", ""))
                )
                served = tuple(str(v["name"]) for v in spec.get("versions") or [] if v.get("served", True))
                storage = next(
                    (str(v["name"]) for v in spec.get("versions") or [] if v.get("storage")), served[0]
                )
                self.bound[gr] = (identity, served, storage)
        espw = kcp.cluster(self.all, self.espw_path)
        for (group, resource), found in self.discovery.resources(espw).items():
            gr = GroupResource(group, resource)
            if found.listable and not excluded(gr) and gr not in self.bound and group != api.GROUP:
                self._natives[gr] = found
        for gr, found in self._natives.items():
            if gr != NAMESPACES:  # self.namespaces has them all
                self.shared_informer(gr, found.preferred)

        # Before any workspace binds an export, kcp answers 404 for its resources across clusters,
        # and an informer that cannot list would hold back the Manager's cache sync: those are
        # watched from the first mailbox reconcile on instead.
        def across_clusters(item: tuple[GroupResource, tuple[str, tuple[str, ...], str]]) -> bool:
            gr, (identity, _, storage) = item
            try:
                kcp.wildcard(self.all).get(_bound_path(gr, storage, identity), {"limit": 1})
            except ApiError:
                return False
            return True

        bound = list(self.bound.items())
        with ThreadPoolExecutor(PROBES, thread_name_prefix="probe") as pool:
            for (gr, (_, _, storage)), ok in zip(bound, pool.map(across_clusters, bound), strict=True):
                if ok:
                    self.shared_informer(gr, storage)

    def shared_informer(self, gr: GroupResource, version: str) -> Informer | None:
        """The ``/clusters/*`` informer on projected copies of ``gr`` at ``version``, if kcp serves one."""
        with self._lock:
            inf = self.shared.get((gr, version))
        if inf is not None:
            return inf
        if gr in self._natives and version in self._natives[gr].versions:
            path = self._natives[gr].path(version)
        elif gr in self.bound and version in self.bound[gr][1]:
            path = _bound_path(gr, version, self.bound[gr][0])
        else:
            return None
        inf = self.factory.informer(
            kcp.wildcard(self.all), path, label_selector=PROJECTED_SELECTOR, transform=compact
        )
        inf.add_event_handler(
            on_add=lambda o: self._copy_event_any(gr, o),
            on_update=lambda o, n: self._copy_event_any(gr, n),
            on_delete=lambda o: self._copy_event_any(gr, o, deleted=True),
        )
        with self._lock:
            self.shared[(gr, version)] = inf
        return inf

    def _copy_event_any(self, gr: GroupResource, obj: Mapping[str, Any], deleted: bool = False) -> None:
        with self._lock:
            name = self._mailbox_by_cluster.get(kcp.cluster_of(obj))
        if name is not None:
            self._copy_event(name, gr, obj, deleted)

    def mailbox(self, name: str, cluster: str) -> Mailbox:
        """The mailbox's caches."""
        with self._lock:
            mb = self._mailboxes.get(name)
            if mb is None or mb.cluster != cluster:
                mb = self._mailboxes[name] = Mailbox(cluster, kcp.cluster(self.all, cluster))
        return mb

    def namespaces_in(self, cluster: str) -> dict[str, Mapping[str, Any]]:
        """The Namespaces of one logical cluster, by name (from the one Namespace informer)."""
        return {Meta(n).name: n for n in self.namespaces.by_index(CLUSTER_INDEX, cluster)}

    def known_mailbox(self, name: str) -> Mailbox | None:
        with self._lock:
            return self._mailboxes.get(name)

    def mailboxes_in(self, cluster: str) -> list[str]:
        with self._lock:
            return [name for name, mb in self._mailboxes.items() if mb.cluster == cluster]

    def copy_informer(self, name: str, mb: Mailbox, gr: GroupResource, version: str) -> Informer | None:
        """The informer on projected copies of ``gr`` in the mailbox; None while not served."""
        if not self.discovery.serves(mb.client, gr.group, version, gr.resource):
            return None  # not (yet) bound or defined in this mailbox: its copies wait
        inf = self.shared_informer(gr, version) or mb.copies.get((gr, version))
        if inf is not None:
            return inf
        found = self.discovery.find(mb.client, gr.group, gr.resource)
        if found is None or version not in found.versions:
            self.discovery.invalidate(mb.client)
            return None
        inf = self.factory.informer(
            mb.client, found.path(version), label_selector=PROJECTED_SELECTOR, transform=compact
        )
        inf.add_event_handler(
            on_add=lambda o: self._copy_event(name, gr, o),
            on_update=lambda o, n: self._copy_event(name, gr, n),
            on_delete=lambda o: self._copy_event(name, gr, o, deleted=True),
        )
        with self._lock:
            mb.copies[(gr, version)] = inf
        return inf

    def copy_of(self, mailbox: str, gr: GroupResource, version: str) -> Informer | None:
        """The informer that holds the mailbox's copies of ``gr`` at ``version``, if any."""
        with self._lock:
            mb = self._mailboxes.get(mailbox)
            return self.shared.get((gr, version)) or (mb.copies.get((gr, version)) if mb else None)

    def _copy_event(
        self, mailbox: str, gr: GroupResource, obj: Mapping[str, Any], deleted: bool = False
    ) -> None:
        """A copy changed: its mailbox is reconciled, and its source when its status returns.  The
        echo of our own write (the version we wrote, or the deletion we made) does not reconcile
        the mailbox: the reconcile that wrote it finished that mailbox, or queued it again itself."""
        meta = Meta(obj)
        key = CopyKey(gr, meta.namespace, meta.name)
        if not self.written.echo(f"{kcp.cluster_of(obj)}|{key}", meta.resource_version, deleted):
            self.queues.mailbox(mailbox)
        desired = self.desired()
        if desired is None:
            return
        md = desired.mailboxes.get(mailbox)
        copy = md.copies.get(key) if md else None
        if copy is not None and (copy.source_cluster, key) in desired.singleton_sources:
            self.queues.source((copy.source_cluster, key))


def collection_path(gr: GroupResource, version: str, namespace: str) -> str:
    """The collection of ``gr`` at ``version`` (in ``namespace``, if given) in one logical cluster."""
    base = group_version_path(gr.group, version)
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{gr.resource}"


def _bound_path(gr: GroupResource, version: str, identity: str) -> str:
    base = group_version_path(gr.group, version)
    return f"{base}/{kcp.with_identity(gr.resource, identity)}"


class Reports:
    """Per mailbox, the copies that wait for their resource (and since when) and the copies the
    mailbox refused (and why).  A change enqueues the placements that send to that mailbox, whose
    ``Projected`` condition shows it."""

    def __init__(self, enqueue_placement: Callable[[PlacementKey], None]) -> None:
        self._enqueue = enqueue_placement
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[list[str], float]] = {}  # mailbox -> (why copies wait, since)
        self._refused: dict[str, dict[CopyKey, str]] = {}  # mailbox -> copies it refused, and why

    def set_waiting(self, mailbox: str, waiting: list[str], desired: Desired) -> None:
        with self._lock:
            if self._waiting.get(mailbox, ([], 0.0))[0] == waiting:
                return
            self._waiting[mailbox] = (waiting, time.monotonic())
        self._enqueue_senders(mailbox, desired)

    def set_refused(self, mailbox: str, refused: dict[CopyKey, str], desired: Desired) -> None:
        with self._lock:
            if self._refused.get(mailbox, {}) == refused:
                return
            self._refused[mailbox] = refused
        self._enqueue_senders(mailbox, desired)

    def waiting(self, mailbox: str, now: float) -> tuple[list[str], float]:
        """Why copies wait in the mailbox, and since when (``now`` when none wait)."""
        with self._lock:
            return self._waiting.get(mailbox, ([], now))

    def refused(self, mailbox: str) -> dict[CopyKey, str]:
        with self._lock:
            return dict(self._refused.get(mailbox, {}))

    def _enqueue_senders(self, mailbox: str, desired: Desired) -> None:
        for key, destinations in desired.wheres.items():
            if any(mailbox_of(d) == mailbox for d in destinations):
                self._enqueue(key)
