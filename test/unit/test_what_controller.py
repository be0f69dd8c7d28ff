"""The what resolver's decisions over an in-memory view: what it stores for a placement, when its
store tells the translator, and which placements an object or Namespace change concerns."""

from __future__ import annotations

from typing import Any

from apis.edge.v2alpha1 import EdgePlacement
from apis.edge.v2alpha1.listers import EdgePlacementLister
from pkg.controllers.what.controller import PlacementIndex, Snapshot, WhatResolver, WhatStore
from pkg.controllers.what.resolve import CRDS, NAMESPACES, CopyKey, ServedResource
from pkg.controllers.what.select import CompiledPlacement, GroupResource, could_select
from pkg.runtime.store import Indexer

CM = GroupResource("", "configmaps")
DEPLOY = GroupResource("apps", "deployments")
INFO = {
    CM: ServedResource(CM, "ConfigMap", True, ("v1",)),
    DEPLOY: ServedResource(DEPLOY, "Deployment", True, ("v1",)),
    NAMESPACES: ServedResource(NAMESPACES, "Namespace", False, ("v1",)),
    CRDS: ServedResource(CRDS, "CustomResourceDefinition", False, ("v1",)),
}


def cm(name: str, namespace: str = "ns1", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels, "resourceVersion": "1"}}


def placement(name: str, cluster: str, downsync: list[dict[str, Any]]) -> EdgePlacement:
    return EdgePlacement.model_validate(
        {
            "metadata": {"name": name, "annotations": {"kcp.io/cluster": cluster}, "resourceVersion": "1"},
            "spec": {"downsync": downsync},
        }
    )


class View:
    """An in-memory WMW: its objects per resource and its Namespaces' labels (None: filling)."""

    def __init__(self) -> None:
        self.objects: dict[GroupResource, list[dict[str, Any]]] = {CM: [], DEPLOY: [], CRDS: []}
        self.namespaces: dict[str, dict[str, str]] | None = {"ns1": {"env": "prod"}, "ns2": {}}
        self.asked: list[set[GroupResource]] = []

    def snapshot(self, cluster: str, compiled: CompiledPlacement) -> Snapshot | None:
        if self.namespaces is None:
            return None
        wanted = {gr for gr in self.objects if gr == CRDS or could_select(compiled, gr)}
        self.asked.append(wanted)
        return Snapshot(f"root:{cluster}", INFO, {gr: self.objects[gr] for gr in wanted}, self.namespaces)


def resolver() -> tuple[WhatResolver, Indexer[EdgePlacement], View, WhatStore, PlacementIndex, list[Any]]:
    indexer: Indexer[EdgePlacement] = Indexer()
    view, store, index = View(), WhatStore(), PlacementIndex()
    heard: list[Any] = []
    store.add_listener(heard.append)
    return WhatResolver(EdgePlacementLister(indexer), view, store, index), indexer, view, store, index, heard


CMS_IN_PROD = [
    {"apiGroup": "", "resources": ["configmaps"], "namespaceSelectors": [{"matchLabels": {"env": "prod"}}]}
]


def test_a_placement_resolves_to_the_objects_it_selects_and_the_store_tells_its_key() -> None:
    r, indexer, view, store, _, heard = resolver()
    view.objects[CM] = [cm("a"), cm("b", "ns2")]
    indexer.add(placement("ep", "wmw1", CMS_IN_PROD))
    assert r.reconcile(("wmw1", "ep")) is None
    got = store.get(("wmw1", "ep"))
    assert got is not None and set(got.parts) == {CopyKey(CM, "ns1", "a")}
    assert got.by_resource()[CM][1] == [CopyKey(CM, "ns1", "a")]
    assert heard == [("wmw1", "ep")]
    assert view.asked == [{CM, CRDS}]  # only the resources it could select are read


def test_resolving_again_with_nothing_changed_tells_nobody() -> None:
    r, indexer, view, store, _, heard = resolver()
    view.objects[CM] = [cm("a")]
    indexer.add(placement("ep", "wmw1", CMS_IN_PROD))
    r.reconcile(("wmw1", "ep"))
    first = store.get(("wmw1", "ep"))
    r.reconcile(("wmw1", "ep"))
    assert store.get(("wmw1", "ep")) is first and heard == [("wmw1", "ep")]
    view.objects[CM] = [cm("a"), cm("c")]  # an object added: a new result, heard again
    r.reconcile(("wmw1", "ep"))
    assert heard == [("wmw1", "ep")] * 2


def test_a_filling_cache_stores_nothing_and_asks_to_come_back() -> None:
    r, indexer, view, store, _, heard = resolver()
    view.namespaces = None
    indexer.add(placement("ep", "wmw1", CMS_IN_PROD))
    result = r.reconcile(("wmw1", "ep"))
    assert result is not None and result.requeue_after
    assert store.get(("wmw1", "ep")) is None and heard == []


def test_a_deleted_placement_leaves_the_store_and_the_index() -> None:
    r, indexer, _, store, index, heard = resolver()
    ep = placement("ep", "wmw1", CMS_IN_PROD)
    indexer.add(ep)
    r.reconcile(("wmw1", "ep"))
    indexer.delete(ep)
    r.reconcile(("wmw1", "ep"))
    assert store.get(("wmw1", "ep")) is None and heard == [("wmw1", "ep")] * 2
    assert index.placements("wmw1") == [] and r.for_object("wmw1", CM) == []


def test_an_object_change_concerns_only_the_placements_of_its_wmw_that_could_select_it() -> None:
    r, indexer, _, _, _, _ = resolver()
    deployments = [{"apiGroup": "apps", "resources": ["deployments"], "namespaces": ["*"]}]
    for ep in (
        placement("cms", "wmw1", CMS_IN_PROD),
        placement("deps", "wmw1", deployments),
        placement("other-wmw", "wmw2", CMS_IN_PROD),
    ):
        indexer.add(ep)
    for key in (("wmw1", "cms"), ("wmw1", "deps"), ("wmw2", "other-wmw")):
        r.reconcile(key)
    assert r.for_object("wmw1", CM) == [("wmw1", "cms")]
    assert r.for_object("wmw1", DEPLOY) == [("wmw1", "deps")]
    assert r.for_object("wmw1", GroupResource("", "secrets")) == []
    assert r.for_object("wmw1", CRDS) == [("wmw1", "cms"), ("wmw1", "deps")]  # a CRD implies its objects'
    # A Namespace's labels matter to the placement with namespace selectors only.
    assert r.for_namespace("wmw1") == [("wmw1", "cms")]


def test_an_edited_placement_is_routed_by_its_new_spec() -> None:
    r, indexer, _, _, _, _ = resolver()
    indexer.add(placement("ep", "wmw1", CMS_IN_PROD))
    r.reconcile(("wmw1", "ep"))
    indexer.update(placement("ep", "wmw1", [{"apiGroup": "apps", "resources": ["deployments"]}]))
    r.reconcile(("wmw1", "ep"))
    assert r.for_object("wmw1", CM) == [] and r.for_object("wmw1", DEPLOY) == [("wmw1", "ep")]
