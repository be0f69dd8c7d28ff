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
from pkg.controllers.translator.base import EDGE, NAME, THE_ONE, WORKSPACES, Mailbox, Wmw
from pkg.controllers.translator.desired import (
    CRDS,
    CopyKey,
    Desired,
    Memo,
    Placement,
    ResourceInfo,
    Workspace,
    compute,
    destinations,
    mailbox_of,
)
from pkg.controllers.translator.mailbox import MailboxWriter
from pkg.controllers.translator.status import StatusWriter
from pkg.controllers.translator.written import Written
from pkg.controllers.what.select import (
    EDGE_GROUP,
    EXECUTING_COUNT,
    GroupResource,
    compile_placement,
    could_select,
    excluded,
)
from pkg.runtime import kcp
from pkg.runtime.controller import Controller, Result
from pkg.runtime.discovery import APIResource, Discovery
from pkg.runtime.events import EventRecorder, ObjectRef
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta, resource_version_of
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import Object

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
        self._wmws: dict[str, Wmw] = {}
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

        self._recompute_on(self.eps)
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
        for ctl in (self.compute_ctl, self.mailbox_ctl, self.source_ctl, self.status_ctl):
            manager.add(ctl)
        manager.on_started_leading(lambda: self.compute_ctl.enqueue(_ALL))

    def _recompute_on(self, inf: Informer[Any]) -> None:
        inf.add_event_handler(
            on_add=lambda o: self.compute_ctl.enqueue(_ALL),
            on_update=lambda o, n: self._changed(o, n),
            on_delete=lambda o: self.compute_ctl.enqueue(_ALL),
        )

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
        for cluster in droppable_wmws(self._wmws, eps_by_cluster, annotated):
            self._drop_wmw(cluster)
        waiting = False
        views: list[Workspace] = []
        for cluster, eps in sorted(eps_by_cluster.items()):
            view = self._wmw_view(cluster, eps)
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
        found: set[tuple[str, CopyKey]] = set()
        for view in views:
            for gr, objs in view.objects.items():
                for obj in objs:
                    meta = Meta(obj)
                    if EXECUTING_COUNT in meta.annotations:
                        found.add((view.cluster, CopyKey(gr, meta.namespace, meta.name)))
        return found

    def _drop_wmw(self, cluster: str) -> None:
        with self._lock:
            st = self._wmws.pop(cluster, None)
        if st is None:
            return
        for version_inf in st.sources.values():
            self.factory.remove(version_inf[1].client, version_inf[1].resource_path)

    def _wmw(self, cluster: str) -> Wmw:
        with self._lock:
            st = self._wmws.get(cluster)
            if st is None:
                client = kcp.cluster(self.all, cluster)
                st = self._wmws[cluster] = Wmw(cluster, client)
        if st.namespaces is None:
            st.namespaces = self.factory.informer(st.client, "/api/v1/namespaces")
            self._recompute_on(st.namespaces)
            st.crds = self.factory.informer(
                st.client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            )
            for inf in (st.crds, self.factory.informer(st.client, f"{kcp.APIS}/apibindings")):
                # A new CRD or APIBinding changes what the WMW serves: discover again.
                inf.add_event_handler(
                    on_add=lambda o: self._crds_changed(st),
                    on_update=lambda o, n: self._crds_changed(st),
                    on_delete=lambda o: self._crds_changed(st),
                )
        if not st.path:
            try:
                st.path = kcp.logical_cluster_path(self.all, cluster) or cluster
            except ApiError:
                st.path = cluster
        return st

    def _crds_changed(self, st: Wmw) -> None:
        self.discovery.invalidate(st.client)
        self.compute_ctl.enqueue(_ALL)

    def _wmw_view(self, cluster: str, eps: list[EdgePlacement]) -> Workspace | None:
        """The cached view of one WMW, or None while some of its caches are still filling."""
        st = self._wmw(cluster)
        assert st.namespaces is not None and st.crds is not None
        if not (st.namespaces.has_synced() and st.crds.has_synced()):
            return None
        served = self.discovery.resources(st.client)
        crd_names: dict[tuple[str, str], str] = {}
        for crd in st.crds.list():
            spec = crd.get("spec") or {}
            crd_names[(str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", "")))] = Meta(
                crd
            ).name
        compiled = [compile_placement(ep.spec)[0] for ep in eps]
        resources: dict[GroupResource, ResourceInfo] = {}
        objects: dict[GroupResource, list[Mapping[str, Any]]] = {}
        ready = True
        for (group, resource), api in served.items():
            gr = GroupResource(group, resource)
            if excluded(gr) or not api.listable:
                continue
            info = ResourceInfo(gr, api.kind, api.namespaced, api.versions, crd_names.get((group, resource)))
            resources[gr] = info
            wanted = gr == CRDS or any(could_select(c, gr) for c in compiled)
            if not wanted:
                continue
            inf = self._source_informer(st, gr, api)
            if not inf.has_synced():
                ready = False
            objects[gr] = list(inf.list())
        for gr in [
            g for g in st.sources if g not in resources or not any(could_select(c, g) for c in compiled)
        ]:
            if gr != CRDS:
                _, inf = st.sources.pop(gr)
                self.factory.remove(inf.client, inf.resource_path)
        if not ready:
            return None
        namespaces = {Meta(ns).name: dict(Meta(ns).labels) for ns in st.namespaces.list()}
        customizers = {
            (c.metadata.namespace or "", c.metadata.name or ""): c
            for c in self.customizer_lister.list(cluster)
        }
        spss = {s.metadata.name: s for s in self.slice_lister.list(cluster)}
        placements = []
        for ep in eps:
            sps = spss.get(ep.metadata.name)
            dests = destinations(sps.destinations) if sps is not None else []
            placements.append(Placement(ep.metadata.name or "", ep.spec, dests))
        return Workspace(cluster, st.path, placements, resources, objects, namespaces, customizers)

    def _source_informer(self, st: Wmw, gr: GroupResource, api: APIResource) -> Informer[Object]:
        have = st.sources.get(gr)
        if have is not None and have[0] == api.preferred:
            return have[1]
        if have is not None:
            self.factory.remove(have[1].client, have[1].resource_path)
        inf = self.factory.informer(st.client, api.path(api.preferred))
        self._recompute_on(inf)
        st.sources[gr] = (api.preferred, inf)
        return inf

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
