"""Edge objects as models, read from an informer's cache of dicts.

:class:`Decoded` gives a controller the typed reads it needs (``get``, ``list``, ``by_index``)
over an informer of an edge resource: each cached object is decoded into its model once per
resourceVersion and the model is reused until the object changes.  An object that the server
accepted but the model rejects is left out and logged once per resourceVersion.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from apis.edge.v2alpha1 import KubeObject
from pkg.runtime.informer import Informer
from pkg.runtime.meta import Meta
from pkg.runtime.store import make_key

log = logging.getLogger(__name__)

M = TypeVar("M", bound=KubeObject)


class Decoded(Generic[M]):
    """The models of the objects in ``informer``'s cache (the informer stays the event source)."""

    def __init__(self, informer: Informer, model: type[M]) -> None:
        self.informer = informer
        self.model = model
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, int, M | None]] = {}  # key -> (resourceVersion, id, model)

    def decode(self, obj: Mapping[str, Any]) -> M | None:
        """The model of one cached object (``None`` if the model rejects it)."""
        meta = Meta(obj)
        key, rv = make_key(meta.cluster, meta.namespace, meta.name), meta.resource_version
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == rv and (rv or hit[1] == id(obj)):
            return hit[2]
        try:
            model: M | None = self.model.model_validate(obj)
        except ValidationError as e:
            log.warning("%s %s is not a valid %s: %s", self.model.__name__, key, self.model.__name__, e)
            model = None
        with self._lock:
            self._cache[key] = (rv, id(obj), model)
        return model

    def get(self, key: str) -> M | None:
        obj = self.informer.get(key)
        if obj is None:
            with self._lock:
                self._cache.pop(key, None)
            return None
        return self.decode(obj)

    def list(self) -> list[M]:
        return [m for m in (self.decode(o) for o in self.informer.list()) if m is not None]

    def by_index(self, index: str, value: str) -> builtins.list[M]:
        return [m for m in (self.decode(o) for o in self.informer.by_index(index, value)) if m is not None]
