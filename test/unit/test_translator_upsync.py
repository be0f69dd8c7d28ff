"""Upsync without hand-made CRDs: the CRDs a mailbox needs so that its syncer can upsync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apis.edge.v2alpha1 import EdgePlacementSpec, SinglePlacement, UpsyncSet
from pkg.controllers.translator.desired import Placement, Workspace, compute, mailbox_of, syncer_config_json
from pkg.controllers.translator.upsync import UpsyncSource, upsync_crds
from pkg.controllers.what.resolve import CRDS, CopyKey, ServedResource
from pkg.controllers.what.select import GroupResource

SPROCKETS = GroupResource("group1.test", "sprockets")
FLANGES = GroupResource("group1.test", "flanges")
CM = GroupResource("", "configmaps")
GROUP1 = {"apiGroup": "group1.test", "resources": ["sprockets", "flanges"], "namespaces": ["orbital"]}


def crd(group: str, plural: str, *, uid: str = "u1", scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "uid": uid, "resourceVersion": "7"},
        "spec": {"group": group, "names": {"plural": plural, "kind": plural.title()}, "scope": scope},
    }


def source(
    cluster: str, upsync: Sequence[Mapping[str, Any]], crds: Sequence[dict[str, Any]], placement: str = "p"
) -> UpsyncSource:
    served: dict[tuple[str, str], str | None] = {("", "configmaps"): None}
    for c in crds:
        served[(c["spec"]["group"], c["spec"]["names"]["plural"])] = c["metadata"]["name"]
    clauses = [UpsyncSet.model_validate(u) for u in upsync]
    return UpsyncSource(
        cluster, f"root:{cluster}", placement, clauses, served, {c["metadata"]["name"]: c for c in crds}
    )


def test_a_crd_defined_resource_brings_its_crd() -> None:
    s = crd("group1.test", "sprockets")
    wanted, unserved = upsync_crds([source("a", [GROUP1], [s, crd("group1.test", "flanges")])])
    assert set(wanted) == {"sprockets.group1.test", "flanges.group1.test"}
    assert wanted["sprockets.group1.test"] == {"a": s}
    assert unserved == []


def test_a_star_names_every_crd_of_the_group_and_kube_types_need_nothing() -> None:
    crds = [crd("group1.test", "sprockets"), crd("group2.test", "cogs")]
    star = {"apiGroup": "group1.test", "resources": ["*"]}
    kube = {"apiGroup": "", "resources": ["configmaps"]}
    wanted, unserved = upsync_crds([source("a", [star, kube], crds)])
    assert set(wanted) == {"sprockets.group1.test"}
    assert unserved == []


def test_a_resource_nobody_defines_is_reported_once_per_placement() -> None:
    clause = {"apiGroup": "group3.test", "resources": ["widgets"], "names": ["*"]}
    wanted, unserved = upsync_crds([source("a", [clause, clause], []), source("b", [clause], [], "q")])
    assert wanted == {}
    assert [(u.cluster, u.placement) for u in unserved] == [("a", "p"), ("b", "q")]
    assert all("widgets.group3.test" in u.message and "not served" in u.message for u in unserved)


def test_another_contributing_workspace_defining_it_is_enough() -> None:
    s = crd("group1.test", "sprockets")
    clause = {"apiGroup": "group1.test", "resources": ["sprockets"]}
    wanted, unserved = upsync_crds([source("a", [clause], [s]), source("b", [clause], [])])
    assert wanted == {"sprockets.group1.test": {"a": s}}
    assert unserved == []


def test_a_deleting_crd_is_not_projected_and_groupless_clauses_name_nothing() -> None:
    s = crd("group1.test", "sprockets")
    s["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    clauses: list[Mapping[str, Any]] = [
        {"apiGroup": "group1.test", "resources": ["sprockets"]},
        {"resources": ["sprockets"]},
        {"apiGroup": "*", "resources": ["x"]},
    ]
    wanted, unserved = upsync_crds([source("a", clauses, [s])])
    assert wanted == {}
    assert unserved == []


# --- through compute: projected, not listed; conflicts; reported ---------------------------------


def wmw(cluster: str, path: str, crds: Sequence[dict[str, Any]], spec: dict[str, Any]) -> Workspace:
    resources = {
        CM: ServedResource(CM, "ConfigMap", True, ("v1",)),
        CRDS: ServedResource(CRDS, "CustomResourceDefinition", False, ("v1",)),
    }
    for c in crds:
        gr = GroupResource(c["spec"]["group"], c["spec"]["names"]["plural"])
        resources[gr] = ServedResource(
            gr, c["spec"]["names"]["kind"], True, ("v1",), crd=c["metadata"]["name"]
        )
    objects: dict[GroupResource, list[Mapping[str, Any]]] = {CRDS: list(crds), CM: []}
    placement = Placement("p", EdgePlacementSpec.model_validate(spec), [DEST])
    return Workspace(cluster, path, [placement], resources, objects, {}, {})


DEST = SinglePlacement(
    cluster="imw1", location_name="florin", sync_target_name="florin", sync_target_uid="uid-f"
)
SPROCKET_KEY = CopyKey(CRDS, "", "sprockets.group1.test")


def test_compute_projects_the_crd_without_listing_it() -> None:
    d = compute([wmw("a", "root:a", [crd("group1.test", "sprockets")], {"upsync": [GROUP1]})], {})
    md = d.mailboxes[mailbox_of(DEST)]
    assert set(md.copies) == {SPROCKET_KEY}
    assert md.copies[SPROCKET_KEY].body["spec"]["group"] == "group1.test"
    the_one = syncer_config_json(md.syncer_config)
    assert "clusterScope" not in the_one
    assert the_one["upsync"] == [GROUP1]
    # flanges are defined nowhere: reported on the placement, and as a problem (an Event).
    [message] = d.upsync_unserved[("a", "p")]
    assert "flanges.group1.test" in message
    assert [(p.reason, p.placements, p.obj) for p in d.problems] == [("UpsyncNotServed", ("p",), None)]


def test_compute_lists_the_crd_when_downsync_selects_it() -> None:
    downsync = [
        {"apiGroup": "apiextensions.k8s.io", "resources": ["customresourcedefinitions"], "objectNames": ["*"]}
    ]
    spec = {"upsync": [GROUP1], "downsync": downsync}
    d = compute([wmw("a", "root:a", [crd("group1.test", "sprockets")], spec)], {})
    md = d.mailboxes[mailbox_of(DEST)]
    assert SPROCKET_KEY in md.copies
    assert syncer_config_json(md.syncer_config)["clusterScope"][0]["objects"] == ["sprockets.group1.test"]


def test_compute_conflicting_crds_smallest_path_wins_reported() -> None:
    spec = {"upsync": [{"apiGroup": "group1.test", "resources": ["sprockets"]}]}
    a = wmw("ca", "root:zz", [crd("group1.test", "sprockets", uid="from-zz")], spec)
    b = wmw("cb", "root:aa", [crd("group1.test", "sprockets", uid="from-aa", scope="Cluster")], spec)
    d = compute([a, b], {})
    md = d.mailboxes[mailbox_of(DEST)]
    assert md.copies[SPROCKET_KEY].source_cluster == "cb"
    assert md.copies[SPROCKET_KEY].body["spec"]["scope"] == "Cluster"
    [conflict] = [p for p in d.problems if p.reason == "Conflict"]
    assert conflict.cluster == "ca" and "root:aa" in conflict.message
    assert d.upsync_unserved == {}
