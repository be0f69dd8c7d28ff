"""The generated typed client, typed informers and listers against a real kcp.

Every edge kind goes through create, get, list, update, patch, apply_status (where it has a
status subresource) and delete with ``EdgeV2alpha1Client``; a typed informer and its lister see
what was written; an object that the CRD's schema accepts but the model rejects is kept out of
the typed cache and reported (log, hook, Event), and the informer goes on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from apis.edge.v2alpha1 import (
    Customizer,
    EdgePlacement,
    EdgePlacementStatus,
    LocationStatus,
    SyncTargetStatus,
    resources,
)
from apis.edge.v2alpha1.client import EdgeV2alpha1Client
from apis.edge.v2alpha1.listers import CustomizerLister, EdgePlacementLister
from apis.machinery.client import ClusterScopedClient, NamespacedClient
from pkg.runtime import kcp
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import INVALID_OBJECT_REASON, SharedInformerFactory
from pkg.runtime.rest import ApiError, RestClient

pytestmark = pytest.mark.kcp


def eventually(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# One valid object of each kind, and a status to apply where the kind has one.
OBJECTS: dict[str, dict[str, Any]] = {
    "customizers": {
        "metadata": {"namespace": "default"},
        "replacements": [{"path": "$.spec.x", "value": "1"}],
    },
    "edgeplacements": {
        "spec": {
            "locationSelectors": [{"matchLabels": {"env": "prod"}}],
            "downsync": [{"resources": ["configmaps"]}],
        }
    },
    "edgesyncconfigs": {"spec": {}},
    "locations": {
        "spec": {
            "resource": {"group": "edge.kubestellar.io", "version": "v2alpha1", "resource": "synctargets"},
            "instanceSelector": {"matchLabels": {"id": "x"}},
        }
    },
    "singleplacementslices": {
        "destinations": [
            {"cluster": "c1", "locationName": "l1", "syncTargetName": "s1", "syncTargetUID": "u1"}
        ]
    },
    "syncerconfigs": {"spec": {"namespaceScope": {}}},
    "synctargets": {"spec": {}},
}
STATUSES: dict[str, BaseModel] = {
    "edgeplacements": EdgePlacementStatus(spec_generation=1, matching_location_count=2),
    "locations": LocationStatus(instances=3, available_instances=1),
    "synctargets": SyncTargetStatus(capacity={"cpu": "4", "pods": 110}),
}


@pytest.fixture
def edge(admin: RestClient, wmw: str) -> EdgeV2alpha1Client:
    """The clientset addressing the test's WMW (which binds the edge export)."""
    return EdgeV2alpha1Client(admin).cluster(wmw)


def _names(objs: list[Any]) -> set[str]:
    return {o.metadata.name for o in objs}


@pytest.mark.parametrize("plural", sorted(resources.RESOURCE_INFO))
def test_each_edge_kind_through_the_typed_client(edge: EdgeV2alpha1Client, plural: str) -> None:
    info = resources.RESOURCE_INFO[plural]
    client: Any = getattr(
        edge,
        f"{info.kind[0].lower()}{''.join('_' + c.lower() if c.isupper() else c for c in info.kind[1:])}s",
    )
    assert client.RESOURCE is info
    model = client.MODEL
    name = f"typed-{plural[:10]}"
    body = {"apiVersion": info.api_version, "kind": info.kind, **OBJECTS[plural]}
    body["metadata"] = {**body.get("metadata", {}), "name": name, "labels": {"typed": "yes"}}
    obj = model.model_validate(body)
    ns: tuple[str, ...] = ("default",) if info.namespaced else ()

    created = client.create(obj)
    assert isinstance(created, model)
    assert created.metadata.uid and created.metadata.resource_version
    got = client.get(*ns, name)
    assert isinstance(got, model) and got.metadata.uid == created.metadata.uid
    assert name in _names(client.list(*([ns[0]] if ns else [])))
    assert _names(client.list(*([ns[0]] if ns else []), label_selector="typed=yes")) == {name}
    assert client.list(*([ns[0]] if ns else []), label_selector="typed=no") == []
    assert isinstance(client, NamespacedClient if info.namespaced else ClusterScopedClient)

    got.metadata.labels = {"typed": "yes", "step": "updated"}
    updated = client.update(got)
    assert updated.metadata.labels["step"] == "updated"
    assert updated.metadata.resource_version != got.metadata.resource_version
    with pytest.raises(ApiError) as conflict:
        client.update(got)  # the stale resourceVersion
    assert conflict.value.conflict

    patched = client.patch(*ns, name, {"metadata": {"labels": {"step": "patched"}}})
    assert patched.metadata.labels == {"typed": "yes", "step": "patched"}

    if info.has_status:
        status = STATUSES[plural]
        applied = client.apply_status(*ns, name, status, field_manager="typed-client-test")
        assert applied.status == status.model_validate(status.model_dump(by_alias=True, exclude_unset=True))
        assert client.get(*ns, name).status == applied.status
        assert patched.metadata.labels == applied.metadata.labels  # status writes leave the rest alone
    else:
        assert not hasattr(client, "apply_status")

    client.delete(*ns, name)
    with pytest.raises(ApiError) as gone:
        client.get(*ns, name)
    assert gone.value.not_found


