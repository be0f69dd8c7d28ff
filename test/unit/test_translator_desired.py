"""pkg.controllers.translator.desired: the placement translator's pure desired-state computation.

No server: the WMW views are built by hand.  Scenario ids (A.5, C20, ...) refer to
/work/shared/spec/scenarios.md; "decision N" to /work/shared/spec/README.md.  example1 is taken in
its KUBE_VIA_CRDS=false form (README corrections): the kube types are served natively, so the only
implicit CRD is crontabs.stable.example.com.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from apis.edge.v2alpha1 import Customizer, EdgePlacementSpec, Location, SinglePlacement
from apis.edge.v2alpha1 import constants as api
from apis.edge.v2alpha1.naming import mailbox_name
from pkg.controllers.translator.desired import (
    Desired,
    MailboxDesired,
    Placement,
    Workspace,
    compute,
    destinations,
    syncer_config_json,
)
from pkg.controllers.what.resolve import CRDS, NAMESPACES, CopyKey, ServedResource
from pkg.controllers.what.select import (
    GroupResource,
)

EXAMPLE1 = Path(__file__).resolve().parent / "testdata" / "example1"

CM = GroupResource("", "configmaps")
SA = GroupResource("", "serviceaccounts")
RS = GroupResource("apps", "replicasets")
DEPLOY = GroupResource("apps", "deployments")
APISVC = GroupResource("apiregistration.k8s.io", "apiservices")
CRONTABS = GroupResource("stable.example.com", "crontabs")
SPROCKETS = GroupResource("group1.test", "sprockets")
CUSTOMIZERS = GroupResource(api.GROUP, "customizers")

INFO = {
    CM: ServedResource(CM, "ConfigMap", True, ("v1",)),
    SA: ServedResource(SA, "ServiceAccount", True, ("v1",)),
    RS: ServedResource(RS, "ReplicaSet", True, ("v1",)),
    DEPLOY: ServedResource(DEPLOY, "Deployment", True, ("v1",)),
    APISVC: ServedResource(APISVC, "APIService", False, ("v1",)),
    CRONTABS: ServedResource(CRONTABS, "CronTab", True, ("v1",), crd="crontabs.stable.example.com"),
    NAMESPACES: ServedResource(NAMESPACES, "Namespace", False, ("v1",)),
    CRDS: ServedResource(CRDS, "CustomResourceDefinition", False, ("v1",)),
    SPROCKETS: ServedResource(SPROCKETS, "Sprocket", True, ("v1",), crd="sprockets.group1.test"),
    CUSTOMIZERS: ServedResource(CUSTOMIZERS, "Customizer", True, ("v2alpha1",)),
}

# Noise that a server puts on every object; none of it may reach a copy.
SERVER_METADATA: dict[str, Any] = {
    "uid": "11111111-2222-3333-4444-555555555555",
    "resourceVersion": "4242",
    "generation": 3,
    "creationTimestamp": "2023-10-05T12:00:00Z",
    "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "x"}],
}


# ---------------------------------------------------------------------------------------------
# Builders


def obj(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    cluster: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    server: bool = True,
    **top: Any,
) -> dict[str, Any]:
    """A source object as a WMW cache holds it: with server metadata and kcp's cluster annotation."""
    md: dict[str, Any] = {"name": name}
    if namespace is not None:
        md["namespace"] = namespace
    if server:
        md.update(copy.deepcopy(SERVER_METADATA))
    ann = dict(annotations or {})
    if cluster:
        ann["kcp.io/cluster"] = cluster
    if ann:
        md["annotations"] = ann
    if labels:
        md["labels"] = dict(labels)
    return {"apiVersion": api_version, "kind": kind, "metadata": md, **top}


