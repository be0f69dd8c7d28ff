"""Typed, cluster-aware listers over an informer's cache (client-go's ``listers``, kcp's
cluster-aware listers as upstream KubeStellar's ``pkg/client/listers/edge/v2alpha1`` has them).

A lister only reads: it holds an indexer (anything with ``get``, ``list`` and ``by_index``, such
as ``pkg.runtime.store.Indexer`` or an informer) whose objects are already decoded into the
lister's model, so a read costs a dict lookup or an index scan and never decodes.  The objects
returned are the cached instances themselves: treat them as read-only (copy with
``model_copy(deep=True)`` before changing one).

The generated ``apis/edge/v2alpha1/listers.py`` has one subclass per resource;
:class:`ClusterLister` serves cluster-scoped kinds (``get(cluster, name)``),
:class:`NamespacedLister` namespaced ones (``get(cluster, namespace, name)``).  ``cluster`` is the
kcp logical cluster name (the ``kcp.io/cluster`` annotation), ``""`` for objects that carry none
(an informer on one plain cluster).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from apis.machinery.labels import Selector, selector_of
from apis.machinery.meta import (
    CLUSTER_INDEX,
    NAMESPACE_INDEX,
    cluster_of,
    labels_of,
    make_key,
    namespace_of,
)
from apis.machinery.resource import ResourceInfo

T = TypeVar("T")

SelectorLike = Selector | str | Mapping[str, Any] | Any | None
"""A label selector in any form :func:`apis.machinery.labels.selector_of` accepts."""


class IndexReader(Protocol[T]):
    """The read side of an indexed cache that a lister needs."""

    def get(self, key: str) -> T | None: ...

    def list(self) -> builtins.list[T]: ...

    def by_index(self, index: str, value: str) -> builtins.list[T]: ...


def _select(objects: builtins.list[T], selector: SelectorLike) -> builtins.list[T]:
    parsed = selector_of(selector)
    if parsed.empty:
        return objects
    return [obj for obj in objects if parsed.matches(labels_of(obj))]


class _Lister(Generic[T]):
    RESOURCE: ClassVar[ResourceInfo]
    """The resource listed (set by each generated subclass)."""

    def __init__(self, indexer: IndexReader[T]) -> None:
        self.indexer = indexer

    def _in_cluster(self, cluster: str | None) -> builtins.list[T]:
        if cluster is None:
            return self.indexer.list()
        if cluster == "":
            return [obj for obj in self.indexer.list() if not _has_cluster(obj)]
        return self.indexer.by_index(CLUSTER_INDEX, cluster)


def _has_cluster(obj: Any) -> bool:
    return bool(cluster_of(obj))


class ClusterLister(_Lister[T]):
    """Reads the cached objects of a cluster-scoped resource."""

    def get(self, cluster: str, name: str) -> T | None:
        """The object ``name`` of logical cluster ``cluster``, or ``None``."""
        return self.indexer.get(make_key(cluster, "", name))

    def list(self, cluster: str | None = None, selector: SelectorLike = None) -> builtins.list[T]:
        """The objects of ``cluster`` (``None``: of every cluster) whose labels match ``selector``
        (``None``: all), in no particular order."""
        return _select(self._in_cluster(cluster), selector)


class NamespacedLister(_Lister[T]):
    """Reads the cached objects of a namespaced resource."""

    def get(self, cluster: str, namespace: str, name: str) -> T | None:
        """The object ``namespace/name`` of logical cluster ``cluster``, or ``None``."""
        return self.indexer.get(make_key(cluster, namespace, name))

    def list(
        self, cluster: str | None = None, namespace: str | None = None, selector: SelectorLike = None
    ) -> builtins.list[T]:
        """The objects of ``cluster`` (``None``: every cluster) and ``namespace`` (``None``: every
        namespace) whose labels match ``selector`` (``None``: all), in no particular order."""
        if namespace is None:
            objects = self._in_cluster(cluster)
        elif cluster is None:
            objects = self.indexer.by_index(NAMESPACE_INDEX, namespace)
        else:
            objects = [o for o in self._in_cluster(cluster) if namespace_of(o) == namespace]
        return _select(objects, selector)
