"""A small typed view of an unstructured object's ``metadata`` (after kopf's ``Body``/``Meta``).

Workload objects (everything that is not an edge.kubestellar.io type) stay the dicts that the
server sent; controllers read their metadata through :class:`Meta` instead of chains of
``.get("metadata") or {}``.  The view never raises and never copies: a missing or malformed
member reads as empty (``""``, ``{}``, ``None``), which is what every caller wants of a cached
object whose shape the API server already checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from pydantic import BaseModel

from pkg.runtime.kcp import CLUSTER_ANNOTATION

__all__ = ["Meta", "resource_version_of"]

_EMPTY: Mapping[str, Any] = {}


def _str(value: object) -> str:
    return value if type(value) is str else ""  # exactly str: the cheapest test


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))  # dict: no ABC check


def _str_map(value: object) -> Mapping[str, str]:
    return value if type(value) is dict or _is_mapping(value) else _EMPTY


class Meta:
    """``Meta(obj).name``, ``.namespace``, ``.labels``, ``.annotations``, ``.cluster``, ... of a
    dict-shaped Kubernetes object (``None`` reads as an object without metadata)."""

    __slots__ = ("_md",)

    def __init__(self, obj: Mapping[str, Any] | None) -> None:
        md = obj.get("metadata") if obj is not None else None
        self._md: Mapping[str, Any] = md if type(md) is dict or _is_mapping(md) else _EMPTY

    @property
    def raw(self) -> Mapping[str, Any]:
        """The metadata mapping itself (read-only by convention: cached objects are shared)."""
        return self._md

    @property
    def name(self) -> str:
        return _str(self._md.get("name"))

    @property
    def namespace(self) -> str:
        """``""`` for a cluster-scoped object."""
        return _str(self._md.get("namespace"))

    @property
    def uid(self) -> str:
        return _str(self._md.get("uid"))

    @property
    def resource_version(self) -> str:
        return _str(self._md.get("resourceVersion"))

    @property
    def generation(self) -> int:
        value = self._md.get("generation")
        return value if isinstance(value, int) else 0

    @property
    def labels(self) -> Mapping[str, str]:
        return _str_map(self._md.get("labels"))

    @property
    def annotations(self) -> Mapping[str, str]:
        return _str_map(self._md.get("annotations"))

    @property
    def cluster(self) -> str:
        """The logical cluster the object came from (its ``kcp.io/cluster`` annotation)."""
        return _str(self.annotations.get(CLUSTER_ANNOTATION))

    @property
    def deleting(self) -> bool:
        """Whether the object has a ``deletionTimestamp`` (it is going away)."""
        return bool(self._md.get("deletionTimestamp"))


def resource_version_of(obj: Mapping[str, Any] | BaseModel) -> str:
    """The resourceVersion of a cached object: a dict, or a model of an edge kind."""
    if isinstance(obj, Mapping):
        return Meta(obj).resource_version
    return str(getattr(getattr(obj, "metadata", None), "resource_version", None) or "")
