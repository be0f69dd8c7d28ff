"""Isolation of the pure desired-state pipeline, checked against a brute-force oracle (issue 10).

The system under test is where resolution (:func:`pkg.controllers.where.resolve.resolve`) feeding
the translator's :func:`pkg.controllers.translator.desired.compute`, on random inventories
(Locations, SyncTargets in one or two IMWs) and random WMWs (namespaces, objects, Customizers,
EdgePlacements with random location selectors, downsync clauses and upsync sets).

The oracle below is written plainly from behaviour.md 1.1, 2.2, 4.1, 4.2, 4.4 (intended rule) and
spec decision 5, and shares no code with the product: it re-implements label selectors, the
downsync match rules, upsync precedence, the system-object and exclusion rules, destinations,
conflict resolution, API version agreement and parameter definition.

Property: a copy reaches a mailbox only if some placement in the copy's own WMW selects both the
object and that mailbox's SyncTarget, and every such copy is present, except

* the losing side of a WMW conflict (the WMW with the smaller workspace path wins; reported),
* held-back copies (no common API version; a customization that cannot be done), which the oracle
  predicts exactly, with their reason,

plus the documented extra: the CRD defining a selected custom object (implicit CRD).  Namespaces
that the controller creates bare in a mailbox, and APIBindings, are not part of the pure output, so
the pure output must hold no other extra at all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from apis.edge.v2alpha1 import Customizer, EdgePlacement, EdgePlacementSpec, Location, SyncTarget
from pkg.controllers.translator.desired import (
    Desired,
    Placement,
    Workspace,
    compute,
    destinations,
    syncer_config_json,
)
from pkg.controllers.what.resolve import CopyKey, ServedResource
from pkg.controllers.what.select import GroupResource
from pkg.controllers.where.resolve import resolve
from test.unit.property_settings import Coverage, coverage_fixture, examples

Obj = dict[str, Any]

EDGE = "edge.kubestellar.io"
CLUSTER_ANN = "kcp.io/cluster"
EXPAND = "edge.kubestellar.io/expand-parameters"
CUSTOMIZER = "edge.kubestellar.io/customizer"
CRD_NAME = "crontabs.stable.example.com"

# The resources of the random world: (group, resource, kind, namespaced)
CM = GroupResource("", "configmaps")
SA = GroupResource("", "serviceaccounts")
NS = GroupResource("", "namespaces")
EVENTS = GroupResource("", "events")
DEPLOY = GroupResource("apps", "deployments")
CRONTABS = GroupResource("stable.example.com", "crontabs")
CRDS = GroupResource("apiextensions.k8s.io", "customresourcedefinitions")
CUSTOMIZERS = GroupResource(EDGE, "customizers")

KINDS = {
    CM: ("v1", "ConfigMap", True),
    SA: ("v1", "ServiceAccount", True),
    NS: ("v1", "Namespace", False),
    EVENTS: ("v1", "Event", True),
    DEPLOY: ("apps/v1", "Deployment", True),
    CRONTABS: ("stable.example.com/{v}", "CronTab", True),
    CRDS: ("apiextensions.k8s.io/v1", "CustomResourceDefinition", False),
    CUSTOMIZERS: (f"{EDGE}/v2alpha1", "Customizer", True),
}
NAMESPACE_NAMES = ("ns1", "ns2")
OBJECT_NAMES = ("a", "b", "default", "kube-root-ca.crt")

# ---------------------------------------------------------------------------------------------
# The oracle: plain re-implementations, nothing imported from pkg.

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def plain_key_ok(key: Any) -> bool:
    """Label key syntax, enough for the keys this test generates (letters, digits, -._ and one /)."""
    if not isinstance(key, str) or not key:
        return False
    name = key.split("/")[-1]
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return (
        0 < len(name) <= 63 and all(ch in allowed for ch in name) and name[0].isalnum() and name[-1].isalnum()
    )


def plain_selector_matches(sel: Any, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector; an invalid one matches nothing."""
    if sel is None:
        return True
    if not isinstance(sel, dict):
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if not plain_key_ok(k) or not isinstance(v, str):
            return False
    for e in sel.get("matchExpressions") or []:
        op, values = e.get("operator"), e.get("values") or []
        if not plain_key_ok(e.get("key")) or op not in OPERATORS:
            return False
        if op in ("In", "NotIn") and not values:
            return False
        if op in ("Exists", "DoesNotExist") and values:
            return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def any_or_empty(selectors: list[Any] | None, labels: Mapping[str, str]) -> bool:
    """A list of selectors as a criterion: empty (or absent) = any; else one must match."""
    if not selectors:
        return True
    return any(plain_selector_matches(s, labels) for s in selectors)