def cm(
    name: str, namespace: str = "default", *, data: Mapping[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    return obj("v1", "ConfigMap", name, namespace, data=dict(data or {"k": "v"}), **kw)


def namespace(name: str, labels: Mapping[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    all_labels = {"kubernetes.io/metadata.name": name, **(labels or {})}
    return obj(
        "v1",
        "Namespace",
        name,
        labels=all_labels,
        spec={"finalizers": ["kubernetes"]},
        status={"phase": "Active"},
        **kw,
    )


def workspace(
    cluster: str,
    objects: Iterable[tuple[GroupResource, Mapping[str, Any]]],
    placements: Iterable[Placement],
    *,
    path: str | None = None,
    resources: Mapping[GroupResource, ServedResource] | None = None,
    customizers: Iterable[Mapping[str, Any]] = (),
) -> Workspace:
    by_gr: dict[GroupResource, list[Mapping[str, Any]]] = {gr: [] for gr in resources or INFO}
    for gr, o in objects:
        by_gr.setdefault(gr, []).append(o)
    ns_labels = {
        str(o["metadata"]["name"]): dict(o["metadata"].get("labels") or {}) for o in by_gr[NAMESPACES]
    }
    return Workspace(
        cluster=cluster,
        path=path or f"root:{cluster}",
        placements=list(placements),
        resources=dict(resources or INFO),
        objects=by_gr,
        namespaces=ns_labels,
        customizers={
            (str(c["metadata"]["namespace"]), str(c["metadata"]["name"])): Customizer.model_validate(c)
            for c in customizers
        },
    )


Destination = SinglePlacement


def dest(location: str, uid: str, *, sync_target: str | None = None, cluster: str = "imw1") -> Destination:
    return SinglePlacement(
        cluster=cluster, location_name=location, sync_target_name=sync_target or location, sync_target_uid=uid
    )


def sc(m: MailboxDesired) -> dict[str, Any]:
    """A mailbox's the-one spec as the API writes it."""
    return syncer_config_json(m.syncer_config)


def location(
    name: str, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if annotations:
        md["annotations"] = dict(annotations)
    return {"apiVersion": f"{api.GROUP}/v2alpha1", "kind": "Location", "metadata": md}


def locations(*locs: Mapping[str, Any], cluster: str = "imw1") -> dict[tuple[str, str], Location]:
    return {(cluster, str(loc["metadata"]["name"])): Location.model_validate(loc) for loc in locs}


def placement(name: str, dests: Iterable[Destination], **spec: Any) -> Placement:
    return Placement(name, EdgePlacementSpec.model_validate(spec), destinations(dests))


def clause(group: str, resource: str, **kw: Any) -> dict[str, Any]:
    return {"apiGroup": group, "resources": [resource], **kw}


def customizer_obj(
    namespace_: str, name: str, *replacements: tuple[str, str], expand: bool = True
) -> dict[str, Any]:
    return obj(
        f"{api.GROUP}/v2alpha1",
        "Customizer",
        name,
        namespace_,
        annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"} if expand else None,
        replacements=[{"path": p, "value": v} for p, v in replacements],
    )


def key(gr: GroupResource, name: str, namespace_: str = "") -> CopyKey:
    return CopyKey(gr, namespace_, name)


def listed_keys(spec: Mapping[str, Any]) -> set[CopyKey]:
    """Every object that a the-one spec lists."""
    out: set[CopyKey] = set()
    for entry in spec.get("namespacedObjects") or []:
        gr = GroupResource(entry["group"], entry["resource"])
        for by_ns in entry["objectsByNamespace"]:
            out.update(CopyKey(gr, by_ns["namespace"], n) for n in by_ns["names"])
    for entry in spec.get("clusterScope") or []:
        gr = GroupResource(entry["group"], entry["resource"])
        out.update(CopyKey(gr, "", n) for n in entry["objects"])
    return out


def checked_compute(
    workspaces: list[Workspace],
    locs: Mapping[tuple[str, str], Location],
    mailboxes: list[str] | tuple[str, ...] = (),
) -> Desired:
    """compute(), also checking that it leaves its arguments as they were."""
    before = copy.deepcopy((workspaces, locs))
    out = compute(workspaces, locs, mailboxes)
    assert (workspaces, locs) == before, "compute must not modify its arguments"
    return out


# ---------------------------------------------------------------------------------------------
# example1 (A.0-A.8)


def _yaml(stem: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLE1 / f"{stem}.yaml").read_text()) if d]


def _find(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind)


IMW1 = _yaml("imw1")
UID_F = next(
    d["metadata"]["uid"] for d in IMW1 if d["kind"] == "SyncTarget" and d["metadata"]["name"] == "florin"
)
UID_G = next(
    d["metadata"]["uid"] for d in IMW1 if d["kind"] == "SyncTarget" and d["metadata"]["name"] == "guilder"
)
MB_F = mailbox_name("imw1", UID_F)
MB_G = mailbox_name("imw1", UID_G)
WMW_C = "2x8kqq3n7bwyhnrs"  # logical cluster names, as kcp would make them
WMW_S = "1r9y4n5u0vqabl3t"
ENV_PATH = "$.spec.template.spec.containers.0.env.0.value"


def example1_locations() -> dict[tuple[str, str], Location]:
    return {
        ("imw1", d["metadata"]["name"]): Location.model_validate(d) for d in IMW1 if d["kind"] == "Location"
    }


def expected_the_one() -> dict[str, dict[str, Any]]:
    """A.5 with KUBE_VIA_CRDS=false, lists sorted per decision 4 (from the fixture)."""
    florin, guilder = _yaml("mailboxes")
    return {MB_F: florin["spec"], MB_G: guilder["spec"]}


def _pod_spec(app: str, host_port: int) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": {"app": app}},
            "spec": {
                "containers": [
                    {
                        "name": "httpd",
                        "env": [{"name": "EXAMPLE_VAR", "value": "example value"}],
                        "image": "library/httpd:2.4",
                        "ports": [
                            {"name": "http", "containerPort": 80, "hostPort": host_port, "protocol": "TCP"}
                        ],
                        "volumeMounts": [
                            {"name": "htdocs", "readOnly": True, "mountPath": "/usr/local/apache2/htdocs"}
                        ],
                    }
                ],
                "volumes": [{"name": "htdocs", "configMap": {"name": "httpd-htdocs", "optional": False}}],
            },
        },
    }


def _html(kind: str, where: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html>\n  <body>\n    This is a {kind} web site.\n"
        f"    Running in {where}.\n  </body>\n</html>\n"
    )


def _placement_from_fixture(stem: str) -> Placement:
    docs = _yaml(stem)
    ep = _find(docs, "EdgePlacement")
    sps = _find(docs, "SinglePlacementSlice")
    return Placement(
        ep["metadata"]["name"],
        EdgePlacementSpec.model_validate(ep["spec"]),
        destinations(SinglePlacement.model_validate(d) for d in sps["destinations"]),
    )


def _customizer_from_fixture(stem: str, cluster: str) -> dict[str, Any]:
    c = _find(_yaml(stem), "Customizer")
    c["metadata"].setdefault("annotations", {})["kcp.io/cluster"] = cluster
    return c


def wmw_c(*, with_placement: bool = True) -> Workspace:
    c = WMW_C
    cust = _customizer_from_fixture("wmw-c", c)
    objects = [
        (NAMESPACES, namespace("commonstuff", cluster=c)),
        (CM, cm("kube-root-ca.crt", "commonstuff", data={"ca.crt": "PEM"}, cluster=c)),
        (SA, obj("v1", "ServiceAccount", "default", "commonstuff", cluster=c)),
        (
            CM,
            cm(
                "httpd-htdocs",
                "commonstuff",
                data={"index.html": _html("common", "%(loc-name)")},
                annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true", api.EXECUTING_COUNT_ANNOTATION: "2"},
                cluster=c,
            ),
        ),
        (CUSTOMIZERS, cust),
        (
            RS,
            obj(
                "apps/v1",
                "ReplicaSet",
                "commond",
                "commonstuff",
                annotations={
                    api.CUSTOMIZER_ANNOTATION: "example-customizer",
                    api.EXECUTING_COUNT_ANNOTATION: "2",
                },
                cluster=c,
                spec=_pod_spec("common", 8081),
                status={"replicas": 1, "readyReplicas": 1},
            ),
        ),
    ]
    placements = [_placement_from_fixture("wmw-c")] if with_placement else []
    return workspace(c, objects, placements, path="root:wmw-c", customizers=[cust])


CRONTAB_CRD_SPEC: dict[str, Any] = {
    "group": "stable.example.com",
    "scope": "Namespaced",
    "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
    "versions": [
        {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
    ],
}


def wmw_s() -> Workspace:
    c = WMW_S
    cust = _customizer_from_fixture("wmw-s", c)
    objects = [
        (
            CRDS,
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "crontabs.stable.example.com",
                cluster=c,
                spec=CRONTAB_CRD_SPEC,
                status={"acceptedNames": {"kind": "CronTab"}},
            ),
        ),
        (
            NAMESPACES,
            namespace("specialstuff", {"special": "yes"}, annotations={"just-for": "fun"}, cluster=c),
        ),
        (
            CRONTABS,
            obj(
                "stable.example.com/v1",
                "CronTab",
                "my-new-cron-object",
                "specialstuff",
                cluster=c,
                spec={"cronSpec": "* * * * */5", "image": "my-awesome-cron-image"},
            ),
        ),
        (CM, cm("kube-root-ca.crt", "specialstuff", data={"ca.crt": "PEM"}, cluster=c)),
        (
            CM,
            cm(
                "httpd-htdocs",
                "specialstuff",
                data={"index.html": _html("special", "%(loc-name)")},
                annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"},
                cluster=c,
            ),
        ),
        (CUSTOMIZERS, cust),
        (
            DEPLOY,
            obj(
                "apps/v1",
                "Deployment",
                "speciald",
                "specialstuff",
                annotations={api.CUSTOMIZER_ANNOTATION: "example-customizer"},
                cluster=c,
                spec=_pod_spec("special", 8082),
                status={"readyReplicas": 1},
            ),
        ),
        (
            APISVC,
            obj(
                "apiregistration.k8s.io/v1",
                "APIService",
                "v1090.example.my",
                cluster=c,
                spec={
                    "group": "example.my",
                    "groupPriorityMinimum": 360,
                    "service": {"name": "my-service", "namespace": "my-example"},
                    "version": "v1090",
                    "versionPriority": 42,
                },
            ),
        ),
    ]
    return workspace(c, objects, [_placement_from_fixture("wmw-s")], path="root:wmw-s", customizers=[cust])


def example1() -> Desired:
    return checked_compute([wmw_c(), wmw_s()], example1_locations(), [MB_F, MB_G])


def test_example1_the_one_is_exactly_a5() -> None:
    d = example1()
    assert set(d.mailboxes) == {MB_F, MB_G}
    want = expected_the_one()
    assert sc(d.mailboxes[MB_F]) == want[MB_F]
    assert sc(d.mailboxes[MB_G]) == want[MB_G]
    # florin: no clusterScope key at all (KUBE_VIA_CRDS=false); the version field is the version only.
    assert "clusterScope" not in sc(d.mailboxes[MB_F])
    assert {e["apiVersion"] for e in sc(d.mailboxes[MB_G])["namespacedObjects"]} == {"v1"}


def test_example1_has_no_problems_and_nothing_held() -> None:
    d = example1()
    # example1's upsync resources are defined nowhere: that is reported, nothing else is.
    assert [p for p in d.problems if p.reason != "UpsyncNotServed"] == []
    assert set(d.upsync_unserved) == {(WMW_C, "edge-placement-c"), (WMW_S, "edge-placement-s")}
    assert all(m.held == {} for m in d.mailboxes.values())
    assert d.placement_problems == {(WMW_C, "edge-placement-c"): [], (WMW_S, "edge-placement-s"): []}


def _canonical(d: Desired) -> str:
    return json.dumps(
        {
            name: {
                "the-one": sc(m),
                "copies": {
                    str(k): [c.api_version, c.body, c.create_only, c.source_cluster]
                    for k, c in m.copies.items()
                },
            }
            for name, m in sorted(d.mailboxes.items())
        },
        sort_keys=False,
    )


def test_example1_is_deterministic_whatever_the_input_order() -> None:
    """Decision 4: equal content is byte-equal, whatever order the caches list things in."""
    first = _canonical(example1())
    rng = random.Random(7)
    for _ in range(5):
        wss = [wmw_c(), wmw_s()]
        for ws in wss:
            for objs in ws.objects.values():
                rng.shuffle(objs)  # type: ignore[arg-type]
            ws.placements = list(reversed(ws.placements))
        rng.shuffle(wss)
        locs = dict(reversed(list(example1_locations().items())))
        assert _canonical(checked_compute(wss, locs, [MB_G, MB_F])) == first


def test_example1_copies_in_florin_a6() -> None:
    m = example1().mailboxes[MB_F]
    assert set(m.copies) == {key(CM, "httpd-htdocs", "commonstuff"), key(RS, "commond", "commonstuff")}
    cm_copy = m.copies[key(CM, "httpd-htdocs", "commonstuff")]
    assert cm_copy.api_version == "v1"
    assert cm_copy.source_cluster == WMW_C
    assert cm_copy.namespaced and not cm_copy.create_only
    assert cm_copy.body == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "httpd-htdocs",
            "namespace": "commonstuff",
            "labels": {api.PROJECTED_LABEL: "yes"},
            "annotations": {api.EXPAND_PARAMETERS_ANNOTATION: "true"},
        },
        "data": {"index.html": _html("common", "florin")},
    }
    rs_copy = m.copies[key(RS, "commond", "commonstuff")]
    assert rs_copy.api_version == "apps/v1"
    want_spec = _pod_spec("common", 8081)
    want_spec["template"]["spec"]["containers"][0]["env"][0]["value"] = "env is prod"
    assert rs_copy.body == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "commond",
            "namespace": "commonstuff",
            "labels": {api.PROJECTED_LABEL: "yes"},
            "annotations": {api.CUSTOMIZER_ANNOTATION: "example-customizer"},
        },
        "spec": want_spec,
    }


