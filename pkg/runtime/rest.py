"""A small JSON REST client for Kubernetes-style servers, on the official client's transport.

The official ``kubernetes`` package loads kubeconfigs and builds the TLS-configured urllib3 pool
(``kubernetes.client.rest.RESTClientObject``); its generated API classes, however, know nothing of
kcp's ``/clusters/<name>`` prefixes or virtual workspaces, and deserialising into its models is the
CPU hot spot every Python controller hits.  So requests here are plain JSON over that pool:

* a :class:`RestClient` is bound to one URL prefix (a logical cluster, the ``/clusters/*`` wildcard,
  or an APIExport virtual workspace; :mod:`pkg.runtime.kcp` builds those prefixes);
* :meth:`RestClient.at` gives a client for another prefix on the same server, sharing the pool and
  the credentials;
* a 401 answer makes the client re-read its kubeconfig once and retry (kcp issues a new admin
  token each time it starts);
* every create/update/patch/delete is counted by verb and resource (Leases and Events excepted), as
  spec decision 9 defines "writes".
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from kubernetes.client.rest import RESTClientObject
from prometheus_client import Counter as Counter_
from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs

from pkg.runtime.klog import V
from pkg.runtime.kubeconfig import Endpoint
from pkg.runtime.metrics import REGISTRY

log = logging.getLogger(__name__)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"

DEFAULT_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NOT_COUNTED = {"leases", "events"}

TRACE = V(6)
"""The verbosity at which every request is logged with its status and duration (client-go's
``-v=6``)."""


class ApiError(Exception):
    """A non-2xx answer, with the server's Status when it sent one."""

    def __init__(self, status: int, method: str, url: str, body: Any) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.body = body if isinstance(body, dict) else {}
        self.reason: str = str(self.body.get("reason", "")) if self.body else ""
        message = self.body.get("message") if self.body else None
        self.message: str = str(message) if message else (str(body)[:300] if body else "")
        super().__init__(f"{method} {url}: {status} {self.reason} {self.message}".strip())

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.status == 410


_CRASH_AFTER = int(os.environ.get("KUBESTELLAR_CRASH_AFTER_WRITES", "0") or 0)
CRASH_EXIT_CODE = 86


@dataclass
class WriteCounter:
    """Counts writes by (verb, resource); thread-safe."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    urls: list[tuple[str, str]] = field(default_factory=list)  # (verb, url) of each write, newest last
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, verb: str, resource: str, url: str = "") -> None:
        with self._lock:
            self.counts[(verb, resource)] += 1
            self.urls.append((verb, url))
            del self.urls[:-10000]
            total = sum(self.counts.values())
        if _CRASH_AFTER and self is WRITES and total >= _CRASH_AFTER:
            # Fault injection for the chaos tests: die as abruptly as kill -9 would.
            log.warning("exiting after write %d as KUBESTELLAR_CRASH_AFTER_WRITES asks", total)
            os._exit(CRASH_EXIT_CODE)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.urls.clear()


WRITES = WriteCounter()
"""The process-wide write counter (tests read it; benchmarks read the metric below)."""

WRITES_METRIC = Counter_(
    "kubestellar_client_writes_total",
    "Create/update/patch/delete requests sent, Lease and Event writes excepted (spec decision 9).",
    ["verb", "resource"],
    registry=REGISTRY,
)


class FencedError(Exception):
    """A write was refused locally: this process is not (or no longer surely) the leader."""


_write_guard: Callable[[], bool] | None = None


def set_write_guard(guard: Callable[[], bool] | None) -> None:
    """Refuse every write but Lease writes while ``guard()`` is false (the leader-election fence).

    The fence is checked just before a write is sent, so no write *starts* once it is closed.  A
    client-side fence cannot do more: a process paused (SIGSTOP, a long GC, a frozen VM) between
    the check and the send delivers that one write late, when another leader may already act (the
    server would need fencing tokens, which the Kubernetes API does not have).  A write whose
    answer comes after the fence closed is logged as ``late write`` (at most one per writing
    thread; this includes writes the server handled before the pause): the new leader repairs
    whatever they changed, as it repairs any drift."""
    global _write_guard
    _write_guard = guard


def resource_of(path: str) -> str:
    """The resource named by an API path: ``.../namespaces/ns/configmaps/x`` -> ``configmaps``."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    # Drop the /clusters/<name> and /services/... prefixes, keep what follows /api/v1 or /apis/g/v.
    for i, part in enumerate(parts):
        if part == "api":
            rest = parts[i + 2 :]
            break
        if part == "apis":
            rest = parts[i + 3 :]
            break
    else:
        return ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    return rest[0].split(":")[0] if rest else "namespaces"


