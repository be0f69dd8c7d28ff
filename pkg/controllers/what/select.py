"""The what resolver's pure selection rules (behaviour.md 1.1, 4.1, 4.2, 4.4, 5.9; decisions 5, 7).

Nothing here talks to a server.  :func:`compile_placement` turns an EdgePlacement ``spec`` into a
:class:`CompiledPlacement` (reporting, not raising, on bad input); :func:`selects` decides whether
one workload object is downsynced by it.  Upsync precedence uses the *intended* rule (upstream
compared namespaces and names with ``resources``; we do not).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apis.edge.v2alpha1 import constants as api
from pkg.labels import Selector, SelectorError, matches_any, parse_selector

__all__ = [
    "CUSTOMIZER_ANNOTATION",
    "DOWNSYNC_OVERWRITE",
    "EDGE_GROUP",
    "EXCLUDED_GROUPS",
    "EXECUTING_COUNT",
    "EXPAND_PARAMETERS",
    "NOT_FOR_EDGE",
    "NOT_SUPPORTED",
    "PROJECTED_LABEL",
    "CompiledPlacement",
    "DownsyncClause",
    "GroupResource",
    "canonical_upsync",
    "compile_placement",
    "could_select",
    "create_only",
    "excluded",
    "is_system_object",
    "match_state",
    "object_namespace",
    "pick_version",
    "selects",
    "upsync_claims",
    "version_sort_key",
]

# Aliases of the API constants (apis/edge/v2alpha1/constants.py).
EDGE_GROUP = api.GROUP
PROJECTED_LABEL = api.PROJECTED_LABEL
DOWNSYNC_OVERWRITE = api.DOWNSYNC_OVERWRITE_ANNOTATION
EXECUTING_COUNT = api.EXECUTING_COUNT_ANNOTATION
CUSTOMIZER_ANNOTATION = api.CUSTOMIZER_ANNOTATION
EXPAND_PARAMETERS = api.EXPAND_PARAMETERS_ANNOTATION


@dataclass(frozen=True, order=True)
class GroupResource:
    """An API group ("" = core) and a lowercase plural resource name."""

    group: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


# ---------------------------------------------------------------------------------------------
# Exclusions (behaviour 4.1)

EXCLUDED_GROUPS: frozenset[str] = frozenset(
    {EDGE_GROUP, "scheduling.kcp.io", "tenancy.kcp.io", "topology.kcp.io", "workload.kcp.io"}
)


def _grs(group: str, *resources: str) -> set[GroupResource]:
    return {GroupResource(group, r) for r in resources}


NOT_FOR_EDGE: frozenset[GroupResource] = frozenset(
    _grs("apis.kcp.io", "apiexports", "apiexportendpointslices", "apiresourceschemas")
    | _grs("apps", "controllerrevisions")
    | _grs("authentication.k8s.io", "tokenreviews")
    | _grs(
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
    )
    | _grs("certificates.k8s.io", "certificatesigningrequests")
    | _grs("core.kcp.io", "logicalclusters", "shards")
    | _grs("events.k8s.io", "events")
    | _grs("", "bindings", "componentstatuses", "events", "nodes")
)

NOT_SUPPORTED: frozenset[GroupResource] = frozenset(
    _grs("apiresource.kcp.io", "apiresourceimports", "negotiatedapiresources")
    | _grs("apis.kcp.io", "apiconversions")
)


def excluded(gr: GroupResource) -> bool:
    """True for resources that are never watched nor downsynced (behaviour 4.1)."""
    return gr.group in EXCLUDED_GROUPS or gr in NOT_FOR_EDGE or gr in NOT_SUPPORTED


# ---------------------------------------------------------------------------------------------
# Object helpers


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    md = obj.get("metadata")
    return md if isinstance(md, Mapping) else {}


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def object_namespace(obj: Mapping[str, Any]) -> str:
    """``metadata.namespace``, or ``""`` for a cluster-scoped object."""
    ns = _metadata(obj).get("namespace")
    return ns if isinstance(ns, str) else ""


def _object_name(obj: Mapping[str, Any]) -> str:
    name = _metadata(obj).get("name")
    return name if isinstance(name, str) else ""


_SYSTEM_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})


def is_system_object(obj: Mapping[str, Any]) -> bool:
    """True for objects the cluster makes by itself, which never downsync (behaviour 4.2)."""
    if obj.get("apiVersion") != "v1":
        return False
    kind = obj.get("kind")
    if kind == "Secret":
        return obj.get("type") in _SYSTEM_SECRET_TYPES
    if kind == "ConfigMap":
        return _object_name(obj) == "kube-root-ca.crt"
    if kind == "ServiceAccount":
        return _object_name(obj) == "default"
    return False


def create_only(obj: Mapping[str, Any]) -> bool:
    """True when the object asks to be created once and never updated (behaviour 5.11)."""
    return _str_map(_metadata(obj).get("annotations")).get(DOWNSYNC_OVERWRITE) == "false"


# ---------------------------------------------------------------------------------------------
# Compiling an EdgePlacement spec


@dataclass(frozen=True)
class DownsyncClause:
    """One ``DownsyncObjectTest``; every criterion must hold.

    ``None`` for a name set means "any" (the list was empty or held ``"*"``).  The selector tuples
    hold only the valid selectors; ``*_given`` says whether the list was non-empty at all, so a
    list whose every selector was invalid matches nothing rather than everything.
    """

    api_group: str | None = None
    resources: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None
    object_names: frozenset[str] | None = None
    namespace_selectors: tuple[Selector, ...] = ()
    namespace_selectors_given: bool = False
    label_selectors: tuple[Selector, ...] = ()
    label_selectors_given: bool = False

    def group_resource_ok(self, gr: GroupResource) -> bool:
        if self.api_group is not None and self.api_group != gr.group:
            return False
        return self.resources is None or gr.resource in self.resources


@dataclass(frozen=True)
class CompiledPlacement:
    """An EdgePlacement spec ready for matching.  ``upsync`` holds the UpsyncSets verbatim."""

    downsync: tuple[DownsyncClause, ...] = ()
    upsync: list[dict[str, Any]] = field(default_factory=list, hash=False)
    want_singleton: bool = False


def _name_set(value: object, where: str, problems: list[str]) -> tuple[bool, frozenset[str] | None]:
    """(ok, set) for a list of names where empty or ``"*"`` means any (set ``None``)."""
    if value is None:
        return True, None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        problems.append(f"{where} must be a list of strings")
        return False, None
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        problems.append(f"{where} must be a list of strings; {bad[0]!r} is not a string")
        return False, None
    names = frozenset(value)
    if not names or "*" in names:
        return True, None
    return True, names


def _selectors(value: object, where: str, problems: list[str]) -> tuple[bool, tuple[Selector, ...], bool]:
    """(ok, valid selectors, given).  An invalid selector is dropped and reported."""
    if value is None:
        return True, (), False
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        problems.append(f"{where} must be a list of label selectors")
        return False, (), True
    out: list[Selector] = []
    for i, raw in enumerate(value):
        try:
            out.append(parse_selector(raw))
        except SelectorError as err:
            problems.append(f"{where}[{i}] is invalid and matches nothing: {err}")
    return True, tuple(out), len(value) > 0


def _compile_clause(raw: object, where: str, problems: list[str]) -> DownsyncClause | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be an object; it is ignored")
        return None
    group = raw.get("apiGroup")
    if group is not None and not isinstance(group, str):
        problems.append(f"{where}.apiGroup must be a string; the clause is ignored")
        return None
    ok_r, resources = _name_set(raw.get("resources"), f"{where}.resources", problems)
    ok_n, namespaces = _name_set(raw.get("namespaces"), f"{where}.namespaces", problems)
    ok_o, names = _name_set(raw.get("objectNames"), f"{where}.objectNames", problems)
    ok_ns, ns_sels, ns_given = _selectors(
        raw.get("namespaceSelectors"), f"{where}.namespaceSelectors", problems
    )
    ok_ls, l_sels, l_given = _selectors(raw.get("labelSelectors"), f"{where}.labelSelectors", problems)
    if not (ok_r and ok_n and ok_o and ok_ns and ok_ls):
        problems.append(f"{where} is ignored")
        return None
    clause = DownsyncClause(
        api_group=group,
        resources=resources,
        namespaces=namespaces,
        object_names=names,
        namespace_selectors=ns_sels,
        namespace_selectors_given=ns_given,
        label_selectors=l_sels,
        label_selectors_given=l_given,
    )
    if clause == DownsyncClause():
        problems.append(f"{where} has no discriminating criterion, so it matches every object")
    return clause


def compile_placement(spec: Mapping[str, Any]) -> tuple[CompiledPlacement, list[str]]:
    """Compile an EdgePlacement ``spec``; returns it and human-readable problems (never raises).

    A bad selector is dropped (it matches nothing) and reported; a malformed downsync clause is
    ignored and reported; the rest of the placement keeps working (decision 7).  Unknown fields
    are ignored.
    """
    problems: list[str] = []
    if not isinstance(spec, Mapping):
        return CompiledPlacement(), ["spec must be an object"]
    clauses: list[DownsyncClause] = []
    downsync = spec.get("downsync")
    if downsync is not None:
        if isinstance(downsync, str | bytes) or not isinstance(downsync, Sequence):
            problems.append("downsync must be a list")
        else:
            for i, raw in enumerate(downsync):
                clause = _compile_clause(raw, f"downsync[{i}]", problems)
                if clause is not None:
                    clauses.append(clause)
    upsync: list[dict[str, Any]] = []
    raw_upsync = spec.get("upsync")
    if raw_upsync is not None:
        if isinstance(raw_upsync, str | bytes) or not isinstance(raw_upsync, Sequence):
            problems.append("upsync must be a list")
        else:
            for i, u in enumerate(raw_upsync):
                if isinstance(u, Mapping):
                    upsync.append(dict(u))
                else:
                    problems.append(f"upsync[{i}] must be an object; it is ignored")
    want = spec.get("wantSingletonReportedState")
    if want is not None and not isinstance(want, bool):
        problems.append("wantSingletonReportedState must be a boolean; false is assumed")
    return CompiledPlacement(tuple(clauses), upsync, want is True), problems


# ---------------------------------------------------------------------------------------------
# Matching


def could_select(p: CompiledPlacement, gr: GroupResource) -> bool:
    """Whether some downsync clause can select objects of ``gr`` (never for excluded resources)."""
    if excluded(gr):
        return False
    return any(c.group_resource_ok(gr) for c in p.downsync)


def _clause_state(
    c: DownsyncClause,
    gr: GroupResource,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    namespace_labels: Mapping[str, str] | None,
) -> bool | None:
    """True/False, or None when only the unknown labels of the object's Namespace decide."""
    if not c.group_resource_ok(gr):
        return False
    if c.namespaces is not None and namespace not in c.namespaces:
        return False
    if c.object_names is not None and name not in c.object_names:
        return False
    if c.label_selectors_given and not matches_any(c.label_selectors, labels):
        return False
    if not c.namespace_selectors_given:
        return True
    if namespace == "":
        return matches_any(c.namespace_selectors, {})
    if namespace_labels is None:
        # Unknown namespace: no valid selector means no label set could pass anyway.
        return None if c.namespace_selectors else False
    return matches_any(c.namespace_selectors, namespace_labels)