def test_apply_status_owns_fields_per_manager(edge: EdgeV2alpha1Client) -> None:
    eps = edge.edge_placements
    eps.create(EdgePlacement.model_validate({"metadata": {"name": "owned"}, **OBJECTS["edgeplacements"]}))
    eps.apply_status("owned", {"specGeneration": 1}, field_manager="a")
    eps.apply_status("owned", {"matchingLocationCount": 4}, field_manager="b")
    both = eps.get("owned").status
    assert both is not None and (both.spec_generation, both.matching_location_count) == (1, 4)
    eps.apply_status("owned", {}, field_manager="a")  # a gives its field up; b's stays
    after = eps.get("owned").status
    assert after is not None and (after.spec_generation, after.matching_location_count) == (None, 4)


BAD_TIME = "0000-01-01T00:00:00Z"
"""A time the apiserver's ``format: date-time`` accepts (Go's time has a year 0) and the model's
``AwareDatetime`` rejects (Python's datetime starts at year 1).  A time without a zone, which
the model rejects too, the apiserver rejects as well."""


def _write_bad_status(view: RestClient, name: str) -> None:
    """Write, without the typed client (which would fail to decode the answer), a status the CRD
    accepts and the model rejects."""
    body = {"apiVersion": "edge.kubestellar.io/v2alpha1", "kind": "EdgePlacement", "metadata": {"name": name}}
    view.apply(
        resources.EDGE_PLACEMENTS.path(name=name, subresource="status"),
        {**body, "status": _bad_status()},
        "test",
    )


def _bad_status() -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": "LocationsResolved",
                "status": "True",
                "lastTransitionTime": BAD_TIME,
                "reason": "Resolved",
                "message": "",
            }
        ]
    }


@pytest.fixture
def factory() -> Iterator[SharedInformerFactory]:
    f = SharedInformerFactory(read_timeout=30)
    yield f
    f.shutdown()


def test_typed_informer_and_lister_see_what_was_written(
    admin: RestClient, wmw: str, edge: EdgeV2alpha1Client, factory: SharedInformerFactory
) -> None:
    view = kcp.cluster(admin, wmw)
    eps = edge.edge_placements
    first = eps.create(
        EdgePlacement.model_validate({"metadata": {"name": "seen-1"}, **OBJECTS["edgeplacements"]})
    )
    cluster = kcp.cluster_of(first.model_dump(by_alias=True))
    assert cluster  # kcp names the logical cluster on every object

    informer = factory.informer(view, resources.EDGE_PLACEMENTS.path(), model=EdgePlacement)
    assert factory.informer(view, resources.EDGE_PLACEMENTS.path(), model=EdgePlacement) is informer
    assert factory.informer(view, resources.EDGE_PLACEMENTS.path()) is not informer  # the dict one
    added: list[EdgePlacement] = []
    informer.add_event_handler(on_add=added.append)
    factory.start()
    assert informer.wait_for_cache_sync(30)
    lister = EdgePlacementLister(informer.indexer)

    cached = lister.get(cluster, "seen-1")
    assert isinstance(cached, EdgePlacement) and cached.metadata.uid == first.metadata.uid
    assert cached == eps.get("seen-1")  # the same content as a GET, decoded once at ingest
    eventually("the add notification", lambda: added)
    assert isinstance(added[0], EdgePlacement)

    second = eps.create(EdgePlacement.model_validate({"metadata": {"name": "seen-2", "labels": {"l": "v"}}}))
    eventually("the second placement", lambda: lister.get(cluster, "seen-2"))
    assert _names(lister.list(cluster)) == {"seen-1", "seen-2"}
    assert _names(lister.list(cluster, "l=v")) == {"seen-2"}
    assert lister.list("not-a-cluster") == []

    eps.patch("seen-2", {"metadata": {"labels": {"l": "w"}}})
    eventually("the label change", lambda: _names(lister.list(cluster, "l=w")) == {"seen-2"})
    eps.delete("seen-1")
    eventually("the delete", lambda: lister.get(cluster, "seen-1") is None)
    assert second.metadata.uid == (lister.get(cluster, "seen-2") or second).metadata.uid

    customizers = factory.informer(view, resources.CUSTOMIZERS.path(), model=Customizer)
    assert customizers.wait_for_cache_sync(30)
    edge.customizers.create(Customizer.model_validate({"metadata": {"name": "cz", "namespace": "default"}}))
    clister = CustomizerLister(customizers.indexer)
    eventually("the customizer", lambda: clister.get(cluster, "default", "cz"))
    assert _names(clister.list(cluster, "default")) == {"cz"}


