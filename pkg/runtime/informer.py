"""Informers: a list+watch reflector feeding an indexed cache and event handlers (client-go's
``tools/cache`` Reflector and SharedIndexInformer), with threads, over :class:`RestClient`.

One :class:`Informer` watches one resource collection under one client prefix (a logical cluster,
kcp's ``/clusters/*``, or a virtual workspace), optionally narrowed by label and field selectors.
Its watch thread runs the reflector loop of spec §2.8:

1. **List**, following ``continue`` tokens.  The first list asks for ``resourceVersion=0`` with
   ``limit`` (the apiserver's watch cache serves it whole); a relist after a watch failure asks for
   the last resource version seen, without ``limit`` so the watch cache serves it ("not older
   than"); a relist after the list itself failed with 410 Gone or "too large resource version" asks
   for ``""`` (a consistent read from etcd), paginated.  The result replaces the cache atomically:
   objects that are new are *added*, those already known are *updated* (also when unchanged, as
   client-go's Replace/Sync deltas are), and known objects missing from the list are *deleted*, with
   the last known object (the tombstone client-go wraps in ``DeletedFinalStateUnknown``).
2. **Watch** from the list's resource version with ``allowWatchBookmarks=true`` and a server
   ``timeoutSeconds`` drawn from [300, 600].  Every event and bookmark advances the last resource
   version.  A client read timeout (70 s, longer than the watch cache's one-minute bookmarks) bounds
   the silence on the stream, so a stalled connection is noticed.
3. When the server ends the watch, or the stream breaks or stalls, **watch again** at once from the
   last resource version.  A watch that ends within 1 s without an event counts as a failure.
4. On failure, **back off** (0.8 s doubling to 30 s, with up to 100 % jitter, reset after 2 min
   without a failure; :class:`Backoff`); when the server did not answer at all, the backoff also
   ends, and starts over, soon after the server answers again (a probe, or another informer's
   success: :mod:`pkg.runtime.reachability`, staggered so informers do not relist all at once),
   then: after 410 Gone (an HTTP answer or an in-stream ``ERROR`` event with code 410) or any
   other error, relist; after 429, 401 (the client has reloaded its credentials) or a refused
   connection, watch again without relisting.

Event handlers (:meth:`Informer.add_event_handler`) never run on the watch thread: the watch thread
updates the cache and appends notifications to an unbounded queue that one dispatcher thread per
informer drains, in order, so a slow handler delays other handlers but never the watch.  A handler
added to a running informer first receives an add for every object then in the cache, then the
notifications that follow; its registration's :meth:`~HandlerRegistration.has_synced` turns true
once it has received the initial list.  Handler exceptions are logged and dropped.

Objects are plain decoded-JSON dicts, shared between the cache and all handlers: treat them as
read-only.  Items of a list get ``kind`` and ``apiVersion`` from the list when they lack them, so
listed and watched objects look alike.

**Typed informers** (``model=EdgePlacement``, any generated model class): each list page and watch
event is decoded from its raw bytes into the model once, as it arrives (:mod:`pkg.runtime.decode`);
the cache holds model instances, handlers receive them, and ``get``/``list``/``by_index`` return
them, so nothing is decoded on a read.  An object the server accepted but the model rejects is
kept out of the cache: it is logged (once per resource version), counted in ``stats.rejected``, and
handed, on the dispatcher thread, to ``on_decode_error(obj_dict, error)`` and as a Warning Event
``InvalidObject`` on that object to ``event_recorder`` when one is given; the informer goes on
with the next object.  Invariant of a typed cache: for every key it holds the newest version of
that object that the model accepted, unless a delete came after it; an object the model never
accepted is absent.  (A rejected update therefore leaves the previous valid version in effect
rather than making the object look deleted.)

:class:`SharedInformerFactory` hands out one informer per (client prefix, resource path,
selectors), so controllers watching the same thing share one cache and one watch.
"""

from __future__ import annotations

import builtins
import logging
import random
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, cast, overload

import urllib3
from pydantic import BaseModel
from typing_extensions import TypeVar

from pkg.runtime import reachability
from pkg.runtime.clock import Clock, RealClock
from pkg.runtime.decode import ModelDecoder, summarize
from pkg.runtime.klog import V, kv
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import Indexer, IndexFunc, KeyFunc, Object, cluster_namespace_key

if TYPE_CHECKING:
    from pkg.runtime.events import EventRecorder

T = TypeVar("T", default=Object)
"""What an informer caches and hands to handlers: dicts, or instances of its model."""
M = TypeVar("M", bound=BaseModel)