def match_state(
    p: CompiledPlacement,
    gr: GroupResource,
    obj: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None,
) -> bool | None:
    """Like :func:`selects`, but ``None`` when the answer depends on the labels of the object's
    Namespace and those are unknown (``namespace_labels`` is ``None``): retry later (C8c)."""
    if excluded(gr) or is_system_object(obj):
        return False
    namespace = object_namespace(obj)
    name = _object_name(obj)
    if upsync_claims(p.upsync, gr, namespace, name):
        return False
    labels = _str_map(_metadata(obj).get("labels"))
    unknown = False
    for c in p.downsync:
        state = _clause_state(c, gr, namespace, name, labels, namespace_labels)
        if state is True:
            return True
        if state is None:
            unknown = True
    return None if unknown else False


def selects(
    p: CompiledPlacement,
    gr: GroupResource,
    obj: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None,
) -> bool:
    """Whether placement ``p`` downsyncs ``obj`` (of resource ``gr``).

    ``namespace_labels`` are the labels of the object's Namespace (ignored for cluster-scoped
    objects, which are tested against the empty label set); ``None`` for a namespaced object
    makes any namespaceSelectors criterion fail.
    """
    return match_state(p, gr, obj, namespace_labels) is True


def _str_list(value: object) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return []
    return [v for v in value if isinstance(v, str)]


