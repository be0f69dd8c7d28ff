"""Where resolution as a pure function (behaviour 2.2-2.3, scenarios A.3 and C1-C4).

A destination (a :class:`~apis.edge.v2alpha1.SinglePlacement`) is one (Location, SyncTarget) pair
such that

* the Location's labels match at least one of the EdgePlacement's ``spec.locationSelectors``
  (Locations of every inventory workspace are candidates; an empty or absent list selects none;
  a selector ``{}`` selects every Location);
* the SyncTarget is in the Location's own logical cluster and its labels match the Location's
  ``spec.instanceSelector`` (absent or null selects none; ``{}`` selects all).

Objects with a ``deletionTimestamp`` are treated as gone.  The CRD's schema has already checked
the types; a selector that is still invalid (a bad key or value, an unknown operator; spec
decision 7) selects nothing and becomes a :class:`Problem`; the other selectors keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apis.edge.v2alpha1 import EdgePlacement, Location, SinglePlacement, SyncTarget
from apis.machinery import labels
from apis.machinery.meta import cluster_of

EDGE_PLACEMENT = "EdgePlacement"
LOCATION = "Location"

Destination = SinglePlacement  # one entry of ``SinglePlacementSlice.destinations``


@dataclass(frozen=True)
class Problem:
    """Something wrong in a user's object: ``kind``/``name`` in logical cluster ``cluster``."""

    kind: str
    cluster: str
    name: str
    message: str

    def describe(self) -> str:
        if self.kind == EDGE_PLACEMENT:
            return self.message
        return f"{self.kind} {self.name} in {self.cluster}: {self.message}"


def _live(obj: Location | SyncTarget) -> bool:
    return obj.metadata.deletion_timestamp is None


def destination_key(d: SinglePlacement) -> tuple[str, str, str, str]:
    """The order of destinations: (cluster, locationName, syncTargetName, syncTargetUID)."""
    return (d.cluster, d.location_name, d.sync_target_name, d.sync_target_uid)


def placement_selectors(placement: EdgePlacement) -> tuple[list[labels.Selector], list[Problem]]:
    """The valid selectors of ``spec.locationSelectors``, and a problem for each invalid one."""
    spec = placement.spec
    if spec is None or not spec.location_selectors:
        return [], []
    cluster = cluster_of(placement)
    name = placement.metadata.name or ""
    selectors: list[labels.Selector] = []
    problems: list[Problem] = []
    for i, sel in enumerate(spec.location_selectors):
        try:
            selectors.append(labels.selector_of(sel))
        except labels.SelectorError as e:
            problems.append(Problem(EDGE_PLACEMENT, cluster, name, f"spec.locationSelectors[{i}]: {e}"))
    return selectors, problems


def selected_locations(
    placement: EdgePlacement, locations: Iterable[Location]
) -> tuple[list[Location], list[Problem]]:
    """The live Locations (of every cluster) that the placement selects, sorted by (cluster, name)."""
    selectors, problems = placement_selectors(placement)
    chosen = [
        loc for loc in locations if _live(loc) and labels.matches_any(selectors, loc.metadata.labels or {})
    ]
    chosen.sort(key=lambda loc: (cluster_of(loc), loc.metadata.name or ""))
    return chosen, problems


def instance_selector(location: Location) -> tuple[labels.Selector | None, Problem | None]:
    """The Location's instance selector; ``None`` selects nothing (absent, null or invalid)."""
    raw = location.spec.instance_selector if location.spec is not None else None
    if raw is None:
        return None, None
    try:
        return labels.selector_of(raw), None
    except labels.SelectorError as e:
        cluster = cluster_of(location)
        return None, Problem(LOCATION, cluster, location.metadata.name or "", f"spec.instanceSelector: {e}")


def resolve(
    placement: EdgePlacement,
    locations: Iterable[Location],
    sync_targets: Iterable[SyncTarget],
) -> tuple[list[SinglePlacement], list[Problem]]:
    """Every destination of ``placement``, sorted by :func:`destination_key`, and the problems
    found (the placement's invalid selectors, then those of the selected Locations)."""
    chosen, problems = selected_locations(placement, locations)
    by_cluster: dict[str, list[SyncTarget]] = {}
    for st in sync_targets:
        if _live(st):
            by_cluster.setdefault(cluster_of(st), []).append(st)
    destinations: list[SinglePlacement] = []
    for loc in chosen:
        selector, problem = instance_selector(loc)
        if problem is not None:
            problems.append(problem)
        if selector is None:
            continue
        cluster = cluster_of(loc)
        for st in by_cluster.get(cluster, []):
            if selector.matches(st.metadata.labels or {}):
                destinations.append(
                    SinglePlacement(
                        cluster=cluster,
                        location_name=loc.metadata.name or "",
                        sync_target_name=st.metadata.name or "",
                        sync_target_uid=st.metadata.uid or "",
                    )
                )
    destinations.sort(key=destination_key)
    return destinations, problems