def name_list_ok(names: list[str] | None, value: str) -> bool:
    return not names or "*" in names or value in names


def plain_excluded(gr: GroupResource) -> bool:
    never = {("", "events"), ("", "nodes"), ("", "bindings"), ("events.k8s.io", "events")}
    return gr.group == EDGE or (gr.group, gr.resource) in never


def plain_system_object(o: Obj) -> bool:
    if o.get("apiVersion") != "v1":
        return False
    kind_and_name = (o["kind"], o["metadata"]["name"])
    return kind_and_name in {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


def plain_upsync_claims(upsync: list[Obj], gr: GroupResource, ns: str, name: str) -> bool:
    for u in upsync:
        if u.get("apiGroup", "") != gr.group:
            continue
        if "*" not in u.get("resources", []) and gr.resource not in u.get("resources", []):
            continue
        if ns and "*" not in u.get("namespaces", []) and ns not in u.get("namespaces", []):
            continue
        if "*" not in u.get("names", []) and name not in u.get("names", []):
            continue
        return True
    return False


def plain_accepts(spec: Obj, gr: GroupResource, o: Obj, ns_labels: Mapping[str, str]) -> bool:
    """Does this EdgePlacement downsync object ``o`` (behaviour 1.1, 4.1, 4.2, 4.4)?"""
    md = o["metadata"]
    if plain_excluded(gr) or plain_system_object(o) or md.get("deletionTimestamp"):
        return False
    ns = md.get("namespace", "")
    name = md["name"]
    if plain_upsync_claims(spec.get("upsync") or [], gr, ns, name):
        return False
    labels = md.get("labels") or {}
    for clause in spec.get("downsync") or []:
        if "apiGroup" in clause and clause["apiGroup"] != gr.group:
            continue
        if not name_list_ok(clause.get("resources"), gr.resource):
            continue
        if not name_list_ok(clause.get("namespaces"), ns):
            continue
        if not name_list_ok(clause.get("objectNames"), name):
            continue
        if not any_or_empty(clause.get("labelSelectors"), labels):
            continue
        if not any_or_empty(clause.get("namespaceSelectors"), ns_labels if ns else {}):
            continue
        return True
    return False


@dataclass(frozen=True)
class PlainDest:
    imw: str
    location: str
    mailbox: str


def plain_destinations(spec: Obj, inventory: list[tuple[str, list[Obj], list[Obj]]]) -> set[PlainDest]:
    """Every (Location, SyncTarget) pair the placement reaches (behaviour 2.2)."""
    out = set()
    selectors = spec.get("locationSelectors") or []
    for imw, locs, targets in inventory:
        for loc in locs:
            if not any(plain_selector_matches(s, loc["metadata"].get("labels") or {}) for s in selectors):
                continue
            instance = loc["spec"].get("instanceSelector", "absent")
            if instance == "absent" or instance is None:
                continue
            for t in targets:
                if plain_selector_matches(instance, t["metadata"].get("labels") or {}):
                    out.add(PlainDest(imw, loc["metadata"]["name"], f"{imw}-mb-{t['metadata']['uid']}"))
    return out


def plain_params(locs: list[Obj]) -> dict[str, str]:
    """Parameters defined for a copy reaching a mailbox through these Locations: each Location's
    labels over its annotations; a key the Locations give different values is not defined."""
    seen: dict[str, set[str]] = defaultdict(set)
    for loc in locs:
        values = {**(loc["metadata"].get("annotations") or {}), **(loc["metadata"].get("labels") or {})}
        for k, v in values.items():
            seen[k].add(v)
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


@dataclass
class World:
    inventory: list[tuple[str, list[Obj], list[Obj]]]  # (imw cluster, Locations, SyncTargets)
    wmws: list[dict[str, Any]]  # cluster, path, versions (of crontabs), namespaces, objects, placements


@dataclass
class Expected:
    copies: dict[tuple[str, CopyKey], str]  # (mailbox, key) -> winning WMW cluster
    held: dict[tuple[str, CopyKey], str]  # (mailbox, key) -> reason
    losers: set[tuple[str, str, CopyKey]]  # (loser WMW cluster, mailbox, key)
    content: dict[tuple[str, CopyKey], dict[str, str]]  # expected customized data of copies
    upsync: dict[str, set[str]]  # mailbox -> canonical UpsyncSets


def gr_of(o: Obj) -> GroupResource:
    group = o["apiVersion"].rpartition("/")[0]
    for gr, (_, kind, _) in KINDS.items():
        if gr.group == group and kind == o["kind"]:
            return gr
    raise AssertionError(o)


def oracle(world: World) -> Expected:
    locations = {(imw, loc["metadata"]["name"]): loc for imw, locs, _ in world.inventory for loc in locs}
    # (mailbox, key) -> WMW cluster -> (object, Locations it comes through)
    wanted: dict[tuple[str, CopyKey], dict[str, tuple[Obj, set[tuple[str, str]]]]] = defaultdict(dict)
    upsync: dict[str, set[str]] = defaultdict(set)
    for w in world.wmws:
        for p in w["placements"]:
            dests = plain_destinations(p["spec"], world.inventory)
            for d in dests:
                for u in p["spec"].get("upsync") or []:
                    upsync[d.mailbox].add(json.dumps(u, sort_keys=True))
            selected: list[tuple[CopyKey, Obj]] = []
            for o in w["objects"]:
                gr = gr_of(o)
                ns = o["metadata"].get("namespace", "")
                if plain_accepts(p["spec"], gr, o, w["namespaces"].get(ns, {})):
                    selected.append((CopyKey(gr, ns, o["metadata"]["name"]), o))
            # The documented extra: a selected custom object brings the CRD that defines it
            # (unless this placement selects that CRD explicitly anyway).
            crd_key = CopyKey(CRDS, "", CRD_NAME)
            if any(k.gr == CRONTABS for k, _ in selected) and crd_key not in dict(selected):
                selected.append((crd_key, next(o for o in w["objects"] if gr_of(o) == CRDS)))
            for d in dests:
                for key, o in selected:
                    _, via = wanted[(d.mailbox, key)].setdefault(w["cluster"], (o, set()))
                    via.add((d.imw, d.location))

    path_of = {w["cluster"]: w["path"] for w in world.wmws}
    versions_of = {w["cluster"]: w["versions"] for w in world.wmws}
    exp = Expected({}, {}, set(), {}, upsync)
    for (mailbox, key), by_wmw in wanted.items():
        ranked = sorted(by_wmw, key=lambda c: path_of[c])
        exp.copies[(mailbox, key)] = ranked[0]
        exp.losers.update((loser, mailbox, key) for loser in ranked[1:])
    # API versions: per (mailbox, resource), the versions every winning WMW serves.
    served: dict[tuple[str, GroupResource], set[str] | None] = {}
    for (mailbox, key), winner in exp.copies.items():
        mine = set(versions_of[winner]) if key.gr == CRONTABS else {"v1"}
        have = served.get((mailbox, key.gr))
        served[(mailbox, key.gr)] = mine if have is None else have & mine
    for (mailbox, key), winner in list(exp.copies.items()):
        if not served[(mailbox, key.gr)]:
            exp.held[(mailbox, key)] = "NoCommonVersion"
            continue
        o, via = wanted[(mailbox, key)][winner]
        params = plain_params([locations[v] for v in via])
        ann = o["metadata"].get("annotations") or {}
        w = next(x for x in world.wmws if x["cluster"] == winner)
        data = dict(o.get("data") or {})
        if ann.get(EXPAND) == "true":
            for k, text in list(data.items()):
                if text.startswith("x-%("):
                    name = text[len("x-%(") : -1]
                    if name not in params:
                        exp.held[(mailbox, key)] = "CustomizationFailed"
                        break
                    data[k] = "x-" + params[name]
        if (mailbox, key) in exp.held:
            continue
        ref = ann.get(CUSTOMIZER)
        if ref is not None:
            cust = w["customizers"].get(tuple(ref.split("/", 1)))
            if cust is None:
                exp.held[(mailbox, key)] = "CustomizationFailed"
                continue
            data["w"] = "set"
        if key.gr == CM:
            exp.content[(mailbox, key)] = data
    return exp


# ---------------------------------------------------------------------------------------------
# Random worlds

LOCATION_SELECTORS: list[Any] = [
    {},
    {"matchLabels": {"env": "prod"}},
    {"matchLabels": {"region": "east"}},
    {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
    {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "region", "operator": "DoesNotExist"}]},
    {"matchExpressions": [{"key": "env", "operator": "In", "values": []}]},  # invalid
    {"matchExpressions": [{"key": "env", "operator": "Foo"}]},  # invalid
    {"matchLabels": {"bad key": "x"}},  # invalid
]
INSTANCE_SELECTORS: list[Any] = [
    "absent",
    None,
    {},
    {"matchLabels": {"tier": "a"}},
    {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "Foo"}]},  # invalid
    {"matchLabels": {"id": "st0"}},
]
OBJECT_SELECTORS: list[Any] = [
    {},
    {"matchLabels": {"app": "web"}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]},
    {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
    {"matchExpressions": [{"key": "app", "operator": "Foo", "values": ["web"]}]},  # invalid
]
NAMESPACE_SELECTORS: list[Any] = [
    {},
    {"matchLabels": {"team": "red"}},
    {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["red"]}]},
    {"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["red"]}]},  # invalid
]
GROUPS = ["", "apps", "stable.example.com", "apiextensions.k8s.io", EDGE]
RESOURCE_LISTS = [
    [],
    ["*"],
    ["configmaps"],
    ["configmaps"],
    ["deployments"],
    ["crontabs"],
    ["crontabs"],
    ["namespaces"],
    ["events"],
    ["customizers"],
    ["serviceaccounts"],
    ["ConfigMap"],  # not a plural resource name: matches nothing
    ["configmaps", "crontabs"],
]


