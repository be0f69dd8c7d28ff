"""The placement translator: keeps every mailbox equal to :func:`desired.compute` of the caches.

Its reconcilers, each with its own workqueue, share one :class:`~.view.View`:

* ``what-resolver`` (key: EdgePlacement cluster and name, :mod:`pkg.controllers.what.controller`):
  each placement's resolved what, in a store that enqueues the join when one changes;
* ``placement-translator-compute`` (one key, one worker, :class:`JoinReconciler`): joins every
  placement's resolved what with its SinglePlacementSlice's destinations into the desired state of
  every mailbox (building again only those whose inputs changed: :class:`desired.Memo`), reports
  problems, and enqueues the mailboxes, source objects and placements to reconcile.  Events that
  arrive while it runs coalesce into one more run;
* ``placement-translator-mailbox`` (key: mailbox name, :class:`.mailbox.MailboxReconciler`): writes
  the difference between a mailbox's desired and cached content;
* ``placement-translator-source`` (key: WMW cluster and object, :class:`.status.SourceReconciler`):
  executing-count and the return of a singleton's reported state;
* ``placement-translator-status`` (key: WMW cluster and placement, :class:`.status.PlacementReconciler`):
  the ``Projected`` condition.

Reads of the edge API go through the edge APIExport's virtual workspace; workload objects are read
per WMW and mailbox copies per mailbox (``/clusters/<name>``), where all writes go too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from apis.edge.v2alpha1 import (
    API_VERSION,
    Customizer,
    EdgePlacement,
    Location,
    SinglePlacementSlice,
    SyncerConfig,
    resources,
)
from apis.edge.v2alpha1 import constants as api
from apis.edge.v2alpha1.listers import (
    CustomizerLister,
    EdgePlacementLister,
    LocationLister,
    SinglePlacementSliceLister,
    SyncerConfigLister,
)
from apis.edge.v2alpha1.naming import is_mailbox_name
from apis.machinery.meta import cluster_of
from pkg.controllers.translator.desired import Memo, Placement, Workspace, compute, destinations, mailbox_of
from pkg.controllers.translator.mailbox import MailboxReconciler
from pkg.controllers.translator.status import PlacementReconciler, SourceReconciler
from pkg.controllers.translator.view import NAME, Listers, Queues, Reports, SourceKey, View
from pkg.controllers.what.controller import NAME as WHAT_RESOLVER
from pkg.controllers.what.controller import PlacementIndex, WhatResolver, WhatStore, WmwCaches, WmwEvents
from pkg.controllers.what.resolve import CRDS, CopyKey
from pkg.controllers.what.select import GroupResource, could_select
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
JOIN_COALESCE = 0.5
"""Seconds a join caused by mailbox workspaces waits, so that the changes of many mailboxes at
once (1,000 new SyncTargets, each workspace changing as kcp schedules it) take one join."""


def droppable_wmws(
    watched: Iterable[str], with_placements: Iterable[str], annotated: Iterable[SourceKey]
) -> set[str]:
    """The WMWs to stop watching: those without placements and without an object that still
    carries our ``executing-count``.  A WMW whose last placement went stays watched until the
    source reconciler has removed the annotation from every object it put it on (its source
    caches are needed for that); then that reconciler asks for a join, which drops it."""
    keep = set(with_placements) | {cluster for cluster, _ in annotated}
    return {cluster for cluster in watched if cluster not in keep}


class JoinReconciler:
    """Joins every placement's resolved what with its where into the view's desired snapshot."""

    def __init__(self, view: View, queues: Queues) -> None:
        self.view = view
        self.queues = queues
        self.memo = Memo()  # only the mailboxes whose inputs changed are built again
        self._scanned: set[tuple[str, GroupResource, int]] = set()  # source informers scanned for counts

    def reconcile(self, _: str) -> Result | None:
        v = self.view
        eps_by_cluster: dict[str, list[EdgePlacement]] = {}
        for ep in v.listers.placements.list():
            if ep.metadata.deletion_timestamp is None:
                eps_by_cluster.setdefault(cluster_of(ep), []).append(ep)
        annotated = v.annotated()
        for cluster in droppable_wmws(v.caches.clusters(), eps_by_cluster, annotated):
            v.caches.drop(cluster)
        waiting = False
        views: list[Workspace] = []
        for cluster, eps in sorted(eps_by_cluster.items()):
            ws = self._wmw_view(cluster, eps, annotated)
            if ws is None:
                waiting = True
                continue
            views.append(ws)
        if waiting:
            return Result(requeue_after=0.5)  # a what is still missing: never act on a partial view
        locations = {(cluster_of(loc), loc.metadata.name or ""): loc for loc in v.listers.locations.list()}
        mailboxes = v.mailbox_workspaces()
        by_cluster = {
            str((ws.get("spec") or {}).get("cluster")): name
            for name, ws in mailboxes.items()
            if (ws.get("spec") or {}).get("cluster")
        }
        desired = compute(views, locations, sorted(mailboxes), memo=self.memo)
        previous = v.set_desired(desired, by_cluster)
        _log_puts("what", previous.whats if previous else {}, desired.whats)
        _log_puts("where", previous.wheres if previous else {}, desired.wheres)
        reported = {(p.cluster, p.reason, p.message) for p in previous.problems} if previous else set()
        for problem in desired.problems:
            if (problem.cluster, problem.reason, problem.message) in reported:
                continue  # reported when it first appeared
            if problem.obj is not None:
                v.recorder.warning(
                    ObjectRef.of(dict(problem.obj), problem.cluster), problem.reason, problem.message
                )
            for ep_name in problem.placements:
                if problem.obj is None:
                    ref = ObjectRef(problem.cluster, API_VERSION, "EdgePlacement", ep_name)
                    v.recorder.warning(ref, problem.reason, problem.message)
        for name in sorted(set(mailboxes) | set(desired.mailboxes)):
            cluster = str((mailboxes.get(name, {}).get("spec") or {}).get("cluster") or "")
            unchanged = previous is not None and previous.mailboxes.get(name) == desired.mailboxes.get(name)
            if not (unchanged and v.is_clean(name, cluster)):
                self.queues.mailbox(name)
        sources = set(desired.executing_counts) | annotated | self._annotated_now(views)
        if previous is not None:
            sources |= set(previous.executing_counts)
        for key in sources:
            self.queues.source(key)
        for cluster, cluster_eps in eps_by_cluster.items():
            for one in cluster_eps:
                self.queues.placement((cluster, one.metadata.name or ""))
        log.log(
            V(2),
            "computed desired state mailboxes=%d built=%d problems=%d",
            len(desired.mailboxes),
            self.memo.built,
            len(desired.problems),
        )
        return None

    def _annotated_now(self, views: list[Workspace]) -> set[SourceKey]:
        """Objects carrying an executing-count, found once per source informer after it synced
        (after a restart, counts of ours that no placement wants any more; from then on the source
        reconciler keeps track of what it annotates)."""
        found: set[SourceKey] = set()
        for ws in views:
            st = self.view.caches.get(ws.cluster)
            if st is None:
                continue
            for gr, (_, inf) in list(st.sources.items()):
                if not inf.has_synced() or (ws.cluster, gr, id(inf)) in self._scanned:
                    continue
                self._scanned.add((ws.cluster, gr, id(inf)))
                for obj in inf.list():
                    meta = Meta(obj)
                    if api.EXECUTING_COUNT_ANNOTATION in meta.annotations:
                        found.add((ws.cluster, CopyKey(gr, meta.namespace, meta.name)))
        return found

    def _wmw_view(
        self, cluster: str, eps: list[EdgePlacement], annotated: set[SourceKey]
    ) -> Workspace | None:
        """One WMW's placements with their resolved whats, or None while some what is missing (the
        what resolver's store enqueues the join when it is there)."""
        v = self.view
        st = v.caches.get(cluster)
        whats = [v.whats.get((cluster, ep.metadata.name or "")) for ep in eps]
        if st is None or not v.caches.synced(st) or any(w is None for w in whats):
            return None
        resolved = [w for w in whats if w is not None]
        served = v.caches.resources(st)
        counted = {key.gr for c, key in annotated if c == cluster}
        v.caches.prune(
            cluster, lambda gr: gr in counted or any(could_select(w.compiled, gr) for w in resolved)
        )
        objects: dict[GroupResource, list[Mapping[str, Any]]] = {}
        if CRDS in served:  # what upsync's CRD rule reads
            objects[CRDS] = list(v.caches.source(st, CRDS, served[CRDS][1]).list())
        customizers = {
            (c.metadata.namespace or "", c.metadata.name or ""): c
            for c in v.listers.customizers.list(cluster)
        }
        spss = {s.metadata.name: s for s in v.listers.slices.list(cluster)}
        placements = []
        for ep, what in zip(eps, resolved, strict=True):
            sps = spss.get(ep.metadata.name)
            dests = destinations(sps.destinations) if sps is not None else []
            placements.append(Placement(ep.metadata.name or "", ep.spec, dests, what))
        infos = {gr: info for gr, (info, _) in served.items()}
        return Workspace(cluster, st.path, placements, infos, objects, {}, customizers)


