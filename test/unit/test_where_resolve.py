"""Where resolution as a pure function (behaviour 2.2-2.3, scenarios A.3, C1-C4)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from apis.edge.v2alpha1 import EdgePlacement, Location, SyncTarget
from pkg.controllers.where import Problem
from pkg.controllers.where import resolve as resolve_models
from pkg.controllers.where import selected_locations as selected_models

EXAMPLE1 = Path(__file__).resolve().parent / "testdata" / "example1"
UID_F = "0d5e8a36-6a1f-4bd6-9c55-3f0b0d0c1f01"
UID_G = "7b9f2c44-1e3a-4c0e-8f6d-2a9e5b7c3d02"

Obj = dict[str, Any]


def _load(name: str, cluster: str) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all((EXAMPLE1 / name).read_text()) if d]
    for d in docs:
        d["metadata"].setdefault("annotations", {})["kcp.io/cluster"] = cluster
    return docs


def resolve(placement: Obj, locations: list[Obj], targets: list[Obj]) -> tuple[list[Obj], list[Problem]]:
    """:func:`resolve` on the models of these dicts, its destinations shown as the API writes them."""
    destinations, problems = resolve_models(
        EdgePlacement.model_validate(placement),
        [Location.model_validate(loc) for loc in locations],
        [SyncTarget.model_validate(t) for t in targets],
    )
    assert all(type(d).__name__ == "SinglePlacement" for d in destinations)
    return [d.model_dump(mode="json") for d in destinations], problems


def selected_locations(placement: Obj, locations: list[Obj]) -> tuple[list[Obj], list[Problem]]:
    chosen, problems = selected_models(
        EdgePlacement.model_validate(placement), [Location.model_validate(loc) for loc in locations]
    )
    return [loc.model_dump(mode="json", exclude_unset=True) for loc in chosen], problems


def _kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


IMW1 = _load("imw1.yaml", "imw1")
WMW_C = _load("wmw-c.yaml", "wmwc")
WMW_S = _load("wmw-s.yaml", "wmws")


def inventory() -> tuple[list[Obj], list[Obj]]:
    docs = copy.deepcopy(IMW1)
    return _kind(docs, "Location"), _kind(docs, "SyncTarget")


def ep(selectors: Any, cluster: str = "wmw", name: str = "ep") -> Obj:
    spec = {} if selectors is ... else {"locationSelectors": selectors}
    return {
        "kind": "EdgePlacement",
        "metadata": {"name": name, "annotations": {"kcp.io/cluster": cluster}},
        "spec": spec,
    }


def location(name: str, cluster: str, labels: dict[str, str], instance_selector: Any = ...) -> Obj:
    spec: Obj = {
        "resource": {"group": "edge.kubestellar.io", "version": "v2alpha1", "resource": "synctargets"}
    }
    if instance_selector is not ...:
        spec["instanceSelector"] = instance_selector
    return {
        "kind": "Location",
        "metadata": {"name": name, "labels": labels, "annotations": {"kcp.io/cluster": cluster}},
        "spec": spec,
    }


def sync_target(name: str, cluster: str, labels: dict[str, str], uid: str | None = None) -> Obj:
    return {
        "kind": "SyncTarget",
        "metadata": {
            "name": name,
            "uid": uid or f"uid-{cluster}-{name}",
            "labels": labels,
            "annotations": {"kcp.io/cluster": cluster},
        },
    }


def dest(location_name: str, st: str, uid: str, cluster: str = "imw1") -> dict[str, str]:
    return {"cluster": cluster, "locationName": location_name, "syncTargetName": st, "syncTargetUID": uid}


FLORIN = dest("florin", "florin", UID_F)
GUILDER = dest("guilder", "guilder", UID_G)


# --- A.3 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("wmw", [WMW_C, WMW_S], ids=["wmw-c", "wmw-s"])
def test_example1_gives_the_expected_slices(wmw: list[Obj]) -> None:
    locations, targets = inventory()
    (placement,) = _kind(wmw, "EdgePlacement")
    (expected,) = _kind(wmw, "SinglePlacementSlice")
    destinations, problems = resolve(placement, locations, targets)
    assert problems == []
    assert destinations == expected["destinations"]
    chosen, _ = selected_locations(placement, locations)
    assert len(chosen) == placement["status"]["matchingLocationCount"]


def test_example1_explicitly() -> None:
    locations, targets = inventory()
    assert resolve(ep([{"matchLabels": {"env": "prod"}}]), locations, targets) == ([FLORIN, GUILDER], [])
    extended = ep([{"matchLabels": {"env": "prod", "extended": "yes"}}])
    assert resolve(extended, locations, targets) == ([GUILDER], [])


def test_the_order_of_the_inputs_does_not_matter() -> None:
    locations, targets = inventory()
    placement = ep([{"matchLabels": {"env": "prod"}}])
    forward = resolve(placement, locations, targets)
    assert resolve(placement, locations[::-1], targets[::-1]) == forward


# --- C1 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("selectors", [[{"matchLabels": {"env": "nowhere"}}], [], None, ...])
def test_no_matching_location_gives_no_destination(selectors: Any) -> None:
    locations, targets = inventory()
    assert resolve(ep(selectors), locations, targets) == ([], [])
    assert selected_locations(ep(selectors), locations) == ([], [])


def test_empty_selector_selects_every_location_of_every_inventory() -> None:
    locations, targets = inventory()
    locations.append(location("far", "imw2", {}, {"matchLabels": {"id": "far"}}))
    targets.append(sync_target("far", "imw2", {"id": "far"}, uid="uid-far"))
    destinations, problems = resolve(ep([{}]), locations, targets)
    assert problems == []
    assert destinations == [FLORIN, GUILDER, dest("far", "far", "uid-far", cluster="imw2")]


# --- C2 ------------------------------------------------------------------------------------------


def test_instance_selector_matching_nothing_contributes_nothing() -> None:
    locations = [location("l", "imw1", {"env": "prod"}, {"matchLabels": {"id": "nobody"}})]
    targets = [sync_target("a", "imw1", {"id": "a"})]
    assert resolve(ep([{}]), locations, targets) == ([], [])
    # ... but the Location still counts as selected.
    assert len(selected_locations(ep([{}]), locations)[0]) == 1


def test_instance_selector_matching_two_sync_targets() -> None:
    locations = [location("l", "imw1", {}, {"matchLabels": {"env": "prod"}})]
    targets = [
        sync_target("b", "imw1", {"env": "prod"}),
        sync_target("a", "imw1", {"env": "prod"}),
        sync_target("c", "imw1", {"env": "dev"}),
    ]
    destinations, _ = resolve(ep([{}]), locations, targets)
    assert destinations == [dest("l", "a", "uid-imw1-a"), dest("l", "b", "uid-imw1-b")]


def test_sync_target_of_another_inventory_is_not_selected() -> None:
    locations = [location("l", "imw1", {}, {})]
    targets = [sync_target("a", "imw2", {}), sync_target("b", "imw1", {})]
    assert resolve(ep([{}]), locations, targets)[0] == [dest("l", "b", "uid-imw1-b")]


@pytest.mark.parametrize("instance_selector", [..., None])
def test_absent_or_null_instance_selector_selects_none(instance_selector: Any) -> None:
    locations = [location("l", "imw1", {}, instance_selector)]
    assert resolve(ep([{}]), locations, [sync_target("a", "imw1", {})]) == ([], [])


def test_empty_instance_selector_selects_all_of_its_inventory() -> None:
    locations = [location("l", "imw1", {}, {})]
    targets = [sync_target("a", "imw1", {}), sync_target("b", "imw1", {"x": "y"})]
    assert len(resolve(ep([{}]), locations, targets)[0]) == 2


def test_invalid_placement_selector_selects_nothing_and_the_others_keep_working() -> None:
    locations, targets = inventory()
    bad = {"matchExpressions": [{"key": "env", "operator": "Foo", "values": ["prod"]}]}
    placement = ep([bad, {"matchLabels": {"extended": "yes"}}], cluster="wmwc", name="p")
    destinations, problems = resolve(placement, locations, targets)
    assert destinations == [GUILDER]
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.kind, problem.cluster, problem.name) == ("EdgePlacement", "wmwc", "p")
    assert problem.message.startswith("spec.locationSelectors[0]: ")
    assert '"Foo"' in problem.message
    assert problem.describe() == problem.message


def test_invalid_instance_selector_selects_nothing_and_is_reported() -> None:
    locations, targets = inventory()
    guilder = next(loc for loc in locations if loc["metadata"]["name"] == "guilder")
    guilder["spec"]["instanceSelector"] = {"matchExpressions": [{"key": "id", "operator": "Foo"}]}
    destinations, problems = resolve(ep([{"matchLabels": {"env": "prod"}}]), locations, targets)
    assert destinations == [FLORIN]
    assert [(p.kind, p.cluster, p.name) for p in problems] == [("Location", "imw1", "guilder")]
    assert problems[0].message.startswith("spec.instanceSelector: ")
    assert problems[0].describe().startswith("Location guilder in imw1: spec.instanceSelector: ")
    # A Location that the placement does not select is not evaluated, so not reported.
    assert resolve(ep([{"matchLabels": {"loc-name": "florin"}}]), locations, targets) == ([FLORIN], [])


@pytest.mark.parametrize(
    "bad",
    [
        {"matchLabels": {"bad key!": "x"}},
        {"matchExpressions": [{"key": "env", "operator": "In"}]},
    ],
)
def test_malformed_selectors_never_raise(bad: Any) -> None:
    locations, targets = inventory()
    destinations, problems = resolve(ep([bad, {"matchLabels": {"loc-name": "florin"}}]), locations, targets)
    assert destinations == [FLORIN]
    assert len(problems) == 1 and isinstance(problems[0], Problem)


@pytest.mark.parametrize(
    "bad",
    [
        {"matchLabels": {"env": ["prod"]}},
        {"matchExpressions": "env in (prod)"},
        "env=prod",
        [{"matchLabels": {"env": "prod"}}],
    ],
)
def test_selectors_of_the_wrong_type_never_become_a_model(bad: Any) -> None:
    """The CRD's schema rejects these on the server; the model (decoded at ingest) does too, so
    resolution never sees them: they are not re-checked there."""
    with pytest.raises(ValidationError):
        EdgePlacement.model_validate(ep([bad, {"matchLabels": {"loc-name": "florin"}}]))


def test_location_selectors_that_are_not_a_list() -> None:
    with pytest.raises(ValidationError):
        EdgePlacement.model_validate(ep({"matchLabels": {"env": "prod"}}))


def test_match_expressions_select() -> None:
    locations, targets = inventory()
    not_extended = ep([{"matchExpressions": [{"key": "extended", "operator": "DoesNotExist"}]}])
    assert resolve(not_extended, locations, targets)[0] == [FLORIN]
    in_both = ep(
        [{"matchExpressions": [{"key": "loc-name", "operator": "In", "values": ["florin", "guilder"]}]}]
    )
    assert resolve(in_both, locations, targets)[0] == [FLORIN, GUILDER]


# --- C3, C4 --------------------------------------------------------------------------------------


def test_sync_target_deleted() -> None:
    locations, targets = inventory()
    remaining = [t for t in targets if t["metadata"]["name"] != "guilder"]
    assert resolve(ep([{"matchLabels": {"env": "prod"}}]), locations, remaining)[0] == [FLORIN]
    assert resolve(ep([{"matchLabels": {"extended": "yes"}}]), locations, remaining)[0] == []
    # Being deleted counts as gone.
    for t in targets:
        if t["metadata"]["name"] == "guilder":
            t["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert resolve(ep([{"matchLabels": {"env": "prod"}}]), locations, targets)[0] == [FLORIN]
    # Recreated with a new UID: the destination carries the new UID.
    recreated = [*remaining, sync_target("guilder", "imw1", {"id": "guilder"}, uid="uid-g2")]
    assert resolve(ep([{"matchLabels": {"env": "prod"}}]), locations, recreated)[0] == [
        FLORIN,
        dest("guilder", "guilder", "uid-g2"),
    ]


def test_location_deleted_or_relabelled() -> None:
    locations, targets = inventory()
    placement = ep([{"matchLabels": {"env": "prod"}}])
    without = [loc for loc in locations if loc["metadata"]["name"] != "guilder"]
    assert resolve(placement, without, targets)[0] == [FLORIN]
    for loc in locations:
        if loc["metadata"]["name"] == "guilder":
            loc["metadata"]["labels"]["env"] = "dev"
    assert resolve(placement, locations, targets)[0] == [FLORIN]
    assert len(selected_locations(placement, locations)[0]) == 1


def test_two_locations_selecting_one_sync_target_give_two_destinations() -> None:
    locations, targets = inventory()
    locations.append(location("default", "imw1", {"env": "prod"}, {}))
    destinations, _ = resolve(ep([{"matchLabels": {"env": "prod"}}]), locations, targets)
    assert destinations == [
        dest("default", "florin", UID_F),
        dest("default", "guilder", UID_G),
        FLORIN,
        GUILDER,
    ]


def test_destinations_sorted_by_cluster_location_and_sync_target() -> None:
    locations = [
        location("z", "imw-a", {}, {}),
        location("a", "imw-b", {}, {}),
        location("m", "imw-a", {}, {}),
    ]
    targets = [sync_target(n, c, {}) for c in ("imw-b", "imw-a") for n in ("y", "x")]
    destinations, _ = resolve(ep([{}]), locations, targets)
    keys = [(d["cluster"], d["locationName"], d["syncTargetName"]) for d in destinations]
    assert keys == sorted(keys) and len(keys) == 6
    assert keys[0] == ("imw-a", "m", "x")
