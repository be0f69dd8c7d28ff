"""The generated typed listers over an indexer of models, the shared key and index functions, the
resource path builder and the string form of label selectors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apis.edge.v2alpha1 import Customizer, EdgePlacement, LabelSelector, SyncTarget, resources
from apis.edge.v2alpha1.listers import CustomizerLister, EdgePlacementLister, SyncTargetLister
from apis.machinery import meta
from apis.machinery.labels import SelectorError, parse_selector, parse_selector_string, selector_of
from apis.machinery.resource import ResourceInfo
from pkg.runtime.store import Indexer, cluster_namespace_key


def _meta(name: str, cluster: str = "", namespace: str = "", labels: dict[str, str] | None = None) -> Any:
    md: dict[str, Any] = {"name": name}
    if cluster:
        md["annotations"] = {"kcp.io/cluster": cluster}
    if namespace:
        md["namespace"] = namespace
    if labels:
        md["labels"] = labels
    return md


def _sync_target(name: str, cluster: str = "", **labels: str) -> SyncTarget:
    return SyncTarget.model_validate({"metadata": _meta(name, cluster, labels=labels)})


def _customizer(namespace: str, name: str, cluster: str = "", **labels: str) -> Customizer:
    return Customizer.model_validate({"metadata": _meta(name, cluster, namespace, labels)})


@pytest.fixture
def sync_targets() -> SyncTargetLister:
    indexer: Indexer[SyncTarget] = Indexer()
    for obj in [
        _sync_target("a", "imw1", env="prod", id="a"),
        _sync_target("b", "imw1", env="dev", id="b"),
        _sync_target("a", "imw2", env="prod", id="a2"),
        _sync_target("plain", env="prod"),
    ]:
        indexer.add(obj)
    return SyncTargetLister(indexer)


def _names(objs: list[Any]) -> set[tuple[str, str]]:
    return {(meta.cluster_of(o), meta.name_of(o)) for o in objs}


def test_cluster_lister_gets_by_cluster_and_name(sync_targets: SyncTargetLister) -> None:
    a1 = sync_targets.get("imw1", "a")
    a2 = sync_targets.get("imw2", "a")
    assert isinstance(a1, SyncTarget) and isinstance(a2, SyncTarget)
    assert a1 is not a2
    assert a1.metadata.labels == {"env": "prod", "id": "a"}
    assert a2.metadata.labels == {"env": "prod", "id": "a2"}
    assert sync_targets.get("imw1", "missing") is None
    assert sync_targets.get("imw3", "a") is None
    assert sync_targets.get("", "plain") is not None  # an object that names no cluster


def test_cluster_lister_lists_by_cluster_and_selector(sync_targets: SyncTargetLister) -> None:
    assert _names(sync_targets.list()) == {("imw1", "a"), ("imw1", "b"), ("imw2", "a"), ("", "plain")}
    assert _names(sync_targets.list("imw1")) == {("imw1", "a"), ("imw1", "b")}
    assert _names(sync_targets.list("")) == {("", "plain")}
    assert sync_targets.list("nowhere") == []
    prod = {("imw1", "a"), ("imw2", "a"), ("", "plain")}
    assert _names(sync_targets.list(selector="env=prod")) == prod
    assert _names(sync_targets.list(selector={"matchLabels": {"env": "prod"}})) == prod
    model = LabelSelector.model_validate(
        {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
    )
    assert _names(sync_targets.list(selector=model)) == prod
    assert _names(sync_targets.list("imw1", "env!=prod")) == {("imw1", "b")}
    assert _names(sync_targets.list(selector="id in (a, b),env")) == {("imw1", "a"), ("imw1", "b")}
    assert _names(sync_targets.list(selector="!id")) == {("", "plain")}


def test_a_bad_selector_is_an_error_not_an_empty_list(sync_targets: SyncTargetLister) -> None:
    with pytest.raises(SelectorError):
        sync_targets.list(selector="env in prod")
    with pytest.raises(SelectorError):
        sync_targets.list(selector={"matchExpressions": [{"key": "env", "operator": "Bogus"}]})


def test_namespaced_lister() -> None:
    indexer: Indexer[Customizer] = Indexer()
    for obj in [
        _customizer("ns1", "c", "wmw1", kind="x"),
        _customizer("ns2", "c", "wmw1"),
        _customizer("ns1", "c", "wmw2", kind="x"),
        _customizer("ns1", "d", "wmw2"),
    ]:
        indexer.add(obj)
    lister = CustomizerLister(indexer)

    got = lister.get("wmw1", "ns1", "c")
    assert got is not None and got.metadata.labels == {"kind": "x"}
    assert lister.get("wmw1", "ns3", "c") is None
    assert lister.get("wmw2", "ns2", "c") is None

    def keys(objs: list[Customizer]) -> set[str]:
        return {cluster_namespace_key(o) for o in objs}

    assert keys(lister.list()) == {"wmw1|ns1/c", "wmw1|ns2/c", "wmw2|ns1/c", "wmw2|ns1/d"}
    assert keys(lister.list("wmw1")) == {"wmw1|ns1/c", "wmw1|ns2/c"}
    assert keys(lister.list(namespace="ns1")) == {"wmw1|ns1/c", "wmw2|ns1/c", "wmw2|ns1/d"}
    assert keys(lister.list("wmw2", "ns1")) == {"wmw2|ns1/c", "wmw2|ns1/d"}
    assert keys(lister.list("wmw2", "ns1", "kind=x")) == {"wmw2|ns1/c"}
    assert keys(lister.list(namespace="ns1", selector="kind")) == {"wmw1|ns1/c", "wmw2|ns1/c"}


def test_lister_reads_never_copy_or_decode() -> None:
    indexer: Indexer[EdgePlacement] = Indexer()
    ep = EdgePlacement.model_validate({"metadata": _meta("p", "wmw1")})
    indexer.add(ep)
    lister = EdgePlacementLister(indexer)
    assert lister.get("wmw1", "p") is ep
    assert lister.list("wmw1")[0] is ep


def test_listers_name_their_resources() -> None:
    assert EdgePlacementLister.RESOURCE is resources.EDGE_PLACEMENTS
    assert CustomizerLister.RESOURCE.namespaced and not SyncTargetLister.RESOURCE.namespaced
    assert set(resources.RESOURCE_INFO) == {
        "customizers",
        "edgeplacements",
        "edgesyncconfigs",
        "locations",
        "singleplacementslices",
        "syncerconfigs",
        "synctargets",
    }
    with_status = {p for p, info in resources.RESOURCE_INFO.items() if info.has_status}
    assert with_status == {"edgeplacements", "locations", "synctargets"}


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": _meta("n", "c1", "ns", {"a": "b"})},
        {"metadata": _meta("n", "c1")},
        {"metadata": _meta("n", namespace="ns")},
        {"metadata": _meta("n")},
    ],
)
def test_key_and_index_functions_agree_for_dicts_and_models(obj: dict[str, Any]) -> None:
    model = (
        Customizer.model_validate(obj) if "namespace" in obj["metadata"] else SyncTarget.model_validate(obj)
    )
    assert meta.object_key(model) == meta.object_key(obj)
    assert meta.cluster_index(model) == meta.cluster_index(obj)
    assert meta.namespace_index(model) == meta.namespace_index(obj)
    assert meta.labels_of(model) == meta.labels_of(obj)
    assert meta.split_key(meta.object_key(obj)) == (
        meta.cluster_of(obj),
        meta.namespace_of(obj),
        meta.name_of(obj),
    )


def test_key_of_an_object_without_a_name_is_an_error() -> None:
    with pytest.raises(KeyError):
        meta.object_key({"metadata": {}})
    with pytest.raises(KeyError):
        meta.object_key(SyncTarget.model_validate({"metadata": {}}))


def test_resource_paths() -> None:
    ep = resources.EDGE_PLACEMENTS
    assert ep.path() == "/apis/edge.kubestellar.io/v2alpha1/edgeplacements"
    assert (
        ep.path("root:wmw1", name="p")
        == "/clusters/root:wmw1/apis/edge.kubestellar.io/v2alpha1/edgeplacements/p"
    )
    assert ep.path("*") == "/clusters/*/apis/edge.kubestellar.io/v2alpha1/edgeplacements"
    assert ep.path("c", name="p", subresource="status").endswith("/edgeplacements/p/status")
    cz = resources.CUSTOMIZERS
    assert cz.path(namespace="ns") == "/apis/edge.kubestellar.io/v2alpha1/namespaces/ns/customizers"
    assert (
        cz.path("c", "ns", "x") == "/clusters/c/apis/edge.kubestellar.io/v2alpha1/namespaces/ns/customizers/x"
    )
    assert cz.path() == "/apis/edge.kubestellar.io/v2alpha1/customizers"
    core = ResourceInfo("", "v1", "configmaps", "ConfigMap", namespaced=True)
    assert core.path("c", "ns", "cm") == "/clusters/c/api/v1/namespaces/ns/configmaps/cm"
    assert core.api_version == "v1" and ep.api_version == "edge.kubestellar.io/v2alpha1"
    with pytest.raises(ValueError, match="cluster-scoped"):
        ep.path(namespace="ns")
    with pytest.raises(ValueError, match="no subresource"):
        cz.path("c", "ns", "x", "status")
    with pytest.raises(ValueError, match="needs a name"):
        ep.path(subresource="status")


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (b, c)", {"a": "c"}, True),
        ("a notin (b,c)", {"a": "d"}, True),
        ("a notin (b,c)", {"a": "b"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("a=b,c", {"a": "b"}, False),
        ("example.com/x=y, z in (1)", {"example.com/x": "y", "z": "1"}, True),
    ],
)
def test_string_selectors(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector_string(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["a in b", "a=b,", ",a", "a in (b", "a > 1", "a=b=c", "Bad Key=x", "in (a)"])
def test_malformed_string_selectors(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector_string(text)


_keys = st.sampled_from(["a", "b", "x.io/c"])
_values = st.sampled_from(["1", "2", "v"])


@given(
    match_labels=st.dictionaries(_keys, _values, max_size=2),
    exprs=st.lists(
        st.tuples(
            _keys, st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]), st.sets(_values, min_size=1)
        ),
        max_size=3,
    ),
    labels=st.dictionaries(_keys, _values, max_size=3),
)
def test_string_and_structured_selectors_agree(
    match_labels: dict[str, str], exprs: list[tuple[str, str, set[str]]], labels: dict[str, str]
) -> None:
    structured = {
        "matchLabels": match_labels,
        "matchExpressions": [
            {"key": k, "operator": op, **({"values": sorted(vs)} if op in ("In", "NotIn") else {})}
            for k, op, vs in exprs
        ],
    }
    parts = [f"{k}={v}" for k, v in match_labels.items()]
    for k, op, vs in exprs:
        if op == "Exists":
            parts.append(k)
        elif op == "DoesNotExist":
            parts.append(f"!{k}")
        else:
            parts.append(f"{k} {op.lower()} ({','.join(sorted(vs))})")
    text = ",".join(parts)
    assert parse_selector_string(text).matches(labels) == parse_selector(structured).matches(labels)
    assert selector_of(text) == parse_selector_string(text)