class Translator:
    """Wires the translator's reconcilers to the shared informers and their workqueues."""

    def __init__(
        self,
        allclusters: RestClient,
        espw_path: str,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        concurrency: int = 4,
        export_name: str = api.EXPORT_NAME,
    ) -> None:
        self.all = allclusters
        self.espw_path = espw_path
        self.factory = factory
        self.recorder = recorder
        self.concurrency = concurrency
        self.export_name = export_name

    def setup(self, manager: Any) -> None:
        """Create the shared informers and add the controllers to ``manager``."""
        export = kcp.wait_export_ready(self.all, self.espw_path, self.export_name)
        vw = kcp.virtual_workspace(self.all, export)
        eps = self.factory.informer(vw, resources.EDGE_PLACEMENTS.path(), model=EdgePlacement)
        spss = self.factory.informer(vw, resources.SINGLE_PLACEMENT_SLICES.path(), model=SinglePlacementSlice)
        locations = self.factory.informer(vw, resources.LOCATIONS.path(), model=Location)
        customizers = self.factory.informer(vw, resources.CUSTOMIZERS.path(), model=Customizer)
        syncer_configs = self.factory.informer(vw, resources.SYNCER_CONFIGS.path(), model=SyncerConfig)
        workspaces = self.factory.informer(kcp.cluster(self.all, kcp.ROOT), kcp.WORKSPACES.path())
        listers = Listers(
            EdgePlacementLister(eps),
            SinglePlacementSliceLister(spss),
            LocationLister(locations),
            CustomizerLister(customizers),
            SyncerConfigLister(syncer_configs),
        )
        discovery = Discovery()
        self.queues = queues = Queues()
        caches = WmwCaches(
            self.all,
            self.factory,
            discovery,
            WmwEvents(
                object_changed=lambda c, gr: self._enqueue_whats(self.what_resolver.for_object(c, gr)),
                namespace_changed=lambda c: self._enqueue_whats(self.what_resolver.for_namespace(c)),
                served_changed=self._served_changed,
            ),
        )
        whats = WhatStore()
        self.view = View(
            self.all,
            self.espw_path,
            self.factory,
            self.recorder,
            discovery,
            listers,
            workspaces,
            caches,
            whats,
            queues,
        )
        self.view.setup_copy_informers()
        reports = Reports(lambda key: queues.placement(key))

        self.what_resolver = WhatResolver(listers.placements, caches, whats, PlacementIndex())
        self.join = JoinReconciler(self.view, queues)
        mailbox = MailboxReconciler(self.view, reports)
        source = SourceReconciler(self.view)
        placement = PlacementReconciler(self.view, reports)
        self.what_ctl: Controller[tuple[str, str]] = Controller(WHAT_RESOLVER, self.what_resolver.reconcile)
        self.join_ctl: Controller[str] = Controller(f"{NAME}-compute", self.join.reconcile, workers=1)
        self.mailbox_ctl: Controller[str] = Controller(
            f"{NAME}-mailbox", mailbox.reconcile, workers=self.concurrency
        )
        self.source_ctl: Controller[SourceKey] = Controller(
            f"{NAME}-source", source.reconcile, workers=self.concurrency
        )
        self.status_ctl: Controller[tuple[str, str]] = Controller(
            f"{NAME}-status", placement.reconcile, workers=1
        )
        queues.join = self.join_ctl.enqueue
        queues.mailbox = self.mailbox_ctl.enqueue
        queues.source = self.source_ctl.enqueue
        queues.placement = self.status_ctl.enqueue

        whats.add_listener(lambda key: self.join_ctl.enqueue(_ALL))
        eps.add_event_handler(
            on_add=self._placement_changed,
            on_update=self._placement_updated,
            on_delete=self._placement_changed,
        )
        for inf in (spss, locations, customizers):
            self._join_on(inf)
        workspaces.add_event_handler(
            on_add=lambda o: self._workspace_changed(None, o),
            on_update=self._workspace_changed,
            on_delete=lambda o: self._workspace_changed(None, o),
        )
        syncer_configs.add_event_handler(
            on_add=self._the_one_changed,
            on_update=lambda o, n: self._the_one_changed(n),
            on_delete=lambda o: self._the_one_changed(o, deleted=True),
        )
        for ctl in (self.what_ctl, self.join_ctl, self.mailbox_ctl, self.source_ctl, self.status_ctl):
            manager.add(ctl)
        manager.on_started_leading(lambda: self.join_ctl.enqueue(_ALL))

    # -- event routing -------------------------------------------------------------------------------

    def _join_on(self, inf: Informer[Any]) -> None:
        """An input of the join only (slices, Locations, Customizers), not of any what."""
        inf.add_event_handler(
            on_add=lambda o: self.join_ctl.enqueue(_ALL),
            on_update=lambda o, n: (
                self.join_ctl.enqueue(_ALL) if resource_version_of(o) != resource_version_of(n) else None
            ),
            on_delete=lambda o: self.join_ctl.enqueue(_ALL),
        )

    def _placement_changed(self, ep: EdgePlacement) -> None:
        self.what_ctl.enqueue((cluster_of(ep), ep.metadata.name or ""))
        self.join_ctl.enqueue(_ALL)  # its where, and whether its WMW is watched at all

    def _placement_updated(self, old: EdgePlacement, new: EdgePlacement) -> None:
        if resource_version_of(old) != resource_version_of(new):
            self._placement_changed(new)

    def _enqueue_whats(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self.what_ctl.enqueue(key)

    def _served_changed(self, cluster: str) -> None:
        self._enqueue_whats(self.what_resolver.for_wmw(cluster))
        self.join_ctl.enqueue(_ALL)

    def _workspace_changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
        """Only a mailbox appearing, going or moving (its logical cluster) matters to the join;
        the mailbox itself is reconciled on every change (it waits, without polling, for its
        workspace to be Ready)."""
        if not is_mailbox_name(Meta(new).name):
            return
        self.mailbox_ctl.enqueue(Meta(new).name)
        if old is None or _workspace_facts(old) != _workspace_facts(new):
            # A burst of new mailboxes (each workspace changes several times as kcp schedules it)
            # costs one join per JOIN_COALESCE seconds, not one per event.
            self.join_ctl.queue.add_after(_ALL, JOIN_COALESCE)

    def _the_one_changed(self, obj: SyncerConfig, deleted: bool = False) -> None:
        if obj.metadata.name != api.THE_ONE:
            return
        cluster = cluster_of(obj)
        if self.view.written.echo(f"{cluster}|{api.THE_ONE}", obj.metadata.resource_version or "", deleted):
            return  # our own write, by the reconcile that finished the mailbox
        for name in self.view.mailboxes_in(cluster):
            self.mailbox_ctl.enqueue(name)


def _workspace_facts(ws: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the join reads of a mailbox's workspace (its phase only matters to the mailbox's own
    reconcile, which every change of the workspace enqueues)."""
    return ((ws.get("spec") or {}).get("cluster"), Meta(ws).deleting)


def _log_puts(kind: str, before: Mapping[tuple[str, str], Any], after: Mapping[tuple[str, str], Any]) -> None:
    """Upstream's resolver log lines: ``"Put" map="what"|"where"`` (and ``"Delete"``) per change."""
    for key, value in after.items():
        if before.get(key) != value:
            shown = [str(v) for v in value[0]] if kind == "what" else [mailbox_of(d) for d in value]
            log.info('"Put" map="%s" key=%s:%s val=%s', kind, key[0], key[1], shown)
    for key in before.keys() - after.keys():
        log.info('"Delete" map="%s" key=%s:%s', kind, key[0], key[1])
