"""pkg.controllers.what.select: the what resolver's pure selection rules.

Scenario ids (A.4, B.1, C7, ...) refer to /work/shared/spec/scenarios.md; rules to behaviour.md.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from apis.edge.v2alpha1 import EdgePlacementSpec, UpsyncSet
from apis.edge.v2alpha1 import constants as api
from pkg.controllers.what import select
from pkg.controllers.what.select import (
    CompiledPlacement,
    GroupResource,
    could_select,
    create_only,
    excluded,
    is_system_object,
    match_state,
    pick_version,
    selects,
    version_sort_key,
)

CM = GroupResource("", "configmaps")
NS = GroupResource("", "namespaces")
SECRETS = GroupResource("", "secrets")
SA = GroupResource("", "serviceaccounts")
RS = GroupResource("apps", "replicasets")
DEPLOY = GroupResource("apps", "deployments")
APISVC = GroupResource("apiregistration.k8s.io", "apiservices")
CRONTABS = GroupResource("stable.example.com", "crontabs")
SPROCKETS = GroupResource("group1.test", "sprockets")


def obj(
    name: str,
    namespace: str | None = None,
    *,
    api_version: str = "v1",
    kind: str = "ConfigMap",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **top: Any,
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if namespace is not None:
        md["namespace"] = namespace
    if labels is not None:
        md["labels"] = labels
    if annotations is not None:
        md["annotations"] = annotations
    return {"apiVersion": api_version, "kind": kind, "metadata": md, **top}


def compile_placement(spec: dict[str, Any]) -> tuple[CompiledPlacement, list[str]]:
    """:func:`select.compile_placement` of the spec model that the server's ``spec`` decodes to."""
    return select.compile_placement(EdgePlacementSpec.model_validate(spec))


def upsync_claims(upsync: list[dict[str, Any]], gr: GroupResource, namespace: str, name: str) -> bool:
    return select.upsync_claims([UpsyncSet.model_validate(u) for u in upsync], gr, namespace, name)