def test_example1_copies_in_guilder_a6() -> None:
    m = example1().mailboxes[MB_G]
    assert set(m.copies) == {
        key(CM, "httpd-htdocs", "commonstuff"),
        key(CM, "httpd-htdocs", "specialstuff"),
        key(RS, "commond", "commonstuff"),
        key(DEPLOY, "speciald", "specialstuff"),
        key(CRONTABS, "my-new-cron-object", "specialstuff"),
        key(APISVC, "v1090.example.my"),
        key(NAMESPACES, "specialstuff"),
        key(CRDS, "crontabs.stable.example.com"),
    }
    # Everything in the mailbox is listed in the-one and vice versa.
    assert listed_keys(sc(m)) == set(m.copies)
    bodies = {k: c.body for k, c in m.copies.items()}
    assert bodies[key(CM, "httpd-htdocs", "commonstuff")]["data"] == {
        "index.html": _html("common", "guilder")
    }
    assert bodies[key(CM, "httpd-htdocs", "specialstuff")]["data"] == {
        "index.html": _html("special", "guilder")
    }
    rs = bodies[key(RS, "commond", "commonstuff")]
    assert rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "env is prod"
    dep = bodies[key(DEPLOY, "speciald", "specialstuff")]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["env"][0]["value"] == "in prod env"
    assert container["ports"][0]["hostPort"] == 8082
    assert bodies[key(CRONTABS, "my-new-cron-object", "specialstuff")] == {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {
            "name": "my-new-cron-object",
            "namespace": "specialstuff",
            "labels": {api.PROJECTED_LABEL: "yes"},
        },
        "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image"},
    }
    assert bodies[key(APISVC, "v1090.example.my")]["spec"] == wmw_s().objects[APISVC][0]["spec"]
    assert bodies[key(NAMESPACES, "specialstuff")] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "specialstuff",
            "labels": {
                "kubernetes.io/metadata.name": "specialstuff",
                "special": "yes",
                api.PROJECTED_LABEL: "yes",
            },
            "annotations": {"just-for": "fun"},
        },
        "spec": {"finalizers": ["kubernetes"]},
    }
    crd = bodies[key(CRDS, "crontabs.stable.example.com")]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["spec"] == CRONTAB_CRD_SPEC
    assert crd["metadata"] == {"name": "crontabs.stable.example.com", "labels": {api.PROJECTED_LABEL: "yes"}}