POOL_SIZE = 256
"""Idle connections kept per host (more are opened when needed; one beyond this is closed when
it is returned): a controller lists every informer at once as it starts (about 60 at once for the
placement translator), and each connection closed would cost a new TLS handshake later."""


_TLS_FILES = ("ca_certs", "ca_cert_data", "cert_file", "key_file")


class _Resumption:
    """TLS session resumption for the connections of one context (one server).

    Each new connection offers the server the session ticket last received on any connection of
    this context, so a new watch connection costs the server an abbreviated handshake (no
    certificate signature) instead of a full one: about half of kcp's CPU per new connection here.
    A server that declines the ticket runs a full handshake.  Verification is unchanged: a ticket
    comes only from a connection that this context verified, and urllib3's hostname check reads
    the peer certificate, which a resumed session keeps.

    A connection's session is read only by the thread reading from that connection, right after
    its read returns (TLS 1.3 tickets arrive after the handshake and are taken in by a read).
    Reading it from any other thread races with OpenSSL replacing the connection's session as a
    ticket arrives: the reader may get a session whose ticket and secret do not belong together
    (the server then refuses the handshake with ``decrypt error``) or one freed under it.  A
    handshake that fails while offering a session forgets that session and raises
    :class:`ResumptionRefused`, so its caller may try once more with a full handshake.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._wrap = context.wrap_socket
        self._lock = threading.Lock()
        self._session: ssl.SSLSession | None = None
        resumption = self

        class KeepingSocket(context.sslsocket_class):  # type: ignore[name-defined,misc]
            _ticket_seen = False

            def read(self, *args: Any, **kwargs: Any) -> Any:
                data = super().read(*args, **kwargs)
                if not self._ticket_seen:
                    self._ticket_seen = resumption.keep(self)
                return data

        context.sslsocket_class = KeepingSocket
        context.wrap_socket = self.wrap_socket  # type: ignore[method-assign]

    def keep(self, sock: ssl.SSLSocket) -> bool:
        """Keep ``sock``'s session if the server gave it a ticket to resume with; whether it did.
        Called only by the thread that reads from ``sock`` (see the class docstring)."""
        try:
            session = sock.session
        except (OSError, ValueError, AttributeError):
            return False
        if session is None or not session.has_ticket:
            return False
        with self._lock:
            self._session = session
        return True

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        offered = None
        if kwargs.get("session") is None:
            with self._lock:
                offered = self._session
            if offered is not None:
                kwargs["session"] = offered
        try:
            wrapped: ssl.SSLSocket = self._wrap(sock, *args, **kwargs)
        except ssl.SSLError as e:
            if offered is None:
                raise
            with self._lock:
                if self._session is offered:
                    self._session = None
            raise ResumptionRefused(*e.args) from e
        return wrapped


class ResumptionRefused(ssl.SSLError):
    """A TLS handshake that offered a kept session failed; the session is forgotten by then, so
    the next handshake is a full one.  No request was sent on that connection.  (urllib3 raises
    its own ``SSLError`` with this one as its first argument.)"""


def _pool(endpoint: Endpoint) -> urllib3.PoolManager:
    """The official client's pool for ``endpoint``, with one TLS context for all its connections
    (and that context's session resumption) unless it has no TLS or a context of the caller's.

    Given file names and no context, urllib3 builds a context for every new connection and loads
    the CA bundle and client certificate into it again (about a third of a connection's
    client-side TLS cost here; a controller opens one connection per watch).  The context is
    built once from the same settings instead; verification (CA, hostname, client certificate)
    is unchanged, since urllib3 applies ``cert_reqs`` and the hostname check to a given context
    exactly as to its own.
    """
    endpoint.configuration.connection_pool_maxsize = POOL_SIZE
    pool = RESTClientObject(endpoint.configuration).pool_manager
    kw = pool.connection_pool_kw
    if not endpoint.server.startswith("https:") or kw.get("ssl_context") is not None:
        return pool
    context = create_urllib3_context(cert_reqs=resolve_cert_reqs(kw.get("cert_reqs")))
    if kw.get("ca_certs") or kw.get("ca_cert_data"):
        context.load_verify_locations(cafile=kw.get("ca_certs"), cadata=kw.get("ca_cert_data"))
    else:
        context.load_default_certs()
    if kw.get("cert_file"):
        context.load_cert_chain(kw["cert_file"], kw.get("key_file"))
    for name in _TLS_FILES:
        kw.pop(name, None)
    _Resumption(context)  # hooks the context, which keeps it alive through its wrap_socket
    kw["ssl_context"] = context
    return pool


AUTHORIZATION_TTL = 10.0
"""Seconds a computed Authorization header is reused.  The official client's configuration runs
its token-refresh hook on every header read (0.2-0.5 ms per request here, for a static token as
much as for an expiring one); an exec or OIDC token refreshed by that hook is picked up at most
this long after it expires (and at once on a 401, which reloads the kubeconfig)."""


class _Transport:
    """The shared, reloadable part of clients to one server: credentials and connection pool."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._lock = threading.Lock()
        self.endpoint = endpoint
        self.pool = _pool(endpoint)
        self.generation = 0
        self._auth: str | None = None
        self._auth_until = 0.0  # monotonic time until which _auth is reused

    def reload(self, seen_generation: int) -> None:
        """Re-read the kubeconfig, unless another thread already did since ``seen_generation``."""
        with self._lock:
            if self.generation != seen_generation or self.endpoint.source is None:
                return
            fresh = self.endpoint.source.load()
            self.endpoint = fresh
            self.pool = _pool(fresh)
            self._auth_until = 0.0
            self.generation += 1
            log.info("reloaded kubeconfig after 401 server=%s", fresh.server)

    def headers(self) -> dict[str, str]:
        now = time.monotonic()
        if now >= self._auth_until:  # a benign race: two threads may both compute it
            self._auth = self.endpoint.authorization()
            self._auth_until = now + AUTHORIZATION_TTL
        h = {"Accept": JSON}
        if self._auth:
            h["Authorization"] = self._auth
        return h


class RestClient:
    """JSON requests under one URL prefix (``prefix`` is a full URL, or a path on the server)."""

    def __init__(
        self,
        endpoint: Endpoint,
        prefix: str | None = None,
        *,
        writes: WriteCounter | None = None,
        _transport: _Transport | None = None,
    ) -> None:
        self._t = _transport or _Transport(endpoint)
        split = urlsplit(endpoint.server)
        self.origin = f"{split.scheme}://{split.netloc}"
        if prefix is None:
            prefix = endpoint.server
        self.prefix = (prefix if "://" in prefix else self.origin + prefix).rstrip("/")
        self.writes = writes if writes is not None else WRITES

    @property
    def endpoint(self) -> Endpoint:
        return self._t.endpoint

    def at(self, prefix: str) -> RestClient:
        """A client for another prefix (full URL or server path) sharing this one's transport."""
        return RestClient(self._t.endpoint, prefix, writes=self.writes, _transport=self._t)

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = self.prefix + path
        if params:
            clean = {k: _param(v) for k, v in params.items() if v is not None}
            if clean:
                url += "?" + urlencode(clean)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        timeout: urllib3.Timeout | float | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request and return the decoded JSON answer (with ``raw``, the answer's bytes, for
        a decoder of one's own); raise :class:`ApiError` on non-2xx."""
        url = self.url(path, params)
        guard = _write_guard if method in _WRITE_VERBS and resource_of(path) != "leases" else None
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        started = time.monotonic()
        for attempt in (0, 1):
            generation = self._t.generation
            headers = self._t.headers()
            if data is not None:
                headers["Content-Type"] = content_type
            if guard is not None and not guard():
                raise FencedError(f"{method} {url} refused: this process does not hold the leader lease")
            try:
                resp = self._t.pool.request(
                    method,
                    url,
                    body=data,
                    headers=headers,
                    timeout=timeout or DEFAULT_TIMEOUT,
                    preload_content=True,
                    retries=False,
                )
            except urllib3.exceptions.SSLError as e:
                # A handshake that offered a kept session failed (and forgot it): once more, with
                # a full handshake.  No request was sent on that connection.
                if attempt == 0 and e.args and isinstance(e.args[0], ResumptionRefused):
                    log.info("TLS handshake offering a kept session failed; retrying with a full one")
                    continue
                raise
            if resp.status == 401 and attempt == 0 and self._t.endpoint.source is not None:
                self._t.reload(generation)
                continue
            break
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE, "%s %s %d in %.1f ms", method, url, resp.status, (time.monotonic() - started) * 1e3
            )
        if guard is not None and not guard():
            log.error("late write: %s %s passed the leader fence, answered after it closed", method, url)
        if method in _WRITE_VERBS and resp.status < 500:
            resource = resource_of(path)
            if resource not in _NOT_COUNTED:
                self.writes.add(_WRITE_VERBS[method], resource, url)
                WRITES_METRIC.labels(_WRITE_VERBS[method], resource).inc()
        if raw and resp.status < 300:
            return bytes(resp.data)
        decoded = _decode(resp.data)
        if resp.status >= 300:
            raise ApiError(resp.status, method, url, decoded)
        return decoded

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def get_or_none(self, path: str) -> Any:
        """GET ``path``; None when the server answers 404 (other errors are raised)."""
        try:
            return self.get(path)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    def get_raw(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """GET, returning the answer's bytes undecoded (typed informers decode them into models)."""
        data: bytes = self.request("GET", path, params=params, raw=True)
        return data

    def create(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body, params=params)

    def update(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH, **params: Any) -> Any:
        return self.request("PATCH", path, body=body, content_type=content_type, params=params)

    def apply(self, path: str, body: Any, field_manager: str, force: bool = True) -> Any:
        """Server-side apply (``body`` is JSON, which is valid YAML)."""
        return self.request(
            "PATCH",
            path,
            body=body,
            content_type=APPLY_PATCH,
            params={"fieldManager": field_manager, "force": force},
        )

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body=body)

    def stream(self, path: str, params: Mapping[str, Any], read_timeout: float) -> Iterator[dict[str, Any]]:
        """GET a watch stream and yield its events as decoded JSON, one per line.

        The read timeout bounds the silence between two lines, so a stalled stream ends with
        ``urllib3`` raising a timeout instead of hanging.  Closing the generator closes the socket.
        """
        return self._stream(path, params, read_timeout, True)

    def stream_lines(self, path: str, params: Mapping[str, Any], read_timeout: float) -> Iterator[bytes]:
        """As :meth:`stream`, but yield each event's line of JSON undecoded (typed informers decode
        it straight into a model)."""
        return self._stream(path, params, read_timeout, False)

    def _stream(
        self, path: str, params: Mapping[str, Any], read_timeout: float, decode: bool
    ) -> Iterator[Any]:
        # One generator for both forms, so the urllib3 response is a local of the generator itself
        # (the informer finds it there to shut a blocked read down).
        url = self.url(path, params)
        generation = self._t.generation
        started = time.monotonic()
        resp = self._t.pool.request(
            "GET",
            url,
            headers=self._t.headers(),
            timeout=urllib3.Timeout(connect=10.0, read=read_timeout),
            preload_content=False,
            retries=False,
        )
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE, "GET %s %d in %.1f ms (stream)", url, resp.status, (time.monotonic() - started) * 1e3
            )
        try:
            if resp.status == 401 and self._t.endpoint.source is not None:
                self._t.reload(generation)
            if resp.status >= 300:
                raise ApiError(resp.status, "GET", url, _decode(resp.read()))
            buf = b""
            for chunk in resp.stream(64 * 1024, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line) if decode else line
            if buf.strip():
                yield json.loads(buf) if decode else buf
        finally:
            resp.close()
            resp.release_conn()


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _decode(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")