def canonical_upsync(upsync: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = select.canonical_upsync([UpsyncSet.model_validate(u) for u in upsync])
    return [u.model_dump(mode="json", exclude_unset=True) for u in out]


def upsync_of(p: CompiledPlacement) -> list[dict[str, Any]]:
    return [u.model_dump(mode="json", exclude_unset=True) for u in p.upsync]


def compiled(spec: dict[str, Any]) -> CompiledPlacement:
    p, problems = compile_placement(spec)
    assert problems == []
    return p


def test_constants() -> None:
    assert api.GROUP == "edge.kubestellar.io"
    assert api.PROJECTED_LABEL == "edge.kubestellar.io/projected"
    assert api.DOWNSYNC_OVERWRITE_ANNOTATION == "edge.kubestellar.io/downsync-overwrite"
    assert api.EXECUTING_COUNT_ANNOTATION == "kubestellar.io/executing-count"
    assert api.CUSTOMIZER_ANNOTATION == "edge.kubestellar.io/customizer"
    assert api.EXPAND_PARAMETERS_ANNOTATION == "edge.kubestellar.io/expand-parameters"


def test_group_resource_str_and_order() -> None:
    assert str(CM) == "configmaps"
    assert str(RS) == "replicasets.apps"
    assert sorted([RS, CM]) == [CM, RS]
    assert GroupResource("", "configmaps") == CM
    assert len({CM, GroupResource("", "configmaps")}) == 1


# --- exclusions (behaviour 4.1; C7, C27) ---------------------------------------------------------


@pytest.mark.parametrize(
    "gr",
    [
        GroupResource(api.GROUP, "customizers"),
        GroupResource(api.GROUP, "edgeplacements"),
        GroupResource("scheduling.kcp.io", "locations"),
        GroupResource("tenancy.kcp.io", "workspaces"),
        GroupResource("topology.kcp.io", "partitions"),
        GroupResource("workload.kcp.io", "synctargets"),
        GroupResource("apis.kcp.io", "apiexports"),
        GroupResource("apis.kcp.io", "apiexportendpointslices"),
        GroupResource("apis.kcp.io", "apiresourceschemas"),
        GroupResource("apps", "controllerrevisions"),
        GroupResource("authentication.k8s.io", "tokenreviews"),
        GroupResource("authorization.k8s.io", "localsubjectaccessreviews"),
        GroupResource("authorization.k8s.io", "selfsubjectaccessreviews"),
        GroupResource("authorization.k8s.io", "selfsubjectrulesreviews"),
        GroupResource("authorization.k8s.io", "subjectaccessreviews"),
        GroupResource("certificates.k8s.io", "certificatesigningrequests"),
        GroupResource("core.kcp.io", "logicalclusters"),
        GroupResource("core.kcp.io", "shards"),
        GroupResource("events.k8s.io", "events"),
        GroupResource("", "bindings"),
        GroupResource("", "componentstatuses"),
        GroupResource("", "events"),
        GroupResource("", "nodes"),
        # not supported (C27)
        GroupResource("apiresource.kcp.io", "apiresourceimports"),
        GroupResource("apiresource.kcp.io", "negotiatedapiresources"),
        GroupResource("apis.kcp.io", "apiconversions"),
    ],
)
def test_excluded(gr: GroupResource) -> None:
    assert excluded(gr)
    everything = compile_placement({"downsync": [{}]})[0]  # matches everything else
    assert not could_select(everything, gr)
    assert not selects(everything, gr, obj("x", "ns"), {})


@pytest.mark.parametrize(
    "gr",
    [CM, NS, SECRETS, SA, RS, DEPLOY, APISVC, CRONTABS, GroupResource("apis.kcp.io", "apibindings")],
)
def test_not_excluded(gr: GroupResource) -> None:
    assert not excluded(gr)


# --- system objects (behaviour 4.2; A.4, C7) ------------------------------------------------------


def test_system_objects() -> None:
    assert is_system_object(obj("kube-root-ca.crt", "commonstuff"))
    assert is_system_object(obj("default", "commonstuff", kind="ServiceAccount"))
    assert is_system_object(obj("t", "ns", kind="Secret", type="kubernetes.io/service-account-token"))
    assert is_system_object(obj("t", "ns", kind="Secret", type="bootstrap.kubernetes.io/token"))
    assert not is_system_object(obj("t", "ns", kind="Secret", type="Opaque"))
    assert not is_system_object(obj("t", "ns", kind="Secret"))
    assert not is_system_object(obj("other", "ns"))
    assert not is_system_object(obj("builder", "ns", kind="ServiceAccount"))
    assert not is_system_object(obj("default", None, kind="Namespace"))
    # the rule applies only to apiVersion "v1" objects
    assert not is_system_object(obj("kube-root-ca.crt", "ns", api_version="example.com/v1"))
    assert not is_system_object(obj("default", "ns", api_version="other/v1", kind="ServiceAccount"))


def test_c7_wildcards_exclude_system_objects_and_excluded_resources() -> None:
    p = compiled(
        {
            "downsync": [
                {"apiGroup": "", "resources": ["*"], "namespaces": ["commonstuff"], "objectNames": ["*"]}
            ]
        }
    )
    assert selects(p, CM, obj("httpd-htdocs", "commonstuff"), {})
    assert selects(p, SECRETS, obj("s", "commonstuff", kind="Secret", type="Opaque"), {})
    assert not selects(p, CM, obj("kube-root-ca.crt", "commonstuff"), {})
    assert not selects(p, SA, obj("default", "commonstuff", kind="ServiceAccount"), {})
    sa_tok = obj("tok", "commonstuff", kind="Secret", type="kubernetes.io/service-account-token")
    assert not selects(p, SECRETS, sa_tok, {})
    assert not selects(p, GroupResource("", "events"), obj("e", "commonstuff", kind="Event"), {})
    # apiGroup "" = core only
    assert not selects(p, RS, obj("commond", "commonstuff", api_version="apps/v1", kind="ReplicaSet"), {})
    assert not could_select(p, RS)
    assert could_select(p, CM)
    assert not could_select(p, GroupResource("", "nodes"))
    # a different namespace
    assert not selects(p, CM, obj("x", "specialstuff"), {})


# --- downsync criteria (behaviour 1.1) -----------------------------------------------------------


def test_api_group_absent_matches_any_group() -> None:  # C7
    p = compiled({"downsync": [{"resources": ["replicasets", "configmaps"]}]})
    assert could_select(p, RS) and could_select(p, CM)
    assert not could_select(p, DEPLOY)
    assert selects(p, RS, obj("r", "ns", api_version="apps/v1", kind="ReplicaSet"), {})
    assert selects(p, CM, obj("c", "ns"), {})
    p_null = compiled({"downsync": [{"apiGroup": None, "resources": ["replicasets"]}]})
    assert could_select(p_null, RS)


def test_api_group_exact() -> None:
    p = compiled({"downsync": [{"apiGroup": "apps", "resources": ["replicasets"]}]})
    assert could_select(p, RS)
    assert not could_select(p, GroupResource("apps.example", "replicasets"))
    assert not could_select(p, GroupResource("", "replicasets"))


@pytest.mark.parametrize("resources", [None, [], ["*"], ["configmaps", "*"]])
def test_resources_any(resources: list[str] | None) -> None:  # C7 equivalences
    clause: dict[str, Any] = {"apiGroup": ""}
    if resources is not None:
        clause["resources"] = resources
    p = compiled({"downsync": [clause]})
    assert could_select(p, CM) and could_select(p, SECRETS)
    assert selects(p, CM, obj("c", "ns"), {})


def test_resources_are_exact_lowercase_plurals() -> None:  # C7
    p = compiled({"downsync": [{"apiGroup": "", "resources": ["ConfigMap"]}]})
    assert not could_select(p, CM)
    assert not selects(p, CM, obj("c", "ns"), {})


@pytest.mark.parametrize("namespaces", [None, [], ["*"]])
def test_namespaces_any_also_matches_cluster_scoped(namespaces: list[str] | None) -> None:  # C7, C9
    clause: dict[str, Any] = {"resources": ["configmaps", "namespaces"]}
    if namespaces is not None:
        clause["namespaces"] = namespaces
    p = compiled({"downsync": [clause]})
    assert selects(p, CM, obj("c", "anywhere"), {})
    assert selects(p, NS, obj("anywhere", kind="Namespace"), None)


def test_namespaces_listed() -> None:  # C9
    p = compiled({"downsync": [{"resources": ["configmaps", "namespaces"], "namespaces": ["commonstuff"]}]})
    assert selects(p, CM, obj("c", "commonstuff"), {})
    assert not selects(p, CM, obj("c", "specialstuff"), {})
    # namespaces: [commonstuff] never matches a cluster-scoped object
    assert not selects(p, NS, obj("commonstuff", kind="Namespace"), {})
    # ... except literally "" (behaviour 1.1)
    p2 = compiled({"downsync": [{"resources": ["namespaces"], "namespaces": [""]}]})
    assert selects(p2, NS, obj("commonstuff", kind="Namespace"), {})


@pytest.mark.parametrize("names", [None, [], ["*"]])
def test_object_names_any(names: list[str] | None) -> None:  # C7: objectNames [] == ["*"]
    clause: dict[str, Any] = {"resources": ["configmaps"]}
    if names is not None:
        clause["objectNames"] = names
    p = compiled({"downsync": [clause]})
    assert selects(p, CM, obj("whatever", "ns"), {})


def test_object_names_exact() -> None:
    p = compiled({"downsync": [{"resources": ["configmaps"], "objectNames": ["a", "b"]}]})
    assert selects(p, CM, obj("a", "ns"), {})
    assert not selects(p, CM, obj("A", "ns"), {})
    assert not selects(p, CM, obj("c", "ns"), {})


def test_label_selectors_any_of() -> None:
    p = compiled(
        {
            "downsync": [
                {
                    "resources": ["configmaps"],
                    "labelSelectors": [{"matchLabels": {"foo": "baz"}}, {"matchLabels": {"foo": "bar"}}],
                }
            ]
        }
    )
    assert selects(p, CM, obj("a", "ns", labels={"foo": "bar"}), {})
    assert selects(p, CM, obj("a", "ns", labels={"foo": "baz", "x": "y"}), {})
    assert not selects(p, CM, obj("a", "ns", labels={"foo": "qux"}), {})
    assert not selects(p, CM, obj("a", "ns"), {})


def test_namespace_selectors_use_namespace_labels() -> None:  # A.2 wmw-s, C8
    p = compiled(
        {
            "downsync": [
                {
                    "apiGroup": "",
                    "resources": ["configmaps"],
                    "namespaceSelectors": [{"matchLabels": {"special": "yes"}}],
                }
            ]
        }
    )
    cm = obj("httpd-htdocs", "specialstuff")
    assert selects(p, CM, cm, {"special": "yes"})
    # C8b: label removed from the Namespace -> not selected any more
    assert not selects(p, CM, cm, {})
    # C8c: Namespace unknown -> criterion fails; match_state says "unknown, retry"
    assert not selects(p, CM, cm, None)
    assert match_state(p, CM, cm, None) is None
    assert match_state(p, CM, cm, {"special": "yes"}) is True
    assert match_state(p, CM, cm, {"special": "no"}) is False


def test_c8c_unknown_namespace_still_checks_other_criteria() -> None:
    p = compiled(
        {
            "downsync": [
                {
                    "resources": ["configmaps"],
                    "objectNames": ["a"],
                    "namespaceSelectors": [{"matchLabels": {"special": "yes"}}],
                }
            ]
        }
    )
    # upstream answered true without checking objectNames; we answer definitely False here
    assert match_state(p, CM, obj("b", "ns"), None) is False
    assert match_state(p, CM, obj("a", "ns"), None) is None
    # another clause that matches outright wins over the unknown one
    p2 = compiled(
        {
            "downsync": [
                {"resources": ["configmaps"], "namespaceSelectors": [{"matchLabels": {"special": "yes"}}]},
                {"resources": ["configmaps"], "objectNames": ["a"]},
            ]
        }
    )
    assert match_state(p2, CM, obj("a", "ns"), None) is True
    # namespace labels are irrelevant without namespaceSelectors
    p3 = compiled({"downsync": [{"resources": ["configmaps"]}]})
    assert match_state(p3, CM, obj("a", "ns"), None) is True


def test_c8a_cluster_scoped_objects_use_empty_label_set() -> None:
    everything = compiled({"downsync": [{"resources": ["namespaces"], "namespaceSelectors": [{}]}]})
    special = compiled(
        {
            "downsync": [
                {"resources": ["namespaces"], "namespaceSelectors": [{"matchLabels": {"special": "yes"}}]}
            ]
        }
    )
    dne = compiled(
        {
            "downsync": [
                {
                    "resources": ["namespaces"],
                    "namespaceSelectors": [
                        {"matchExpressions": [{"key": "special", "operator": "DoesNotExist"}]}
                    ],
                }
            ]
        }
    )
    ns = obj("specialstuff", kind="Namespace", labels={"special": "yes"})
    # namespace_labels is ignored for a cluster-scoped object, even None
    for labels in (None, {"special": "yes"}):
        assert selects(everything, NS, ns, labels)
        assert not selects(special, NS, ns, labels)
        assert selects(dne, NS, ns, labels)  # behaviour 10.8: DoesNotExist also passes


def test_no_clauses_select_nothing() -> None:
    specs: list[dict[str, Any]] = [{}, {"downsync": []}, {"downsync": None}]
    for spec in specs:
        p = compiled(spec)
        assert not could_select(p, CM)
        assert not selects(p, CM, obj("a", "ns"), {})


def test_c7_clause_with_every_field_empty_matches_all_with_warning() -> None:
    p, problems = compile_placement({"downsync": [{}]})
    assert len(problems) == 1 and "no discriminating criterion" in problems[0]
    assert selects(p, CM, obj("a", "ns"), {})
    assert selects(p, RS, obj("a", "ns", api_version="apps/v1", kind="ReplicaSet"), {})
    assert selects(p, NS, obj("a", kind="Namespace"), {})


# --- scenario B.1 (upstream TestWhatResolver) ----------------------------------------------------

B1_SPEC: dict[str, Any] = {
    "locationSelectors": [{}],
    "downsync": [
        {
            "apiGroup": "",
            "resources": ["configmaps"],
            "namespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "default"}}],
            "objectNames": ["cm1", "cmx", "cm3"],
            "labelSelectors": [{"matchLabels": {"foo": "baz"}}, {"matchLabels": {"foo": "bar"}}],
        },
        {"apiGroup": "", "resources": ["namespaces"], "objectNames": ["ns2"]},
    ],
    "wantSingletonReportedState": True,
}


def test_b1_what_resolver() -> None:
    p = compiled(B1_SPEC)
    assert p.want_singleton is True
    assert upsync_of(p) == []
    ns_labels = {
        "default": {"kubernetes.io/metadata.name": "default"},
        "ns2": {"kubernetes.io/metadata.name": "ns2"},
    }
    objects = [
        (NS, obj("default", kind="Namespace", labels=ns_labels["default"])),
        (NS, obj("ns2", kind="Namespace", labels=ns_labels["ns2"])),
        (CM, obj("cm1", "default", labels={"foo": "bar"})),
        (CM, obj("cm2", "default", labels={"foo": "bar"})),
        (
            CM,
            obj(
                "cm3",
                "default",
                labels={"foo": "baz"},
                annotations={api.DOWNSYNC_OVERWRITE_ANNOTATION: "false"},
            ),
        ),
        (CM, obj("kube-root-ca.crt", "default")),
    ]
    got = {}
    for gr, o in objects:
        ns = o["metadata"].get("namespace", "")
        if selects(p, gr, o, ns_labels.get(ns)):
            got[(str(gr), ns, o["metadata"]["name"])] = create_only(o)
    assert got == {
        ("configmaps", "default", "cm1"): False,
        ("configmaps", "default", "cm3"): True,
        ("namespaces", "", "ns2"): False,
    }


# --- scenario A.4 (example1) ---------------------------------------------------------------------

EP_C: dict[str, Any] = {
    "locationSelectors": [{"matchLabels": {"env": "prod"}}],
    "downsync": [
        {
            "apiGroup": "",
            "resources": ["configmaps"],
            "namespaces": ["commonstuff"],
            "objectNames": ["httpd-htdocs"],
        },
        {"apiGroup": "apps", "resources": ["replicasets"], "namespaces": ["commonstuff"]},
    ],
    "wantSingletonReportedState": True,
    "upsync": [
        {
            "apiGroup": "group1.test",
            "resources": ["sprockets", "flanges"],
            "namespaces": ["orbital"],
            "names": ["george", "cosmo"],
        },
        {"apiGroup": "group2.test", "resources": ["cogs"], "names": ["william"]},
    ],
}

EP_S: dict[str, Any] = {
    "locationSelectors": [{"matchLabels": {"env": "prod", "extended": "yes"}}],
    "downsync": [
        {
            "apiGroup": "",
            "resources": ["configmaps"],
            "namespaceSelectors": [{"matchLabels": {"special": "yes"}}],
        },
        {
            "apiGroup": "apps",
            "resources": ["deployments"],
            "namespaceSelectors": [{"matchLabels": {"special": "yes"}}],
            "objectNames": ["speciald"],
        },
        {
            "apiGroup": "apiregistration.k8s.io",
            "resources": ["apiservices"],
            "objectNames": ["v1090.example.my"],
        },
        {
            "apiGroup": "stable.example.com",
            "resources": ["crontabs"],
            "namespaces": ["specialstuff"],
            "objectNames": ["my-new-cron-object"],
        },
        {"apiGroup": "", "resources": ["namespaces"], "objectNames": ["specialstuff"]},
    ],
    "wantSingletonReportedState": True,
    "upsync": [
        {
            "apiGroup": "group1.test",
            "resources": ["sprockets", "flanges"],
            "namespaces": ["orbital"],
            "names": ["george", "cosmo"],
        },
        {"apiGroup": "group3.test", "resources": ["widgets"], "names": ["*"]},
    ],
}


def test_a4_edge_placement_c() -> None:
    p = compiled(EP_C)
    assert p.want_singleton
    assert upsync_of(p) == EP_C["upsync"]  # as given
    ns_labels = {"commonstuff": {"kubernetes.io/metadata.name": "commonstuff"}}
    cands = [
        (NS, obj("commonstuff", kind="Namespace")),
        (CM, obj("httpd-htdocs", "commonstuff", annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"})),
        (CM, obj("kube-root-ca.crt", "commonstuff")),
        (
            GroupResource(api.GROUP, "customizers"),
            obj("example-customizer", "commonstuff", kind="Customizer"),
        ),
        (RS, obj("commond", "commonstuff", api_version="apps/v1", kind="ReplicaSet")),
    ]
    got = sorted(
        (str(gr), o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for gr, o in cands
        if selects(p, gr, o, ns_labels.get(o["metadata"].get("namespace", "")))
    )
    assert got == [
        ("configmaps", "commonstuff", "httpd-htdocs"),
        ("replicasets.apps", "commonstuff", "commond"),
    ]
    assert could_select(p, CM) and could_select(p, RS)
    assert not could_select(p, DEPLOY) and not could_select(p, NS)


def test_a4_edge_placement_s() -> None:
    p = compiled(EP_S)
    special = {"special": "yes", "kubernetes.io/metadata.name": "specialstuff"}
    ns_labels = {"specialstuff": special, "commonstuff": {}}
    cands = [
        (NS, obj("specialstuff", kind="Namespace", labels={"special": "yes"})),
        (NS, obj("commonstuff", kind="Namespace")),
        (CM, obj("httpd-htdocs", "specialstuff")),
        (CM, obj("httpd-htdocs", "commonstuff")),
        (CM, obj("kube-root-ca.crt", "specialstuff")),
        (DEPLOY, obj("speciald", "specialstuff", api_version="apps/v1", kind="Deployment")),
        (DEPLOY, obj("other", "specialstuff", api_version="apps/v1", kind="Deployment")),
        (
            CRONTABS,
            obj("my-new-cron-object", "specialstuff", api_version="stable.example.com/v1", kind="CronTab"),
        ),
        (APISVC, obj("v1090.example.my", api_version="apiregistration.k8s.io/v1", kind="APIService")),
        (
            GroupResource("apiextensions.k8s.io", "customresourcedefinitions"),
            obj(
                "crontabs.stable.example.com",
                api_version="apiextensions.k8s.io/v1",
                kind="CustomResourceDefinition",
            ),
        ),
    ]
    got = sorted(
        (str(gr), o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for gr, o in cands
        if selects(p, gr, o, ns_labels.get(o["metadata"].get("namespace", "")))
    )
    # the CRD is not selected explicitly: it is added by the implicit-definer rule elsewhere
    assert got == [
        ("apiservices.apiregistration.k8s.io", "", "v1090.example.my"),
        ("configmaps", "specialstuff", "httpd-htdocs"),
        ("crontabs.stable.example.com", "specialstuff", "my-new-cron-object"),
        ("deployments.apps", "specialstuff", "speciald"),
        ("namespaces", "", "specialstuff"),
    ]


# --- upsync precedence (behaviour 4.4 intended rule; decision 5; C20) ---------------------------


def test_c20_upsync_takes_precedence() -> None:
    p = compiled(
        {
            "downsync": [{"apiGroup": "group1.test", "resources": ["sprockets"]}],
            "upsync": [
                {
                    "apiGroup": "group1.test",
                    "resources": ["sprockets"],
                    "namespaces": ["orbital"],
                    "names": ["george"],
                }
            ],
        }
    )
    george = obj("george", "orbital", api_version="group1.test/v1", kind="Sprocket")
    fred = obj("fred", "orbital", api_version="group1.test/v1", kind="Sprocket")
    assert selects(p, SPROCKETS, fred, {})
    assert not selects(p, SPROCKETS, george, {})
    # george in another namespace is not claimed (upstream compared with `resources`)
    assert selects(
        p, SPROCKETS, obj("george", "elsewhere", api_version="group1.test/v1", kind="Sprocket"), {}
    )


def test_upsync_claims_rules() -> None:
    u = [
        {
            "apiGroup": "group1.test",
            "resources": ["sprockets", "flanges"],
            "namespaces": ["orbital"],
            "names": ["george", "cosmo"],
        }
    ]
    assert upsync_claims(u, SPROCKETS, "orbital", "george")
    assert upsync_claims(u, GroupResource("group1.test", "flanges"), "orbital", "cosmo")
    assert not upsync_claims(u, SPROCKETS, "orbital", "fred")
    assert not upsync_claims(u, SPROCKETS, "other", "george")
    assert not upsync_claims(u, GroupResource("group1.test", "cogs"), "orbital", "george")
    assert not upsync_claims(u, GroupResource("group2.test", "sprockets"), "orbital", "george")
    # the upstream bug would have required these namespace/name strings in `resources`
    assert not upsync_claims(u, SPROCKETS, "sprockets", "flanges")
    # cluster-scoped: namespaces ignored (even empty)
    cs = [{"apiGroup": "group1.test", "resources": ["sprockets"], "names": ["george"]}]
    assert upsync_claims(cs, SPROCKETS, "", "george")
    assert not upsync_claims(cs, SPROCKETS, "orbital", "george")  # namespaces empty = none
    # wildcards
    w = [{"apiGroup": "group3.test", "resources": ["*"], "namespaces": ["*"], "names": ["*"]}]
    assert upsync_claims(w, GroupResource("group3.test", "widgets"), "any", "thing")
    assert not upsync_claims(w, GroupResource("group3.tests", "widgets"), "any", "thing")
    # empty lists claim nothing
    assert not upsync_claims(
        [{"apiGroup": "g", "resources": [], "names": ["*"]}], GroupResource("g", "r"), "", "n"
    )
    assert not upsync_claims(
        [{"apiGroup": "g", "resources": ["r"], "names": []}], GroupResource("g", "r"), "", "n"
    )
    assert not upsync_claims([{"apiGroup": "g", "resources": ["r"]}], GroupResource("g", "r"), "", "n")
    # apiGroup absent = core; exact match only
    assert upsync_claims([{"resources": ["configmaps"], "names": ["*"], "namespaces": ["*"]}], CM, "ns", "a")
    assert not upsync_claims([], CM, "ns", "a")


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        {"apiGroup": 3, "resources": ["configmaps"], "names": ["*"]},
        {"apiGroup": "", "resources": "configmaps", "names": "*"},
        {"apiGroup": "", "resources": [1, None], "names": ["*"]},
    ],
)
def test_malformed_upsync_sets_never_become_a_model(bad: Any) -> None:  # decision 7
    """The CRD's schema rejects these; so does the model decoded at ingest: never matched."""
    with pytest.raises(ValidationError):
        UpsyncSet.model_validate(bad)


def test_upsync_precedence_only_within_the_placement() -> None:  # behaviour 10.7
    down = compiled({"downsync": [{"apiGroup": "", "resources": ["configmaps"]}]})
    assert selects(down, CM, obj("a", "ns"), {})


# --- bad input (decision 7; C2e, C28) ------------------------------------------------------------


def test_c2e_invalid_label_selector_is_dropped_and_reported() -> None:
    p, problems = compile_placement(
        {
            "downsync": [
                {
                    "resources": ["configmaps"],
                    "labelSelectors": [
                        {"matchExpressions": [{"key": "k", "operator": "Foo", "values": ["x"]}]},
                        {"matchLabels": {"foo": "bar"}},
                    ],
                },
                {"resources": ["secrets"]},
            ]
        }
    )
    assert len(problems) == 1
    assert "downsync[0].labelSelectors[0]" in problems[0] and 'unknown operator "Foo"' in problems[0]
    # the other selector still works, and so does the other clause
    assert selects(p, CM, obj("a", "ns", labels={"foo": "bar"}), {})
    assert not selects(p, CM, obj("a", "ns", labels={"k": "x"}), {})
    assert selects(p, SECRETS, obj("s", "ns", kind="Secret", type="Opaque"), {})


def test_c2e_only_selector_invalid_matches_nothing_not_everything() -> None:
    p, problems = compile_placement(
        {
            "downsync": [
                {"resources": ["configmaps"], "labelSelectors": [{"matchLabels": {"special": "not ok!"}}]},
                {"resources": ["namespaces"], "namespaceSelectors": [{"matchLabels": {"bad key": "x"}}]},
                {
                    "resources": ["secrets"],
                    "namespaceSelectors": [
                        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}
                    ],
                },
            ]
        }
    )
    assert len(problems) == 3
    assert "downsync[1].namespaceSelectors[0]" in problems[1]
    assert "values must be empty for operator Exists" in problems[2]
    assert not selects(p, CM, obj("a", "ns", labels={"special": "true"}), {})
    assert not selects(p, CM, obj("a", "ns"), {})
    assert not selects(p, NS, obj("n", kind="Namespace"), {})
    assert not selects(p, SECRETS, obj("s", "ns", kind="Secret"), {"a": "x"})
    # a definitely-failing criterion is not "unknown"
    assert match_state(p, SECRETS, obj("s", "ns", kind="Secret"), None) is False
    # could_select looks only at group/resource
    assert could_select(p, CM)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"downsync": "x"}, "downsync must be a list"),
        ({"downsync": ["x"]}, "downsync[0] must be an object"),
        ({"downsync": [{"apiGroup": 5, "resources": ["configmaps"]}]}, "downsync[0].apiGroup"),
        ({"downsync": [{"resources": "configmaps"}]}, "downsync[0].resources must be a list"),
        ({"downsync": [{"namespaces": [1]}]}, "downsync[0].namespaces"),
        ({"downsync": [{"objectNames": {"a": 1}}]}, "downsync[0].objectNames"),
        (
            {"downsync": [{"labelSelectors": {"matchLabels": {}}}]},
            "downsync[0].labelSelectors must be a list",
        ),
        ({"downsync": [{"namespaceSelectors": "x"}]}, "downsync[0].namespaceSelectors"),
        ({"upsync": "x"}, "upsync must be a list"),
        ({"upsync": ["x"]}, "upsync[0] must be an object"),
        ({"wantSingletonReportedState": "yes"}, "wantSingletonReportedState"),
    ],
)
def test_malformed_spec_never_becomes_a_model(spec: dict[str, Any], fragment: str) -> None:
    """Wrong types are the CRD schema's job (the server rejects them) and the model's (ingest
    keeps such an object out and reports it); selection never re-checks them."""
    with pytest.raises(ValidationError) as err:
        EdgePlacementSpec.model_validate(spec)
    field = fragment.split(" ")[0].replace("[", ".").replace("]", "")
    assert field.split(".")[0] in str(err.value), err.value


