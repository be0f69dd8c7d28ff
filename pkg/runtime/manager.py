"""The Manager: hosts informers and controllers, elects a leader, serves metrics and probes.

Start-up order, as controller-runtime's:

1. the HTTP server (``/metrics``, ``/healthz``, ``/readyz``) starts; ``/healthz`` answers at once;
2. the shared informers start (in every replica: caches warm up before leadership);
3. once every cache has synced, ``/readyz`` turns OK;
4. with leader election, the Manager campaigns for its Lease; once leading (or at once without
   leader election) it starts the controllers;
5. on SIGTERM/SIGINT (or :meth:`stop`), controllers stop, informers stop, the Lease is released.

A leader that loses its Lease stops its controllers and :meth:`run` returns exit code 1, so that a
supervisor restarts the process (client-go and controller-runtime exit in that case too).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pkg.runtime import rest
from pkg.runtime.leaderelection import LeaderElectionConfig, LeaderElector
from pkg.runtime.metrics import REGISTRY
from pkg.runtime.rest import RestClient

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """What a Manager runs when leading: a controller or anything with the same shape."""

    name: str

    def start(self) -> None: ...

    def stop(self, drain: bool = True, timeout: float | None = None) -> bool: ...


class Caches(Protocol):
    """The informer side: a :class:`~pkg.runtime.informer.SharedInformerFactory`."""

    def start(self) -> None: ...

    def wait_for_cache_sync(self, timeout: float | None = None) -> Mapping[Any, bool]: ...

    def shutdown(self, timeout: float = 5.0) -> None: ...


def parse_bind_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"bind address {address!r} is not HOST:PORT or :PORT")
    return host or "0.0.0.0", int(port)


class _Handler(BaseHTTPRequestHandler):
    manager: Manager

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/metrics":
            body = generate_latest(self.manager.registry)
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif path in ("/healthz", "/livez"):
            self._send(200, b"ok", "text/plain")
        elif path == "/readyz":
            ok, why = self.manager.ready()
            self._send(200 if ok else 503, b"ok" if ok else why.encode(), "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class BindError(OSError):
    """The metrics and probes server cannot listen on its address (in use, not local, not allowed)."""

    def __init__(self, address: str, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {address}: {cause.strerror or cause}")
        self.address = address
        self.reason = cause.strerror or str(cause)


class Manager:
    def __init__(
        self,
        name: str,
        caches: Caches,
        *,
        bind_address: str | None = ":10204",
        leader_election: LeaderElectionConfig | None = None,
        lease_client: RestClient | None = None,
        registry: CollectorRegistry = REGISTRY,
        cache_sync_timeout: float = 300.0,
    ) -> None:
        if leader_election is not None and lease_client is None:
            raise ValueError("leader election needs a client for the Lease's workspace")
        self.name = name
        self.caches = caches
        self.bind_address = bind_address
        self.registry = registry
        self.cache_sync_timeout = cache_sync_timeout
        self.elector = (
            LeaderElector(lease_client, leader_election) if lease_client and leader_election else None
        )
        self._runnables: list[Runnable] = []
        self._started: list[Runnable] = []
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._lost = False
        self._server: ThreadingHTTPServer | None = None
        self.port: int | None = None
        self._on_leading: list[Callable[[], None]] = []

    def add(self, runnable: Runnable) -> None:
        self._runnables.append(runnable)

    def on_started_leading(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when this replica starts leading, before the controllers start."""
        self._on_leading.append(hook)

    def ready(self) -> tuple[bool, str]:
        if not self._synced.is_set():
            return False, "informer caches have not synced"
        return True, ""

    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self._stop.set())

    def _serve(self) -> None:
        if self.bind_address is None:
            return
        host, port = parse_bind_address(self.bind_address)
        handler = type("Handler", (_Handler,), {"manager": self})
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise BindError(self.bind_address, e) from e
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=f"{self.name}-http", daemon=True).start()
        log.info("serving metrics and probes address=%s:%d", host, self.port)

    def _start_controllers(self) -> None:
        for hook in self._on_leading:
            hook()
        for r in self._runnables:
            r.start()
            self._started.append(r)

    def _stop_controllers(self) -> None:
        for r in reversed(self._started):
            r.stop(drain=False, timeout=30)
        self._started.clear()

    def run(self) -> int:
        """Run until stopped; 0 on a requested stop, 1 when leadership was lost or caches never synced."""
        self._serve()
        try:
            self.caches.start()
            if not all(self.caches.wait_for_cache_sync(self.cache_sync_timeout).values()):
                log.error("timed out waiting for caches to sync manager=%s", self.name)
                return 1
            self._synced.set()
            log.info("caches synced manager=%s", self.name)
            if self.elector is None:
                self._start_controllers()
                self._stop.wait()
            else:
                rest.set_write_guard(self.elector.valid)
                self.elector.run(self._stop, self._start_controllers, self._lost_or_done)
            return 1 if self._lost else 0
        finally:
            self._stop_controllers()
            self.caches.shutdown()
            rest.set_write_guard(None)
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
            log.info("stopped manager=%s", self.name)

    def _lost_or_done(self) -> None:
        if not self._stop.is_set():
            self._lost = True
            log.error("leader election lost manager=%s", self.name)
        self._stop_controllers()
