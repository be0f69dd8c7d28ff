"""The Prometheus registry the runtime reports into, as controller-runtime's ``metrics.Registry``.

Metric families register once per registry (prometheus-client refuses a second registration of a
name), so components define theirs through :class:`PerRegistry` and take the registry as a
parameter; tests pass a fresh ``CollectorRegistry`` and read values back from it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

REGISTRY = CollectorRegistry()
# Process (RSS, CPU seconds, open fds), Python GC and platform metrics, as controller-runtime's
# registry carries Go's process and runtime collectors.
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

F = TypeVar("F")


class PerRegistry(Generic[F]):
    """Builds a group of metric families the first time it is asked for them in a given registry."""

    def __init__(self, build: Callable[[CollectorRegistry], F]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: weakref.WeakKeyDictionary[CollectorRegistry, F] = weakref.WeakKeyDictionary()

    def __call__(self, registry: CollectorRegistry | None = None) -> F:
        registry = REGISTRY if registry is None else registry
        with self._lock:
            families = self._built.get(registry)
            if families is None:
                families = self._build(registry)
                self._built[registry] = families
            return families
