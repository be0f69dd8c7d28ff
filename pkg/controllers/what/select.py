"""The what resolver's pure selection rules (behaviour.md 1.1, 4.1, 4.2, 4.4, 5.9; decisions 5, 7).

Nothing here talks to a server.  :func:`compile_placement` turns an EdgePlacement's spec model into
a :class:`CompiledPlacement` (reporting, not raising, on bad input); :func:`selects` decides whether
one workload object is downsynced by it.  Upsync precedence uses the *intended* rule (upstream
compared namespaces and names with ``resources``; we do not).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apis.edge.v2alpha1 import DownsyncObjectTest, EdgePlacementSpec, LabelSelector, UpsyncSet
from apis.edge.v2alpha1 import constants as api
from apis.machinery.labels import Selector, SelectorError, matches_any, selector_of
from pkg.runtime.meta import Meta

__all__ = [
    "EXCLUDED_GROUPS",
    "NOT_FOR_EDGE",
    "NOT_SUPPORTED",
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
    {api.GROUP, "scheduling.kcp.io", "tenancy.kcp.io", "topology.kcp.io", "workload.kcp.io"}
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
# Object helpers (workload objects are dicts, read through :class:`Meta`)


def object_namespace(obj: Mapping[str, Any]) -> str:
    """``metadata.namespace``, or ``""`` for a cluster-scoped object."""
    return Meta(obj).namespace


_SYSTEM_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})


def is_system_object(obj: Mapping[str, Any]) -> bool:
    """True for objects the cluster makes by itself, which never downsync (behaviour 4.2)."""
    if obj.get("apiVersion") != "v1":
        return False
    kind = obj.get("kind")
    if kind == "Secret":
        return obj.get("type") in _SYSTEM_SECRET_TYPES
    if kind == "ConfigMap":
        return Meta(obj).name == "kube-root-ca.crt"
    if kind == "ServiceAccount":
        return Meta(obj).name == "default"
    return False


def create_only(obj: Mapping[str, Any]) -> bool:
    """True when the object asks to be created once and never updated (behaviour 5.11)."""
    return Meta(obj).annotations.get(api.DOWNSYNC_OVERWRITE_ANNOTATION) == "false"


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
class _UpsyncTest:
    """One UpsyncSet as sets; ``None`` = ``"*"`` (any)."""

    group: str
    resources: frozenset[str] | None
    namespaces: frozenset[str] | None
    names: frozenset[str] | None

    @staticmethod
    def of(u: UpsyncSet) -> _UpsyncTest:
        def any_or(values: list[str] | None) -> frozenset[str] | None:
            found = frozenset(values or ())
            return None if "*" in found else found

        return _UpsyncTest(u.api_group or "", any_or(u.resources), any_or(u.namespaces), any_or(u.names))

    def claims(self, gr: GroupResource, namespace: str, name: str) -> bool:
        return (
            self.group == gr.group
            and (self.resources is None or gr.resource in self.resources)
            and (namespace == "" or self.namespaces is None or namespace in self.namespaces)
            and (self.names is None or name in self.names)
        )


@dataclass(frozen=True)
class CompiledPlacement:
    """An EdgePlacement spec ready for matching.  ``upsync`` holds the UpsyncSets as given."""

    downsync: tuple[DownsyncClause, ...] = ()
    upsync: tuple[UpsyncSet, ...] = ()
    want_singleton: bool = False
    upsync_tests: tuple[_UpsyncTest, ...] = field(default=(), compare=False, repr=False)


def _name_set(values: list[str] | None) -> frozenset[str] | None:
    """The names of a list where empty or ``"*"`` means any (``None``)."""
    names = frozenset(values or ())
    return None if not names or "*" in names else names


def _selectors(
    value: list[LabelSelector] | None, where: str, problems: list[str]
) -> tuple[tuple[Selector, ...], bool]:
    """(valid selectors, given).  An invalid selector is dropped and reported."""
    out: list[Selector] = []
    for i, raw in enumerate(value or ()):
        try:
            out.append(selector_of(raw))
        except SelectorError as err:
            problems.append(f"{where}[{i}] is invalid and matches nothing: {err}")
    return tuple(out), bool(value)


def _compile_clause(raw: DownsyncObjectTest, where: str, problems: list[str]) -> DownsyncClause:
    ns_sels, ns_given = _selectors(raw.namespace_selectors, f"{where}.namespaceSelectors", problems)
    l_sels, l_given = _selectors(raw.label_selectors, f"{where}.labelSelectors", problems)
    clause = DownsyncClause(
        api_group=raw.api_group,
        resources=_name_set(raw.resources),
        namespaces=_name_set(raw.namespaces),
        object_names=_name_set(raw.object_names),
        namespace_selectors=ns_sels,
        namespace_selectors_given=ns_given,
        label_selectors=l_sels,
        label_selectors_given=l_given,
    )
    if clause == DownsyncClause():
        problems.append(f"{where} has no discriminating criterion, so it matches every object")
    return clause


def compile_placement(spec: EdgePlacementSpec | None) -> tuple[CompiledPlacement, list[str]]:
    """Compile an EdgePlacement ``spec``; returns it and human-readable problems (never raises).

    The CRD's schema has checked the types.  What it cannot check is reported: a bad selector is
    dropped (it matches nothing), a clause without any criterion (it matches everything) is kept;
    the rest of the placement keeps working (decision 7).
    """
    if spec is None:
        return CompiledPlacement(), []
    problems: list[str] = []
    clauses = tuple(
        _compile_clause(raw, f"downsync[{i}]", problems) for i, raw in enumerate(spec.downsync or ())
    )
    upsync = tuple(spec.upsync or ())
    tests = tuple(_UpsyncTest.of(u) for u in upsync)
    return CompiledPlacement(clauses, upsync, spec.want_singleton_reported_state is True, tests), problems


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
    meta: Meta | None = None,
) -> bool | None:
    """Like :func:`selects`, but ``None`` when the answer depends on the labels of the object's
    Namespace and those are unknown (``namespace_labels`` is ``None``): retry later (C8c).
    ``meta`` is ``Meta(obj)`` when the caller has it already."""
    if excluded(gr) or is_system_object(obj):
        return False
    if meta is None:
        meta = Meta(obj)
    namespace, name = meta.namespace, meta.name
    if any(u.claims(gr, namespace, name) for u in p.upsync_tests):
        return False
    labels = meta.labels
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
    meta: Meta | None = None,
) -> bool:
    """Whether placement ``p`` downsyncs ``obj`` (of resource ``gr``).

    ``namespace_labels`` are the labels of the object's Namespace (ignored for cluster-scoped
    objects, which are tested against the empty label set); ``None`` for a namespaced object
    makes any namespaceSelectors criterion fail.
    """
    return match_state(p, gr, obj, namespace_labels, meta) is True


def upsync_claims(upsync: Iterable[UpsyncSet], gr: GroupResource, namespace: str, name: str) -> bool:
    """Whether some UpsyncSet claims the object (intended rule of behaviour 4.4, decision 5).

    apiGroup exact (absent = core); ``resources`` holds ``"*"`` or the resource; the object is
    cluster-scoped or ``namespaces`` holds ``"*"`` or its namespace; ``names`` holds ``"*"`` or
    its name.  Empty lists claim nothing.
    """
    return any(_UpsyncTest.of(u).claims(gr, namespace, name) for u in upsync)


def canonical_upsync(upsync_sets: Iterable[UpsyncSet]) -> list[UpsyncSet]:
    """UpsyncSets deduplicated by canonical JSON and sorted by it; inner lists keep their order."""
    canon = {
        json.dumps(u.model_dump(mode="json", exclude_unset=True), sort_keys=True, separators=(",", ":")): u
        for u in upsync_sets
    }
    return [canon[text] for text in sorted(canon)]


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
