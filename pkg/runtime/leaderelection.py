"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Invariants (as client-go ``tools/leaderelection``):

* a candidate takes the Lease only when it is free (no holder) or when the holder has not renewed
  it for ``lease_duration``, measured on the *candidate's* clock from when it last saw the Lease
  change (servers' and peers' clocks are never compared);
* the leader renews every ``retry_period``; when it cannot renew within ``renew_deadline`` it
  stops leading (``on_stopped_leading``) and never leads again in this process;
* updates use the Lease's resourceVersion, so two candidates cannot both win one round;
* ``release()`` empties the holder so a successor need not wait out the lease.

On top of client-go: :meth:`LeaderElector.valid` is a *fence*.  It is true only while the last
successful renewal is younger than ``renew_deadline``; the REST layer consults it before every
write (see :func:`pkg.runtime.rest.set_write_guard`), so a leader that was frozen (SIGSTOP, a long
GC pause) past its lease writes nothing after it wakes, even before its renew loop notices.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3

from apis.machinery import timestamps
from pkg.runtime import kube
from pkg.runtime.rest import ApiError, RestClient

log = logging.getLogger(__name__)

JITTER = 1.2
HELD, TAKEN, UNSURE, UNREACHABLE = "held", "taken", "unsure", "unreachable"


@dataclass
class LeaderElectionConfig:
    lease_name: str
    namespace: str = "default"
    identity: str = field(default_factory=lambda: f"{_hostname()}_{uuid.uuid4()}")
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if not self.renew_deadline > JITTER * self.retry_period:
            raise ValueError("renew_deadline must be greater than retry_period * 1.2")
        if self.retry_period <= 0:
            raise ValueError("retry_period must be positive")


def _hostname() -> str:
    import socket

    return socket.gethostname()


