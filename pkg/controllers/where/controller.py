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
from typing import Any

from apis.edge.v2alpha1 import (
    API_VERSION,
    EdgePlacement,
    EdgePlacementStatus,
    Location,
    ObjectMeta,
    OwnerReference,
    SinglePlacement,
    SinglePlacementSlice,
    SyncTarget,
    resources,
)
from apis.edge.v2alpha1 import constants as edge_api
from apis.edge.v2alpha1.client import EdgeV2alpha1Client
from apis.edge.v2alpha1.listers import (
    EdgePlacementLister,
    LocationLister,
    SinglePlacementSliceLister,
    SyncTargetLister,
)
from apis.machinery.meta import cluster_of, object_key
from pkg.controllers import conditions
from pkg.controllers.where.resolve import LOCATION, Problem, resolve, selected_locations
from pkg.controllers.written import Written
from pkg.runtime import kcp
from pkg.runtime.connections import Connections
from pkg.runtime.controller import Controller, Result
from pkg.runtime.events import EventRecorder, ObjectRef
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.klog import V, kv
from pkg.runtime.manager import Manager
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import make_key, split_key

log = logging.getLogger(__name__)

NAME = "where-resolver"
FIELD_MANAGER = "where-resolver"
DEFAULT_WORKERS = 2

CONDITION = "LocationsResolved"
REASON_RESOLVED = "Resolved"
REASON_INVALID_SELECTOR = "InvalidSelector"

EXPORT_WAIT = 300.0


def edge_view(espw: RestClient, timeout: float = EXPORT_WAIT) -> RestClient:
    """A client for the edge APIExport's virtual workspace across all consumers (``/clusters/*``).

    Waits (up to ``timeout`` seconds) until the export in the ESPW has its virtual-workspace URL.
    """

    def ready() -> dict[str, Any] | None:
        export: dict[str, Any] = espw.get(kcp.API_EXPORTS.path(name=edge_api.EXPORT_NAME))
        return export if kcp.export_virtual_workspace_url(export) else None

    export = kcp.wait_for(f"APIExport {edge_api.EXPORT_NAME} to have a virtual workspace", ready, timeout)
    log.info("Found APIExport view %s", kv(exportName=edge_api.EXPORT_NAME))
    return kcp.virtual_workspace(espw, export)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _owner_reference(ep: EdgePlacement) -> OwnerReference:
    return OwnerReference(
        api_version=API_VERSION,
        kind="EdgePlacement",
        name=ep.metadata.name or "",
        uid=ep.metadata.uid or "",
        controller=True,
    )