def test_an_object_the_model_rejects_is_kept_out_and_reported(
    admin: RestClient, wmw: str, edge: EdgeV2alpha1Client
) -> None:
    view = kcp.cluster(admin, wmw)
    eps = edge.edge_placements
    good = eps.create(
        EdgePlacement.model_validate({"metadata": {"name": "valid"}, **OBJECTS["edgeplacements"]})
    )
    cluster = kcp.cluster_of(good.model_dump(by_alias=True))
    # One object that is invalid before the informer starts (so its list meets it) ...
    eps.create(EdgePlacement.model_validate({"metadata": {"name": "invalid-at-list"}}))
    _write_bad_status(view, "invalid-at-list")
    raw = view.get(resources.EDGE_PLACEMENTS.path(name="invalid-at-list"))
    assert raw["status"]["conditions"][0]["lastTransitionTime"] == BAD_TIME  # the server took it
    with pytest.raises(ValidationError):
        eps.get("invalid-at-list")  # the typed client says so too

    hooked: list[tuple[dict[str, Any], Exception]] = []
    recorder = EventRecorder(admin, "typed-informer-test")
    recorder.start()
    factory = SharedInformerFactory(
        read_timeout=30, event_recorder=recorder, on_decode_error=lambda o, e: hooked.append((o, e))
    )
    try:
        informer = factory.informer(view, resources.EDGE_PLACEMENTS.path(), model=EdgePlacement)
        factory.start()
        assert informer.wait_for_cache_sync(30)
        lister = EdgePlacementLister(informer.indexer)
        assert lister.get(cluster, "valid") is not None
        assert lister.get(cluster, "invalid-at-list") is None
        eventually("the hook for the listed object", lambda: len(hooked) == 1)
        assert hooked[0][0]["metadata"]["name"] == "invalid-at-list"

        # ... and one that turns invalid while watched: its last valid version stays in effect.
        eps.apply_status("valid", {"matchingLocationCount": 1}, field_manager="test")
        eventually("the valid status", lambda: (lister.get(cluster, "valid") or good).status is not None)
        _write_bad_status(view, "valid")
        eventually("the hook for the watched object", lambda: len(hooked) == 2)
        kept = lister.get(cluster, "valid")
        assert kept is not None and kept.status is not None and kept.status.matching_location_count == 1
        assert informer.stats.rejected == 2

        # The informer goes on: later objects and a repair arrive as usual.
        eps.create(EdgePlacement.model_validate({"metadata": {"name": "after"}}))
        eventually("a later object", lambda: lister.get(cluster, "after"))
        eps.apply_status("valid", {"matchingLocationCount": 2}, field_manager="test")
        eventually(
            "the repaired object",
            lambda: (
                (st := (lister.get(cluster, "valid") or good).status) is not None
                and not st.conditions
                and st.matching_location_count == 2
            ),
        )

        def events() -> list[dict[str, Any]]:
            listed = view.get("/api/v1/namespaces/default/events")["items"]
            return [e for e in listed if e.get("reason") == INVALID_OBJECT_REASON]

        reported = eventually("the InvalidObject Events", lambda: len(events()) >= 2 and events())
        about = {e["involvedObject"]["name"]: e for e in reported}
        assert set(about) == {"invalid-at-list", "valid"}
        assert about["valid"]["involvedObject"]["kind"] == "EdgePlacement"
        assert about["valid"]["type"] == "Warning"
        assert "lastTransitionTime" in about["valid"]["message"]
    finally:
        factory.shutdown()
        recorder.stop()