class LeaderElector:
    """Campaigns for one Lease (``client`` is scoped to the Lease's logical cluster)."""

    def __init__(self, client: RestClient, config: LeaderElectionConfig) -> None:
        self.client = client
        self.config = config
        self._path = kube.LEASES.path(namespace=config.namespace)
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0  # monotonic time the observed lease last changed
        self._last_renew = -1e18  # monotonic time of our last successful acquire/renew
        self._leading = False
        self._lock = threading.Lock()

    # -- state ------------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        with self._lock:
            return self._leading

    def valid(self) -> bool:
        """True while this process leads and renewed within ``renew_deadline`` (the write fence)."""
        with self._lock:
            return self._leading and time.monotonic() - self._last_renew < self.config.renew_deadline

    def holder(self) -> str:
        spec = (self._observed or {}).get("spec") or {}
        return str(spec.get("holderIdentity") or "")

    # -- one round --------------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease; True when we hold it afterwards."""
        return self._attempt() == HELD

    def _attempt(self) -> str:
        """One round: HELD (we hold the Lease), TAKEN (we read that someone else holds a live one),
        UNSURE (the server refused our write with a conflict, so what we read was not current) or
        UNREACHABLE (the server did not answer, or refused for another reason)."""
        try:
            return self._try()
        except (ApiError, urllib3.exceptions.HTTPError, OSError) as e:
            log.warning("error reaching the lease lease=%s err=%s", self.config.lease_name, e)
            return UNREACHABLE

    def _try(self) -> str:
        cfg = self.config
        now = time.monotonic()
        try:
            lease = self.client.get(f"{self._path}/{cfg.lease_name}")
        except ApiError as e:
            if not e.not_found:
                raise
            lease = None
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": cfg.lease_name, "namespace": cfg.namespace},
                "spec": self._spec(transitions=0, acquire=True),
            }
            try:
                created = self.client.create(self._path, body)
            except ApiError as e:
                if e.status != 409:
                    raise  # not an answer about who holds the Lease
                # It exists after all: the read that said NotFound was not current (a kcp that has
                # just started can answer from a workspace index it has not filled yet).
                log.info("could not create lease lease=%s err=%s", cfg.lease_name, e.reason or e)
                return UNSURE
            self._took(created, now)
            return HELD

        spec = lease.get("spec") or {}
        if self._observed is None or self._observed.get("spec") != spec:
            self._observed = lease
            self._observed_at = now
        holder = spec.get("holderIdentity") or ""
        mine = holder == cfg.identity
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and not mine and self._observed_at + duration > now:
            return TAKEN
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        update = {
            **lease,
            "spec": {**spec, **self._spec(transitions=transitions, acquire=not mine)},
        }
        try:
            updated = self.client.update(f"{self._path}/{cfg.lease_name}", update)
        except ApiError as e:
            if e.status != 409:
                raise  # not an answer about who holds the Lease
            # Someone wrote it since our read; the next read says who holds it.
            log.info("could not update lease lease=%s err=%s", cfg.lease_name, e.reason or e)
            return UNSURE
        self._took(updated, now)
        return HELD

    def _spec(self, transitions: int, acquire: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": int(self.config.lease_duration),
            "renewTime": timestamps.micro_time_string(),
            "leaseTransitions": transitions,
        }
        if acquire:
            spec["acquireTime"] = timestamps.micro_time_string()
        return spec

    def _took(self, lease: dict[str, Any], at: float) -> None:
        self._observed = lease
        self._observed_at = at
        with self._lock:
            self._last_renew = at

    # -- loops ------------------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        on_new_leader: Callable[[str], None] | None = None,
    ) -> None:
        """Campaign until we lead, lead until we cannot renew or ``stop`` is set, then return."""
        cfg = self.config
        last_holder = ""
        while not stop.is_set():
            if self.try_acquire_or_renew():
                break
            if on_new_leader and self.holder() and self.holder() != last_holder:
                last_holder = self.holder()
                on_new_leader(last_holder)
            stop.wait(cfg.retry_period * random.uniform(1.0, JITTER))
        else:
            return
        log.info(
            "successfully acquired lease lease=%s/%s identity=%s", cfg.namespace, cfg.lease_name, cfg.identity
        )
        with self._lock:
            self._leading = True
        if on_new_leader:
            on_new_leader(cfg.identity)
        on_started_leading()
        try:
            while not stop.wait(cfg.retry_period) and self._renew(stop):
                pass
        finally:
            lost = not stop.is_set()
            with self._lock:
                self._leading = False
            if not lost and cfg.release_on_cancel:
                self.release()
            on_stopped_leading()

    def _renew(self, stop: threading.Event) -> bool:
        """Renew within ``renew_deadline``; False when leadership is lost (or ``stop`` is set).

        While the server cannot be reached nobody else can take the Lease through it either, so
        the leader keeps trying instead of giving up (the fence in :meth:`valid` already stops its
        writes after ``renew_deadline``).  Leadership is lost only when the leader *reads* the Lease
        held by someone else past our deadline; a write refused with a conflict (an AlreadyExists
        after a NotFound read, as a restarting kcp answers) says nothing about the holder.
        """
        cfg = self.config
        deadline = time.monotonic() + cfg.renew_deadline
        while not stop.is_set():
            result = self._attempt()
            if result == HELD:
                return True
            if result == TAKEN and time.monotonic() >= deadline:
                log.error("failed to renew lease lease=%s/%s: leadership lost", cfg.namespace, cfg.lease_name)
                return False
            stop.wait(cfg.retry_period * random.uniform(1.0, JITTER))
        return False

    def release(self) -> None:
        """Give the Lease up (empty holder) if we hold it, so a successor takes over at once."""
        try:
            lease = self.client.get(f"{self._path}/{self.config.lease_name}")
            if (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            lease["spec"]["holderIdentity"] = ""
            lease["spec"]["leaseDurationSeconds"] = 1
            self.client.update(f"{self._path}/{self.config.lease_name}", lease)
            log.info("released lease lease=%s/%s", self.config.namespace, self.config.lease_name)
        except Exception as e:  # best effort on the way out
            log.warning("could not release lease lease=%s err=%s", self.config.lease_name, e)
