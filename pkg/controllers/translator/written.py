"""Remembering our own writes until the informers show them (client-go's "expectations")."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from pkg.runtime.meta import resource_version_of

T = TypeVar("T", bound=Mapping[str, Any] | BaseModel)


class Written:
    """Objects this process wrote, shown instead of the cache until the cache catches up.

    An informer sees our own writes a little later; without this, a reconcile running in between
    would write the same thing again (client-go controllers keep "expectations" for the same
    reason).  A written object hides cached ones with an older resourceVersion; a deletion hides
    the deleted version.  A key holds one kind of object: dicts, or models of one edge kind.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objs: dict[str, tuple[bool, Any]] = {}

    def wrote(self, key: str, obj: Mapping[str, Any] | BaseModel) -> None:
        with self._lock:
            self._objs[key] = (True, obj)

    def deleted(self, key: str, resource_version: str) -> None:
        with self._lock:
            self._objs[key] = (False, resource_version)

    def fresh(self, key: str, cached: T | None) -> T | None:
        with self._lock:
            entry = self._objs.get(key)
            if entry is None:
                return cached
            exists, value = entry
            cached_rv = resource_version_of(cached) if cached is not None else None
            if not exists:
                if cached_rv is not None and cached_rv == value:
                    return None  # the cache still shows what we deleted
                del self._objs[key]
                return cached
            if cached_rv is not None and _rv_at_least(cached_rv, resource_version_of(value)):
                del self._objs[key]
                return cached
            written: T = value
            return written


def _rv_at_least(a: str, b: str) -> bool:
    try:
        return int(a) >= int(b)
    except ValueError:
        return a == b
