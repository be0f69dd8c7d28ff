"""A thread-safe, indexed object cache: client-go's ``tools/cache`` Store and Indexer.

Objects are the decoded JSON of Kubernetes objects (plain dicts), or, in a typed cache, instances
of a generated model (``Indexer[EdgePlacement]``); the key and built-in index functions read both
(:mod:`apis.machinery.meta`).  Each is stored under the key its key function
gives; the default, :func:`cluster_namespace_key`, is kcp's cluster-aware form of client-go's
``MetaNamespaceKeyFunc``:

===========================  =========================
object                       key
===========================  =========================
namespaced, in a cluster     ``<cluster>|<namespace>/<name>``
cluster-scoped, in a cluster ``<cluster>|<name>``
namespaced, no cluster       ``<namespace>/<name>``
cluster-scoped, no cluster   ``<name>``
===========================  =========================

where the cluster is the object's ``kcp.io/cluster`` annotation (which kcp sets on every object it
serves).  Names, namespaces and cluster names contain neither ``|`` nor ``/``, so
:func:`split_key` inverts it.

An index maps each of its values to the keys of the objects whose index function returns that
value.  Every indexer has the two built-in indexes :data:`NAMESPACE_INDEX` (client-go's
``NamespaceIndex``; cluster-scoped objects are not in it) and :data:`CLUSTER_INDEX` (the logical
cluster; objects without one are not in it), plus any custom ones.

Invariants, kept under one lock: for every index ``i``, value ``v`` and stored key ``k``,
``k in indices[i][v]`` exactly when ``v in indexers[i](items[k])``; no index holds an empty set.

The cache hands out the stored objects themselves, not copies: callers must treat them as read-only
(as client-go's listers do).  Index functions run under the lock and must be quick and pure.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic

from typing_extensions import TypeVar

from apis.machinery.meta import (
    CLUSTER_INDEX,
    NAME_INDEX,
    NAMESPACE_INDEX,
    cluster_index,
    make_key,
    name_index,
    namespace_index,
    split_key,
)
from apis.machinery.meta import object_key as cluster_namespace_key

Object = dict[str, Any]
"""An object as decoded JSON."""
KeyFunc = Callable[[Any], str]
"""Maps a stored object (dict or model) to its key."""
IndexFunc = Callable[[Any], list[str]]
"""Maps a stored object (dict or model) to its values in one index."""

T = TypeVar("T", default=Object)
"""What a cache stores: decoded-JSON dicts unless a model class is given."""

__all__ = [
    "CLUSTER_INDEX",
    "NAMESPACE_INDEX",
    "NAME_INDEX",
    "IndexFunc",
    "Indexer",
    "KeyFunc",
    "Object",
    "cluster_index",
    "cluster_namespace_key",
    "make_key",
    "name_index",
    "namespace_index",
    "split_key",
]


class Indexer(Generic[T]):
    """A keyed, indexed store of objects (client-go's ``cache.Indexer``); every method is thread-safe.

    ``Indexer`` alone stores dicts; ``Indexer[Model]`` stores instances of a model class.
    """

    def __init__(
        self, key_func: KeyFunc = cluster_namespace_key, indexers: Mapping[str, IndexFunc] | None = None
    ) -> None:
        self.key_func = key_func
        self._lock = threading.Lock()
        self._items: dict[str, T] = {}
        self._indexers: dict[str, IndexFunc] = {
            NAMESPACE_INDEX: namespace_index,
            CLUSTER_INDEX: cluster_index,
        }
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self.resource_version = ""
        """The resource version given to the last :meth:`replace` (informational)."""
        if indexers:
            self.add_indexers(indexers)

    # --- writes --------------------------------------------------------------------------------

    def add(self, obj: T) -> T | None:
        """Store ``obj`` under its key, replacing and returning the object stored there before."""
        key = self.key_func(obj)
        with self._lock:
            return self._put(key, obj)

    update = add

    def delete(self, obj: T) -> T | None:
        """Remove the object with ``obj``'s key; return what was stored there (``None`` if nothing)."""
        return self.delete_key(self.key_func(obj))

    def delete_key(self, key: str) -> T | None:
        with self._lock:
            return self._remove(key)

    def replace(self, objects: Iterable[T], resource_version: str = "") -> dict[str, T]:
        """Make ``objects`` the whole content, atomically; return the objects that were dropped, by key."""
        fresh = {self.key_func(obj): obj for obj in objects}
        with self._lock:
            dropped = {key: obj for key, obj in self._items.items() if key not in fresh}
            self._items = fresh
            self._indices = {name: {} for name in self._indexers}
            for key, obj in fresh.items():
                self._index(key, obj)
            self.resource_version = resource_version
        return dropped

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes (also when objects are stored already).

        Adding a name again with the same function is a no-op; with another function it is an error.
        """
        with self._lock:
            for name, func in indexers.items():
                existing = self._indexers.get(name)
                if existing is func:
                    continue
                if existing is not None:
                    raise ValueError(f"indexer {name!r} already exists with another function")
                self._indexers[name] = func
                index: dict[str, set[str]] = {}
                self._indices[name] = index
                for key, obj in self._items.items():
                    for value in func(obj):
                        index.setdefault(value, set()).add(key)

    # --- reads ---------------------------------------------------------------------------------

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    def get_object(self, obj: T) -> T | None:
        """The stored object with ``obj``'s key."""
        return self.get(self.key_func(obj))

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def list(self) -> builtins.list[T]:
        with self._lock:
            return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def items(self) -> builtins.list[tuple[str, T]]:
        """A snapshot of ``(key, object)`` pairs."""
        with self._lock:
            return list(self._items.items())

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        """The objects whose ``index`` function returns ``value`` (``KeyError`` for an unknown index)."""
        with self._lock:
            keys = self._index_of(index).get(value, ())
            return [self._items[key] for key in keys]

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        with self._lock:
            return list(self._index_of(index).get(value, ()))

    def index_values(self, index: str) -> builtins.list[str]:
        """The values ``index`` holds (client-go's ``ListIndexFuncValues``)."""
        with self._lock:
            return list(self._index_of(index))

    def index(self, index: str, obj: T) -> builtins.list[T]:
        """The objects sharing any ``index`` value with ``obj``."""
        with self._lock:
            func = self._indexers.get(index)
            if func is None:
                raise KeyError(f"index {index!r} does not exist")
            values = self._index_of(index)
            keys: set[str] = set()
            for value in func(obj):
                keys |= values.get(value, set())
            return [self._items[key] for key in keys]

    def indexer_names(self) -> builtins.list[str]:
        with self._lock:
            return list(self._indexers)

    # --- internals (lock held) ------------------------------------------------------------------

    def _index_of(self, index: str) -> dict[str, set[str]]:
        try:
            return self._indices[index]
        except KeyError:
            raise KeyError(f"index {index!r} does not exist") from None

    def _put(self, key: str, obj: T) -> T | None:
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def _remove(self, key: str) -> T | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index(self, key: str, obj: T) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: T) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
