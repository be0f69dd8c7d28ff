"""Whether a server answers again after an outage, shared by every informer of one process.

An informer whose request failed at the connection level (refused, reset, timed out: the server
is not answering) backs off exponentially (:class:`pkg.runtime.informer.Backoff`, up to 30 s plus
jitter), each on its own schedule.  Left alone, an idle controller would notice a server that is
back only when the longest of those backoffs ends: 20-60 s after a kcp restart.  A
:class:`Reachability` per server (by URL origin) shortens that:

* an informer that failed so registers itself as a *waiter* while it backs off, and the server is
  then *down*;
* while it is down and someone waits, one prober thread asks the server for ``/readyz`` every
  ``probe_interval`` seconds; a 200 means it is *up* (a restarting kcp answers with errors for
  half a minute before it is ready);
* while it is down, an informer that fails with an answer (an error status while the server is
  still starting) waits too, instead of backing off on its own;
* an informer's own success (a list, or a watch event) also means up;
* on the transition to up every waiter is woken, each after its own random delay in
  ``[0, spread)`` where the spread grows with the number of waiters (``per_waiter_spread`` each, at
  most ``max_spread``), and resets its backoff: a few hundred informers resume within a second
  instead of all at the same instant (no thundering relist) and not one backoff later.

While the server is up, failures that are answers (4xx, 5xx, 410 Gone) do not register: a
resource that is not served yet, or a server that answers with errors, keeps the informer's
ordinary backoff.

Invariant: a waiter is woken at most once per registration, and only after an up transition that
happened while it was registered; the server state only moves to up after a successful probe or a
success reported by a client of that server.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import urllib3

from pkg.runtime.klog import V, kv
from pkg.runtime.rest import ApiError, RestClient

log = logging.getLogger(__name__)

PROBE_INTERVAL = 0.25
"""Seconds between probes while the server is down (a refused connection costs microseconds)."""
PROBE_TIMEOUT = urllib3.Timeout(connect=1.0, read=2.0)
PER_WAITER_SPREAD = 0.005
MAX_SPREAD = 1.0

DISABLED = os.environ.get("KUBESTELLAR_NO_REACHABILITY", "") not in ("", "0")
"""Set ``KUBESTELLAR_NO_REACHABILITY=1`` to keep the plain per-informer backoff (bench/reconnect.py
measures both in one run)."""


class Waiter(Protocol):
    def wake(self, delay: float) -> None:
        """Resume (and reset the backoff) ``delay`` seconds from now instead of when the backoff ends."""


Probe = Callable[[], bool]
"""True when the server answered."""


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the server did not answer at all (as opposed to an error answer)."""
    if isinstance(err, ApiError):
        return False
    if isinstance(err, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return True
    cause = err.__cause__ or err.__context__
    return cause is not None and cause is not err and unreachable(cause)


class Reachability:
    """The up/down state of one server and the informers waiting for it (see the module doc)."""

    def __init__(
        self,
        probe: Probe,
        *,
        probe_interval: float = PROBE_INTERVAL,
        per_waiter_spread: float = PER_WAITER_SPREAD,
        max_spread: float = MAX_SPREAD,
        rng: random.Random | None = None,
        name: str = "",
    ) -> None:
        self.probe = probe
        self.probe_interval = probe_interval
        self.per_waiter_spread = per_waiter_spread
        self.max_spread = max_spread
        self.name = name
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._waiters: set[Waiter] = set()
        self._down = False
        self._prober: threading.Thread | None = None
        self.ups = 0  # transitions to up (for tests and logs)

    @property
    def down(self) -> bool:
        return self._down

    def wait(self, waiter: Waiter) -> None:
        """``waiter`` failed to reach the server and now backs off: the server is down."""
        with self._cond:
            self._waiters.add(waiter)
            self._down = True
            if self._prober is None or not self._prober.is_alive():
                self._prober = threading.Thread(
                    target=self._probe_loop, name=f"probe {self.name}", daemon=True
                )
                self._prober.start()

    def done(self, waiter: Waiter) -> None:
        """``waiter``'s backoff ended (or it stopped) without a wake-up."""
        with self._cond:
            self._waiters.discard(waiter)

    def succeeded(self) -> None:
        """A client of this server got an answer: the server is up."""
        if self._down:  # cheap check first: called on every successful list
            self._up("a client succeeded")

    def _up(self, why: str) -> None:
        with self._cond:
            if not self._down:
                return
            self._down = False
            self.ups += 1
            waiters = list(self._waiters)
            self._waiters.clear()
            self._cond.notify_all()
        spread = min(self.max_spread, self.per_waiter_spread * len(waiters))
        what = kv(server=self.name, why=why, waiters=len(waiters), spread=round(spread, 3))
        log.log(V(1), "Server answers again %s", what)
        for w in waiters:
            w.wake(self._rng.uniform(0.0, spread) if spread > 0 else 0.0)

    def _probe_loop(self) -> None:
        while True:
            with self._cond:
                if not self._down or not self._waiters:
                    self._prober = None
                    return
            try:
                ok = self.probe()
            except Exception:  # a probe that fails to run counts as no answer
                ok = False
            if ok:
                self._up("probe answered")
                continue
            with self._cond:
                if self._down and self._waiters:
                    self._cond.wait(self.probe_interval)


def http_probe(client: RestClient) -> Probe:
    """A probe asking ``client``'s server for ``/readyz``: a 200 means it is up."""

    def probe() -> bool:
        try:
            origin = client.at(_origin(client.prefix))  # at probe time: the newest credentials
            origin.request("GET", "/readyz", timeout=PROBE_TIMEOUT, raw=True)
        except Exception:  # refused, or answered but not ready (kcp answers ~30 s before it is)
            return False
        return True

    return probe


def _origin(url: str) -> str:
    s = urlsplit(url)
    return f"{s.scheme}://{s.netloc}"


_registry: dict[str, Reachability] = {}
_registry_lock = threading.Lock()


def for_client(client: RestClient) -> Reachability | None:
    """The process's :class:`Reachability` of ``client``'s server (None when disabled)."""
    if DISABLED:
        return None
    origin = _origin(client.prefix)
    with _registry_lock:
        r = _registry.get(origin)
        if r is None:
            r = _registry[origin] = Reachability(http_probe(client), name=origin)
        return r
