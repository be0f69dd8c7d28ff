"""Leader election on a real Lease, and the Manager's probes and metrics."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from typing import Any

import pytest

from pkg.runtime import kcp, rest
from pkg.runtime.leaderelection import LeaderElectionConfig, LeaderElector
from pkg.runtime.manager import Manager
from pkg.runtime.rest import RestClient

FAST = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.4}


class _Candidate:
    def __init__(self, client: RestClient, identity: str, lease: str, **kw: Any) -> None:
        self.elector = LeaderElector(client, LeaderElectionConfig(lease, identity=identity, **{**FAST, **kw}))
        self.stop = threading.Event()
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self.elector.run, args=(self.stop, self.started.set, self.stopped.set), daemon=True
        )
        self.thread.start()


def test_two_candidates_elect_one_and_fail_over(initialized: RestClient, wmw: str) -> None:
    c = kcp.cluster(initialized, wmw)
    a = _Candidate(c, "a", "lease1", release_on_cancel=False)
    b = _Candidate(c, "b", "lease1", release_on_cancel=False)
    kcp.wait_for("a leader", lambda: a.started.is_set() or b.started.is_set(), 20)
    time.sleep(FAST["lease_duration"] + 1)  # long enough for a wrong second leader to appear
    assert a.started.is_set() != b.started.is_set()
    leader, follower = (a, b) if a.started.is_set() else (b, a)
    assert leader.elector.valid() and not follower.elector.is_leader()
    lease = c.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/lease1")
    assert lease["spec"]["holderIdentity"] == leader.elector.config.identity

    # The leader dies without releasing: the follower takes over within the lease duration.
    gone = time.monotonic()
    leader.stop.set()
    leader.thread.join(5)
    assert leader.stopped.is_set() and not leader.elector.valid()
    kcp.wait_for("the follower to lead", follower.started.is_set, 15)
    took = time.monotonic() - gone
    assert took < FAST["lease_duration"] + 2 * FAST["retry_period"] * 1.2 + 1.0, took
    lease = c.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/lease1")
    assert lease["spec"]["holderIdentity"] == follower.elector.config.identity
    assert lease["spec"]["leaseTransitions"] >= 1
    follower.stop.set()
    follower.thread.join(5)


def test_release_lets_successor_lead_at_once(initialized: RestClient, wmw: str) -> None:
    c = kcp.cluster(initialized, wmw)
    a = _Candidate(c, "a", "lease2", lease_duration=30.0, renew_deadline=2.0, retry_period=0.4)
    kcp.wait_for("a to lead", a.started.is_set, 20)
    b = _Candidate(c, "b", "lease2", lease_duration=30.0, renew_deadline=2.0, retry_period=0.4)
    time.sleep(1.0)
    assert not b.started.is_set()
    a.stop.set()
    a.thread.join(5)
    kcp.wait_for("b to lead after a released", b.started.is_set, 5)
    b.stop.set()
    b.thread.join(5)


class _StaleLeaseReads(RestClient):
    """The candidate's client, whose Lease GETs can be sent to an absent Lease's name, so the real
    server answers NotFound for a Lease that exists: what a kcp that has just restarted answers
    for a while (its workspace index not filled yet), while its creates answer AlreadyExists."""

    def __init__(self, client: RestClient) -> None:
        self.__dict__.update(client.__dict__)
        self.stale = threading.Event()

    def get(self, path: str, params: Any = None) -> Any:
        if self.stale.is_set() and "/leases/" in path:
            path += "-absent"
        return super().get(path, params)


def test_leader_keeps_lease_through_not_found_reads_of_it(initialized: RestClient, wmw: str) -> None:
    """A NotFound read followed by an AlreadyExists create says nothing about who holds the Lease:
    the leader keeps leading (fenced meanwhile) and renews once reads are current again."""
    reads = _StaleLeaseReads(kcp.cluster(initialized, wmw))
    a = _Candidate(reads, "a", "lease3")
    kcp.wait_for("a to lead", a.started.is_set, 20)
    assert reads.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/lease3")
    reads.stale.set()
    time.sleep(FAST["renew_deadline"] + 3 * FAST["retry_period"] * 1.2)
    assert not a.stopped.is_set() and a.elector.is_leader()
    assert not a.elector.valid()  # no renewal for longer than renew_deadline: writes are fenced
    reads.stale.clear()
    kcp.wait_for("a to renew", a.elector.valid, 5)
    assert not a.stopped.is_set()
    a.stop.set()
    a.thread.join(5)
    assert a.stopped.is_set()


class _Caches:
    """Stands for the informer factory: becomes synced when told (no API server involved)."""

    def __init__(self) -> None:
        self.synced = threading.Event()
        self.stopped = False

    def start(self) -> None:
        pass

    def wait_for_cache_sync(self, timeout: float | None = None) -> dict[str, bool]:
        return {"all": self.synced.wait(timeout)}

    def shutdown(self, timeout: float = 5.0) -> None:
        self.stopped = True


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_manager_probes_metrics_and_leadership(initialized: RestClient, wmw: str) -> None:
    c = kcp.cluster(initialized, wmw)
    caches = _Caches()
    started = threading.Event()

    class Runnable:
        name = "r"

        def start(self) -> None:
            started.set()

        def stop(self, drain: bool = True, timeout: float | None = None) -> bool:
            return True

    mgr = Manager(
        "test-manager",
        caches,
        bind_address="127.0.0.1:0",
        leader_election=LeaderElectionConfig("test-manager", identity="m1", **FAST),
        lease_client=c,
    )
    mgr.add(Runnable())
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(mgr.run()), daemon=True)
    t.start()
    kcp.wait_for("the HTTP server", lambda: mgr.port, 10)
    assert mgr.port is not None
    assert _get(mgr.port, "/healthz") == (200, "ok")
    code, _ = _get(mgr.port, "/readyz")
    assert code == 503
    assert not started.is_set()  # controllers wait for the caches
    caches.synced.set()
    kcp.wait_for("readyz", lambda: _get(mgr.port or 0, "/readyz")[0] == 200, 10)
    kcp.wait_for("the controllers to start as leader", started.is_set, 15)
    code, metrics = _get(mgr.port, "/metrics")
    assert code == 200 and "# TYPE" in metrics
    mgr.stop()
    t.join(15)
    assert result == [0] and caches.stopped
    lease = c.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/test-manager")
    assert lease["spec"]["holderIdentity"] == ""  # released on the way out


def test_write_fence_refuses_before_sending_and_reports_a_late_write(
    initialized: RestClient, wmw: str, caplog: Any
) -> None:
    """The leader fence (rest.set_write_guard) is checked just before a write is sent: a closed
    fence sends nothing; a fence that closes while a write is on its way (the process paused after
    the check) cannot stop it, and the write is logged as late."""
    c = kcp.cluster(initialized, wmw)
    path = "/api/v1/namespaces/default/configmaps"
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fenced"}}
    try:
        rest.set_write_guard(lambda: False)
        with pytest.raises(rest.FencedError):
            c.create(path, body)
        # Reads pass a closed fence.
        assert all(i["metadata"]["name"] != "fenced" for i in c.get(path)["items"]), (
            "the refused write was sent"
        )

        answers = iter([True, False])  # open at the check, closed when the answer comes
        rest.set_write_guard(lambda: next(answers))
        with caplog.at_level(logging.ERROR, logger="pkg.runtime.rest"):
            c.create(path, {**body, "metadata": {"name": "late"}})
        assert c.get(f"{path}/late")["metadata"]["name"] == "late"
        assert any("late write: POST" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        rest.set_write_guard(None)