def test_c28_unknown_fields_are_ignored() -> None:
    p = compiled({"downsync": [{"resources": ["configmaps"], "surprise": 1}], "extra": {"x": 1}})
    assert selects(p, CM, obj("a", "ns"), {})


def test_malformed_object_does_not_crash() -> None:
    p = compiled(
        {"downsync": [{"resources": ["configmaps"], "labelSelectors": [{"matchLabels": {"a": "b"}}]}]}
    )
    assert not selects(p, CM, {}, {})
    assert not selects(p, CM, {"metadata": None}, {})
    assert not selects(p, CM, {"metadata": {"labels": {"a": 1}}}, {})
    assert selects(p, CM, {"metadata": {"name": "x", "labels": {"a": "b"}}}, {})
    assert not create_only({"metadata": {"annotations": None}})


def test_want_singleton_and_upsync_verbatim() -> None:
    up = [{"apiGroup": "g", "resources": ["b", "a"], "names": ["*"]}]
    p = compiled({"wantSingletonReportedState": True, "upsync": up})
    assert p.want_singleton and upsync_of(p) == up
    assert compiled({}).want_singleton is False


def test_compiled_placement_is_comparable() -> None:
    assert compiled(B1_SPEC) == compiled(B1_SPEC)
    assert compiled(EP_C) != compiled(EP_S)