def test_example1_copies_carry_no_server_metadata_status_or_system_annotations() -> None:
    for m in example1().mailboxes.values():
        for c in m.copies.values():
            assert "status" not in c.body, c.key
            md = c.body["metadata"]
            assert set(md) <= {"name", "namespace", "labels", "annotations"}, c.key
            assert md["labels"][api.PROJECTED_LABEL] == "yes"
            for ann in md.get("annotations") or {}:
                assert not ann.startswith("kcp.io/"), c.key
                assert ann != api.EXECUTING_COUNT_ANNOTATION, c.key
            assert c.body["apiVersion"] == c.api_version


def test_example1_never_copies_system_or_edge_objects_or_unselected_namespaces() -> None:
    for m in example1().mailboxes.values():
        names = {(k.gr, k.namespace, k.name) for k in m.copies}
        assert (CM, "commonstuff", "kube-root-ca.crt") not in names
        assert (CM, "specialstuff", "kube-root-ca.crt") not in names
        assert (SA, "commonstuff", "default") not in names
        assert all(k.gr != CUSTOMIZERS for k in m.copies)
        assert key(NAMESPACES, "commonstuff") not in m.copies  # C17: not explicitly selected
        assert key(NAMESPACES, "commonstuff") not in listed_keys(sc(m))


def test_example1_executing_counts_a7() -> None:
    d = example1()
    common = {(WMW_C, key(CM, "httpd-htdocs", "commonstuff")), (WMW_C, key(RS, "commond", "commonstuff"))}
    special = {
        (WMW_S, key(CM, "httpd-htdocs", "specialstuff")),
        (WMW_S, key(DEPLOY, "speciald", "specialstuff")),
        (WMW_S, key(CRONTABS, "my-new-cron-object", "specialstuff")),
        (WMW_S, key(APISVC, "v1090.example.my")),
        (WMW_S, key(NAMESPACES, "specialstuff")),
    }
    assert d.executing_counts == {**dict.fromkeys(common, 2), **dict.fromkeys(special, 1)}
    # The implicit CRD gets no count; status returns only where the count is 1, from guilder.
    assert (WMW_S, key(CRDS, "crontabs.stable.example.com")) not in d.executing_counts
    assert d.singleton_sources == dict.fromkeys(special, MB_G)


@pytest.mark.parametrize("wmw_c_gone", [False, True], ids=["wmw-c-without-eps", "wmw-c-not-listed"])
def test_example1_delete_edge_placement_c_a8(wmw_c_gone: bool) -> None:
    workspaces = [wmw_s()] if wmw_c_gone else [wmw_c(with_placement=False), wmw_s()]
    d = checked_compute(workspaces, example1_locations(), [MB_F, MB_G])
    florin = d.mailboxes[MB_F]
    assert sc(florin) == {"namespaceScope": {}}
    assert florin.copies == {} and florin.held == {}
    guilder = d.mailboxes[MB_G]
    assert sc(guilder) == {
        "namespaceScope": {},
        "namespacedObjects": [
            {
                "group": "",
                "resource": "configmaps",
                "apiVersion": "v1",
                "objectsByNamespace": [{"namespace": "specialstuff", "names": ["httpd-htdocs"]}],
            },
            {
                "group": "apps",
                "resource": "deployments",
                "apiVersion": "v1",
                "objectsByNamespace": [{"namespace": "specialstuff", "names": ["speciald"]}],
            },
            {
                "group": "stable.example.com",
                "resource": "crontabs",
                "apiVersion": "v1",
                "objectsByNamespace": [{"namespace": "specialstuff", "names": ["my-new-cron-object"]}],
            },
        ],
        "clusterScope": [
            {"group": "", "resource": "namespaces", "apiVersion": "v1", "objects": ["specialstuff"]},
            {
                "group": "apiextensions.k8s.io",
                "resource": "customresourcedefinitions",
                "apiVersion": "v1",
                "objects": ["crontabs.stable.example.com"],
            },
            {
                "group": "apiregistration.k8s.io",
                "resource": "apiservices",
                "apiVersion": "v1",
                "objects": ["v1090.example.my"],
            },
        ],
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
    assert all(c.source_cluster == WMW_S for c in guilder.copies.values())
    assert len(guilder.copies) == 6
    # The wmw-s copies are the same as before the deletion.
    before = example1().mailboxes[MB_G].copies
    for k, c in guilder.copies.items():
        assert c.body == before[k].body
    assert all(cluster == WMW_S for cluster, _ in d.executing_counts)


# ---------------------------------------------------------------------------------------------
# Upsync (decision 5, C18a, C20, C21)

MB1 = mailbox_name("imw1", "uid1")
MB2 = mailbox_name("imw1", "uid2")
LOC1 = location("loc1", {"env": "prod", "zone": "a"})
LOC2 = location("loc2", {"env": "prod", "zone": "b"})
U1 = {"apiGroup": "group1.test", "resources": ["sprockets"], "namespaces": ["orbital"], "names": ["george"]}
U2 = {"apiGroup": "group2.test", "resources": ["cogs", "gears"], "names": ["william"]}


def test_placement_matching_no_object_still_contributes_upsync() -> None:
    p = placement(
        "p",
        [dest("loc1", "uid1")],
        downsync=[clause("", "configmaps", objectNames=["nosuch"])],
        upsync=[U2, U1, dict(U1)],
    )
    ws = workspace("ws1", [(CM, cm("other"))], [p])
    d = checked_compute([ws], locations(LOC1))
    assert sc(d.mailboxes[MB1]) == {"namespaceScope": {}, "upsync": [U1, U2]}
    assert d.mailboxes[MB1].copies == {}


def test_placement_without_downsync_contributes_upsync() -> None:
    p = placement("p", [dest("loc1", "uid1")], upsync=[U2])
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p])], locations(LOC1))
    assert sc(d.mailboxes[MB1]) == {"namespaceScope": {}, "upsync": [U2]}


def test_upsync_lists_keep_their_order_and_differently_ordered_sets_are_distinct() -> None:
    a = {"apiGroup": "g.test", "resources": ["b", "a"], "names": ["*"]}
    b = {"apiGroup": "g.test", "resources": ["a", "b"], "names": ["*"]}
    p1 = placement("p1", [dest("loc1", "uid1")], upsync=[a])
    p2 = placement("p2", [dest("loc1", "uid1")], upsync=[b, a])
    d = checked_compute([workspace("ws1", [], [p1, p2])], locations(LOC1))
    assert sc(d.mailboxes[MB1])["upsync"] == [b, a]