def _choice(elements: list[Any] | tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(tuple(elements))


def _small_list(elements: list[Any], max_size: int = 2) -> st.SearchStrategy[list[Any]]:
    return st.lists(_choice(elements), max_size=max_size)


# Every strategy is built once, here: building one per draw (a new ``st.lists(...)`` in a loop)
# costs Hypothesis a validation each time, more than the draw itself.  The inner generators are
# plain functions of ``draw`` for the same reason; ``placements`` and ``upsync_sets`` wrap them.
BOOL = st.booleans()
ONE_IN = {n: st.integers(0, n - 1) for n in (3, 4, 6, 10)}
TARGET_INDEX = {n: st.integers(0, n - 1) for n in range(1, 12)}
GROUP = _choice(GROUPS)
CRITERIA = (
    ("resources", _choice([tuple(r) for r in RESOURCE_LISTS]).map(list)),
    ("namespaces", _small_list(["ns1", "ns2", "*", ""])),
    ("objectNames", _small_list(["a", "b", "default", "*"])),
    ("labelSelectors", _small_list(OBJECT_SELECTORS)),
    ("namespaceSelectors", _small_list(NAMESPACE_SELECTORS)),
)
UPSYNC_GROUP = _choice(["", "apps"])
UPSYNC_LISTS = (
    ("resources", _small_list(["configmaps", "deployments", "*"])),
    ("namespaces", _small_list(["ns1", "ns2", "*"])),
    ("names", _small_list(["a", "b", "*"])),
)
PLACEMENT_LOCATIONS = st.lists(
    _choice(LOCATION_SELECTORS[:1] * 8 + LOCATION_SELECTORS), min_size=1, max_size=2
)
CLAUSE_COUNT = {0: st.integers(0, 2), 1: st.integers(1, 2)}
UPSYNC_COUNT = st.integers(0, 1)
PLACEMENT_COUNT = st.integers(1, 3)
NS_LABELS = _choice([{}, {"team": "red"}, {"team": "blue"}])
OBJECT_LABELS = _choice([{}, {"app": "web"}, {"app": "db"}])
CUSTOM = _choice(["none", "env", "zone", "customizer"])
COUNT_USUAL, COUNT_RARE = st.integers(1, 2), st.integers(0, 3)
LOC_LABEL = {"env": _choice([None, "prod", "dev"]), "region": _choice([None, "east", "west"])}
ZONE = _choice([None, "z1", "z2"])
TIER = _choice([None, "a", "b"])
INSTANCE = _choice([{}] * 14 + INSTANCE_SELECTORS)
IMW_COUNT = st.integers(1, 2)
WMW_COUNT = _choice([2, 3, 1])  # mostly several WMWs (conflicts, versions to agree on)
CLUSTER_ORDER = st.permutations(["k3", "k1", "k2"])
# Hypothesis draws the simplest choice (0, the first element) more often than its share, so the
# common case is put first: selectors mostly given and broad, inventories mostly non-empty.


def draw_clause(draw: st.DrawFn, targets: tuple[Obj, ...] = ()) -> Obj:
    """A downsync clause: half of them (when ``targets`` are given) aimed at one of those objects
    (its group and resource, often its namespace or name), so that many placements select something;
    the others random, each criterion given in a third of them."""
    if targets and draw(BOOL):
        o = targets[draw(TARGET_INDEX[len(targets)])]
        gr, md = gr_of(o), o["metadata"]
        aimed: Obj = {"apiGroup": gr.group, "resources": [gr.resource]}
        narrow = draw(ONE_IN[4])  # 0: the resource, 1: its namespace, 2: its name, 3: both
        if narrow in (1, 3) and md.get("namespace"):
            aimed["namespaces"] = [md["namespace"]]
        if narrow in (2, 3):
            aimed["objectNames"] = [md["name"]]
        return aimed
    clause: Obj = {}
    if draw(BOOL):
        clause["apiGroup"] = draw(GROUP)
    for field, strategy in CRITERIA:
        if draw(ONE_IN[3]) == 0:  # each criterion is given in a third of the clauses
            clause[field] = draw(strategy)
    return clause


def draw_upsync_set(draw: st.DrawFn) -> Obj:
    return {"apiGroup": draw(UPSYNC_GROUP), **{field: draw(strategy) for field, strategy in UPSYNC_LISTS}}


def draw_placement(draw: st.DrawFn, index: int, targets: tuple[Obj, ...] = ()) -> dict[str, Any]:
    spec: Obj = {}
    if draw(ONE_IN[6]) < 5:
        spec["locationSelectors"] = draw(PLACEMENT_LOCATIONS)
    count = draw(CLAUSE_COUNT[1 if draw(ONE_IN[6]) < 5 else 0])
    spec["downsync"] = [draw_clause(draw, targets) for _ in range(count)]
    if draw(ONE_IN[3]) == 2 and draw(UPSYNC_COUNT):
        spec["upsync"] = [draw_upsync_set(draw)]
    return {"name": f"ep{index}", "spec": spec}


@st.composite
def clauses(draw: st.DrawFn, targets: tuple[Obj, ...] = ()) -> Obj:
    return draw_clause(draw, targets)


@st.composite
def upsync_sets(draw: st.DrawFn) -> Obj:
    return draw_upsync_set(draw)


@st.composite
def placements(draw: st.DrawFn, index: int, targets: tuple[Obj, ...] = ()) -> dict[str, Any]:
    return draw_placement(draw, index, targets)


VERSIONS = [("v1",), ("v2",), ("v1", "v1beta1"), ("v2",), ("v1", "v2"), ("v1",)]
"""The CronTab versions the WMWs serve: WMW ``i`` serves ``VERSIONS[(start + i) % 6]``, and
neighbours here have no version in common in half of the cases (the simplest start, 0, included)."""
VERSION_START = st.integers(0, len(VERSIONS) - 1)

CANDIDATES = [
    (gr, ns, name)
    for gr in (CM, CM, CM, SA, DEPLOY, CRONTABS, CRONTABS, EVENTS)
    for ns in NAMESPACE_NAMES
    for name in OBJECT_NAMES
]
"""The objects a WMW draws from, weighted towards ConfigMaps (customization) and CronTabs (served
versions); the pool is small, so WMWs often hold the same object (conflicts)."""
PICKED = st.lists(_choice(CANDIDATES), min_size=1, max_size=6)


def _obj(gr: GroupResource, name: str, ns: str, cluster: str, crontab_version: str) -> Obj:
    api_version, kind, namespaced = KINDS[gr]
    md: Obj = {"name": name, "annotations": {CLUSTER_ANN: cluster}}
    if namespaced:
        md["namespace"] = ns
    return {"apiVersion": api_version.format(v=crontab_version), "kind": kind, "metadata": md}


def draw_wmw(draw: st.DrawFn, cluster: str, path: str, versions: tuple[str, ...]) -> dict[str, Any]:
    namespaces = {ns: draw(NS_LABELS) for ns in NAMESPACE_NAMES}
    objects: list[Obj] = []
    for ns, labels in namespaces.items():
        o = _obj(NS, ns, "", cluster, "")
        o["metadata"]["labels"] = dict(labels)
        objects.append(o)
    crd = _obj(CRDS, CRD_NAME, "", cluster, "")
    crd["spec"] = {"group": "stable.example.com", "names": {"plural": "crontabs", "kind": "CronTab"}}
    objects.append(crd)
    customizers: dict[tuple[str, str], Obj] = {}
    if draw(BOOL):
        c = _obj(CUSTOMIZERS, "cust", "ns1", cluster, "")
        c["replacements"] = [{"path": "$.data.w", "value": '"set"'}]
        customizers[("ns1", "cust")] = c
        objects.append(c)
    picked = list(dict.fromkeys(draw(PICKED)))  # repeats dropped, order kept
    if draw(ONE_IN[3]) < 2:  # a CronTab of this WMW's own, so that WMWs' served versions must agree
        picked.append((CRONTABS, "ns1", f"tab-{cluster}"))
    for gr, ns, name in picked:
        o = _obj(gr, name, ns, cluster, versions[0])
        labels = draw(OBJECT_LABELS)
        if labels:
            o["metadata"]["labels"] = dict(labels)
        if gr == CM:
            o["data"] = {"k": "v"}
            custom = draw(CUSTOM)
            if custom in ("env", "zone"):
                o["metadata"]["annotations"][EXPAND] = "true"
                o["data"]["v"] = f"x-%({custom})"
            elif custom == "customizer":
                o["metadata"]["annotations"][CUSTOMIZER] = "ns1/cust"
        if draw(ONE_IN[10]) == 9:
            o["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        objects.append(o)
    count = draw(PLACEMENT_COUNT)
    targets = tuple(o for o in objects if gr_of(o) not in (NS, CRDS, CUSTOMIZERS))
    return {
        "cluster": cluster,
        "path": path,
        "versions": versions,
        "namespaces": namespaces,
        "objects": objects,
        "customizers": customizers,
        "placements": [draw_placement(draw, i, targets) for i in range(count)],
    }


@st.composite
def wmws(draw: st.DrawFn, cluster: str, path: str) -> dict[str, Any]:
    return draw_wmw(draw, cluster, path, VERSIONS[draw(VERSION_START)])


def draw_inventory(draw: st.DrawFn, imw: str) -> tuple[str, list[Obj], list[Obj]]:
    locs = []
    for i in range(draw(COUNT_USUAL if draw(ONE_IN[6]) < 5 else COUNT_RARE)):
        labels = {}
        for key, strategy in LOC_LABEL.items():
            value = draw(strategy)
            if value is not None:
                labels[key] = value
        annotations = {CLUSTER_ANN: imw}
        zone = draw(ZONE)
        if zone is not None:
            annotations["zone"] = zone
        spec: Obj = {"resource": {"group": EDGE, "version": "v2alpha1", "resource": "synctargets"}}
        instance = draw(INSTANCE)
        if instance != "absent":
            spec["instanceSelector"] = instance
        md = {"name": f"loc{i}", "labels": labels, "annotations": annotations}
        locs.append({"apiVersion": f"{EDGE}/v2alpha1", "kind": "Location", "metadata": md, "spec": spec})
    targets = []
    for i in range(draw(COUNT_USUAL if draw(ONE_IN[6]) < 5 else COUNT_RARE)):
        labels = {"id": f"st{i}"}
        tier = draw(TIER)
        if tier is not None:
            labels["tier"] = tier
        md = {"name": f"st{i}", "uid": f"uid-{imw}-{i}", "labels": labels, "annotations": {CLUSTER_ANN: imw}}
        targets.append({"apiVersion": f"{EDGE}/v2alpha1", "kind": "SyncTarget", "metadata": md})
    return imw, locs, targets


@st.composite
def worlds(draw: st.DrawFn) -> World:
    imws = ["imwa", "imwb"][: draw(IMW_COUNT)]
    inventory = [draw_inventory(draw, imw) for imw in imws]
    n = draw(WMW_COUNT)
    # Cluster names in another order than paths, so "smallest path wins" is not "smallest cluster".
    clusters = draw(CLUSTER_ORDER)[:n]
    start = draw(VERSION_START)
    return World(
        inventory,
        [
            draw_wmw(draw, c, f"root:w{i}", VERSIONS[(start + i) % len(VERSIONS)])
            for i, c in enumerate(clusters)
        ],
    )


# ---------------------------------------------------------------------------------------------
# The system under test: where resolution, then compute()


def system(world: World) -> tuple[Desired, list[str]]:
    views, locations, mailboxes = inputs(world)
    return compute(views, locations, mailboxes), mailboxes


_CUSTOMIZERS: dict[int, tuple[Obj, Customizer]] = {}


def typed_customizer(c: Obj) -> Customizer:
    """The model of one of the world's Customizer dicts, the same model for the same dict (the
    memo recognises Customizers by identity, as the informers' decoded models are)."""
    hit = _CUSTOMIZERS.get(id(c))
    if hit is None or hit[0] is not c:
        hit = _CUSTOMIZERS[id(c)] = (c, Customizer.model_validate(c))
    return hit[1]


_SYNCTARGETS = {"group": EDGE, "version": "v2alpha1", "resource": "synctargets"}


def as_location(loc: Obj) -> Location:
    """The model of a world's Location (which leaves out ``spec.resource``, always the same)."""
    spec = {"resource": _SYNCTARGETS, **(loc.get("spec") or {})}
    return Location.model_validate({**loc, "spec": spec})


def inputs(
    world: World,
) -> tuple[list[Workspace], dict[tuple[str, str], Location], list[str]]:
    """compute()'s arguments for ``world``: the WMW views (after where resolution), the Locations
    and the mailboxes.  The objects in them are the world's own dicts, not copies."""
    all_locations = [as_location(loc) for _, locs, _ in world.inventory for loc in locs]
    all_targets = [SyncTarget.model_validate(t) for _, _, ts in world.inventory for t in ts]
    views = []
    for w in world.wmws:
        resources = {
            gr: ServedResource(gr, kind, namespaced, ("v1",))
            for gr, (_, kind, namespaced) in KINDS.items()
            if gr != CRONTABS
        }
        resources[CRONTABS] = ServedResource(CRONTABS, "CronTab", True, tuple(w["versions"]), crd=CRD_NAME)
        objects: dict[GroupResource, list[Obj]] = defaultdict(list)
        for o in w["objects"]:
            objects[gr_of(o)].append(o)
        ps = []
        for p in w["placements"]:
            ep = {
                "metadata": {"name": p["name"], "annotations": {CLUSTER_ANN: w["cluster"]}},
                "spec": p["spec"],
            }
            dests, _ = resolve(EdgePlacement.model_validate(ep), all_locations, all_targets)
            ps.append(Placement(p["name"], EdgePlacementSpec.model_validate(p["spec"]), destinations(dests)))
        views.append(
            Workspace(
                cluster=w["cluster"],
                path=w["path"],
                placements=ps,
                resources=resources,
                objects=dict(objects),
                namespaces=w["namespaces"],
                customizers={ref: typed_customizer(c) for ref, c in w["customizers"].items()},
            )
        )
    locations = {
        (imw, loc["metadata"]["name"]): as_location(loc) for imw, locs, _ in world.inventory for loc in locs
    }
    mailboxes = sorted(f"{imw}-mb-{t['metadata']['uid']}" for imw, _, ts in world.inventory for t in ts)
    return views, locations, mailboxes


def listed(spec: Mapping[str, Any]) -> set[CopyKey]:
    out: set[CopyKey] = set()
    for entry in spec.get("namespacedObjects") or []:
        gr = GroupResource(entry["group"], entry["resource"])
        for by_ns in entry["objectsByNamespace"]:
            out.update(CopyKey(gr, by_ns["namespace"], n) for n in by_ns["names"])
    for entry in spec.get("clusterScope") or []:
        out.update(CopyKey(GroupResource(entry["group"], entry["resource"]), "", n) for n in entry["objects"])
    return out


FLOORS = {
    "copies": 0.5,
    "a conflict": 0.05,
    "held: NoCommonVersion": 0.05,
    "held: CustomizationFailed": 0.05,
    "customized content": 0.05,
}
"""The least share of examples that must reach each branch (checked after the run)."""


@pytest.fixture
def coverage() -> Iterator[Coverage]:
    yield from coverage_fixture(FLOORS)


@examples()
@given(world=worlds())
def test_isolation_matches_brute_force_oracle(coverage: Coverage, world: World) -> None:
    desired, mailboxes = system(world)
    exp = oracle(world)

    got_copies = {
        (m, key): c.source_cluster for m, md in desired.mailboxes.items() for key, c in md.copies.items()
    }
    got_held = {(m, key): reason for m, md in desired.mailboxes.items() for key, reason in md.held.items()}

    reached = {
        "copies": bool(got_copies),
        "a conflict": bool(exp.losers),
        "an implicit CRD": any(k.gr == CRDS for _, k in got_copies),
        "held: NoCommonVersion": "NoCommonVersion" in exp.held.values(),
        "held: CustomizationFailed": "CustomizationFailed" in exp.held.values(),
        "customized content": any(len(d) > 1 for d in exp.content.values()),
    }
    for label, present in reached.items():
        event(f"{label}: {present}")

    # Only mailboxes of existing SyncTargets, and no copy without a placement reaching it.
    assert set(desired.mailboxes) <= set(mailboxes)
    extra = {k: v for k, v in got_copies.items() if exp.copies.get(k) != v or k in exp.held}
    assert not extra, f"copies the oracle does not allow (mailbox, key) -> source: {extra}"
    # Every expected copy is there, from the winning WMW, unless it is held back for its reason.
    want_copies = {k: v for k, v in exp.copies.items() if k not in exp.held}
    assert got_copies == want_copies
    assert got_held == exp.held

    # Each losing side of a conflict is reported against the losing WMW.
    conflicts = {(p.cluster, p.message) for p in desired.problems if p.reason == "Conflict"}
    for loser, mailbox, key in exp.losers:
        assert any(c == loser and str(key) in msg and mailbox in msg for c, msg in conflicts), (
            loser,
            mailbox,
            key,
        )
    # Held-back copies are reported with their reason.
    reported = {(p.reason, m) for p in desired.problems for m in mailboxes if m in p.message}
    for (mailbox, _), reason in exp.held.items():
        assert (reason, mailbox) in reported

    # Customized content is what the Locations define.
    for (mailbox, key), data in exp.content.items():
        assert desired.mailboxes[mailbox].copies[key].body["data"] == data

    # the-one lists exactly the copies and the copies held back for customization (their version
    # is known), and carries the upsync of every placement reaching the mailbox.
    for m in mailboxes:
        md = desired.mailboxes.get(m)
        spec = syncer_config_json(md.syncer_config) if md else {"namespaceScope": {}}
        want = {k for (mb, k) in want_copies if mb == m} | {
            k for (mb, k), r in exp.held.items() if mb == m and r == "CustomizationFailed"
        }
        assert listed(spec) == want
        assert {json.dumps(u, sort_keys=True) for u in spec.get("upsync") or []} == exp.upsync.get(m, set())

    coverage.example(reached)


def test_oracle_sanity_two_wmws_conflict_and_isolation() -> None:
    """One hand-made world, so the oracle itself is seen to say what the property claims."""
    loc = {
        "metadata": {"name": "loc0", "labels": {"env": "prod"}, "annotations": {CLUSTER_ANN: "imwa"}},
        "spec": {"instanceSelector": {}},
    }
    target = {
        "metadata": {
            "name": "st0",
            "uid": "u0",
            "labels": {"id": "st0"},
            "annotations": {CLUSTER_ANN: "imwa"},
        }
    }

    def wmw(cluster: str, path: str, selector: Obj) -> dict[str, Any]:
        o = _obj(CM, "a", "ns1", cluster, "v1")
        o["data"] = {"k": "v"}
        return {
            "cluster": cluster,
            "path": path,
            "versions": ("v1",),
            "namespaces": {"ns1": {}, "ns2": {}},
            "objects": [o, _obj(CRDS, CRD_NAME, "", cluster, "")],
            "customizers": {},
            "placements": [
                {
                    "name": "ep0",
                    "spec": {
                        "locationSelectors": [selector],
                        "downsync": [{"apiGroup": "", "resources": ["configmaps"]}],
                    },
                }
            ],
        }

    world = World(
        [("imwa", [loc], [target])],
        [
            wmw("k2", "root:w0", {"matchLabels": {"env": "prod"}}),
            wmw("k1", "root:w1", {}),
            wmw("k3", "root:w2", {"matchLabels": {"env": "dev"}}),
        ],
    )
    exp = oracle(world)
    key = CopyKey(CM, "ns1", "a")
    assert exp.copies == {("imwa-mb-u0", key): "k2"}
    assert exp.losers == {("k1", "imwa-mb-u0", key)}
    desired, _ = system(world)
    assert {k: c.source_cluster for k, c in desired.mailboxes["imwa-mb-u0"].copies.items()} == {key: "k2"}
