"""The what of one EdgePlacement, resolved against its WMW's cached objects (no server).

:func:`resolve` returns a :class:`Resolved`: the objects the placement selects, per resource, with
the CRDs that selected custom objects imply, its upsync, and the problems of its spec.  The
what-resolver controller (:mod:`.controller`) keeps one per placement; the translator joins them
with the placements' destinations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apis.edge.v2alpha1 import EdgePlacementSpec
from pkg.controllers.what.select import (
    CompiledPlacement,
    GroupResource,
    compile_placement,
    could_select,
    excluded,
    selects,
)
from pkg.runtime.meta import Meta

CRDS = GroupResource("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACES = GroupResource("", "namespaces")


@dataclass(frozen=True)
class ServedResource:
    """One resource a WMW serves: its kind, scope, served versions and defining CRD (if any)."""

    gr: GroupResource
    kind: str
    namespaced: bool
    versions: tuple[str, ...]
    crd: str | None = None


@dataclass(frozen=True, order=True)
class CopyKey:
    """One object of one resource; hashed once (keys are hashed many times per join)."""

    gr: GroupResource
    namespace: str
    name: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.gr, self.namespace, self.name)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.gr} {where}"


Parts = Mapping[CopyKey, tuple[Mapping[str, Any], ServedResource]]


@dataclass(frozen=True, eq=False)
class Resolved:
    """One placement's what.  Immutable; a new one replaces it when anything in it changes.

    ``parts`` maps each selected object's key to the cached object (never mutated: informers
    replace) and its resource; ``implicit`` are the CRDs brought only by selected custom objects;
    ``problems`` are the spec's and the unknown resources' messages.  Equality (:meth:`same`) is by
    keys and object identity, so an unchanged result compares equal without reading contents."""

    compiled: CompiledPlacement
    parts: Parts
    implicit: frozenset[CopyKey]
    problems: tuple[str, ...]

    def same(self, other: Resolved | None) -> bool:
        if other is None:
            return False
        if self.compiled != other.compiled or self.implicit != other.implicit:
            return False
        if self.problems != other.problems or self.parts.keys() != other.parts.keys():
            return False
        return all(
            obj is other.parts[k][0] and info == other.parts[k][1] for k, (obj, info) in self.parts.items()
        )

    def by_resource(self) -> dict[GroupResource, tuple[ServedResource, list[CopyKey]]]:
        """The selected objects per resource, with the resource's served versions."""
        out: dict[GroupResource, tuple[ServedResource, list[CopyKey]]] = {}
        for key, (_, info) in sorted(self.parts.items()):
            out.setdefault(key.gr, (info, []))[1].append(key)
        return out


def resolve(
    spec: EdgePlacementSpec | None,
    path: str,
    resources: Mapping[GroupResource, ServedResource],
    objects: Mapping[GroupResource, Sequence[Mapping[str, Any]]],
    namespaces: Mapping[str, Mapping[str, str]],
) -> Resolved:
    """The objects of one WMW (workspace ``path``) that a placement with ``spec`` selects.

    ``objects`` are the WMW's cached objects per resource (at least those the spec could select,
    and its CRDs); ``namespaces`` maps each Namespace to its labels."""
    compiled, problems = compile_placement(spec)
    problems.extend(_unknown_resources(compiled, path, resources))
    parts: dict[CopyKey, tuple[Mapping[str, Any], ServedResource]] = {}
    crds = {Meta(o).name: o for o in objects.get(CRDS, ())}
    crd_info = resources.get(CRDS)
    for gr, info in resources.items():
        if excluded(gr) or not could_select(compiled, gr):
            continue
        for obj in objects.get(gr, ()):
            meta = Meta(obj)
            if meta.deleting:
                continue
            ns_labels: Mapping[str, str] | None = namespaces.get(meta.namespace) if info.namespaced else {}
            if selects(compiled, gr, obj, ns_labels, meta):
                parts[CopyKey(gr, meta.namespace, meta.name)] = (obj, info)
    # A selected custom object brings the CRD that defines it (an explicit selection wins).
    implicit: set[CopyKey] = set()
    for _, info in list(parts.values()):
        if info.crd and crd_info is not None and info.crd in crds:
            key = CopyKey(CRDS, "", info.crd)
            if key not in parts:
                parts[key] = (crds[info.crd], crd_info)
                implicit.add(key)
    return Resolved(compiled, parts, frozenset(implicit), tuple(problems))


def _unknown_resources(
    compiled: CompiledPlacement, path: str, resources: Mapping[GroupResource, ServedResource]
) -> list[str]:
    """Downsync clauses naming resources that this WMW does not serve (reported, not fatal)."""
    out = []
    for i, clause in enumerate(compiled.downsync):
        for resource in sorted(clause.resources or ()):
            if not any(clause.group_resource_ok(gr) for gr in resources if gr.resource == resource):
                group = "any group" if clause.api_group is None else f"group {clause.api_group!r}"
                out.append(f"downsync[{i}]: resource {resource!r} of {group} is not served in {path}")
    return out


def selects_namespaced_by_labels(compiled: CompiledPlacement) -> bool:
    """Whether a Namespace's labels can change what ``compiled`` selects."""
    return any(c.namespace_selectors_given for c in compiled.downsync)