def test_upsync_union_over_workspaces_is_deduplicated() -> None:
    p1 = placement("p", [dest("loc1", "uid1")], upsync=[U1])
    p2 = placement("q", [dest("loc1", "uid1")], upsync=[U2, U1])
    d = checked_compute([workspace("ws1", [], [p1]), workspace("ws2", [], [p2])], locations(LOC1))
    assert sc(d.mailboxes[MB1])["upsync"] == [U1, U2]


def test_upsync_takes_precedence_over_downsync_c20() -> None:
    teeth = {"teeth": 12}
    george = obj("group1.test/v1", "Sprocket", "george", "orbital", spec=teeth)
    fred = obj("group1.test/v1", "Sprocket", "fred", "orbital", spec=teeth)
    elsewhere = obj("group1.test/v1", "Sprocket", "george", "ground", spec=teeth)
    p = placement(
        "p",
        [dest("loc1", "uid1")],
        downsync=[{"apiGroup": "group1.test", "resources": ["sprockets"]}],
        upsync=[U1],
    )
    ws = workspace("ws1", [(SPROCKETS, george), (SPROCKETS, fred), (SPROCKETS, elsewhere)], [p])
    m = checked_compute([ws], locations(LOC1)).mailboxes[MB1]
    assert set(m.copies) == {key(SPROCKETS, "fred", "orbital"), key(SPROCKETS, "george", "ground")}
    assert sc(m)["namespacedObjects"] == [
        {
            "group": "group1.test",
            "resource": "sprockets",
            "apiVersion": "v1",
            "objectsByNamespace": [
                {"namespace": "ground", "names": ["george"]},
                {"namespace": "orbital", "names": ["fred"]},
            ],
        }
    ]
    assert sc(m)["upsync"] == [U1]


# ---------------------------------------------------------------------------------------------
# Several Locations selecting one SyncTarget; parameters (decision 5)


def test_several_locations_one_sync_target_give_one_mailbox_with_the_union() -> None:
    la = location("la", {"zone": "a", "env": "prod"})
    lb = location("lb", {"tier": "gold"}, {"region": "eu", "zone": "a"})
    p1 = placement(
        "p1",
        [dest("la", "uid1", sync_target="st1")],
        downsync=[clause("", "configmaps", objectNames=["x", "both"])],
    )
    p2 = placement(
        "p2",
        [dest("lb", "uid1", sync_target="st1")],
        downsync=[clause("", "configmaps", objectNames=["y", "both"])],
    )
    expanding = {api.EXPAND_PARAMETERS_ANNOTATION: "true"}
    both = cm("both", data={"k": "%(zone) %(env) %(tier) %(region)"}, annotations=expanding)
    x = cm("x", data={"k": "%(zone)"}, annotations=expanding)
    y = cm("y", data={"k": "%(tier)"}, annotations=expanding)
    d = checked_compute([workspace("ws1", [(CM, both), (CM, x), (CM, y)], [p1, p2])], locations(la, lb))
    assert set(d.mailboxes) == {MB1}
    m = d.mailboxes[MB1]
    assert m.held == {}
    assert {k.name: c.body["data"]["k"] for k, c in m.copies.items()} == {
        "both": "a prod gold eu",
        "x": "a",
        "y": "gold",
    }
    assert listed_keys(sc(m)) == set(m.copies)


def test_location_label_wins_over_its_own_annotation() -> None:
    loc = location("la", {"zone": "label"}, {"zone": "annotation", "only-ann": "ann"})
    p = placement("p", [dest("la", "uid1")], downsync=[clause("", "configmaps")])
    x = cm("x", data={"k": "%(zone)/%(only-ann)"}, annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"})
    m = checked_compute([workspace("ws1", [(CM, x)], [p])], locations(loc)).mailboxes[MB1]
    assert m.copies[key(CM, "x", "default")].body["data"] == {"k": "label/ann"}


def test_parameter_conflict_between_locations_holds_back_only_the_copies_using_it() -> None:
    la = location("la", {"env": "prod", "zone": "a"})
    lb = location("lb", {"env": "dev", "zone": "a"})
    p1 = placement("p1", [dest("la", "uid1", sync_target="st1")], downsync=[clause("", "configmaps")])
    p2 = placement("p2", [dest("lb", "uid1", sync_target="st1")], downsync=[clause("", "configmaps")])
    expanding = {api.EXPAND_PARAMETERS_ANNOTATION: "true"}
    uses_env = cm("uses-env", data={"k": "%(env)"}, annotations=expanding)
    uses_zone = cm("uses-zone", data={"k": "%(zone)"}, annotations=expanding)
    d = checked_compute([workspace("ws1", [(CM, uses_env), (CM, uses_zone)], [p1, p2])], locations(la, lb))
    m = d.mailboxes[MB1]
    k_env = key(CM, "uses-env", "default")
    assert m.held == {k_env: "CustomizationFailed"}
    assert set(m.copies) == {key(CM, "uses-zone", "default")}
    assert m.copies[key(CM, "uses-zone", "default")].body["data"] == {"k": "a"}
    # Held back but still listed: the edge keeps what it has.
    assert k_env in listed_keys(sc(m))
    [problem] = d.problems
    assert problem.reason == "CustomizationFailed"
    assert problem.cluster == "ws1"
    assert "env" in problem.message and MB1 in problem.message
    assert problem.obj is not None and problem.obj["metadata"]["name"] == "uses-env"
    assert problem.placements == ("p1", "p2")


def test_parameters_come_from_the_locations_of_that_mailbox_only() -> None:
    p = placement("p", [dest("loc1", "uid1"), dest("loc2", "uid2")], downsync=[clause("", "configmaps")])
    x = cm("x", data={"k": "zone %(zone)"}, annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"})
    d = checked_compute([workspace("ws1", [(CM, x)], [p])], locations(LOC1, LOC2))
    assert d.problems == []
    assert d.mailboxes[MB1].copies[key(CM, "x", "default")].body["data"] == {"k": "zone a"}
    assert d.mailboxes[MB2].copies[key(CM, "x", "default")].body["data"] == {"k": "zone b"}


# ---------------------------------------------------------------------------------------------
# Customization failures (decision 5, C11, C12)


def test_undefined_parameter_holds_back_that_copy_only() -> None:
    p = placement("p", [dest("loc1", "uid1"), dest("loc2", "uid2")], downsync=[clause("", "configmaps")])
    bad = cm("bad", data={"k": "%(id)"}, annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"})
    good = cm("good", data={"k": "%(zone)"}, annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"})
    d = checked_compute([workspace("ws1", [(CM, bad), (CM, good)], [p])], locations(LOC1, LOC2))
    for mb in (MB1, MB2):
        m = d.mailboxes[mb]
        assert m.held == {key(CM, "bad", "default"): "CustomizationFailed"}
        assert set(m.copies) == {key(CM, "good", "default")}
        assert listed_keys(sc(m)) == {key(CM, "bad", "default"), key(CM, "good", "default")}
    assert len(d.problems) == 2
    assert all(pr.reason == "CustomizationFailed" and "id" in pr.message for pr in d.problems)
    assert {pr.message.split("mailbox ")[1].split(" ")[0] for pr in d.problems} == {MB1, MB2}


def test_missing_customizer_holds_back_the_copy() -> None:
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("apps", "replicasets")])
    rs = obj(
        "apps/v1",
        "ReplicaSet",
        "r",
        "default",
        annotations={api.CUSTOMIZER_ANNOTATION: "no-such"},
        spec=_pod_spec("x", 1),
    )
    d = checked_compute([workspace("ws1", [(RS, rs)], [p])], locations(LOC1))
    m = d.mailboxes[MB1]
    assert m.copies == {}
    assert m.held == {key(RS, "r", "default"): "CustomizationFailed"}
    [problem] = d.problems
    assert "no-such" in problem.message and problem.placements == ("p",)


def test_customizer_in_another_namespace_is_found_and_applied() -> None:
    cust = customizer_obj("tools", "c", (ENV_PATH, '"%(zone)"'))
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("apps", "replicasets")])
    rs = obj(
        "apps/v1",
        "ReplicaSet",
        "r",
        "default",
        annotations={api.CUSTOMIZER_ANNOTATION: "tools/c"},
        spec=_pod_spec("x", 1),
    )
    d = checked_compute([workspace("ws1", [(RS, rs)], [p], customizers=[cust])], locations(LOC1))
    body = d.mailboxes[MB1].copies[key(RS, "r", "default")].body
    assert body["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "a"


def test_bad_customizer_path_holds_back_the_copy() -> None:
    cust = customizer_obj("default", "c", ("$", '{"a": 1}'))
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])
    x = cm("x", annotations={api.CUSTOMIZER_ANNOTATION: "c"})
    d = checked_compute([workspace("ws1", [(CM, x)], [p], customizers=[cust])], locations(LOC1))
    assert d.mailboxes[MB1].held == {key(CM, "x", "default"): "CustomizationFailed"}