def upsync_claims(upsync: Sequence[Mapping[str, Any]], gr: GroupResource, namespace: str, name: str) -> bool:
    """Whether some UpsyncSet claims the object (intended rule of behaviour 4.4, decision 5).

    apiGroup exact (absent = core); ``resources`` holds ``"*"`` or the resource; the object is
    cluster-scoped or ``namespaces`` holds ``"*"`` or its namespace; ``names`` holds ``"*"`` or
    its name.  Empty lists claim nothing.
    """
    for u in upsync:
        if not isinstance(u, Mapping):
            continue
        group = u.get("apiGroup", "")
        if group is None:
            group = ""
        if not isinstance(group, str) or group != gr.group:
            continue
        resources = _str_list(u.get("resources"))
        if "*" not in resources and gr.resource not in resources:
            continue
        if namespace != "":
            namespaces = _str_list(u.get("namespaces"))
            if "*" not in namespaces and namespace not in namespaces:
                continue
        names = _str_list(u.get("names"))
        if "*" not in names and name not in names:
            continue
        return True
    return False


def canonical_upsync(upsync_sets: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """UpsyncSets deduplicated by canonical JSON and sorted by it; inner lists keep their order."""
    canon = {json.dumps(u, sort_keys=True, separators=(",", ":")) for u in upsync_sets}
    out: list[dict[str, Any]] = []
    for text in sorted(canon):
        value = json.loads(text)
        assert isinstance(value, dict)
        out.append(value)
    return out


# ---------------------------------------------------------------------------------------------
# API versions (decision 5: the highest version by Kubernetes priority served by every WMW)

_KUBE_VERSION_RE = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_RANK = {None: 0, "beta": 1, "alpha": 2}


def version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Ascending order of this key = descending Kubernetes version priority.

    GA before beta before alpha; within a kind, higher major then higher minor first; versions
    that are not Kubernetes-like (e.g. ``v1.2``, ``foo``) come last, alphabetically.
    """
    m = _KUBE_VERSION_RE.fullmatch(version)
    if m is None:
        return (3, 0, 0, version)
    major = int(m.group(1))
    minor = int(m.group(3)) if m.group(3) is not None else 0
    return (_RANK[m.group(2)], -major, -minor, version)


def pick_version(served: Sequence[Collection[str]]) -> str | None:
    """The highest-priority version present in every set; None if none is common or no sets."""
    if not served:
        return None
    common = set(served[0])
    for s in served[1:]:
        common &= set(s)
    if not common:
        return None
    return min(common, key=version_sort_key)
