"""The placement translator: keeps every mailbox equal to :func:`desired.compute` of the caches.

Four small controllers share the informers:

* ``compute`` (one key, one worker): whenever an input changes, rebuild the view of every WMW from
  the caches, compute the desired state of every mailbox, start the informers it needs, report
  problems, and enqueue the mailboxes, source objects and placements to reconcile.  Events that
  arrive while it computes coalesce into one more run (the workqueue's dirty set).
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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pkg import bootstrap
from pkg.controllers.translator.desired import (
    CRDS,
    NAMESPACES,
    CopyKey,
    Desired,
    Destination,
    MailboxDesired,
    Placement,
    ResourceInfo,
    Workspace,
    compute,
)
from pkg.controllers.translator.project import needs_update, update_form
from pkg.controllers.translator.written import Written
from pkg.controllers.what.select import (
    EDGE_GROUP,
    EXECUTING_COUNT,
    PROJECTED_LABEL,
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
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import make_key

log = logging.getLogger(__name__)

NAME = "placement-translator"
THE_ONE = "the-one"
EDGE = f"/apis/{EDGE_GROUP}/v2alpha1"
WORKSPACES = f"{kcp.TENANCY}/workspaces"
PROJECTED_SELECTOR = f"{PROJECTED_LABEL}=yes"
RETRY_SOON = Result(requeue_after=1.0)
WAIT_REPORTED_AFTER = 10.0  # seconds a copy may wait for its resource before placements say so
_ALL = "all"


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_md(obj).get("name", ""))


@dataclass
class _Wmw:
    """What the translator watches in one WMW."""

    cluster: str
    client: RestClient
    path: str = ""
    namespaces: Informer | None = None
    crds: Informer | None = None
    sources: dict[GroupResource, tuple[str, Informer]] = field(default_factory=dict)  # gr -> (version, inf)


@dataclass
class _Mailbox:
    cluster: str
    client: RestClient
    namespaces: Informer | None = None
    copies: dict[tuple[GroupResource, str], Informer] = field(default_factory=dict)  # (gr, version)


class Translator:
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
        self._wmws: dict[str, _Wmw] = {}
        self._mailboxes: dict[str, _Mailbox] = {}
        self._desired: Desired | None = None
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
        self.eps = self.factory.informer(vw, f"{EDGE}/edgeplacements")
        self.spss = self.factory.informer(vw, f"{EDGE}/singleplacementslices")
        self.locations = self.factory.informer(vw, f"{EDGE}/locations")
        self.customizers = self.factory.informer(vw, f"{EDGE}/customizers")
        self.syncer_configs = self.factory.informer(vw, f"{EDGE}/syncerconfigs")
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

        for inf in (self.eps, self.spss, self.locations, self.customizers, self.workspaces):
            self._recompute_on(inf)
        self.syncer_configs.add_event_handler(
            on_add=self._the_one_changed,
            on_update=lambda o, n: self._the_one_changed(n),
            on_delete=self._the_one_changed,
        )
        for ctl in (self.compute_ctl, self.mailbox_ctl, self.source_ctl, self.status_ctl):
            manager.add(ctl)
        manager.on_started_leading(lambda: self.compute_ctl.enqueue(_ALL))

    def _setup_copy_informers(self) -> None:
        """One ``/clusters/*`` informer per resource a mailbox can hold, on projected copies only.

        Natively served resources need nothing more; resources that mailboxes get from the kube
        exports in root:compute need the export's identity hash.  These informers cover every
        mailbox at once, so a stale copy of any such resource is found, after a restart too.
        Resources defined by CRDs inside a mailbox cannot be listed in full across clusters; those
        get a per-mailbox informer when a copy needs one.
        """
        self._shared: dict[tuple[GroupResource, str], Informer] = {}
        self._bound: dict[GroupResource, tuple[str, tuple[str, ...], str]] = {}  # identity, versions, storage
        compute = kcp.cluster(self.all, kcp.COMPUTE_WORKSPACE)
        for export_name in [kcp.KUBERNETES_EXPORT, *bootstrap.kube_export_names()]:
            try:
                export = kcp.get_export(self.all, kcp.COMPUTE_WORKSPACE, export_name)
            except ApiError as e:
                log.warning("kube export not found export=%s err=%s", export_name, e.status)
                continue
            identity = kcp.export_identity(export)
            for schema_name in (export.get("spec") or {}).get("latestResourceSchemas") or []:
                spec = compute.get(f"{kcp.APIS}/apiresourceschemas/{schema_name}").get("spec") or {}
                gr = GroupResource(
                    str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", ""))
                )
                served = tuple(str(v["name"]) for v in spec.get("versions") or [] if v.get("served", True))
                storage = next(
                    (str(v["name"]) for v in spec.get("versions") or [] if v.get("storage")), served[0]
                )
                self._bound[gr] = (identity, served, storage)
        self._natives: dict[GroupResource, APIResource] = {}
        for (group, resource), api in self.discovery.resources(kcp.cluster(self.all, self.espw_path)).items():
            gr = GroupResource(group, resource)
            if api.listable and not excluded(gr) and gr not in self._bound and group != EDGE_GROUP:
                self._natives[gr] = api
        for gr, api in self._natives.items():
            self._shared_informer(gr, api.preferred)
        for gr, (_, _, storage) in self._bound.items():
            self._shared_informer(gr, storage)

    def _shared_informer(self, gr: GroupResource, version: str) -> Informer | None:
        """The ``/clusters/*`` informer on projected copies of ``gr`` at ``version``, if kcp serves one."""
        inf = self._shared.get((gr, version))
        if inf is not None:
            return inf
        if gr in self._natives and version in self._natives[gr].versions:
            path = self._natives[gr].path(version)
        elif gr in self._bound and version in self._bound[gr][1]:
            base = f"/apis/{gr.group}/{version}" if gr.group else f"/api/{version}"
            path = f"{base}/{kcp.with_identity(gr.resource, self._bound[gr][0])}"
        else:
            return None
        inf = self.factory.informer(kcp.wildcard(self.all), path, label_selector=PROJECTED_SELECTOR)
        inf.add_event_handler(
            on_add=lambda o: self._copy_event_any(gr, o),
            on_update=lambda o, n: self._copy_event_any(gr, n),
            on_delete=lambda o: self._copy_event_any(gr, o),
        )
        self._shared[(gr, version)] = inf
        return inf

    def _copy_event_any(self, gr: GroupResource, obj: Mapping[str, Any]) -> None:
        name = self._mailbox_by_cluster.get(kcp.cluster_of(obj))
        if name is not None:
            self._copy_event(name, gr, obj)

    def _recompute_on(self, inf: Informer) -> None:
        inf.add_event_handler(
            on_add=lambda o: self.compute_ctl.enqueue(_ALL),
            on_update=lambda o, n: self._changed(o, n),
            on_delete=lambda o: self.compute_ctl.enqueue(_ALL),
        )

    def _changed(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        if _md(old).get("resourceVersion") != _md(new).get("resourceVersion"):
            self.compute_ctl.enqueue(_ALL)

    def _the_one_changed(self, obj: Mapping[str, Any]) -> None:
        if _name(obj) != THE_ONE:
            return
        cluster = kcp.cluster_of(obj)
        for name, mb in list(self._mailboxes.items()):
            if mb.cluster == cluster:
                self.mailbox_ctl.enqueue(name)

    # -- compute -----------------------------------------------------------------------------------

    def _mailbox_workspaces(self) -> dict[str, Mapping[str, Any]]:
        return {_name(ws): ws for ws in self.workspaces.list() if "-mb-" in _name(ws)}

    def _compute(self, _: str) -> Result | None:
        eps_by_cluster: dict[str, list[Mapping[str, Any]]] = {}
        for ep in self.eps.list():
            if not _md(ep).get("deletionTimestamp"):
                eps_by_cluster.setdefault(kcp.cluster_of(ep), []).append(ep)
        for cluster in list(self._wmws):
            if cluster not in eps_by_cluster:
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
        locations = {(kcp.cluster_of(loc), _name(loc)): loc for loc in self.locations.list()}
        mailboxes = self._mailbox_workspaces()
        self._mailbox_by_cluster = {
            str((ws.get("spec") or {}).get("cluster")): name
            for name, ws in mailboxes.items()
            if (ws.get("spec") or {}).get("cluster")
        }
        desired = compute(views, locations, sorted(mailboxes))
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
        sources = set(desired.executing_counts) | self._annotated | self._annotated_now(views)
        if previous is not None:
            sources |= set(previous.executing_counts)
        for key in sources:
            self.source_ctl.enqueue(key)
        for cluster, cluster_eps in eps_by_cluster.items():
            for one in cluster_eps:
                self.status_ctl.enqueue((cluster, _name(one)))
        log.log(
            V(2),
            "computed desired state mailboxes=%d problems=%d",
            len(desired.mailboxes),
            len(desired.problems),
        )
        return None

    def _annotated_now(self, views: list[Workspace]) -> set[tuple[str, CopyKey]]:
        found: set[tuple[str, CopyKey]] = set()
        for view in views:
            for gr, objs in view.objects.items():
                for obj in objs:
                    if EXECUTING_COUNT in (_md(obj).get("annotations") or {}):
                        found.add(
                            (view.cluster, CopyKey(gr, str(_md(obj).get("namespace") or ""), _name(obj)))
                        )
        return found

    def _drop_wmw(self, cluster: str) -> None:
        with self._lock:
            st = self._wmws.pop(cluster, None)
        if st is None:
            return
        for version_inf in st.sources.values():
            self.factory.remove(version_inf[1].client, version_inf[1].resource_path)

    def _wmw(self, cluster: str) -> _Wmw:
        with self._lock:
            st = self._wmws.get(cluster)
            if st is None:
                client = kcp.cluster(self.all, cluster)
                st = self._wmws[cluster] = _Wmw(cluster, client)
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

    def _crds_changed(self, st: _Wmw) -> None:
        self.discovery.invalidate(st.client)
        self.compute_ctl.enqueue(_ALL)

    def _wmw_view(self, cluster: str, eps: list[Mapping[str, Any]]) -> Workspace | None:
        """The cached view of one WMW, or None while some of its caches are still filling."""
        st = self._wmw(cluster)
        assert st.namespaces is not None and st.crds is not None
        if not (st.namespaces.has_synced() and st.crds.has_synced()):
            return None
        served = self.discovery.resources(st.client)
        crd_names: dict[tuple[str, str], str] = {}
        for crd in st.crds.list():
            spec = crd.get("spec") or {}
            crd_names[(str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", "")))] = _name(
                crd
            )
        compiled = [compile_placement(ep.get("spec") or {})[0] for ep in eps]
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
        namespaces = {_name(ns): dict(_md(ns).get("labels") or {}) for ns in st.namespaces.list()}
        customizers = {
            (str(_md(c).get("namespace") or ""), _name(c)): c
            for c in self.customizers.by_index("cluster", cluster)
        }
        spss = {_name(s): s for s in self.spss.by_index("cluster", cluster)}
        placements = []
        for ep in eps:
            sps = spss.get(_name(ep))
            dests = sorted({Destination.of(d) for d in (sps or {}).get("destinations") or []})
            placements.append(Placement(_name(ep), ep.get("spec") or {}, dests))
        return Workspace(cluster, st.path, placements, resources, objects, namespaces, customizers)

    def _source_informer(self, st: _Wmw, gr: GroupResource, api: APIResource) -> Informer:
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

    def _mailbox(self, name: str, cluster: str) -> _Mailbox:
        with self._lock:
            mb = self._mailboxes.get(name)
            if mb is None or mb.cluster != cluster:
                mb = self._mailboxes[name] = _Mailbox(cluster, kcp.cluster(self.all, cluster))
        if mb.namespaces is None:
            mb.namespaces = self.factory.informer(mb.client, "/api/v1/namespaces")
            mb.namespaces.add_event_handler(
                on_add=lambda o: self.mailbox_ctl.enqueue(name),
                on_update=lambda o, n: None,
                on_delete=lambda o: self.mailbox_ctl.enqueue(name),
            )
        return mb

    def _copy_informer(self, name: str, mb: _Mailbox, gr: GroupResource, version: str) -> Informer | None:
        """The informer on projected copies of ``gr`` in the mailbox; None while not served."""
        inf = self._shared_informer(gr, version) or mb.copies.get((gr, version))
        if inf is not None:
            return inf
        api = self.discovery.find(mb.client, gr.group, gr.resource)
        if api is None or version not in api.versions:
            self.discovery.invalidate(mb.client)
            return None
        inf = self.factory.informer(mb.client, api.path(version), label_selector=PROJECTED_SELECTOR)
        inf.add_event_handler(
            on_add=lambda o: self._copy_event(name, gr, o),
            on_update=lambda o, n: self._copy_event(name, gr, n),
            on_delete=lambda o: self._copy_event(name, gr, o),
        )
        mb.copies[(gr, version)] = inf
        return inf

    def _copy_event(self, mailbox: str, gr: GroupResource, obj: Mapping[str, Any]) -> None:
        self.mailbox_ctl.enqueue(mailbox)
        desired = self._desired
        if desired is None:
            return
        md = desired.mailboxes.get(mailbox)
        key = CopyKey(gr, str(_md(obj).get("namespace") or ""), _name(obj))
        copy = md.copies.get(key) if md else None
        if copy is not None and (copy.source_cluster, key) in desired.singleton_sources:
            self.source_ctl.enqueue((copy.source_cluster, key))

    def _reconcile_mailbox(self, name: str) -> Result | None:
        desired = self._desired
        if desired is None:
            return None
        ws = self._mailbox_workspaces().get(name)
        if ws is None:
            return None  # not (yet) a workspace: the mailbox controller makes it, its event brings us back
        cluster = str((ws.get("spec") or {}).get("cluster") or "")
        if (
            (ws.get("status") or {}).get("phase") != "Ready"
            or not cluster
            or _md(ws).get("deletionTimestamp")
        ):
            return RETRY_SOON
        self._clean.discard((name, cluster))
        want = desired.mailboxes.get(name) or MailboxDesired(name)
        mb = self._mailbox(name, cluster)
        assert mb.namespaces is not None
        the_one_key = f"{cluster}|the-one"
        the_one = self._written.fresh(the_one_key, self.syncer_configs.get(make_key(cluster, "", THE_ONE)))

        # The resources to look at: those wanted now, and those `the-one` says were sent before.
        versions: dict[GroupResource, str] = {}
        for key, c in want.copies.items():
            versions[key.gr] = c.api_version.rpartition("/")[2]
        for key in want.held:
            versions.setdefault(key.gr, "")
        for entry in _listed(the_one):
            versions.setdefault(GroupResource(entry["group"], entry["resource"]), entry["apiVersion"])
        informers: dict[GroupResource, Informer] = {}
        waiting: list[str] = []
        for gr, version in versions.items():
            if gr == NAMESPACES or not version:
                continue
            inf = self._copy_informer(name, mb, gr, version)
            if inf is None:
                if any(k.gr == gr for k in want.copies):
                    waiting.append(f"{gr} is not served yet in mailbox {name}")
                continue
            informers[gr] = inf
        if not mb.namespaces.has_synced() or not all(i.has_synced() for i in informers.values()):
            return Result(requeue_after=0.2)

        client = mb.client
        cached_ns = {_name(n): n for n in mb.namespaces.list()}

        def ns_exists(ns: str) -> bool:
            key = f"{cluster}|{CopyKey(NAMESPACES, '', ns)}"
            return self._written.fresh(key, cached_ns.get(ns)) is not None

        refused: dict[CopyKey, str] = {}
        order = sorted(want.copies.values(), key=lambda c: (c.key.gr != NAMESPACES, c.key.gr != CRDS, c.key))
        for copy in order:
            if copy.key.gr != NAMESPACES and copy.key.gr not in informers:
                continue
            ns = copy.key.namespace
            if copy.namespaced and not ns_exists(ns) and CopyKey(NAMESPACES, "", ns) not in want.copies:
                created_ns = self._create(client, "/api/v1/namespaces", _bare_namespace(ns), name)
                if created_ns is not None:
                    self._written.wrote(f"{cluster}|{CopyKey(NAMESPACES, '', ns)}", created_ns)
            wkey = f"{cluster}|{copy.key}"
            if copy.key.gr == NAMESPACES:
                cached = next((n for n in mb.namespaces.list() if _name(n) == copy.key.name), None)
            else:
                cached = informers[copy.key.gr].get(make_key(cluster, copy.key.namespace, copy.key.name))
            have = self._written.fresh(wkey, cached)
            path = _collection(copy.key.gr, copy.api_version, copy.key.namespace)
            try:
                if have is None:
                    created = self._create(client, path, copy.body, name)
                    if created is not None:
                        self._written.wrote(wkey, created)
                elif not copy.create_only and needs_update(have, copy.body):
                    updated = client.update(f"{path}/{copy.key.name}", update_form(have, copy.body))
                    self._written.wrote(wkey, updated)
                    log.log(V(3), "Updated object in mailbox workspace mailbox=%s object=%s", name, copy.key)
            except ApiError as e:
                if e.not_found and have is None:
                    # Not served (any more) although discovery said so: discover again, wait.
                    self.discovery.invalidate(client)
                    waiting.append(f"{copy.key.gr} is not served yet in mailbox {name}")
                    continue
                if not _refusal(e):
                    raise
                # The mailbox refuses this copy (schema, admission, quota, permission): report it,
                # go on with the others, and retry this mailbox with backoff.
                refused[copy.key] = f"mailbox {name} refused {copy.key}: {e.status} {e.message}"
                ref = ObjectRef(
                    copy.source_cluster,
                    str(copy.body.get("apiVersion", "")),
                    str(copy.body.get("kind", "")),
                    copy.key.name,
                    copy.key.namespace,
                )
                self.recorder.warning(ref, "MailboxWriteRefused", refused[copy.key])

        # Stale copies: projected, not wanted, not held back.  Namespaces are never deleted.
        keep = set(want.copies) | set(want.held)
        candidates: dict[tuple[GroupResource, str], Informer] = {
            (gr, version): inf for (gr, version), inf in self._shared.items() if gr != NAMESPACES
        }
        candidates.update({(gr, versions[gr]): inf for gr, inf in informers.items()})
        for (gr, version), inf in candidates.items():
            if not inf.has_synced():
                continue
            objs = inf.by_index("cluster", cluster) if inf in self._shared.values() else inf.list()
            for obj in objs:
                key = CopyKey(gr, str(_md(obj).get("namespace") or ""), _name(obj))
                if key in keep or _md(obj).get("deletionTimestamp"):
                    continue
                wkey = f"{cluster}|{key}"
                if self._written.fresh(wkey, obj) is None:
                    continue  # deleted already; the cache lags
                path = _collection(gr, f"{gr.group}/{version}" if gr.group else version, key.namespace)
                try:
                    client.delete(
                        f"{path}/{key.name}",
                        {"preconditions": {"resourceVersion": _md(obj).get("resourceVersion")}},
                    )
                    self._written.deleted(wkey, str(_md(obj).get("resourceVersion", "")))
                    log.log(
                        V(3), "Deleted undesired object in mailbox workspace mailbox=%s object=%s", name, key
                    )
                except ApiError as e:
                    if not (e.not_found or e.conflict):
                        raise
        self._set_waiting(name, waiting, desired)
        if waiting:
            self._set_refused(name, refused, desired)
            log.log(V(2), "copies wait mailbox=%s reason=%r", name, "; ".join(waiting))
            return RETRY_SOON

        # `the-one` last: it lists what the mailbox now holds.
        spec = want.syncer_config
        if the_one is None:
            body = {
                "apiVersion": f"{EDGE_GROUP}/v2alpha1",
                "kind": "SyncerConfig",
                "metadata": {"name": THE_ONE},
                "spec": spec,
            }
            try:
                created = self._create(client, f"{EDGE}/syncerconfigs", body, name)
            except ApiError as e:
                if not e.not_found:
                    raise
                # The mailbox does not serve SyncerConfigs yet (its bind-edge is still binding).
                log.log(V(2), "waiting for SyncerConfigs to be served mailbox=%s", name)
                return RETRY_SOON
            if created is not None:
                self._written.wrote(the_one_key, created)
                log.log(V(2), "Created SyncerConfig mailbox=%s", name)
        elif _normalized(the_one.get("spec")) != spec:
            body = {**the_one, "spec": spec}
            self._written.wrote(the_one_key, client.update(f"{EDGE}/syncerconfigs/{THE_ONE}", body))
            log.log(V(2), "Updated SyncerConfig mailbox=%s", name)
        self._set_refused(name, refused, desired)
        if refused:
            return Result(requeue=True)  # rate-limited: 5 ms doubling up to 1000 s per mailbox
        if self._desired is desired:
            self._clean.add((name, cluster))
        return None

    def _set_refused(self, mailbox: str, refused: dict[CopyKey, str], desired: Desired) -> None:
        """Remember which copies the mailbox refused; their placements show it."""
        if self._refused.get(mailbox, {}) == refused:
            return
        self._refused[mailbox] = refused
        for key, destinations in desired.wheres.items():
            if any(d.mailbox == mailbox for d in destinations):
                self.status_ctl.enqueue(key)

    def _set_waiting(self, mailbox: str, waiting: list[str], desired: Desired) -> None:
        """Remember why copies wait; the placements sending to that mailbox show it while it lasts."""
        if self._waiting.get(mailbox, ([], 0.0))[0] == waiting:
            return
        self._waiting[mailbox] = (waiting, time.monotonic())
        for key, destinations in desired.wheres.items():
            if any(d.mailbox == mailbox for d in destinations):
                self.status_ctl.enqueue(key)

    def _create(
        self, client: RestClient, path: str, body: Mapping[str, Any], mailbox: str
    ) -> Mapping[str, Any] | None:
        """Create; the created object, or None when it existed already (the cache will show it)."""
        try:
            created: Mapping[str, Any] = client.create(path, body)
        except ApiError as e:
            if not e.already_exists:
                raise
            return None
        log.log(
            V(3), "Created object in mailbox workspace mailbox=%s path=%s name=%s", mailbox, path, _name(body)
        )
        return created

    # -- sources: executing-count and singleton status --------------------------------------------

    def _reconcile_source(self, key: tuple[str, CopyKey]) -> Result | None:
        desired = self._desired
        cluster, ck = key
        st = self._wmws.get(cluster)
        if desired is None or st is None or ck.gr not in st.sources:
            self._annotated.discard(key)
            return None
        version, inf = st.sources[ck.gr]
        wkey = f"{cluster}|source|{ck}"
        obj = self._written.fresh(wkey, inf.get(make_key(cluster, ck.namespace, ck.name)))
        if obj is None:
            self._annotated.discard(key)
            return None
        count = desired.executing_counts.get(key)
        want = None if count is None else str(count)
        have = (_md(obj).get("annotations") or {}).get(EXECUTING_COUNT)
        path = f"{_collection(ck.gr, _gv(ck.gr, version), ck.namespace)}/{ck.name}"
        if want != have:
            obj = st.client.patch(path, {"metadata": {"annotations": {EXECUTING_COUNT: want}}})
            self._written.wrote(wkey, obj)
        if want is None:
            self._annotated.discard(key)
        else:
            self._annotated.add(key)
        mailbox = desired.singleton_sources.get(key)
        if mailbox is None:
            return None
        mb = self._mailboxes.get(mailbox)
        md = desired.mailboxes.get(mailbox)
        copy = md.copies.get(ck) if md else None
        if mb is None or copy is None:
            return None
        copy_version = copy.api_version.rpartition("/")[2]
        copy_inf = self._shared.get((ck.gr, copy_version)) or mb.copies.get((ck.gr, copy_version))
        mirror = copy_inf.get(make_key(mb.cluster, ck.namespace, ck.name)) if copy_inf else None
        if mirror is None or "status" not in mirror or mirror.get("status") == obj.get("status"):
            return None
        if ck.gr == NAMESPACES:
            return None  # a Namespace's status is the server's own, on both sides
        try:
            self._written.wrote(wkey, st.client.update(f"{path}/status", {**obj, "status": mirror["status"]}))
            log.log(V(2), "Return of singleton reported state happened object=%s", ck)
        except ApiError as e:
            if e.not_found:
                return None  # no status subresource: nothing to return
            raise
        return None

    # -- placements: the Projected condition -------------------------------------------------------

    def _reconcile_status(self, key: tuple[str, str]) -> Result | None:
        cluster, name = key
        desired = self._desired
        wkey = f"{cluster}|placement|{name}"
        ep = self._written.fresh(wkey, self.eps.get(make_key(cluster, "", name)))
        if desired is None or ep is None:
            return None
        issues = list(desired.placement_problems.get(key, []))
        for p in desired.problems:
            if p.cluster == cluster and name in p.placements and p.obj is not None:
                issues.append(p.message)
        selected = set(desired.whats.get(key, ((), ()))[0])
        for d in desired.wheres.get(key, ()):
            issues.extend(m for k, m in self._refused.get(d.mailbox, {}).items() if k in selected)
        # A short wait (a CRD being established) is normal; one that lasts is reported.
        now = time.monotonic()
        waits = [self._waiting.get(d.mailbox, ([], now)) for d in desired.wheres.get(key, ())]
        waiting = sorted(
            {w for reasons, since in waits if now - since >= WAIT_REPORTED_AFTER for w in reasons}
        )
        pending = [since + WAIT_REPORTED_AFTER - now for reasons, since in waits if reasons]
        status, reason = ("False", "HeldBack") if issues else ("True", "Projected")
        if waiting and not issues:
            status, reason, issues = "False", "Waiting", waiting
        message = "; ".join(sorted(set(issues)))[:2000] if issues else "every selected object is projected"
        current = next(
            (c for c in (ep.get("status") or {}).get("conditions") or [] if c.get("type") == "Projected"),
            None,
        )
        again = Result(requeue_after=max(0.1, min(pending))) if pending and not waiting else None
        if current and (current.get("status"), current.get("reason"), current.get("message")) == (
            status,
            reason,
            message,
        ):
            return again
        since = current.get("lastTransitionTime") if current and current.get("status") == status else None
        condition = {
            "type": "Projected",
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": _md(ep).get("generation", 0),
            "lastTransitionTime": since or _now(),
        }
        body = {
            "apiVersion": f"{EDGE_GROUP}/v2alpha1",
            "kind": "EdgePlacement",
            "metadata": {"name": name},
            "status": {"conditions": [condition]},
        }
        self._written.wrote(
            wkey, kcp.cluster(self.all, cluster).apply(f"{EDGE}/edgeplacements/{name}/status", body, NAME)
        )
        return again


def _refusal(e: ApiError) -> bool:
    """An answer that retrying the same request cannot change soon: the object is refused."""
    return 400 <= e.status < 500 and e.status not in (404, 408, 409, 429)


def _log_puts(kind: str, before: Mapping[tuple[str, str], Any], after: Mapping[tuple[str, str], Any]) -> None:
    """Upstream's resolver log lines: ``"Put" map="what"|"where"`` (and ``"Delete"``) per change."""
    for key, value in after.items():
        if before.get(key) != value:
            shown = [str(v) for v in value[0]] if kind == "what" else [d.mailbox for d in value]
            log.info('"Put" map="%s" key=%s:%s val=%s', kind, key[0], key[1], shown)
    for key in before.keys() - after.keys():
        log.info('"Delete" map="%s" key=%s:%s', kind, key[0], key[1])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gv(gr: GroupResource, version: str) -> str:
    return f"{gr.group}/{version}" if gr.group else version


def _collection(gr: GroupResource, api_version: str, namespace: str) -> str:
    base = f"/apis/{api_version}" if gr.group else f"/api/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{gr.resource}"


def _bare_namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {PROJECTED_LABEL: "yes"}},
    }


def _listed(the_one: Mapping[str, Any] | None) -> list[dict[str, str]]:
    spec = (the_one or {}).get("spec") or {}
    out = []
    for entry in (spec.get("namespacedObjects") or []) + (spec.get("clusterScope") or []):
        out.append(
            {
                "group": str(entry.get("group", "")),
                "resource": str(entry.get("resource", "")),
                "apiVersion": str(entry.get("apiVersion", "")),
            }
        )
    return out


def _normalized(spec: Any) -> Any:
    """``the-one``'s spec as read back, with what the server may add removed, for comparison."""
    if not isinstance(spec, dict):
        return {"namespaceScope": {}}
    out = {k: v for k, v in spec.items() if v not in (None, [], {}) or k == "namespaceScope"}
    out.setdefault("namespaceScope", {})
    return out