# --- create-only (behaviour 5.11; C19) -----------------------------------------------------------


def test_create_only() -> None:
    assert create_only(obj("a", "ns", annotations={api.DOWNSYNC_OVERWRITE_ANNOTATION: "false"}))
    assert not create_only(obj("a", "ns", annotations={api.DOWNSYNC_OVERWRITE_ANNOTATION: "true"}))
    assert not create_only(obj("a", "ns", annotations={api.DOWNSYNC_OVERWRITE_ANNOTATION: "False"}))
    assert not create_only(obj("a", "ns"))


# --- API versions (decision 5; behaviour 5.9; C6) -----------------------------------------------


def test_version_priority_order() -> None:
    versions = ["v11alpha2", "foo10", "v10", "v12alpha1", "v3beta1", "foo1", "v1", "v10beta3", "v2", "v1.2"]
    assert sorted(versions, key=version_sort_key) == [
        "v10",
        "v2",
        "v1",
        "v10beta3",
        "v3beta1",
        "v12alpha1",
        "v11alpha2",
        "foo1",
        "foo10",
        "v1.2",
    ]


def test_pick_version() -> None:
    assert pick_version([{"v1", "v2"}]) == "v2"
    assert pick_version([{"v1", "v2"}, {"v1"}]) == "v1"  # C6: highest served by every WMW
    assert pick_version([{"v1", "v2beta1"}, {"v2beta1", "v1", "v3"}]) == "v1"
    assert pick_version([{"v1beta1", "v1alpha1"}, ["v1alpha1", "v1beta1"]]) == "v1beta1"
    assert pick_version([{"v1"}, {"v2"}]) is None  # nothing common: hold back
    assert pick_version([]) is None
    assert pick_version([set()]) is None
    assert pick_version([("v1",), frozenset({"v1"})]) == "v1"