DecodeErrorHook = Callable[[Object, Exception], None]
"""Called with an object (as sent) that the typed informer's model rejected, and the error."""

INVALID_OBJECT_REASON = "InvalidObject"
"""The reason of the Warning Event a typed informer records on an object its model rejects."""

_log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 70.0
"""Seconds of silence after which a watch stream counts as stalled (kopf's 70 s; spec §2.8)."""

MIN_WATCH_TIMEOUT = 300
"""client-go's ``defaultMinWatchTimeout``; each watch asks for a ``timeoutSeconds`` in [min, 2*min]."""

DEFAULT_PAGE_SIZE = 500
"""client-go's pager default page size."""

VERY_SHORT_WATCH = 1.0
"""A watch that ends this fast without an event is a failure (client-go's ``VeryShortWatchError``)."""

_ADD, _UPDATE, _DELETE, _SYNCED, _REJECTED = range(5)


class Backoff:
    """client-go's ``exponentialBackoffManager`` with the reflector's defaults.

    :meth:`next` returns ``d * (1 + jitter * U[0, 1))`` where ``d`` starts at ``initial`` and doubles
    (by ``factor``) on every call up to ``maximum``; when more than ``reset_after`` seconds have passed
    since the previous call, ``d`` starts over at ``initial``.
    """

    def __init__(
        self,
        initial: float = 0.8,
        maximum: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.reset_after = reset_after
        self.clock: Clock = RealClock() if clock is None else clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._current = initial
        self._last: float | None = None

    def next(self) -> float:
        with self._lock:
            now = self.clock.now()
            if self._last is not None and now - self._last > self.reset_after:
                self._current = self.initial
            self._last = now
            delay = self._current
            self._current = min(self._current * self.factor, self.maximum)
        return delay * (1.0 + self.jitter * self._rng.random()) if self.jitter > 0 else delay

    def reset(self) -> None:
        """Start over at ``initial`` (the server answers again: :mod:`pkg.runtime.reachability`)."""
        with self._lock:
            self._current = self.initial
            self._last = None


@dataclass(eq=False)
class HandlerRegistration(Generic[T]):
    """One handler set added to an informer; pass it to :meth:`Informer.remove_event_handler`."""

    on_add: Callable[[T], None] | None = None
    on_update: Callable[[T, T], None] | None = None
    on_delete: Callable[[T], None] | None = None
    _synced: threading.Event = field(default_factory=threading.Event, repr=False)
    _removed: bool = field(default=False, repr=False)

    def has_synced(self) -> bool:
        """Whether this handler has received the notifications for the informer's initial list."""
        return self._synced.is_set()


@dataclass
class InformerStats:
    """Counters for tests and debugging (read without locking)."""

    lists: int = 0
    """Successful lists (the first one included)."""
    watches: int = 0
    """Watch requests made."""
    expired: int = 0
    """Watches or lists that ended with 410 Gone."""
    failures: int = 0
    """Failures followed by a backoff."""
    rejected: int = 0
    """Object versions a typed informer's model rejected (each counted once)."""


class _VeryShortWatch(Exception):
    pass


_Entry = tuple[tuple[HandlerRegistration[Any], ...], int, Any, Any]


class Informer(Generic[T]):
    """A list+watch cache of one resource collection, with indexes and event handlers.

    ``resource_path`` is the collection's API path under ``client``'s prefix, e.g.
    ``/api/v1/configmaps``, ``/api/v1/namespaces/ns/configmaps`` or
    ``/apis/edge.kubestellar.io/v2alpha1/edgeplacements``.  ``transform`` (client-go's
    ``SetTransform``) may shrink each object before it is cached, e.g. drop ``managedFields``; it must
    keep ``metadata``'s name, namespace, resourceVersion and annotations.  With ``model`` (a generated
    model class) the informer is typed (see the module docstring): ``transform`` then receives and
    returns model instances (:func:`pkg.runtime.decode.drop_managed_fields` is done while decoding),
    ``on_decode_error`` and ``event_recorder`` hear of rejected objects, and ``share_fields_sets``
    (on by default) makes the cached models share read-only fields sets
    (:mod:`apis.machinery.shared`: about a third less memory; assigning to a cached model raises
    ``TypeError``, change a ``model_copy(deep=True)`` instead).
    ``clock`` times the backoff
    (tests pass a :class:`~pkg.runtime.clock.FakeClock` to hold the informer in backoff).
    An informer runs once: after :meth:`stop` it cannot start again.
    """

    def __init__(
        self,
        client: RestClient,
        resource_path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        key_func: KeyFunc = cluster_namespace_key,
        transform: Callable[[T], T] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        min_watch_timeout: int = MIN_WATCH_TIMEOUT,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        name: str | None = None,
        model: type[T] | None = None,
        on_decode_error: DecodeErrorHook | None = None,
        event_recorder: EventRecorder | None = None,
        share_fields_sets: bool = True,
    ) -> None:
        self.client = client
        self.resource_path = "/" + resource_path.strip("/")
        self.label_selector = label_selector or None
        self.field_selector = field_selector or None
        self.indexer: Indexer[T] = Indexer(key_func, indexers)
        self.transform = transform
        self.model = model
        self._decoder: ModelDecoder[Any] | None = None
        if model is not None:
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"model must be a pydantic model class, not {model!r}")
            self._decoder = ModelDecoder(
                model, cast("Callable[[Any], Any] | None", transform), share_fields_sets=share_fields_sets
            )
        self.on_decode_error = on_decode_error
        self.event_recorder = event_recorder
        self._rejected_rv: dict[str, str] = {}  # key -> resourceVersion last reported as rejected
        self.page_size = page_size
        self.read_timeout = read_timeout
        self.min_watch_timeout = min_watch_timeout
        self.clock: Clock = RealClock() if clock is None else clock
        self.backoff = backoff or Backoff(clock=self.clock)
        self.name = name or f"{client.prefix}{self.resource_path}"
        self.stats = InformerStats()
        self._rng = random.Random()

        self._lock = threading.Lock()  # cache writes + enqueueing, and handler registration
        self._handlers: tuple[HandlerRegistration[T], ...] = ()
        self._synced = threading.Event()

        self._queue: deque[_Entry] = deque()
        self._queue_cond = threading.Condition()

        self._cond = threading.Condition()  # backoff waits; notified by stop() and wake()
        self._reachability = reachability.for_client(client)
        self._wake_at: float | None = None  # set by wake(): end the backoff then
        self._ups_seen = self._reachability.ups if self._reachability is not None else 0
        self._started = False
        self._stopping = False
        self._threads: list[threading.Thread] = []

        self._last_rv = ""
        self._rv_unavailable = False  # the last list failed with 410/too large: relist from ""
        self._stream_lock = threading.Lock()
        self._stream: Iterator[Any] | None = None
        self._rewatch_requested = False
        self._rewatch_rv: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the watch and dispatcher threads (a no-op when running)."""
        with self._cond:
            if self._stopping:
                raise RuntimeError(f"informer {self.name} was stopped; it cannot start again")
            if self._started:
                return
            self._started = True
        self._threads = [
            threading.Thread(target=self._dispatch_loop, name=f"informer-dispatch {self.name}", daemon=True),
            threading.Thread(target=self._run, name=f"informer-watch {self.name}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the watch (closing its connection) and the dispatcher; ``True`` if both ended in time.

        Notifications not yet delivered are dropped.  Safe to call from a handler.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with self._queue_cond:
            self._queue.clear()
            self._queue_cond.notify_all()
        deadline = time.monotonic() + timeout
        others = [t for t in self._threads if t is not threading.current_thread()]
        while True:
            self._close_stream()  # again each round: a watch may have been opening meanwhile
            alive = [t for t in others if t.is_alive()]
            remaining = deadline - time.monotonic()
            if not alive or remaining <= 0:
                break
            alive[0].join(min(0.05, remaining))
        if alive:
            _log.warning("Informer threads did not stop in time %s", kv(informer=self.name, timeout=timeout))
        return not alive

    @property
    def started(self) -> bool:
        return self._started

    @property
    def stopped(self) -> bool:
        return self._stopping

    def has_synced(self) -> bool:
        """Whether the cache holds a complete list (it stays true across relists)."""
        return self._synced.is_set()

    def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def last_resource_version(self) -> str:
        """The resource version the next watch resumes from."""
        return self._last_rv

    def restart_watch(self, resource_version: str | None = None, timeout: float = 5.0) -> bool:
        """End the current watch now; the next one resumes from ``resource_version`` if given.

        Returns once the watch thread has taken the request (``False`` if it did not within
        ``timeout``); when no watch is open, the next one takes it as it starts.  Tests use this to
        force a resume from a resource version that is too old (410 Gone).
        """
        self._rewatch_rv = resource_version
        self._rewatch_requested = True
        deadline = time.monotonic() + timeout
        while self._rewatch_requested and not self._stopping:
            with self._stream_lock:
                if self._stream is None:
                    return True
            self._close_stream()  # again each round: the request may not have been sent yet
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # --- cache reads (delegated to the indexer) -------------------------------------------------

    def get(self, key: str) -> T | None:
        return self.indexer.get(key)

    def list(self) -> builtins.list[T]:
        return self.indexer.list()

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        return self.indexer.by_index(index, value)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    # --- handlers ------------------------------------------------------------------------------

    def add_event_handler(
        self,
        on_add: Callable[[T], None] | None = None,
        on_update: Callable[[T, T], None] | None = None,
        on_delete: Callable[[T], None] | None = None,
    ) -> HandlerRegistration[T]:
        """Register handlers; on a synced informer they first get an add per cached object."""
        reg: HandlerRegistration[T] = HandlerRegistration(on_add, on_update, on_delete)
        with self._lock:
            if self._synced.is_set():
                only = (reg,)
                entries: list[_Entry] = [(only, _ADD, None, obj) for obj in self.indexer.list()]
                entries.append((only, _SYNCED, None, None))
                self._enqueue(entries)
            self._handlers = (*self._handlers, reg)
        return reg

    def remove_event_handler(self, reg: HandlerRegistration[T]) -> None:
        """Stop delivering to ``reg`` (including what is queued for it)."""
        with self._lock:
            reg._removed = True
            self._handlers = tuple(h for h in self._handlers if h is not reg)

    def _enqueue(self, entries: builtins.list[_Entry]) -> None:
        if not entries:
            return
        with self._queue_cond:
            if self._stopping:
                return
            self._queue.extend(entries)
            self._queue_cond.notify()

    def _dispatch_loop(self) -> None:
        while True:
            with self._queue_cond:
                while not self._queue and not self._stopping:
                    self._queue_cond.wait()
                if self._stopping:
                    return
                targets, op, old, new = self._queue.popleft()
            if op == _REJECTED:
                self._deliver_rejection(old, new)
                continue
            for reg in targets:
                if reg._removed:
                    continue
                try:
                    if op == _ADD:
                        if reg.on_add is not None:
                            reg.on_add(new)
                    elif op == _UPDATE:
                        if reg.on_update is not None:
                            reg.on_update(old, new)
                    elif op == _DELETE:
                        if reg.on_delete is not None:
                            reg.on_delete(old)
                    else:
                        reg._synced.set()
                except Exception:
                    _log.exception("Event handler failed %s", kv(informer=self.name))

    # --- rejected objects (typed informers) -----------------------------------------------------

    def _reject(self, obj: Object, error: Exception) -> str | None:
        """Note that the model rejected ``obj`` (watch thread); return its key (``None`` if it has
        none).  Logged and reported once per (key, resource version); the hook and the Event are
        delivered by the dispatcher thread, so neither can slow the watch."""
        try:
            key: str | None = self.indexer.key_func(obj)
        except Exception:
            key = None
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if key is not None:
            if self._rejected_rv.get(key) == rv:
                return key
            self._rejected_rv[key] = rv
        self.stats.rejected += 1
        model = self.model.__name__ if self.model is not None else ""
        _log.warning(
            "Object rejected by its model, kept out of the cache %s",
            kv(informer=self.name, object=key or "?", model=model, resourceVersion=rv, err=summarize(error)),
        )
        if self.on_decode_error is not None or self.event_recorder is not None:
            self._enqueue([((), _REJECTED, obj, error)])
        return key

    def _deliver_rejection(self, obj: Object, error: Exception) -> None:
        if self.event_recorder is not None:
            try:
                self._record_rejection(self.event_recorder, obj, error)
            except Exception:
                _log.exception("Could not report a rejected object %s", kv(informer=self.name))
        if self.on_decode_error is not None:
            try:
                self.on_decode_error(obj, error)
            except Exception:
                _log.exception("Decode-error hook failed %s", kv(informer=self.name))

    def _record_rejection(self, recorder: EventRecorder, obj: Object, error: Exception) -> None:
        from pkg.runtime.events import ObjectRef

        ref = ObjectRef.of(obj)
        if (not ref.api_version or not ref.kind) and self.model is not None:
            fields = self.model.model_fields  # type: ignore[attr-defined]
            ref = ObjectRef(
                ref.cluster,
                ref.api_version or str(fields["api_version"].default),
                ref.kind or str(fields["kind"].default),
                ref.name,
                ref.namespace,
                ref.uid,
            )
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        recorder.warning(
            ref,
            INVALID_OBJECT_REASON,
            f"resourceVersion {rv} is not valid for {ref.kind}; the controllers ignore it and keep "
            f"acting on the previous valid version, if any: {summarize(error)}",
        )

    # --- cache writes (watch thread) ------------------------------------------------------------

    def _replace(
        self, objects: builtins.list[T], resource_version: str, rejected: builtins.list[str] | None = None
    ) -> None:
        """Make ``objects`` the cache's content; keys in ``rejected`` keep the version they have."""
        with self._lock:
            if rejected:
                for key in rejected:
                    kept = self.indexer.get(key)
                    if kept is not None:
                        objects.append(kept)
            handlers = self._handlers
            before = dict(self.indexer.items()) if handlers else {}
            dropped = self.indexer.replace(objects, resource_version)
            entries: list[_Entry] = []
            if handlers:
                key_func = self.indexer.key_func
                for obj in objects:
                    old = before.get(key_func(obj))
                    entries.append(
                        (handlers, _ADD, None, obj) if old is None else (handlers, _UPDATE, old, obj)
                    )
                entries.extend((handlers, _DELETE, obj, None) for obj in dropped.values())
            if not self._synced.is_set():
                entries.extend(((reg,), _SYNCED, None, None) for reg in handlers)
                self._synced.set()
            self._enqueue(entries)
        if dropped:
            _log.log(V(2), "Relist dropped objects %s", kv(informer=self.name, count=len(dropped)))

    def _apply(self, event_type: str, obj: Any) -> None:
        """Apply one watch event.  A typed informer's delete may come as the raw dict (when the model
        rejects the final state): handlers then get the cached model, or nothing if none was."""
        with self._lock:
            handlers = self._handlers
            if event_type == "DELETED":
                old = self.indexer.delete(obj)
                if self._decoder is not None and isinstance(obj, dict):
                    if old is None:
                        return
                    obj = old
                entry: _Entry = (handlers, _DELETE, obj, None)
            else:
                old = self.indexer.add(obj)
                entry = (handlers, _ADD, None, obj) if old is None else (handlers, _UPDATE, old, obj)
            if handlers:
                self._enqueue([entry])

    # --- reflector (watch thread) ---------------------------------------------------------------

    def _run(self) -> None:
        relist = True
        while not self._stopping:
            unanswered = False
            try:
                if relist:
                    self._list()
                    relist = False
                    self._answered()
                self._watch()
                continue  # the watch ended normally, broke or stalled: resume at once
            except Exception as err:
                if self._stopping:
                    break
                relist = self._failed(err, listing=relist)
                hub = self._reachability
                # Not answering, or answering with errors while it is known to be down (starting).
                unanswered = reachability.unreachable(err) or (hub is not None and hub.down)
                if hub is not None and hub.ups != self._ups_seen:
                    # The server came back since this informer last backed off (it was busy in a
                    # request then, so not woken): start its backoff over as well.
                    self._ups_seen = hub.ups
                    self.backoff.reset()
            self._sleep(self.backoff.next(), wake_when_reachable=unanswered)
        _log.log(V(2), "Informer stopped %s", kv(informer=self.name))

    def _failed(self, err: Exception, *, listing: bool) -> bool:
        """Log a failure and say whether to relist after the backoff."""
        self.stats.failures += 1
        if isinstance(err, ApiError) and (err.gone or _too_large_rv(err)):
            self.stats.expired += 1
            if listing:
                self._rv_unavailable = True  # the next list reads from etcd
            _log.log(V(2), "%s %s", "List" if listing else "Watch", kv(informer=self.name, closed=err))
            return True
        what = "list" if listing else "watch"
        _log.warning("Failed to %s, backing off %s", what, kv(informer=self.name, err=err))
        if listing:
            return True
        if isinstance(err, ApiError):
            return err.status not in (401, 429)
        return not isinstance(err, urllib3.exceptions.ConnectTimeoutError)  # refused, unreachable

    def _answered(self) -> None:
        if self._reachability is not None:
            self._reachability.succeeded()

    def wake(self, delay: float) -> None:
        """End the current backoff ``delay`` seconds from now and reset it (the server answers
        again); called by this server's :class:`~pkg.runtime.reachability.Reachability`."""
        with self._cond:
            self._wake_at = self.clock.now() + delay
            self._cond.notify_all()

    def _sleep(self, seconds: float, *, wake_when_reachable: bool = False) -> None:
        """Back off ``seconds``; after a failure to reach the server at all
        (``wake_when_reachable``), until the server answers again, if that comes sooner."""
        hub = self._reachability if wake_when_reachable else None
        with self._cond:
            self._wake_at = None
        if hub is not None:
            hub.wait(self)
        try:
            with self._cond:
                deadline = self.clock.now() + seconds
                while not self._stopping:
                    if self._wake_at is not None:
                        deadline = min(deadline, self._wake_at)
                    remaining = deadline - self.clock.now()
                    if remaining <= 0:
                        break
                    self.clock.wait(self._cond, remaining)
                woken, self._wake_at = self._wake_at is not None, None
        finally:
            if hub is not None:
                hub.done(self)
        if woken:
            self.backoff.reset()

    def _selectors(self) -> dict[str, Any]:
        return {"labelSelector": self.label_selector, "fieldSelector": self.field_selector}

    def _list(self) -> None:
        rv = "" if self._rv_unavailable else (self._last_rv or "0")
        paginate = rv in ("", "0")
        params: dict[str, Any] = {
            "resourceVersion": rv,
            "limit": self.page_size if paginate else None,
            **self._selectors(),
        }
        if self._decoder is not None:
            self._list_typed(self._decoder, rv, params)
            return
        items: list[Object] = []
        while True:
            page = self.client.get(self.resource_path, params)
            if self._stopping:
                return
            kind = str(page.get("kind") or "").removesuffix("List")
            api_version = page.get("apiVersion")
            for item in page.get("items") or []:
                if kind and "kind" not in item:
                    item["kind"] = kind
                if api_version and "apiVersion" not in item:
                    item["apiVersion"] = api_version
                items.append(cast(Object, self.transform(cast(T, item))) if self.transform else item)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
            params = {"limit": self.page_size, "continue": token, **self._selectors()}
        list_rv = str(meta.get("resourceVersion") or "")
        self._replace(cast("list[T]", items), list_rv)
        self._listed(list_rv, rv, len(items))

    def _listed(self, list_rv: str, rv: str, count: int) -> None:
        self._last_rv = list_rv
        self._rv_unavailable = False
        self.stats.lists += 1
        _log.log(V(3), "Listed %s", kv(informer=self.name, resourceVersion=list_rv, rv=rv, items=count))

    def _list_typed(self, decoder: ModelDecoder[Any], rv: str, params: dict[str, Any]) -> None:
        items: list[T] = []
        rejected: list[str] = []
        while True:
            page = decoder.decode_page(self.client.get_raw(self.resource_path, params))
            if self._stopping:
                return
            items.extend(page.items)
            for bad in page.rejected:
                key = self._reject(bad.obj, bad.error)
                if key is not None:
                    rejected.append(key)
            meta = page.metadata
            token = meta.get("continue")
            if not token:
                break
            params = {"limit": self.page_size, "continue": token, **self._selectors()}
        if self._rejected_rv:
            key_func = self.indexer.key_func
            for obj in items:
                self._rejected_rv.pop(key_func(obj), None)
        list_rv = str(meta.get("resourceVersion") or "")
        self._replace(items, list_rv, rejected)
        self._listed(list_rv, rv, len(items))

    def _watch(self) -> None:
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": self._last_rv,
            "timeoutSeconds": self._rng.randint(self.min_watch_timeout, 2 * self.min_watch_timeout),
            **self._selectors(),
        }
        if self._rewatch_requested:  # asked for while no watch ran
            self._take_rewatch_request()
            params["resourceVersion"] = self._last_rv
        self.stats.watches += 1
        started = time.monotonic()
        events = 0
        decoder = self._decoder
        stream: Iterator[Any]
        if decoder is None:
            stream = self.client.stream(self.resource_path, params, self.read_timeout)
        else:
            stream = self.client.stream_lines(self.resource_path, params, self.read_timeout)
        with self._stream_lock:
            self._stream = stream
        try:
            if self._stopping or self._rewatch_requested:
                return
            event: Any
            for event in stream:
                if self._stopping or self._rewatch_requested:
                    break
                events += 1
                if events == 1:
                    self._answered()
                if decoder is None:
                    self._handle(event)
                else:
                    self._handle_line(decoder, event)
        except (ApiError, urllib3.exceptions.ConnectTimeoutError):
            raise  # the request failed (or an ERROR event came)
        except Exception as err:  # the stream broke or stalled
            if self._stopping or self._rewatch_requested:
                return
            if events == 0 and time.monotonic() - started < VERY_SHORT_WATCH:
                raise _VeryShortWatch(f"watch failed at once: {err!r}") from err
            _log.log(V(2), "Watch stream ended %s", kv(informer=self.name, err=repr(err), events=events))
            return
        finally:
            with self._stream_lock:
                self._stream = None
            if isinstance(stream, types.GeneratorType):
                stream.close()
            if self._rewatch_requested:
                self._take_rewatch_request()
                events = -1  # a requested end is no failure
        if events == 0 and time.monotonic() - started < VERY_SHORT_WATCH:
            raise _VeryShortWatch("very short watch: the server ended it at once without an event")

    def _take_rewatch_request(self) -> None:
        self._rewatch_requested = False
        if self._rewatch_rv is not None:
            self._last_rv, self._rewatch_rv = self._rewatch_rv, None

    def _handle(self, event: dict[str, Any]) -> None:
        event_type = event.get("type")
        obj = event.get("object") or {}
        if event_type == "ERROR":
            raise ApiError(int(obj.get("code") or 500), "WATCH", self.client.url(self.resource_path), obj)
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if event_type == "BOOKMARK":
            if rv:
                self._last_rv = str(rv)
            return
        if event_type not in ("ADDED", "MODIFIED", "DELETED") or not meta.get("name"):
            _log.warning("Skipping unexpected watch event %s", kv(informer=self.name, type=event_type))
            return
        self._apply(event_type, self.transform(cast(T, obj)) if self.transform else obj)
        if rv:
            self._last_rv = str(rv)

    def _handle_line(self, decoder: ModelDecoder[Any], line: bytes) -> None:
        """A typed informer's :meth:`_handle`: decode the event's line into the model, once."""
        event = decoder.decode_event(line)
        if event.obj is None:
            raw = event.raw or {}
            if event.type == "ERROR":
                url = self.client.url(self.resource_path)
                raise ApiError(int(raw.get("code") or 500), "WATCH", url, raw)
            rv = (raw.get("metadata") or {}).get("resourceVersion")
            if event.type == "BOOKMARK":
                if rv:
                    self._last_rv = str(rv)
                return
            if event.type not in ("ADDED", "MODIFIED", "DELETED") or not (raw.get("metadata") or {}).get(
                "name"
            ):
                _log.warning("Skipping unexpected watch event %s", kv(informer=self.name, type=event.type))
                return
            if event.type == "DELETED":
                self._apply("DELETED", raw)
            else:
                self._reject(raw, event.error or ValueError("rejected"))
            if rv:
                self._last_rv = str(rv)
            return
        obj = event.obj
        meta = obj.metadata
        if not meta.name:
            _log.warning("Skipping unexpected watch event %s", kv(informer=self.name, type=event.type))
            return
        if self._rejected_rv:
            self._rejected_rv.pop(self.indexer.key_func(obj), None)
        self._apply(event.type, obj)
        if meta.resource_version:
            self._last_rv = str(meta.resource_version)

    def _close_stream(self) -> None:
        """Shut the current watch connection's socket down, waking the watch thread's blocked read."""
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            for resp in _responses_of(stream):
                try:
                    resp.shutdown()
                except Exception:  # already released, or shut down
                    _log.log(V(4), "Could not shut a watch response down", exc_info=True)