def test_missing_location_holds_back_copies_that_need_parameters_only() -> None:
    """C12g: the Location is gone while the SPS still names it; nothing is expanded from nothing."""
    p = placement("p", [dest("gone", "uid1")], downsync=[clause("", "configmaps")])
    needs = cm("needs", data={"k": "%(zone)"}, annotations={api.EXPAND_PARAMETERS_ANNOTATION: "true"})
    m = checked_compute([workspace("ws1", [(CM, needs), (CM, cm("plain"))], [p])], {}).mailboxes[MB1]
    assert m.held == {key(CM, "needs", "default"): "CustomizationFailed"}
    assert set(m.copies) == {key(CM, "plain", "default")}


def test_bare_customizer_name_on_cluster_scoped_object_holds_back_c9() -> None:
    cust = customizer_obj("default", "c", ("$.spec.version", '"v2"'), expand=False)
    svc = obj(
        "apiregistration.k8s.io/v1",
        "APIService",
        "v1.x",
        annotations={api.CUSTOMIZER_ANNOTATION: "c"},
        spec={},
    )
    ok = obj(
        "apiregistration.k8s.io/v1",
        "APIService",
        "v2.x",
        annotations={api.CUSTOMIZER_ANNOTATION: "default/c"},
        spec={},
    )
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("apiregistration.k8s.io", "apiservices")])
    d = checked_compute(
        [workspace("ws1", [(APISVC, svc), (APISVC, ok)], [p], customizers=[cust])], locations(LOC1)
    )
    m = d.mailboxes[MB1]
    assert m.held == {key(APISVC, "v1.x"): "CustomizationFailed"}
    assert m.copies[key(APISVC, "v2.x")].body["spec"] == {"version": "v2"}


# ---------------------------------------------------------------------------------------------
# Conflicts between WMWs; API versions (decision 5, C6)


def test_same_object_from_two_workspaces_smallest_path_wins() -> None:
    # The cluster names sort the other way round: the path decides.
    winner = workspace(
        "zzz",
        [(CM, cm("x", data={"from": "root:a"}, cluster="zzz"))],
        [placement("pa", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])],
        path="root:a",
    )
    loser = workspace(
        "aaa",
        [(CM, cm("x", data={"from": "root:b"}, cluster="aaa"))],
        [placement("pb", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])],
        path="root:b",
    )
    for order in ([winner, loser], [loser, winner]):
        d = checked_compute(order, locations(LOC1))
        m = d.mailboxes[MB1]
        c = m.copies[key(CM, "x", "default")]
        assert c.source_cluster == "zzz"
        assert c.body["data"] == {"from": "root:a"}
        assert m.held == {}
        assert listed_keys(sc(m)) == {key(CM, "x", "default")}
        [problem] = d.problems
        assert problem.reason == "Conflict"
        assert problem.cluster == "aaa"
        assert problem.placements == ("pb",)
        assert problem.obj is not None and problem.obj["data"] == {"from": "root:b"}
        assert "root:a" in problem.message and MB1 in problem.message


