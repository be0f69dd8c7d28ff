"""Remembering our own writes until the informers show them (client-go's "expectations")."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from pkg.runtime.meta import resource_version_of

T = TypeVar("T", bound=Mapping[str, Any] | BaseModel)


@dataclass(frozen=True)
class _Entry:
    exists: bool
    value: Any  # the object written, or the resourceVersion deleted
    superseded: frozenset[str]  # resourceVersions that our writes replaced


class Written:
    """Objects this process wrote, shown instead of the cache until the cache catches up.

    An informer sees our own writes a little later; without this, a reconcile running in between
    would write the same thing again (client-go controllers keep "expectations" for the same
    reason).  resourceVersions are opaque: they are compared for equality only, never ordered.
    A written object hides a cached version that one of our writes replaced (``replaced``: what
    the write was based on, remembered along a chain of writes); a cached version equal to ours,
    or one we never replaced (a later write by someone else), is believed and the memory goes.
    A deletion hides exactly the deleted version.  A key holds one kind of object: dicts, or
    models of one edge kind.

    A write's echo can reach the informer before the writer has the server's answer in hand (the
    watch and the response are read by different threads): while a write to a key is in flight
    (:meth:`writing`), :meth:`echo` defers its answer and the write's end decides, by the same
    rule, once the written version is known.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objs: dict[str, _Entry] = {}
        self._inflight: dict[str, list[tuple[str, bool]]] = {}  # key -> events seen meanwhile

    @contextmanager
    def writing(self, key: str, again: Callable[[], None]) -> Iterator[None]:
        """Around one write to ``key`` (and its :meth:`wrote` or :meth:`deleted`): events on
        ``key`` that arrive meanwhile are judged when the block ends, and ``again()`` is called
        if one of them is not our write's echo (also when the write failed).  One writer per key
        at a time (a key belongs to one mailbox, which one worker reconciles at a time)."""
        with self._lock:
            self._inflight[key] = []
        try:
            yield
        finally:
            with self._lock:
                seen = self._inflight.pop(key, [])
                foreign = [not self._echo(key, rv, deleted) for rv, deleted in seen]
            if any(foreign):
                again()

    def wrote(
        self,
        key: str,
        obj: Mapping[str, Any] | BaseModel,
        replaced: Mapping[str, Any] | BaseModel | None = None,
    ) -> None:
        """Remember ``obj`` as written; ``replaced`` is the version the write was based on (None
        for a create)."""
        with self._lock:
            superseded: set[str] = set()
            before = self._objs.get(key)
            if before is not None and before.exists:
                superseded |= before.superseded
                superseded.add(resource_version_of(before.value))
            if replaced is not None:
                superseded.add(resource_version_of(replaced))
            superseded.discard(resource_version_of(obj))
            self._objs[key] = _Entry(True, obj, frozenset(superseded))

    def forget(self, key: str) -> None:
        with self._lock:
            self._objs.pop(key, None)

    def deleted(self, key: str, resource_version: str) -> None:
        with self._lock:
            self._objs[key] = _Entry(False, resource_version, frozenset())

    def echo(self, key: str, resource_version: str, deleted: bool = False) -> bool:
        """An informer event on ``key`` showing ``resource_version``: whether it is the echo of our
        own last write there (an add or update showing the version we wrote, or, ``deleted``, a
        delete of the version we deleted).  The memory stays until :meth:`fresh` sees the cache
        caught up (a reconcile may still hold a view older than the event), except after a delete
        of what we wrote, somebody else's: the memory would hide that the object is gone."""
        with self._lock:
            seen = self._inflight.get(key)
            if seen is not None and resource_version:
                seen.append((resource_version, deleted))  # judged when the write ends
                return True
            return self._echo(key, resource_version, deleted)

    def _echo(self, key: str, resource_version: str, deleted: bool) -> bool:
        """:meth:`echo`'s rule; the caller holds the lock."""
        entry = self._objs.get(key)
        if entry is None or not resource_version:
            return False
        if deleted and entry.exists:  # somebody deleted what we wrote
            del self._objs[key]
            return False
        if deleted:  # a delete: ours if we deleted this version
            return bool(entry.value == resource_version)
        return entry.exists and resource_version_of(entry.value) == resource_version

    def fresh(self, key: str, cached: T | None) -> T | None:
        with self._lock:
            entry = self._objs.get(key)
            if entry is None:
                return cached
            cached_rv = resource_version_of(cached) if cached is not None else None
            if not entry.exists:
                if cached_rv is not None and cached_rv == entry.value:
                    return None  # the cache still shows what we deleted
                del self._objs[key]
                return cached
            if cached_rv is not None and cached_rv not in entry.superseded:
                del self._objs[key]
                return cached  # ours, or a version written after ours
            written: T = entry.value
            return written