@given(st.lists(st.sets(st.sampled_from(["v1", "v2", "v1beta1", "v2alpha3", "x"]), max_size=5), max_size=4))
def test_pick_version_is_common_and_maximal(served: list[set[str]]) -> None:
    got = pick_version(served)
    common = set.intersection(*served) if served else set()
    if not common:
        assert got is None
    else:
        assert got in common
        assert all(version_sort_key(got) <= version_sort_key(v) for v in common)


# --- upsync canonical form (decisions 4; C21) ----------------------------------------------------


def test_c21_canonical_upsync() -> None:
    a = {
        "apiGroup": "group1.test",
        "resources": ["sprockets", "flanges"],
        "namespaces": ["orbital"],
        "names": ["george"],
    }
    a_reordered_keys = {
        "names": ["george"],
        "namespaces": ["orbital"],
        "resources": ["sprockets", "flanges"],
        "apiGroup": "group1.test",
    }
    b = {
        "apiGroup": "group1.test",
        "resources": ["flanges", "sprockets"],
        "namespaces": ["orbital"],
        "names": ["george"],
    }
    c = {"apiGroup": "group0.test", "resources": ["x"], "names": ["*"]}
    out = canonical_upsync([a, b, a_reordered_keys, c, a])
    assert out == [c, b, a]  # sorted by canonical JSON: group0 < group1; "flanges" < "sprockets"
    # lists inside keep their order: a and b stay distinct
    assert out[1]["resources"] == ["flanges", "sprockets"] and out[2]["resources"] == ["sprockets", "flanges"]
    assert canonical_upsync([]) == []
    # the result is independent of the input order
    assert canonical_upsync([c, b, a]) == canonical_upsync([a, c, b])