def test_same_object_from_two_workspaces_to_different_mailboxes_is_no_conflict() -> None:
    a = workspace(
        "a",
        [(CM, cm("x", data={"w": "a"}))],
        [placement("p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])],
    )
    b = workspace(
        "b",
        [(CM, cm("x", data={"w": "b"}))],
        [placement("p", [dest("loc2", "uid2")], downsync=[clause("", "configmaps")])],
    )
    d = checked_compute([a, b], locations(LOC1, LOC2))
    assert d.problems == []
    assert d.mailboxes[MB1].copies[key(CM, "x", "default")].body["data"] == {"w": "a"}
    assert d.mailboxes[MB2].copies[key(CM, "x", "default")].body["data"] == {"w": "b"}


def _crontab_ws(
    cluster: str, versions: tuple[str, ...], name: str, dests: list[Destination], **kw: Any
) -> Workspace:
    info = ServedResource(CRONTABS, "CronTab", True, versions, crd="crontabs.stable.example.com")
    resources = {**INFO, CRONTABS: info}
    crd = obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "crontabs.stable.example.com",
        spec=CRONTAB_CRD_SPEC,
    )
    tab = obj(f"stable.example.com/{versions[0]}", "CronTab", name, "default", spec={"cronSpec": "* * * * *"})
    placements = [
        placement("p", dests, downsync=[clause("stable.example.com", "crontabs"), clause("", "configmaps")])
    ]
    objects = [(CRDS, crd), (CRONTABS, tab), (CM, cm(f"cm-{cluster}"))]
    return workspace(cluster, objects, placements, resources=resources, **kw)


def test_highest_common_version_is_used_per_resource_and_mailbox() -> None:
    a = _crontab_ws("a", ("v1", "v1beta1"), "tab-a", [dest("loc1", "uid1"), dest("loc2", "uid2")])
    b = _crontab_ws("b", ("v1beta1",), "tab-b", [dest("loc1", "uid1")])
    d = checked_compute([a, b], locations(LOC1, LOC2))
    # Both send the (implicit) CRD: by the rule that is a conflict, won by the smaller path.
    assert [(p.reason, p.cluster) for p in d.problems] == [("Conflict", "b")]
    assert "crontabs.stable.example.com" in d.problems[0].message
    shared = d.mailboxes[MB1]
    for name in ("tab-a", "tab-b"):
        c = shared.copies[key(CRONTABS, name, "default")]
        assert c.api_version == "stable.example.com/v1beta1"
        assert c.body["apiVersion"] == "stable.example.com/v1beta1"
    [entry] = [e for e in sc(shared)["namespacedObjects"] if e["resource"] == "crontabs"]
    assert entry == {
        "group": "stable.example.com",
        "resource": "crontabs",
        "apiVersion": "v1beta1",
        "objectsByNamespace": [{"namespace": "default", "names": ["tab-a", "tab-b"]}],
    }
    # Only a sends crontabs to loc2's mailbox: its own highest version.
    only_a = d.mailboxes[MB2]
    assert only_a.copies[key(CRONTABS, "tab-a", "default")].api_version == "stable.example.com/v1"


def test_highest_version_by_kubernetes_priority() -> None:
    a = _crontab_ws("a", ("v1beta2", "v2", "v1", "v10alpha1"), "tab", [dest("loc1", "uid1")])
    d = checked_compute([a], locations(LOC1))
    assert d.mailboxes[MB1].copies[key(CRONTABS, "tab", "default")].api_version == "stable.example.com/v2"


def test_no_common_version_holds_back_and_does_not_list() -> None:
    a = _crontab_ws("a", ("v1",), "tab-a", [dest("loc1", "uid1")])
    b = _crontab_ws("b", ("v2",), "tab-b", [dest("loc1", "uid1")])
    d = checked_compute([a, b], locations(LOC1))
    m = d.mailboxes[MB1]
    held = {key(CRONTABS, "tab-a", "default"), key(CRONTABS, "tab-b", "default")}
    assert m.held == dict.fromkeys(held, "NoCommonVersion")
    assert not held & set(m.copies)
    listed = listed_keys(sc(m))
    assert not held & listed
    assert all(e["resource"] != "crontabs" for e in sc(m)["namespacedObjects"])
    # Everything else still goes: both configmaps and the (same) CRD, from the smallest path.
    assert {
        key(CM, "cm-a", "default"),
        key(CM, "cm-b", "default"),
        key(CRDS, "crontabs.stable.example.com"),
    } <= set(m.copies)
    reasons = sorted(p.reason for p in d.problems)
    assert reasons == ["Conflict", "NoCommonVersion", "NoCommonVersion"]  # the CRD is sent by both
    assert {p.cluster for p in d.problems if p.reason == "NoCommonVersion"} == {"a", "b"}


# ---------------------------------------------------------------------------------------------
# Bad input, flags, namespaces, system objects, mailboxes


def test_invalid_selector_is_reported_and_the_rest_still_works() -> None:
    bad_sel = [{"matchExpressions": [{"key": "a", "operator": "Foo"}]}]
    p = placement(
        "p",
        [dest("loc1", "uid1")],
        downsync=[
            clause("", "configmaps", labelSelectors=bad_sel),
            clause("", "configmaps", objectNames=["good"]),
        ],
        upsync=[U1],
    )
    ws = workspace("ws1", [(CM, cm("good")), (CM, cm("other", labels={"a": "b"}))], [p])
    d = checked_compute([ws], locations(LOC1))
    assert d.placement_problems[("ws1", "p")]
    assert any("Foo" in s for s in d.placement_problems[("ws1", "p")])
    assert [pr.reason for pr in d.problems] == ["InvalidPlacement"] * len(d.placement_problems[("ws1", "p")])
    assert all(pr.placements == ("p",) and pr.obj is None for pr in d.problems)
    m = d.mailboxes[MB1]
    assert set(m.copies) == {key(CM, "good", "default")}
    assert sc(m)["upsync"] == [U1]


def test_create_only_flag() -> None:
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])
    once = cm("once", annotations={api.DOWNSYNC_OVERWRITE_ANNOTATION: "false"})
    always = cm("always", annotations={api.DOWNSYNC_OVERWRITE_ANNOTATION: "true"})
    m = checked_compute(
        [workspace("ws1", [(CM, once), (CM, always), (CM, cm("plain"))], [p])], locations(LOC1)
    ).mailboxes[MB1]
    assert {k.name: c.create_only for k, c in m.copies.items()} == {
        "once": True,
        "always": False,
        "plain": False,
    }
    # The annotation itself is the user's and is carried.
    assert m.copies[key(CM, "once", "default")].body["metadata"]["annotations"] == {
        api.DOWNSYNC_OVERWRITE_ANNOTATION: "false"
    }


def test_explicitly_selected_namespace_is_in_cluster_scope_and_others_are_not() -> None:
    p = placement(
        "p",
        [dest("loc1", "uid1")],
        downsync=[
            clause("", "namespaces", objectNames=["picked"]),
            clause("", "configmaps", namespaces=["implicit"]),
        ],
    )
    objs = [(NAMESPACES, namespace("picked")), (NAMESPACES, namespace("implicit")), (CM, cm("x", "implicit"))]
    m = checked_compute([workspace("ws1", objs, [p])], locations(LOC1)).mailboxes[MB1]
    assert sc(m)["clusterScope"] == [
        {"group": "", "resource": "namespaces", "apiVersion": "v1", "objects": ["picked"]}
    ]
    assert set(m.copies) == {key(NAMESPACES, "picked"), key(CM, "x", "implicit")}
    assert not m.copies[key(NAMESPACES, "picked")].namespaced


def test_system_objects_are_never_copied_even_by_wildcards() -> None:
    p = placement(
        "p", [dest("loc1", "uid1")], downsync=[{"apiGroup": "", "resources": ["*"], "objectNames": ["*"]}]
    )
    objs = [
        (CM, cm("kube-root-ca.crt")),
        (SA, obj("v1", "ServiceAccount", "default", "default")),
        (SA, obj("v1", "ServiceAccount", "builder", "default")),
        (CM, cm("mine")),
    ]
    d = checked_compute([workspace("ws1", objs, [p])], locations(LOC1))
    assert set(d.mailboxes[MB1].copies) == {key(CM, "mine", "default"), key(SA, "builder", "default")}
    # The "every field empty" style warning is not expected here; just no crash, no system object.