def _responses_of(stream: Iterator[Any]) -> Iterator[Any]:
    """The urllib3 response a running :meth:`RestClient.stream` generator reads from.

    ``RestClient.stream`` offers no handle to cancel a blocked read from another thread, so this
    looks it up in the generator's frame; nothing is found before the request has been sent.
    """
    frame = stream.gi_frame if isinstance(stream, types.GeneratorType) else None
    if frame is None:
        return
    for value in list(frame.f_locals.values()):
        if isinstance(value, urllib3.response.BaseHTTPResponse):
            yield value


def _too_large_rv(err: ApiError) -> bool:
    return err.status == 504 and "too large resource version" in err.message.lower()


# --- SharedInformerFactory -----------------------------------------------------------------------

InformerKey = tuple[str, str, str, str, str, str]
"""(client prefix, resource path, label selector, field selector, model class name or "", the
informer's own transform's name or "")."""


def _qualname(model: Callable[..., Any] | None) -> str:
    return "" if model is None else f"{model.__module__}.{model.__qualname__}"


def _then(first: Callable[[Any], Any] | None, second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if first is None:
        return second
    return lambda obj: second(first(obj))


class SharedInformerFactory:
    """One :class:`Informer` per (client prefix, path, label and field selectors, model, transform).

    ``informer_options`` are passed to every informer it creates (e.g. ``read_timeout``), with three
    exceptions: ``transform`` goes to dict informers only and ``model_transform`` to typed ones
    only (a transform works on one form), and ``on_decode_error`` and ``event_recorder`` (how typed
    informers report rejected objects) go to typed ones only.  An informer may have a transform of
    its own as well, applied after the factory's; it is part of the informer's key.  Informers
    asked for after :meth:`start` start at once; :meth:`remove` stops and forgets one (for
    resources that come and go at run time).  A typed and a dict informer on the same collection
    are two informers.
    """

    def __init__(self, **informer_options: Any) -> None:
        self._transform = informer_options.pop("transform", None)
        self._model_transform = informer_options.pop("model_transform", None)
        self.on_decode_error: DecodeErrorHook | None = informer_options.pop("on_decode_error", None)
        """The hook given to typed informers created from now on (the Manager may set it)."""
        self.event_recorder: EventRecorder | None = informer_options.pop("event_recorder", None)
        """The recorder given to typed informers created from now on (the Manager may set it)."""
        self._options = informer_options
        self._lock = threading.Lock()
        self._informers: dict[InformerKey, Informer[Any]] = {}
        self._started = False

    @staticmethod
    def key(
        client: RestClient,
        resource_path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        model: type[Any] | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> InformerKey:
        return (
            client.prefix,
            "/" + resource_path.strip("/"),
            label_selector or "",
            field_selector or "",
            _qualname(model),
            _qualname(transform),
        )

    @overload
    def informer(
        self,
        client: RestClient,
        resource_path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        *,
        model: None = None,
        transform: Callable[[Object], Object] | None = None,
    ) -> Informer[Object]: ...

    @overload
    def informer(
        self,
        client: RestClient,
        resource_path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        *,
        model: type[M],
        transform: Callable[[M], M] | None = None,
    ) -> Informer[M]: ...

    def informer(
        self,
        client: RestClient,
        resource_path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        *,
        model: type[Any] | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> Informer[Any]:
        """The shared informer for this key, created (and started, if the factory runs) on first use.

        With ``model`` (a generated model class, e.g. ``EdgePlacement``) the informer is typed: it
        decodes every object into the model once, at ingest, and caches and hands out models.
        ``transform`` (a module-level function: its name is part of the key) shrinks each object
        after the factory's transform, e.g. to the few fields a controller reads.
        ``indexers`` are added to an existing informer; a name it has with another function is an
        error.  Index functions get the cached objects (models, for a typed informer).
        """
        key = self.key(client, resource_path, label_selector, field_selector, model, transform)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                options = dict(self._options)
                if model is None:
                    if self._transform is not None:
                        options["transform"] = self._transform
                else:
                    options["model"] = model
                    options.setdefault("on_decode_error", self.on_decode_error)
                    options.setdefault("event_recorder", self.event_recorder)
                    if self._model_transform is not None:
                        options["transform"] = self._model_transform
                if transform is not None:
                    options["transform"] = _then(options.get("transform"), transform)
                informer = Informer(
                    client,
                    resource_path,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    indexers=indexers,
                    **options,
                )
                self._informers[key] = informer
                if self._started:
                    informer.start()
                return informer
        if indexers:
            informer.add_indexers(indexers)
        return informer

    def get(
        self,
        client: RestClient,
        resource_path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        model: type[Any] | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> Informer[Any] | None:
        key = self.key(client, resource_path, label_selector, field_selector, model, transform)
        with self._lock:
            return self._informers.get(key)

    def informers(self) -> dict[InformerKey, Informer[Any]]:
        with self._lock:
            return dict(self._informers)

    def start(self) -> None:
        """Start every informer, and any asked for from now on."""
        with self._lock:
            self._started = True
            informers = list(self._informers.values())
        for informer in informers:
            informer.start()

    def remove(
        self,
        client: RestClient,
        resource_path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        model: type[Any] | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> bool:
        """Stop and forget one informer; ``False`` if there was none.  A later ask makes a new one."""
        key = self.key(client, resource_path, label_selector, field_selector, model, transform)
        with self._lock:
            informer = self._informers.pop(key, None)
        if informer is None:
            return False
        informer.stop()
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop and forget every informer; the factory may be started again."""
        with self._lock:
            informers = list(self._informers.values())
            self._informers.clear()
            self._started = False
        for informer in informers:
            informer.stop(timeout)

    def wait_for_cache_sync(self, timeout: float | None = None) -> dict[InformerKey, bool]:
        """Wait (in total at most ``timeout`` seconds) for the started informers to sync."""
        deadline = None if timeout is None else time.monotonic() + timeout
        result: dict[InformerKey, bool] = {}
        for key, informer in self.informers().items():
            if not informer.started or informer.stopped:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            result[key] = informer.wait_for_cache_sync(remaining)
        return result