def _is_placement_ref(ref: OwnerReference) -> bool:
    return ref.kind == "EdgePlacement" and ref.api_version.startswith("edge.kubestellar.io/")


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
        self.writer = EdgeV2alpha1Client(writer)  # writes go to /clusters/<logical cluster>
        self.recorder = recorder
        placements = factory.informer(view, resources.EDGE_PLACEMENTS.path(), model=EdgePlacement)
        slices = factory.informer(view, resources.SINGLE_PLACEMENT_SLICES.path(), model=SinglePlacementSlice)
        locations = factory.informer(view, resources.LOCATIONS.path(), model=Location)
        sync_targets = factory.informer(view, resources.SYNC_TARGETS.path(), model=SyncTarget)
        self.placements = EdgePlacementLister(placements)
        self.slices = SinglePlacementSliceLister(slices)
        self.locations = LocationLister(locations)
        self.sync_targets = SyncTargetLister(sync_targets)
        self.controller: Controller[str] = Controller(NAME, self.reconcile, workers=workers)
        # Our own writes that the caches may not show yet (so a reconcile in between writes nothing):
        self._created: set[str] = set()  # SPS created, its add event not seen yet
        self._written = Written()  # our last patch of each slice and apply of each status

        placements.add_event_handler(
            on_add=lambda obj: self._enqueue(obj, "EdgePlacement"),
            on_update=lambda old, new: self._enqueue(new, "EdgePlacement"),
            on_delete=lambda obj: self._enqueue(obj, "EdgePlacement"),
        )
        slices.add_event_handler(
            on_add=self._on_slice,
            on_update=lambda old, new: self._on_slice(new),
            on_delete=self._on_slice,
        )
        locations.add_event_handler(
            on_add=lambda obj: self._enqueue_all("Location", obj),
            on_update=lambda old, new: (
                self._enqueue_all("Location", new) if _location_changed(old, new) else None
            ),
            on_delete=lambda obj: self._enqueue_all("Location", obj),
        )
        sync_targets.add_event_handler(
            on_add=lambda obj: self._enqueue_all("SyncTarget", obj),
            on_update=lambda old, new: (
                self._enqueue_all("SyncTarget", new) if _target_changed(old, new) else None
            ),
            on_delete=lambda obj: self._enqueue_all("SyncTarget", obj),
        )

    # -- event handlers ---------------------------------------------------------------------------

    def _enqueue(self, obj: EdgePlacement | SinglePlacementSlice, kind: str) -> None:
        key = object_key(obj)
        log.log(V(4), "queueing EdgePlacement %s", kv(triggeringKind=kind, key=key))
        self.controller.enqueue(key)

    def _on_slice(self, sps: SinglePlacementSlice) -> None:
        self._created.discard(object_key(sps))
        self._enqueue(sps, "SinglePlacementSlice")

    def _enqueue_all(self, kind: str, obj: Location | SyncTarget) -> None:
        log.log(V(4), "queueing every EdgePlacement %s", kv(triggeringKind=kind, key=object_key(obj)))
        for ep in self.placements.list():
            self.controller.enqueue(object_key(ep))

    # -- reconcile --------------------------------------------------------------------------------

    def reconcile(self, key: str) -> Result | None:
        cluster, _, name = split_key(key)
        ep = self.placements.get(cluster, name)
        if ep is None or ep.metadata.deletion_timestamp is not None:
            self._written.forget(f"status|{key}")
            self._written.forget(f"slice|{key}")
            return None  # its SPS goes with it (ownerReference garbage collection)
        locations = self.locations.list()
        destinations, problems = resolve(ep, locations, self.sync_targets.list())
        chosen, _ = selected_locations(ep, locations)
        log.log(V(3), "reconciling %s", kv(key=key, destinations=len(destinations), problems=len(problems)))
        result = self._ensure_slice(cluster, name, ep, destinations)
        targets = len({(d.cluster, d.sync_target_uid) for d in destinations})
        self._ensure_status(cluster, name, ep, len(chosen), targets, problems)
        return result

    def _ensure_slice(
        self, cluster: str, name: str, ep: EdgePlacement, destinations: list[SinglePlacement]
    ) -> Result | None:
        client = self.writer.cluster(cluster).single_placement_slices
        owner = _owner_reference(ep)
        key = make_key(cluster, "", name)
        sps = self.slices.get(cluster, name)
        if sps is None:
            if key in self._created:
                return None  # created by us a moment ago; its add event brings the placement back
            body = SinglePlacementSlice(
                metadata=ObjectMeta(name=name, owner_references=[owner]), destinations=destinations
            )
            log.log(V(2), "creating SinglePlacementSlice %s", kv(workloadWorkspace=cluster, name=name))
            try:
                created = client.create(body)
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
                    resourceVersion=created.metadata.resource_version or "",
                ),
            )
            return None
        if sps.metadata.deletion_timestamp is not None:
            return Result(requeue_after=1.0)  # re-created once it is gone
        seen_rv = sps.metadata.resource_version or ""
        if self._written.fresh(f"slice|{key}", sps) is not sps:
            return None  # the cache does not show our last patch yet; its update event will come
        patch: dict[str, Any] = {}
        if sps.destinations != destinations:
            patch["destinations"] = [d.model_dump(mode="json") for d in destinations]
        refs = sps.metadata.owner_references or []
        if not any(r.uid == owner.uid for r in refs):
            # No owner, or an earlier EdgePlacement of this name: ours replaces it.
            kept = [r for r in refs if not _is_placement_ref(r)] + [owner]
            patch["metadata"] = {
                "ownerReferences": [r.model_dump(mode="json", exclude_unset=True) for r in kept],
                # The owner list is merged from what we saw: only onto that.
                "resourceVersion": seen_rv,
            }
        if not patch:
            return None
        try:
            patched = client.patch(name, patch)
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
        self._written.wrote(f"slice|{key}", patched, replaced=sps)
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
        ep: EdgePlacement,
        matching: int,
        sync_targets: int,
        problems: list[Problem],
    ) -> None:
        key = make_key(cluster, "", name)
        if self._written.fresh(f"status|{key}", ep) is not ep:
            return  # the cache does not show our last apply yet; its update event will come
        generation = ep.metadata.generation or 0
        status: conditions.Status
        if problems:
            status, reason = "False", REASON_INVALID_SELECTOR
            message = "; ".join(p.describe() for p in problems)
        else:
            status, reason = "True", REASON_RESOLVED
            message = f"{_count(matching, 'Location')}, {_count(sync_targets, 'SyncTarget')}"
        have = ep.status or EdgePlacementStatus()
        existing = conditions.find(have.conditions, CONDITION)
        condition = conditions.desired_condition(existing, CONDITION, status, reason, message, generation)
        same = (
            have.spec_generation == generation
            and have.matching_location_count == matching
            and conditions.unchanged(existing, condition)
        )
        if same:
            return
        status_body = EdgePlacementStatus(
            spec_generation=generation, matching_location_count=matching, conditions=[condition]
        )
        try:
            applied = self.writer.cluster(cluster).edge_placements.apply_status(
                name, status_body, field_manager=FIELD_MANAGER
            )
        except ApiError as e:
            if e.not_found:
                return  # deleted meanwhile
            raise
        self._written.wrote(f"status|{key}", applied, replaced=ep)
        log.log(
            V(2),
            "updated EdgePlacement status %s",
            kv(workloadWorkspace=cluster, edgePlacement=name, matchingLocationCount=matching, reason=reason),
        )
        if existing is None or existing.message != message:
            self._report(ep, problems)

    def _report(self, ep: EdgePlacement, problems: list[Problem]) -> None:
        """Events for the problems: on the placement for its selectors, on a Location for its own."""
        for problem in problems:
            if problem.kind == LOCATION:
                loc = self.locations.get(problem.cluster, problem.name)
                ref = ObjectRef(
                    cluster=problem.cluster,
                    api_version=API_VERSION,
                    kind=LOCATION,
                    name=problem.name,
                    uid=(loc.metadata.uid or "") if loc else "",
                )
            else:
                ref = ObjectRef(
                    cluster=cluster_of(ep),
                    api_version=API_VERSION,
                    kind="EdgePlacement",
                    name=ep.metadata.name or "",
                    uid=ep.metadata.uid or "",
                )
            self.recorder.warning(ref, REASON_INVALID_SELECTOR, problem.message)


def _location_changed(old: Location, new: Location) -> bool:
    """What resolution reads of a Location: its labels, whether it is going, its spec."""
    return (old.metadata.labels, old.metadata.deletion_timestamp, old.spec) != (
        new.metadata.labels,
        new.metadata.deletion_timestamp,
        new.spec,
    )


def _target_changed(old: SyncTarget, new: SyncTarget) -> bool:
    """What resolution reads of a SyncTarget: its labels and whether it is going."""
    return (old.metadata.labels, old.metadata.deletion_timestamp) != (
        new.metadata.labels,
        new.metadata.deletion_timestamp,
    )


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