def test_excluded_resources_are_never_copied() -> None:
    p = placement("p", [dest("loc1", "uid1")], downsync=[{"resources": ["*"]}])
    cust = customizer_obj("default", "c")
    d = checked_compute(
        [workspace("ws1", [(CUSTOMIZERS, cust), (CM, cm("x"))], [p], customizers=[cust])], locations(LOC1)
    )
    assert set(d.mailboxes[MB1].copies) == {key(CM, "x", "default")}


def test_objects_being_deleted_are_not_copied() -> None:
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])
    going = cm("going")
    going["metadata"]["deletionTimestamp"] = "2023-10-05T12:00:00Z"
    d = checked_compute([workspace("ws1", [(CM, going), (CM, cm("staying"))], [p])], locations(LOC1))
    assert set(d.mailboxes[MB1].copies) == {key(CM, "staying", "default")}


def test_known_mailbox_without_destination_gets_an_empty_the_one() -> None:
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p])], locations(LOC1), [MB2, MB1])
    assert set(d.mailboxes) == {MB1, MB2}
    empty = d.mailboxes[MB2]
    assert empty.mailbox == MB2
    assert sc(empty) == {"namespaceScope": {}}
    assert empty.copies == {} and empty.held == {}
    assert sc(checked_compute([], {}, [MB1]).mailboxes[MB1]) == {"namespaceScope": {}}


def test_placement_without_destinations_creates_no_mailbox_and_counts_zero() -> None:
    p = placement("p", [], downsync=[clause("", "configmaps")], wantSingletonReportedState=True, upsync=[U1])
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p])], locations(LOC1))
    assert d.mailboxes == {}
    assert d.executing_counts == {("ws1", key(CM, "x", "default")): 0}
    assert d.singleton_sources == {}


def test_executing_count_counts_distinct_sync_targets_over_placements() -> None:
    la = location("la", {"zone": "a"})
    lb = location("lb", {"zone": "b"})
    # Two Locations, one SyncTarget (uid1); another SyncTarget (uid2) reached by a second placement
    # that does not itself want singleton state.
    p1 = placement(
        "p1",
        [dest("la", "uid1", sync_target="st1"), dest("lb", "uid1", sync_target="st1")],
        downsync=[clause("", "configmaps")],
        wantSingletonReportedState=True,
    )
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p1])], locations(la, lb))
    assert d.executing_counts == {("ws1", key(CM, "x", "default")): 1}
    assert d.singleton_sources == {("ws1", key(CM, "x", "default")): MB1}
    p2 = placement("p2", [dest("loc2", "uid2")], downsync=[clause("", "configmaps")])
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p1, p2])], locations(la, lb, LOC2))
    assert d.executing_counts == {("ws1", key(CM, "x", "default")): 2}
    assert d.singleton_sources == {}


def test_no_executing_count_without_singleton_placement() -> None:
    p = placement(
        "p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")], wantSingletonReportedState=False
    )
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p])], locations(LOC1))
    assert d.executing_counts == {} and d.singleton_sources == {}


def test_explicitly_selected_crd_keeps_its_own_singleton_bit() -> None:
    crd = obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "crontabs.stable.example.com",
        spec=CRONTAB_CRD_SPEC,
    )
    tab = obj("stable.example.com/v1", "CronTab", "t", "default", spec={})
    p = placement(
        "p",
        [dest("loc1", "uid1")],
        downsync=[
            clause("stable.example.com", "crontabs"),
            clause("apiextensions.k8s.io", "customresourcedefinitions"),
        ],
        wantSingletonReportedState=True,
    )
    d = checked_compute([workspace("ws1", [(CRDS, crd), (CRONTABS, tab)], [p])], locations(LOC1))
    assert ("ws1", key(CRDS, "crontabs.stable.example.com")) in d.executing_counts


def test_implicit_crd_absent_from_workspace_is_not_invented() -> None:
    tab = obj("stable.example.com/v1", "CronTab", "t", "default", spec={})
    p = placement("p", [dest("loc1", "uid1")], downsync=[clause("stable.example.com", "crontabs")])
    m = checked_compute([workspace("ws1", [(CRONTABS, tab)], [p])], locations(LOC1)).mailboxes[MB1]
    assert set(m.copies) == {key(CRONTABS, "t", "default")}
    assert "clusterScope" not in sc(m)


def test_overlapping_placements_same_object_listed_once_c5() -> None:
    p1 = placement(
        "p1",
        [dest("loc1", "uid1"), dest("loc2", "uid2")],
        downsync=[clause("", "configmaps")],
        wantSingletonReportedState=True,
    )
    p2 = placement("p2", [dest("loc2", "uid2")], downsync=[clause("", "configmaps", objectNames=["x"])])
    d = checked_compute([workspace("ws1", [(CM, cm("x"))], [p1, p2])], locations(LOC1, LOC2))
    assert sc(d.mailboxes[MB2])["namespacedObjects"][0]["objectsByNamespace"] == [
        {"namespace": "default", "names": ["x"]}
    ]
    assert d.executing_counts == {("ws1", key(CM, "x", "default")): 2}


# ---------------------------------------------------------------------------------------------
# Bugs found (kept failing until fixed)


def test_conflict_loser_does_not_execute_in_that_mailbox() -> None:
    winner = workspace(
        "w",
        [(CM, cm("x", data={"from": "w"}))],
        [placement("p", [dest("loc1", "uid1")], downsync=[clause("", "configmaps")])],
        path="root:a",
    )
    loser = workspace(
        "l",
        [(CM, cm("x", data={"from": "l"}))],
        [
            placement(
                "p",
                [dest("loc1", "uid1")],
                downsync=[clause("", "configmaps")],
                wantSingletonReportedState=True,
            )
        ],
        path="root:b",
    )
    d = checked_compute([winner, loser], locations(LOC1))
    assert d.mailboxes[MB1].copies[key(CM, "x", "default")].source_cluster == "w"
    assert ("l", key(CM, "x", "default")) not in d.singleton_sources
    assert d.executing_counts == {("l", key(CM, "x", "default")): 0}


@pytest.mark.parametrize(
    "spec",
    [
        {"downsync": [clause("", "configmaps")], "upsync": ["not-an-object", U1]},
        {"downsync": [clause("", "configmaps")], "wantSingletonReportedState": "false"},
    ],
)
def test_wrongly_typed_spec_never_reaches_compute(spec: dict[str, Any]) -> None:
    """The CRD's schema rejects these; the model decoded at ingest does too (that informer keeps
    the object out and reports it), so compute never sees them."""
    with pytest.raises(ValidationError):
        placement("p", [dest("loc1", "uid1")], **spec)
