"""The placement translator: keeps every mailbox equal to :func:`desired.compute` of the caches.

Four small controllers share the informers:

* ``compute`` (one key, one worker): whenever an input changes, rebuild the view of every WMW from
  the caches, compute the desired state of every mailbox (building again only those whose inputs
  changed: :class:`desired.Memo`), start the informers it needs, report problems, and enqueue
  the mailboxes, source objects and placements to reconcile.  Events that arrive while it
  computes coalesce into one more run (the workqueue's dirty set).
* ``mailbox`` (key: mailbox name): writes the difference between the desired and the cached
  content of one mailbox: Namespaces, then CRDs, then the other copies; deletes stale projected
  copies; then writes ``the-one``.  Copies wait, with a reason, until their resource is served.
* ``source`` (key: WMW cluster and object): the ``kubestellar.io/executing-count`` annotation and
  the return of a singleton's reported state.
* ``status`` (key: WMW cluster and placement name): the ``Projected`` condition, by server-side
  apply on the status subresource with field manager ``placement-translator``.

Reads of the edge API go through the edge APIExport's virtual workspace; workload objects are read
per WMW and mailbox copies per mailbox (``/clusters/<name>``), where all writes go too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from apis.edge.v2alpha1 import Customizer, EdgePlacement, Location, SinglePlacementSlice, SyncerConfig
from apis.edge.v2alpha1.listers import (
    CustomizerLister,
    EdgePlacementLister,
    LocationLister,
    SinglePlacementSliceLister,
    SyncerConfigLister,
)
from apis.machinery.meta import cluster_of
from pkg.controllers.translator.base import EDGE, NAME, THE_ONE, WORKSPACES, Mailbox
from pkg.controllers.translator.desired import (
    Desired,
    Memo,
    Placement,
    Workspace,
    compute,
    destinations,
    mailbox_of,
)
from pkg.controllers.translator.mailbox import MailboxWriter
from pkg.controllers.translator.status import StatusWriter
from pkg.controllers.translator.written import Written
from pkg.controllers.what.controller import NAME as WHAT_RESOLVER
from pkg.controllers.what.controller import PlacementIndex, WhatResolver, WhatStore, WmwCaches, WmwEvents
from pkg.controllers.what.resolve import CRDS, CopyKey
from pkg.controllers.what.select import (
    EDGE_GROUP,
    EXECUTING_COUNT,
    GroupResource,
    could_select,
)
from pkg.runtime import kcp
from pkg.runtime.controller import Controller, Result
from pkg.runtime.discovery import Discovery
from pkg.runtime.events import EventRecorder, ObjectRef
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta, resource_version_of
from pkg.runtime.rest import RestClient

log = logging.getLogger(__name__)
_ALL = "all"


class Translator(MailboxWriter, StatusWriter):
    def __init__(
        self,
        allclusters: RestClient,
        espw_path: str,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        concurrency: int = 4,
        export_name: str = "edge.kubestellar.io",
    ) -> None:
        self.all = allclusters
        self.espw_path = espw_path
        self.factory = factory
        self.recorder = recorder
        self.concurrency = concurrency
        self.export_name = export_name
        self.discovery = Discovery()
        self._lock = threading.Lock()
        self._scanned: set[tuple[str, GroupResource, int]] = set()  # source informers scanned for counts
        self._mailboxes: dict[str, Mailbox] = {}
        self._desired: Desired | None = None
        self._memo = Memo()  # only the mailboxes whose inputs changed are built again
        self._annotated: set[tuple[str, CopyKey]] = set()
        self._written = Written()
        # (mailbox, logical cluster) whose last reconcile left nothing to do; changes of their copies
        # enqueue them directly, so a recomputation that leaves their desired state equal skips them.
        self._clean: set[tuple[str, str]] = set()
        self._mailbox_by_cluster: dict[str, str] = {}
        self._waiting: dict[str, tuple[list[str], float]] = {}  # mailbox -> (why copies wait, since)
        self._refused: dict[str, dict[CopyKey, str]] = {}  # mailbox -> copies it refused, and why

    # -- setup -------------------------------------------------------------------------------------

    def setup(self, manager: Any) -> None:
        """Create the shared informers and add the controllers to ``manager``."""
        export = kcp.wait_export_ready(self.all, self.espw_path, self.export_name)
        vw = kcp.virtual_workspace(self.all, export)
        self.eps = self.factory.informer(vw, f"{EDGE}/edgeplacements", model=EdgePlacement)
        self.spss = self.factory.informer(vw, f"{EDGE}/singleplacementslices", model=SinglePlacementSlice)
        self.locations = self.factory.informer(vw, f"{EDGE}/locations", model=Location)
        self.customizers = self.factory.informer(vw, f"{EDGE}/customizers", model=Customizer)
        self.placement_lister = EdgePlacementLister(self.eps)
        self.slice_lister = SinglePlacementSliceLister(self.spss)
        self.location_lister = LocationLister(self.locations)
        self.customizer_lister = CustomizerLister(self.customizers)
        self.syncer_configs = self.factory.informer(vw, f"{EDGE}/syncerconfigs", model=SyncerConfig)
        self.syncer_config_lister = SyncerConfigLister(self.syncer_configs)
        self.workspaces = self.factory.informer(kcp.cluster(self.all, kcp.ROOT), WORKSPACES)
        self._setup_copy_informers()

        # The what resolver: its own controller and queue, one key per EdgePlacement.
        self.caches = WmwCaches(
            self.all,
            self.factory,
            self.discovery,
            WmwEvents(
                object_changed=lambda c, gr: self._enqueue_whats(self.what_resolver.for_object(c, gr)),
                namespace_changed=lambda c: self._enqueue_whats(self.what_resolver.for_namespace(c)),
                served_changed=self._served_changed,
            ),
        )
        self.whats = WhatStore()
        self.what_index = PlacementIndex()
        self.what_resolver = WhatResolver(self.placement_lister, self.caches, self.whats, self.what_index)
        self.what_ctl: Controller[tuple[str, str]] = Controller(
            WHAT_RESOLVER, self.what_resolver.reconcile, workers=1
        )
        self.whats.add_listener(lambda key: self.compute_ctl.enqueue(_ALL))

        self.compute_ctl: Controller[str] = Controller(f"{NAME}-compute", self._compute, workers=1)
        self.mailbox_ctl: Controller[str] = Controller(
            f"{NAME}-mailbox", self._reconcile_mailbox, workers=self.concurrency
        )
        self.source_ctl: Controller[tuple[str, CopyKey]] = Controller(
            f"{NAME}-source", self._reconcile_source, workers=self.concurrency
        )
        self.status_ctl: Controller[tuple[str, str]] = Controller(
            f"{NAME}-status", self._reconcile_status, workers=1
        )

        self.eps.add_event_handler(
            on_add=self._placement_changed,
            on_update=lambda o, n: (
                self._placement_changed(n) if resource_version_of(o) != resource_version_of(n) else None
            ),
            on_delete=self._placement_changed,
        )
        self._recompute_on(self.spss)
        self._recompute_on(self.locations)
        self._recompute_on(self.customizers)
        self.workspaces.add_event_handler(
            on_add=lambda o: self._workspace_changed(None, o),
            on_update=self._workspace_changed,
            on_delete=lambda o: self._workspace_changed(None, o),
        )
        self.syncer_configs.add_event_handler(
            on_add=self._the_one_changed,
            on_update=lambda o, n: self._the_one_changed(n),
            on_delete=self._the_one_changed,
        )
        for ctl in (self.what_ctl, self.compute_ctl, self.mailbox_ctl, self.source_ctl, self.status_ctl):
            manager.add(ctl)
        manager.on_started_leading(lambda: self.compute_ctl.enqueue(_ALL))

    def _recompute_on(self, inf: Informer[Any]) -> None:  # an input of the join, not of any what
        inf.add_event_handler(
            on_add=lambda o: self.compute_ctl.enqueue(_ALL),
            on_update=lambda o, n: self._changed(o, n),
            on_delete=lambda o: self.compute_ctl.enqueue(_ALL),
        )

    def _placement_changed(self, ep: EdgePlacement) -> None:
        self.what_ctl.enqueue((cluster_of(ep), ep.metadata.name or ""))
        self.compute_ctl.enqueue(_ALL)  # its where, and whether its WMW is watched at all

    def _placement_updated(self, old: EdgePlacement, new: EdgePlacement) -> None:
        if resource_version_of(old) != resource_version_of(new):
            self._placement_changed(new)

    def _enqueue_whats(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self.what_ctl.enqueue(key)

    def _served_changed(self, cluster: str) -> None:
        self._enqueue_whats(self.what_resolver.for_wmw(cluster))
        self.compute_ctl.enqueue(_ALL)

    def _workspace_changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
        """Only a mailbox appearing, going, becoming Ready or moving matters to the desired state."""
        if "-mb-" not in Meta(new).name:
            return
        if old is not None and _workspace_facts(old) == _workspace_facts(new):
            self.mailbox_ctl.enqueue(Meta(new).name)
            return
        self.compute_ctl.enqueue(_ALL)

    def _changed(self, old: Any, new: Any) -> None:
        """An update of a cached object (a dict, or a model of an edge kind)."""
        if resource_version_of(old) != resource_version_of(new):
            self.compute_ctl.enqueue(_ALL)

    def _the_one_changed(self, obj: SyncerConfig) -> None:
        if obj.metadata.name != THE_ONE:
            return
        cluster = cluster_of(obj)
        for name, mb in list(self._mailboxes.items()):
            if mb.cluster == cluster:
                self.mailbox_ctl.enqueue(name)

    # -- compute -----------------------------------------------------------------------------------

    def _mailbox_workspaces(self) -> dict[str, Mapping[str, Any]]:
        return {Meta(ws).name: ws for ws in self.workspaces.list() if "-mb-" in Meta(ws).name}

    def _compute(self, _: str) -> Result | None:
        eps_by_cluster: dict[str, list[EdgePlacement]] = {}
        for ep in self.placement_lister.list():
            if ep.metadata.deletion_timestamp is None:
                eps_by_cluster.setdefault(cluster_of(ep), []).append(ep)
        with self._lock:
            annotated = set(self._annotated)
        for cluster in droppable_wmws(self.caches.clusters(), eps_by_cluster, annotated):
            self.caches.drop(cluster)
        waiting = False
        views: list[Workspace] = []
        for cluster, eps in sorted(eps_by_cluster.items()):
            view = self._wmw_view(cluster, eps, annotated)
            if view is None:
                waiting = True
                continue
            views.append(view)
        if waiting:
            return Result(requeue_after=0.5)  # a source cache is still filling: never act on a partial view
        locations = {(cluster_of(loc), loc.metadata.name or ""): loc for loc in self.location_lister.list()}
        mailboxes = self._mailbox_workspaces()
        self._mailbox_by_cluster = {
            str((ws.get("spec") or {}).get("cluster")): name
            for name, ws in mailboxes.items()
            if (ws.get("spec") or {}).get("cluster")
        }
        desired = compute(views, locations, sorted(mailboxes), memo=self._memo)
        with self._lock:
            previous = self._desired
            self._desired = desired
        _log_puts("what", previous.whats if previous else {}, desired.whats)
        _log_puts("where", previous.wheres if previous else {}, desired.wheres)
        reported = {(p.cluster, p.reason, p.message) for p in previous.problems} if previous else set()
        for problem in desired.problems:
            if (problem.cluster, problem.reason, problem.message) in reported:
                continue  # reported when it first appeared
            if problem.obj is not None:
                self.recorder.warning(
                    ObjectRef.of(dict(problem.obj), problem.cluster), problem.reason, problem.message
                )
            for ep_name in problem.placements:
                if problem.obj is None:
                    ref = ObjectRef(problem.cluster, f"{EDGE_GROUP}/v2alpha1", "EdgePlacement", ep_name)
                    self.recorder.warning(ref, problem.reason, problem.message)
        for name in sorted(set(mailboxes) | set(desired.mailboxes)):
            cluster = str((mailboxes.get(name, {}).get("spec") or {}).get("cluster") or "")
            unchanged = previous is not None and previous.mailboxes.get(name) == desired.mailboxes.get(name)
            if not (unchanged and (name, cluster) in self._clean):
                self.mailbox_ctl.enqueue(name)
        with self._lock:
            annotated = set(self._annotated)
        sources = set(desired.executing_counts) | annotated | self._annotated_now(views)
        if previous is not None:
            sources |= set(previous.executing_counts)
        for key in sources:
            self.source_ctl.enqueue(key)
        for cluster, cluster_eps in eps_by_cluster.items():
            for one in cluster_eps:
                self.status_ctl.enqueue((cluster, one.metadata.name or ""))
        log.log(
            V(2),
            "computed desired state mailboxes=%d built=%d problems=%d",
            len(desired.mailboxes),
            self._memo.built,
            len(desired.problems),
        )
        return None

    def _annotated_now(self, views: list[Workspace]) -> set[tuple[str, CopyKey]]:
        """Objects carrying an executing-count, found once per source informer after it synced
        (after a restart, counts of ours that no placement wants any more; from then on the source
        reconciler keeps track of what it annotates)."""
        found: set[tuple[str, CopyKey]] = set()
        for view in views:
            st = self.caches.get(view.cluster)
            if st is None:
                continue
            for gr, (_, inf) in list(st.sources.items()):
                if not inf.has_synced() or (view.cluster, gr, id(inf)) in self._scanned:
                    continue
                self._scanned.add((view.cluster, gr, id(inf)))
                for obj in inf.list():
                    meta = Meta(obj)
                    if EXECUTING_COUNT in meta.annotations:
                        found.add((view.cluster, CopyKey(gr, meta.namespace, meta.name)))
        return found

    def _wmw_view(
        self, cluster: str, eps: list[EdgePlacement], annotated: set[tuple[str, CopyKey]]
    ) -> Workspace | None:
        """One WMW's placements with their resolved whats, or None while some what is missing (the
        what resolver's store tells us when it is there)."""
        st = self.caches.get(cluster)
        whats = [self.whats.get((cluster, ep.metadata.name or "")) for ep in eps]
        if st is None or not self.caches.synced(st) or any(w is None for w in whats):
            return None
        resolved = [w for w in whats if w is not None]
        resources = self.caches.resources(st)
        counted = {key.gr for c, key in annotated if c == cluster}
        self.caches.prune(
            cluster, lambda gr: gr in counted or any(could_select(w.compiled, gr) for w in resolved)
        )
        objects: dict[GroupResource, list[Mapping[str, Any]]] = {}
        if CRDS in resources:  # what upsync's CRD rule reads
            objects[CRDS] = list(self.caches.source(st, CRDS, resources[CRDS][1]).list())
        customizers = {
            (c.metadata.namespace or "", c.metadata.name or ""): c
            for c in self.customizer_lister.list(cluster)
        }
        spss = {s.metadata.name: s for s in self.slice_lister.list(cluster)}
        placements = []
        for ep, what in zip(eps, resolved, strict=True):
            sps = spss.get(ep.metadata.name)
            dests = destinations(sps.destinations) if sps is not None else []
            placements.append(Placement(ep.metadata.name or "", ep.spec, dests, what))
        infos = {gr: info for gr, (info, _) in resources.items()}
        return Workspace(cluster, st.path, placements, infos, objects, {}, customizers)

    # -- mailboxes ---------------------------------------------------------------------------------


