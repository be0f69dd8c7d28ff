"""The where resolver controller (behaviour 2, spec decisions 5-7, scenarios A.3, C1-C4, C30).

For every EdgePlacement it keeps a SinglePlacementSlice of the same name in the placement's
workspace, whose ``destinations`` are :func:`~pkg.controllers.where.resolve.resolve`'s, and the
placement's status fields that the where resolver owns.

* Reads: informers on EdgePlacements, SinglePlacementSlices, Locations and SyncTargets through the
  ``edge.kubestellar.io`` APIExport's virtual workspace (``/clusters/*``), so across every workspace.
* Writes: through ``/clusters/<logical cluster>`` with the all-clusters client.
* The SPS carries one ownerReference to its EdgePlacement (``controller: true``), so kcp's garbage
  collector deletes it with the placement; the resolver itself never deletes an SPS.  It is created
  when missing (also after someone deletes it) and merge-patched, with a resourceVersion
  precondition, only when its destinations or its owner reference differ.
* ``EdgePlacement.status`` is written by server-side apply on the status subresource with field
  manager ``where-resolver``: ``specGeneration``, ``matchingLocationCount`` and condition
  ``LocationsResolved``, only when one of them differs from what is there.
* Any change of an EdgePlacement or of its SPS enqueues that placement; a Location or SyncTarget
  that appears, disappears, or changes its labels (Locations: also its spec) enqueues every
  placement.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from apis.edge.v2alpha1 import constants as edge_api
from pkg import bootstrap
from pkg.controllers.where.resolve import LOCATION, Destination, Problem, resolve, selected_locations
from pkg.runtime import kcp
from pkg.runtime.connections import Connections
from pkg.runtime.controller import Controller, Result
from pkg.runtime.events import EventRecorder, ObjectRef
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.klog import V, kv
from pkg.runtime.manager import Manager
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import Object, cluster_namespace_key, make_key, split_key

log = logging.getLogger(__name__)

NAME = "where-resolver"
FIELD_MANAGER = "where-resolver"
DEFAULT_WORKERS = 2

EDGE_API = bootstrap.EDGE_API
EDGE_API_VERSION = edge_api.API_VERSION
CONDITION = "LocationsResolved"
REASON_RESOLVED = "Resolved"
REASON_INVALID_SELECTOR = "InvalidSelector"

EXPORT_WAIT = 300.0


def edge_view(espw: RestClient, timeout: float = EXPORT_WAIT) -> RestClient:
    """A client for the edge APIExport's virtual workspace across all consumers (``/clusters/*``).

    Waits (up to ``timeout`` seconds) until the export in the ESPW has its virtual-workspace URL.
    """

    def ready() -> dict[str, Any] | None:
        export: dict[str, Any] = espw.get(f"{kcp.APIS}/apiexports/{bootstrap.EDGE_EXPORT}")
        return export if kcp.export_virtual_workspace_url(export) else None

    export = kcp.wait_for(f"APIExport {bootstrap.EDGE_EXPORT} to have a virtual workspace", ready, timeout)
    log.info("Found APIExport view %s", kv(exportName=bootstrap.EDGE_EXPORT))
    return kcp.virtual_workspace(espw, export)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _destinations_of(sps: Mapping[str, Any]) -> list[Destination]:
    have = sps.get("destinations")
    if not isinstance(have, list):
        return []
    return [
        Destination(
            cluster=str(d.get("cluster", "")),
            locationName=str(d.get("locationName", "")),
            syncTargetName=str(d.get("syncTargetName", "")),
            syncTargetUID=str(d.get("syncTargetUID", "")),
        )
        if isinstance(d, Mapping)
        else Destination(cluster="", locationName="", syncTargetName="", syncTargetUID="")
        for d in have
    ]


def _owner_reference(ep: Mapping[str, Any]) -> dict[str, Any]:
    meta = _meta(ep)
    return {
        "apiVersion": EDGE_API_VERSION,
        "kind": "EdgePlacement",
        "name": str(meta.get("name", "")),
        "uid": str(meta.get("uid", "")),
        "controller": True,
    }


def _is_placement_ref(ref: Any) -> bool:
    return (
        isinstance(ref, Mapping)
        and ref.get("kind") == "EdgePlacement"
        and str(ref.get("apiVersion", "")).startswith("edge.kubestellar.io/")
    )


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], *paths: tuple[str, ...]) -> bool:
    def at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    return any(at(old, p) != at(new, p) for p in paths)


class WhereResolver:
    """The informers, handlers and reconciler of the where resolver."""

    def __init__(
        self,
        view: RestClient,
        writer: RestClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.writer = writer  # at the server root: writes go to /clusters/<logical cluster>
        self.recorder = recorder
        self.placements = factory.informer(view, f"{EDGE_API}/edgeplacements")
        self.slices = factory.informer(view, f"{EDGE_API}/singleplacementslices")
        self.locations = factory.informer(view, f"{EDGE_API}/locations")
        self.sync_targets = factory.informer(view, f"{EDGE_API}/synctargets")
        self.controller: Controller[str] = Controller(NAME, self.reconcile, workers=workers)
        # Our own writes that the caches may not show yet (so a reconcile in between writes nothing):
        self._created: set[str] = set()  # SPS created, its add event not seen yet
        self._slice_written: dict[str, str] = {}  # SPS key -> resourceVersion our patch replaced
        self._status_written: dict[str, str] = {}  # EP key -> resourceVersion our apply replaced

        self.placements.add_event_handler(
            on_add=lambda obj: self._enqueue(obj, "EdgePlacement"),
            on_update=lambda old, new: self._enqueue(new, "EdgePlacement"),
            on_delete=lambda obj: self._enqueue(obj, "EdgePlacement"),
        )
        self.slices.add_event_handler(
            on_add=self._on_slice,
            on_update=lambda old, new: self._on_slice(new),
            on_delete=self._on_slice,
        )
        location_paths = (("metadata", "labels"), ("metadata", "deletionTimestamp"), ("spec",))
        self.locations.add_event_handler(
            on_add=lambda obj: self._enqueue_all("Location", obj),
            on_update=lambda old, new: (
                self._enqueue_all("Location", new) if _changed(old, new, *location_paths) else None
            ),
            on_delete=lambda obj: self._enqueue_all("Location", obj),
        )
        target_paths = (("metadata", "labels"), ("metadata", "deletionTimestamp"))
        self.sync_targets.add_event_handler(
            on_add=lambda obj: self._enqueue_all("SyncTarget", obj),
            on_update=lambda old, new: (
                self._enqueue_all("SyncTarget", new) if _changed(old, new, *target_paths) else None
            ),
            on_delete=lambda obj: self._enqueue_all("SyncTarget", obj),
        )

    # -- event handlers ---------------------------------------------------------------------------

    def _enqueue(self, obj: Object, kind: str) -> None:
        key = cluster_namespace_key(obj)
        log.log(V(4), "queueing EdgePlacement %s", kv(triggeringKind=kind, key=key))
        self.controller.enqueue(key)

    def _on_slice(self, sps: Object) -> None:
        self._created.discard(cluster_namespace_key(sps))
        self._enqueue(sps, "SinglePlacementSlice")

    def _enqueue_all(self, kind: str, obj: Object) -> None:
        log.log(
            V(4), "queueing every EdgePlacement %s", kv(triggeringKind=kind, key=cluster_namespace_key(obj))
        )
        for ep in self.placements.list():
            self.controller.enqueue(cluster_namespace_key(ep))

    # -- reconcile --------------------------------------------------------------------------------

    def reconcile(self, key: str) -> Result | None:
        ep = self.placements.get(key)
        if ep is None or _meta(ep).get("deletionTimestamp"):
            self._status_written.pop(key, None)
            self._slice_written.pop(key, None)
            return None  # its SPS goes with it (ownerReference garbage collection)
        cluster, _, name = split_key(key)
        locations = self.locations.list()
        destinations, problems = resolve(ep, locations, self.sync_targets.list())
        chosen, _ = selected_locations(ep, locations)
        log.log(V(3), "reconciling %s", kv(key=key, destinations=len(destinations), problems=len(problems)))
        result = self._ensure_slice(cluster, name, ep, destinations)
        targets = len({(d["cluster"], d["syncTargetUID"]) for d in destinations})
        self._ensure_status(cluster, name, ep, len(chosen), targets, problems)
        return result

    def _ensure_slice(
        self, cluster: str, name: str, ep: Object, destinations: list[Destination]
    ) -> Result | None:
        client = kcp.cluster(self.writer, cluster)
        collection = f"{EDGE_API}/singleplacementslices"
        owner = _owner_reference(ep)
        key = make_key(cluster, "", name)
        sps = self.slices.get(key)
        if sps is None:
            if key in self._created:
                return None  # created by us a moment ago; its add event brings the placement back
            body = {
                "apiVersion": EDGE_API_VERSION,
                "kind": "SinglePlacementSlice",
                "metadata": {"name": name, "ownerReferences": [owner]},
                "destinations": destinations,
            }
            log.log(V(2), "creating SinglePlacementSlice %s", kv(workloadWorkspace=cluster, name=name))
            try:
                created = client.create(collection, body)
            except ApiError as e:
                if not e.already_exists:
                    raise
                return None  # our cache is behind; its add event brings the placement back
            self._created.add(key)
            log.log(
                V(2),
                "created SinglePlacementSlice %s",
                kv(
                    workloadWorkspace=cluster,
                    singlePlacementSlice=name,
                    resourceVersion=_meta(created).get("resourceVersion", ""),
                ),
            )
            return None
        if _meta(sps).get("deletionTimestamp"):
            return Result(requeue_after=1.0)  # re-created once it is gone
        seen_rv = str(_meta(sps).get("resourceVersion", ""))
        if self._slice_written.get(key) == seen_rv:
            return None  # the cache does not show our last patch yet; its update event will come
        self._slice_written.pop(key, None)
        patch: dict[str, Any] = {}
        if _destinations_of(sps) != destinations:
            patch["destinations"] = destinations
        refs = _meta(sps).get("ownerReferences")
        refs = list(refs) if isinstance(refs, list) else []
        if not any(isinstance(r, Mapping) and r.get("uid") == owner["uid"] for r in refs):
            # No owner, or an earlier EdgePlacement of this name: ours replaces it.
            patch["metadata"] = {"ownerReferences": [r for r in refs if not _is_placement_ref(r)] + [owner]}
        if not patch:
            return None
        if "metadata" in patch:  # the owner list is merged from what we saw: only onto that
            patch["metadata"]["resourceVersion"] = _meta(sps).get("resourceVersion")
        try:
            patched = client.patch(f"{collection}/{name}", patch)
        except ApiError as e:
            if e.not_found:
                return None  # deleted meanwhile: its delete event brings the placement back
            if not e.conflict:
                raise
            log.log(
                V(2),
                "SinglePlacementSlice changed meanwhile, retrying %s",
                kv(key=make_key(cluster, "", name)),
            )
            return Result(requeue=True)
        if str(_meta(patched).get("resourceVersion", "")) != seen_rv:
            self._slice_written[key] = seen_rv
        log.log(
            V(2),
            "updated SinglePlacementSlice %s",
            kv(workloadWorkspace=cluster, singlePlacementSlice=name, destinations=len(destinations)),
        )
        return None

    def _ensure_status(
        self,
        cluster: str,
        name: str,
        ep: Object,
        matching: int,
        sync_targets: int,
        problems: list[Problem],
    ) -> None:
        key = make_key(cluster, "", name)
        seen_rv = str(_meta(ep).get("resourceVersion", ""))
        if self._status_written.get(key) == seen_rv:
            return  # the cache does not show our last apply yet; its update event will come
        self._status_written.pop(key, None)
        generation = int(_meta(ep).get("generation") or 0)
        if problems:
            status, reason = "False", REASON_INVALID_SELECTOR
            message = "; ".join(p.describe() for p in problems)
        else:
            status, reason = "True", REASON_RESOLVED
            message = f"{_count(matching, 'Location')}, {_count(sync_targets, 'SyncTarget')}"
        have = ep.get("status") if isinstance(ep.get("status"), Mapping) else {}
        assert isinstance(have, Mapping)
        conditions = have.get("conditions") if isinstance(have.get("conditions"), list) else []
        assert isinstance(conditions, list)
        existing = next(
            (c for c in conditions if isinstance(c, Mapping) and c.get("type") == CONDITION), None
        )
        condition = {
            "type": CONDITION,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": (
                existing.get("lastTransitionTime")
                if existing is not None
                and existing.get("status") == status
                and existing.get("lastTransitionTime")
                else _now()
            ),
            "reason": reason,
            "message": message,
        }
        same = (
            have.get("specGeneration") == generation
            and have.get("matchingLocationCount") == matching
            and existing is not None
            and all(
                existing.get(k) == condition[k] for k in ("status", "observedGeneration", "reason", "message")
            )
        )
        if same:
            return
        body = {
            "apiVersion": EDGE_API_VERSION,
            "kind": "EdgePlacement",
            "metadata": {"name": name},
            "status": {
                "specGeneration": generation,
                "matchingLocationCount": matching,
                "conditions": [condition],
            },
        }
        try:
            applied = kcp.cluster(self.writer, cluster).apply(
                f"{EDGE_API}/edgeplacements/{name}/status", body, FIELD_MANAGER
            )
        except ApiError as e:
            if e.not_found:
                return  # deleted meanwhile
            raise
        if str(_meta(applied).get("resourceVersion", "")) != seen_rv:
            self._status_written[key] = seen_rv
        log.log(
            V(2),
            "updated EdgePlacement status %s",
            kv(workloadWorkspace=cluster, edgePlacement=name, matchingLocationCount=matching, reason=reason),
        )
        if existing is None or existing.get("message") != message:
            self._report(ep, problems)

    def _report(self, ep: Object, problems: list[Problem]) -> None:
        """Events for the problems: on the placement for its selectors, on a Location for its own."""
        for problem in problems:
            if problem.kind == LOCATION:
                loc = self.locations.get(make_key(problem.cluster, "", problem.name))
                ref = ObjectRef(
                    cluster=problem.cluster,
                    api_version=EDGE_API_VERSION,
                    kind=LOCATION,
                    name=problem.name,
                    uid=str(_meta(loc).get("uid", "")) if loc else "",
                )
            else:
                ref = ObjectRef.of(ep)
            self.recorder.warning(ref, REASON_INVALID_SELECTOR, problem.message)


def setup(
    manager: Manager,
    factory: SharedInformerFactory,
    connections: Connections,
    recorder: EventRecorder,
    concurrency: int = DEFAULT_WORKERS,
) -> WhereResolver:
    """Create the where resolver's informers (in ``factory``) and add its controller to ``manager``.

    Waits until the edge APIExport in the ESPW has its virtual workspace.
    """
    resolver = WhereResolver(
        edge_view(connections.espw), connections.allclusters, factory, recorder, workers=concurrency
    )
    manager.add(resolver.controller)
    return resolver
