"""Where resolution as a pure function (behaviour 2.2-2.3, scenarios A.3 and C1-C4).

A destination is one (Location, SyncTarget) pair such that

* the Location's labels match at least one of the EdgePlacement's ``spec.locationSelectors``
  (Locations of every inventory workspace are candidates; an empty or absent list selects none;
  a selector ``{}`` selects every Location);
* the SyncTarget is in the Location's own logical cluster and its labels match the Location's
  ``spec.instanceSelector`` (absent or null selects none; ``{}`` selects all).

Objects with a ``deletionTimestamp`` are treated as gone.  An invalid selector (spec decision 7)
selects nothing and becomes a :class:`Problem`; the other selectors keep working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from pkg import labels
from pkg.runtime import kcp

EDGE_PLACEMENT = "EdgePlacement"
LOCATION = "Location"


class Destination(TypedDict):
    """One entry of ``SinglePlacementSlice.destinations``."""

    cluster: str
    locationName: str
    syncTargetName: str
    syncTargetUID: str


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


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    found = _meta(obj).get("labels")
    return found if isinstance(found, Mapping) else {}


def _cluster(obj: Mapping[str, Any]) -> str:
    annotations = _meta(obj).get("annotations")
    return str(annotations.get(kcp.CLUSTER_ANNOTATION, "")) if isinstance(annotations, Mapping) else ""


def _live(obj: Mapping[str, Any]) -> bool:
    return not _meta(obj).get("deletionTimestamp")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def placement_selectors(placement: Mapping[str, Any]) -> tuple[list[labels.Selector], list[Problem]]:
    """The valid selectors of ``spec.locationSelectors``, and a problem for each invalid one."""
    cluster = _cluster(placement)
    name = str(_meta(placement).get("name", ""))
    raw = _spec(placement).get("locationSelectors")
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [Problem(EDGE_PLACEMENT, cluster, name, "spec.locationSelectors must be a list")]
    selectors: list[labels.Selector] = []
    problems: list[Problem] = []
    for i, sel in enumerate(raw):
        try:
            selectors.append(labels.parse_selector(sel))
        except labels.SelectorError as e:
            problems.append(Problem(EDGE_PLACEMENT, cluster, name, f"spec.locationSelectors[{i}]: {e}"))
    return selectors, problems


def selected_locations(
    placement: Mapping[str, Any], locations: Iterable[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Problem]]:
    """The live Locations (of every cluster) that the placement selects, sorted by (cluster, name)."""
    selectors, problems = placement_selectors(placement)
    chosen = [loc for loc in locations if _live(loc) and labels.matches_any(selectors, _labels(loc))]
    chosen.sort(key=lambda loc: (_cluster(loc), str(_meta(loc).get("name", ""))))
    return chosen, problems


def instance_selector(location: Mapping[str, Any]) -> tuple[labels.Selector | None, Problem | None]:
    """The Location's instance selector; ``None`` selects nothing (absent, null or invalid)."""
    raw = _spec(location).get("instanceSelector")
    if raw is None:
        return None, None
    try:
        return labels.parse_selector(raw), None
    except labels.SelectorError as e:
        cluster = _cluster(location)
        name = str(_meta(location).get("name", ""))
        return None, Problem(LOCATION, cluster, name, f"spec.instanceSelector: {e}")


def resolve(
    placement: Mapping[str, Any],
    locations: Iterable[Mapping[str, Any]],
    sync_targets: Iterable[Mapping[str, Any]],
) -> tuple[list[Destination], list[Problem]]:
    """Every destination of ``placement``, sorted by (cluster, locationName, syncTargetName), and
    the problems found (the placement's invalid selectors, then those of the selected Locations)."""
    chosen, problems = selected_locations(placement, locations)
    by_cluster: dict[str, list[Mapping[str, Any]]] = {}
    for st in sync_targets:
        if _live(st):
            by_cluster.setdefault(_cluster(st), []).append(st)
    destinations: list[Destination] = []
    for loc in chosen:
        selector, problem = instance_selector(loc)
        if problem is not None:
            problems.append(problem)
        if selector is None:
            continue
        cluster = _cluster(loc)
        for st in by_cluster.get(cluster, []):
            if selector.matches(_labels(st)):
                destinations.append(
                    Destination(
                        cluster=cluster,
                        locationName=str(_meta(loc).get("name", "")),
                        syncTargetName=str(_meta(st).get("name", "")),
                        syncTargetUID=str(_meta(st).get("uid", "")),
                    )
                )
    destinations.sort(
        key=lambda d: (d["cluster"], d["locationName"], d["syncTargetName"], d["syncTargetUID"])
    )
    return destinations, problems