def droppable_wmws(
    watched: Iterable[str], with_placements: Iterable[str], annotated: Iterable[tuple[str, CopyKey]]
) -> set[str]:
    """The WMWs to stop watching: those without placements and without an object that still
    carries our ``executing-count``.  A WMW whose last placement went stays watched until the
    source reconciler has removed the annotation from every object it put it on (its source
    caches are needed for that); then that reconciler asks for a recomputation, which drops it."""
    keep = set(with_placements) | {cluster for cluster, _ in annotated}
    return {cluster for cluster in watched if cluster not in keep}


def _workspace_facts(ws: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        (ws.get("spec") or {}).get("cluster"),
        (ws.get("status") or {}).get("phase"),
        Meta(ws).deleting,
    )


def _log_puts(kind: str, before: Mapping[tuple[str, str], Any], after: Mapping[tuple[str, str], Any]) -> None:
    """Upstream's resolver log lines: ``"Put" map="what"|"where"`` (and ``"Delete"``) per change."""
    for key, value in after.items():
        if before.get(key) != value:
            shown = [str(v) for v in value[0]] if kind == "what" else [mailbox_of(d) for d in value]
            log.info('"Put" map="%s" key=%s:%s val=%s', kind, key[0], key[1], shown)
    for key in before.keys() - after.keys():
        log.info('"Delete" map="%s" key=%s:%s', kind, key[0], key[1])
