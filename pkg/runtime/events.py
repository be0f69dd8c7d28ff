"""An Event recorder: Kubernetes Events about users' objects, in the objects' own workspaces.

Like client-go's recorder and ``EventCorrelator``:

* an Event goes to the involved object's logical cluster and namespace (a cluster-scoped object's
  Events go to namespace ``default``);
* a repeat of the same (object, type, reason, message) updates the existing Event's ``count`` and
  ``lastTimestamp`` instead of creating another one;
* more than ``max_similar`` distinct messages with the same (object, type, reason) within
  ``similar_window`` seconds are aggregated into one Event whose message says so;
* a per-object token bucket (burst 25, one token per 5 minutes) drops floods.

Recording never blocks the caller: Events are written by one background thread, and a failure to
write one is logged, never raised.  Each recorded Event is also one log line.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from apis.machinery import timestamps
from pkg.runtime import kcp, kube
from pkg.runtime.rest import ApiError, RestClient

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about."""

    cluster: str
    api_version: str
    kind: str
    name: str
    namespace: str = ""
    uid: str = ""

    @classmethod
    def of(cls, obj: dict[str, Any], cluster: str | None = None) -> ObjectRef:
        md = obj.get("metadata") or {}
        return cls(
            cluster=cluster or kcp.cluster_of(obj),
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            name=str(md.get("name", "")),
            namespace=str(md.get("namespace", "")),
            uid=str(md.get("uid", "")),
        )


class _Bucket:
    def __init__(self, burst: int, refill_seconds: float) -> None:
        self.tokens = float(burst)
        self.burst = burst
        self.refill = refill_seconds
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) / self.refill)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class EventRecorder:
    def __init__(
        self,
        client: RestClient,
        component: str,
        *,
        max_similar: int = 10,
        similar_window: float = 600.0,
        burst: int = 25,
        refill_seconds: float = 300.0,
    ) -> None:
        self.client = client  # at the server root; Events are written per logical cluster
        self.component = component
        self.max_similar = max_similar
        self.similar_window = similar_window
        self._burst = burst
        self._refill = refill_seconds
        self._lock = threading.Lock()
        # (ref, type, reason, message) -> (event name, count, cluster, namespace)
        self._seen: LRUCache[tuple[Any, ...], tuple[str, int]] = LRUCache(maxsize=4096)
        # (ref, type, reason) -> {message: first seen}
        self._similar: LRUCache[tuple[Any, ...], dict[str, float]] = LRUCache(maxsize=4096)
        self._buckets: LRUCache[ObjectRef, _Bucket] = LRUCache(maxsize=4096)
        self._queue: queue.Queue[tuple[ObjectRef, str, str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"events-{self.component}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every Event recorded so far was written (tests use it)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        level = logging.WARNING if type_ == WARNING else logging.INFO
        log.log(
            level,
            "Event occurred object=%s/%s kind=%s cluster=%s type=%s reason=%s message=%r",
            ref.namespace,
            ref.name,
            ref.kind,
            ref.cluster,
            type_,
            reason,
            message,
        )
        if not ref.cluster:
            return
        self._queue.put((ref, type_, reason, message))
        self.start()

    def warning(self, ref: ObjectRef, reason: str, message: str) -> None:
        self.event(ref, WARNING, reason, message)

    def normal(self, ref: ObjectRef, reason: str, message: str) -> None:
        self.event(ref, NORMAL, reason, message)

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._write(*item)
            except Exception as e:  # never let one Event stop the recorder
                log.warning("could not write event err=%s", e)
            finally:
                self._queue.task_done()

    def _aggregate(self, ref: ObjectRef, type_: str, reason: str, message: str) -> str:
        now = time.monotonic()
        key = (ref, type_, reason)
        messages = self._similar.get(key) or {}
        messages = {m: t for m, t in messages.items() if now - t < self.similar_window}
        messages.setdefault(message, now)
        self._similar[key] = messages
        if len(messages) > self.max_similar:
            return f"(combined from similar events): {message}"
        return message

    def _write(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        with self._lock:
            message = self._aggregate(ref, type_, reason, message)
            key = (ref, type_, reason, message)
            seen = self._seen.get(key)
            if seen is None:
                bucket = self._buckets.get(ref)
                if bucket is None:
                    bucket = self._buckets[ref] = _Bucket(self._burst, self._refill)
                if not bucket.take():
                    log.info("dropping event (spam filter) object=%s reason=%s", ref.name, reason)
                    return
        namespace = ref.namespace or "default"
        events = kcp.cluster(self.client, ref.cluster)
        path = kube.EVENTS.path(namespace=namespace)
        now = timestamps.time_string()
        if seen is not None:
            name, count = seen
            try:
                events.patch(f"{path}/{name}", {"count": count + 1, "lastTimestamp": now})
                with self._lock:
                    self._seen[key] = (name, count + 1)
                return
            except ApiError as e:
                if not e.not_found:
                    raise
        name = f"{ref.name or 'object'}.{uuid.uuid4().hex[:16]}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                **({"namespace": ref.namespace} if ref.namespace else {}),
                **({"uid": ref.uid} if ref.uid else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
        }
        events.create(path, body)
        with self._lock:
            self._seen[key] = (name, 1)
