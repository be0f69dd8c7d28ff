"""The generated edge.kubestellar.io/v2alpha1 models: round trips, typed access, validation."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from apis.edge import v2alpha1 as api

REPO = Path(__file__).resolve().parents[2]
EXAMPLE1 = Path(__file__).resolve().parent / "testdata" / "example1"


def _load_example1() -> list[tuple[str, dict[str, Any]]]:
    objects = []
    for path in sorted(EXAMPLE1.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects.append((f"{path.stem}/{doc['kind']}/{doc['metadata']['name']}", doc))
    return objects


EXAMPLE1_OBJECTS = _load_example1()


def _dump(obj: api.KubeObject) -> dict[str, Any]:
    return obj.model_dump(by_alias=True, exclude_unset=True, mode="json")


def test_example1_has_every_edge_object() -> None:
    kinds = Counter(doc["kind"] for _, doc in EXAMPLE1_OBJECTS)
    assert kinds == {
        "Location": 2,
        "SyncTarget": 2,
        "EdgePlacement": 2,
        "Customizer": 2,
        "SinglePlacementSlice": 2,
        "SyncerConfig": 2,
    }


@pytest.mark.parametrize(("doc"), [doc for _, doc in EXAMPLE1_OBJECTS], ids=[i for i, _ in EXAMPLE1_OBJECTS])
def test_example1_object_round_trips(doc: dict[str, Any]) -> None:
    model = api.KINDS[doc["kind"]]
    obj = model.model_validate(doc)
    assert type(obj) is model
    assert _dump(obj) == doc
    # The JSON form parses back to an equal model.
    assert model.model_validate_json(obj.model_dump_json(exclude_unset=True)) == obj


def _example1(kind: str, name: str, stem: str | None = None) -> dict[str, Any]:
    for ident, doc in EXAMPLE1_OBJECTS:
        if (
            doc["kind"] == kind
            and doc["metadata"]["name"] == name
            and (stem is None or ident.startswith(stem))
        ):
            return doc
    raise KeyError((kind, name))


def test_example1_typed_access() -> None:
    ep = api.EdgePlacement.model_validate(_example1("EdgePlacement", "edge-placement-c"))
    assert ep.spec is not None
    assert ep.spec.location_selectors == [api.LabelSelector(match_labels={"env": "prod"})]
    assert ep.spec.downsync is not None
    assert [t.api_group for t in ep.spec.downsync] == ["", "apps"]
    assert ep.spec.downsync[1].object_names is None  # absent, not empty: "any name"
    assert ep.spec.want_singleton_reported_state is True
    assert ep.spec.upsync is not None
    assert ep.spec.upsync[1] == api.UpsyncSet(api_group="group2.test", resources=["cogs"], names=["william"])
    assert ep.status is not None
    assert ep.status.matching_location_count == 2
    assert ep.status.conditions is not None
    assert {c.type: c.status for c in ep.status.conditions} == {
        "LocationsResolved": "True",
        "Projected": "True",
    }
    assert ep.status.conditions[0].last_transition_time.tzinfo is not None

    eps = api.EdgePlacement.model_validate(_example1("EdgePlacement", "edge-placement-s"))
    assert eps.spec is not None and eps.spec.downsync is not None
    selectors = eps.spec.downsync[0].namespace_selectors
    assert selectors == [api.LabelSelector(match_labels={"special": "yes"})]

    sps = api.SinglePlacementSlice.model_validate(_example1("SinglePlacementSlice", "edge-placement-c"))
    assert [(d.location_name, d.sync_target_name) for d in sps.destinations] == [
        ("florin", "florin"),
        ("guilder", "guilder"),
    ]
    assert isinstance(sps.destinations[0], api.Destination)
    assert sps.metadata.owner_references is not None
    assert sps.metadata.owner_references[0].kind == "EdgePlacement"

    loc = api.Location.model_validate(_example1("Location", "guilder"))
    assert loc.spec is not None and loc.spec.instance_selector is not None
    assert loc.spec.instance_selector.match_labels == {"id": "guilder"}
    assert loc.spec.resource.resource == "synctargets"
    assert loc.metadata.labels == {"loc-name": "guilder", "env": "prod", "extended": "yes"}

    cust = api.Customizer.model_validate(_example1("Customizer", "example-customizer", "wmw-c"))
    assert cust.metadata.namespace == "commonstuff"
    assert cust.replacements == [
        api.Replacement(path="$.spec.template.spec.containers.0.env.0.value", value='"env is %(env)"')
    ]

    guilder_config = [doc for ident, doc in EXAMPLE1_OBJECTS if ident.startswith("mailboxes/")][1]
    config = api.SyncerConfig.model_validate(guilder_config)
    assert config.spec is not None
    assert config.spec.namespace_scope == api.NamespaceScopeDownsyncs()
    assert config.spec.namespaced_objects is not None
    first = config.spec.namespaced_objects[0]
    assert (first.group, first.resource, first.api_version) == ("", "configmaps", "v1")
    assert config.spec.cluster_scope is not None
    assert config.spec.cluster_scope[0] == api.ClusterScopeDownsyncObjects(
        group="", resource="namespaces", api_version="v1", objects=["specialstuff"]
    )


def test_an_object_built_in_python_dumps_its_type() -> None:
    ep = api.EdgePlacement(
        metadata=api.ObjectMeta(name="e"),
        spec=api.EdgePlacementSpec(
            location_selectors=[api.LabelSelector(match_labels={"env": "prod"})],
            downsync=[api.DownsyncObjectTest(api_group="", resources=["configmaps"])],
        ),
    )
    assert _dump(ep) == {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "EdgePlacement",
        "metadata": {"name": "e"},
        "spec": {
            "locationSelectors": [{"matchLabels": {"env": "prod"}}],
            "downsync": [{"apiGroup": "", "resources": ["configmaps"]}],
        },
    }
    # JSON names work for construction too.
    assert api.SinglePlacement.model_validate(
        {"cluster": "c", "locationName": "l", "syncTargetName": "s", "syncTargetUID": "u"}
    ) == api.SinglePlacement(cluster="c", location_name="l", sync_target_name="s", sync_target_uid="u")


def test_an_object_as_kcp_serves_it_round_trips() -> None:
    # Server-set metadata (timestamps, managedFields, kcp's cluster annotation) and server
    # defaults survive a round trip.
    served = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "SyncTarget",
        "metadata": {
            "annotations": {"kcp.io/cluster": "1eex0smgzb687hig"},
            "creationTimestamp": "2023-11-25T23:34:23Z",
            "generation": 1,
            "labels": {"env": "prod", "id": "florin"},
            "managedFields": [
                {
                    "apiVersion": "edge.kubestellar.io/v2alpha1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:env": {}}}},
                    "manager": "kubectl-create",
                    "operation": "Update",
                    "time": "2023-11-25T23:34:23Z",
                }
            ],
            "name": "florin",
            "resourceVersion": "881",
            "uid": "66334ec2-bb22-4f76-af60-00a71e815091",
        },
        "spec": {"supportedAPIExports": [{"export": "kubernetes"}], "unschedulable": False},
        "status": {
            "allocatable": {"cpu": 4, "memory": "16Gi"},
            "lastSyncerHeartbeatTime": "2023-11-25T23:40:00Z",
        },
    }
    st = api.SyncTarget.model_validate(served)
    assert _dump(st) == served
    assert st.status is not None and st.status.allocatable == {"cpu": 4, "memory": "16Gi"}


def test_unknown_metadata_fields_are_kept() -> None:
    # ObjectMeta is a preserve-unknown-fields schema: fields it does not declare survive.
    doc = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "Location",
        "metadata": {"name": "l", "selfLink": "/x", "futureField": {"nested": [1, {"a": None}]}},
        "spec": {"resource": {"version": "v2alpha1", "resource": "synctargets"}},
    }
    loc = api.Location.model_validate(doc)
    assert loc.metadata.model_extra == {"selfLink": "/x", "futureField": {"nested": [1, {"a": None}]}}
    assert _dump(loc) == doc


def test_unknown_fields_elsewhere_are_pruned_like_the_apiserver_does() -> None:
    doc = {
        "metadata": {"name": "e"},
        "spec": {"downsync": [{"resources": ["pods"], "notAField": 1}], "alsoNot": True},
    }
    ep = api.EdgePlacement.model_validate(doc)
    assert _dump(ep)["spec"] == {"downsync": [{"resources": ["pods"]}]}


def _load_codegen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codegen_under_test", REPO / "hack" / "codegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.edge.kubestellar.io"},
    "spec": {
        "group": "edge.kubestellar.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v2alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                        "properties": {"name": {"type": "string"}},
                                    },
                                    "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                    "anything": {"x-kubernetes-preserve-unknown-fields": True},
                                    "replicas": {
                                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                                        "x-kubernetes-int-or-string": True,
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widget_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """Models generated by hack/codegen.py from a CRD with preserve-unknown-fields schemas."""
    codegen = _load_codegen()
    names = {"Widget.spec": "WidgetSpec", "WidgetSpec.template": "WidgetTemplate"}
    code, kinds = codegen.generate_models_module([WIDGET_CRD], {**codegen.TYPE_NAMES, **names})
    assert kinds == ["Widget"]
    path = tmp_path_factory.mktemp("widget") / "widget_models.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("widget_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_preserve_unknown_fields_round_trip(widget_module: ModuleType) -> None:
    doc = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "n"},
        "spec": {
            "template": {"name": "t", "extra": {"deep": [1, 2, {"x": "y"}]}, "more": None},
            "blob": {"anything": ["goes"], "n": 1.5},
            "anything": [1, "two", {"three": 3}],
            "replicas": "50%",
        },
    }
    widget = widget_module.Widget.model_validate(doc)
    assert widget.spec.template.name == "t"
    assert widget.spec.template.model_extra == {"extra": {"deep": [1, 2, {"x": "y"}]}, "more": None}
    assert widget.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc
    assert widget_module.Widget.model_validate({**doc, "spec": {"replicas": 3}}).spec.replicas == 3


# --- invalid input ---------------------------------------------------------------------------

_EP = {"apiVersion": "edge.kubestellar.io/v2alpha1", "kind": "EdgePlacement", "metadata": {"name": "e"}}
_CONDITION = {
    "type": "Projected",
    "status": "True",
    "lastTransitionTime": "2023-10-05T12:00:00Z",
    "reason": "Projected",
    "message": "",
}
_DEST = {"cluster": "imw1", "locationName": "l", "syncTargetName": "s", "syncTargetUID": "u"}


@pytest.mark.parametrize(
    ("model", "doc", "field"),
    [
        (api.EdgePlacement, {**_EP, "spec": {"downsync": {"resources": ["pods"]}}}, "downsync"),
        (
            api.EdgePlacement,
            {**_EP, "spec": {"wantSingletonReportedState": "yes"}},
            "wantSingletonReportedState",
        ),
        (
            api.EdgePlacement,
            {**_EP, "spec": {"locationSelectors": [{"matchLabels": {"a": 1}}]}},
            "matchLabels",
        ),
        (api.EdgePlacement, {**_EP, "spec": {"upsync": [{"apiGroup": "g"}]}}, "resources"),
        (api.EdgePlacement, {**_EP, "status": {"matchingLocationCount": "two"}}, "matchingLocationCount"),
        (
            api.EdgePlacement,
            {
                **_EP,
                "status": {
                    "conditions": [{"type": "Projected", "status": "True", "reason": "R", "message": ""}]
                },
            },
            "lastTransitionTime",
        ),
        (
            api.EdgePlacement,
            {**_EP, "status": {"conditions": [{**_CONDITION, "status": "Maybe"}]}},
            "status",
        ),
        (api.EdgePlacement, {**_EP, "kind": "Location"}, "kind"),
        (api.EdgePlacement, {**_EP, "apiVersion": "edge.kubestellar.io/v1alpha1"}, "apiVersion"),
        (api.EdgePlacement, {"kind": "EdgePlacement", "spec": {}}, "metadata"),
        (api.SinglePlacementSlice, {"metadata": {"name": "s"}}, "destinations"),
        (
            api.SinglePlacementSlice,
            {
                "metadata": {"name": "s"},
                "destinations": [{k: v for k, v in _DEST.items() if k != "syncTargetUID"}],
            },
            "syncTargetUID",
        ),
        (api.Location, {"metadata": {"name": "l"}, "spec": {}}, "resource"),
        (
            api.Location,
            {"metadata": {"name": "l"}, "spec": {"resource": {"version": "v2alpha1", "resource": "pods"}}},
            "resource",
        ),
        (api.Customizer, {"metadata": {"name": "c"}, "replacements": [{"path": "$.a"}]}, "value"),
        (
            api.SyncerConfig,
            {"metadata": {"name": "the-one"}, "spec": {"clusterScope": [{"group": ""}]}},
            "apiVersion",
        ),
        (api.SyncTarget, {"metadata": {"name": "s", "labels": {"extended": True}}}, "extended"),
        (api.SyncTarget, {"metadata": {"name": "s"}, "status": {"capacity": {"cpu": "lots"}}}, "cpu"),
    ],
)
def test_invalid_input_names_the_field(model: type[api.KubeObject], doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(doc)
    locations = [err["loc"] for err in caught.value.errors()]
    assert any(field in loc for loc in locations), locations
    assert field in str(caught.value)
