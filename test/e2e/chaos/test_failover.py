"""Leader failover between two ``python -m cmd.kubestellar start`` processes (15 s Lease).

1. Both start on the workload; one leads and converges it from nothing (the reference converge
   time).
2. Edits; in the middle of their converge the leader is frozen (SIGSTOP) past its Lease: the other
   takes over and converges.  The old leader is resumed (SIGCONT): it must start no write before
   it notices that it lost the Lease (the write fence), and then exit 1.  Proof: every object a
   controller writes keeps its resourceVersion from before the resume until after the exit, and the
   new leader has nothing to repair, except for the writes that had passed the fence when the
   process was frozen and reach kcp only once it runs again: a client-side fence cannot stop those
   (the old leader logs each as a ``late write``; at most one per thread), so each changed object
   must be matched by such a line, and the new leader must repair it.
3. A new standby replaces it.  Edits; the leader is killed (SIGKILL) in the middle of their
   converge: the standby converges within the Lease time plus the reference converge time.
"""

from __future__ import annotations

import time

import pytest

from test.e2e.chaos import checker
from test.e2e.chaos.conftest import Controller, Controllers, figure
from test.e2e.kcpserver import KcpServer

pytestmark = pytest.mark.chaos

CONVERGE_TIMEOUT = 300.0
LEASE = 15.0
RETRY = 2.0 * 1.2  # a candidate's retry period, jittered
FENCED = "FencedError: "  # one line per write the fence refused
LATE = "late write: "  # one line per write that passed the fence before the freeze, sent after it


def _leader(candidates: list[Controller], timeout: float = 180.0) -> Controller:
    deadline = time.monotonic() + timeout
    while True:
        leading = [p for p in candidates if p.leading() and p.alive()]
        if leading:
            assert len(leading) == 1, [p.name for p in leading]
            return leading[0]
        assert time.monotonic() < deadline, "no leader"
        for p in candidates:
            assert p.alive(), f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}"
        time.sleep(0.2)


def _caches_synced(p: Controller, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while "caches synced" not in p.text():
        assert p.alive(), p.tail()
        assert time.monotonic() < deadline, f"{p.name}: caches not synced in {timeout}s"
        time.sleep(0.2)


def test_leader_failover(chaos_kcp: KcpServer, controllers: Controllers) -> None:
    c = chaos_kcp.client()
    wl = checker.create(c)

    # 1. Two instances; the leader converges from nothing.
    a = controllers.start(name="a")
    b = controllers.start(name="b")
    leader = _leader([a, b])
    start = time.monotonic()
    standby = b if leader is a else a
    conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=start, alive=leader.dead)
    reference = conv.seconds
    figure("failover: leader converged from nothing", leader=leader.name, converge_s=reference)
    assert not standby.leading() and standby.read_writes() == 0, "the standby wrote"

    # 2. SIGSTOP the leader in the middle of a converge.
    base = leader.settled_writes()
    wl.edit_round(c, 1)
    leader.wait_writes(base + 10)
    leader.freeze()
    frozen = time.monotonic()
    pending = checker.check(c, wl)  # what the frozen leader left undone (the standby cannot write yet)
    _leader([standby], timeout=LEASE * 4)
    took_over = time.monotonic() - frozen
    conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=frozen, alive=standby.dead)
    lost = checker.lost(c, wl)
    figure(
        "failover: leader frozen (SIGSTOP), the other took over",
        pending=len(pending),
        takeover_s=took_over,
        converge_s=conv.seconds,
        writes_of_new_leader=standby.settled_writes(),
        lost=len(lost),
    )
    assert pending, "the leader was frozen after its converge, not in the middle of it"
    assert not lost, lost
    assert took_over >= LEASE - RETRY, (
        f"taken over {took_over:.1f}s after the freeze, before the Lease ran out"
    )

    # ... and resumed: it writes nothing, notices, exits 1.
    new_leader_writes = standby.settled_writes()
    before = checker.snapshot(c, wl)
    leader.resume()
    code = leader.wait_exit(LEASE * 4)
    time.sleep(3)
    after = checker.snapshot(c, wl)
    fenced = leader.text().count(FENCED)
    late = leader.text().count(LATE)
    changed = checker.changed(before, after)
    repairs = (standby.read_writes() or 0) - new_leader_writes
    figure(
        "failover: old leader resumed (SIGCONT)",
        exit_code=code,
        objects_changed=len(changed),
        fenced_writes=fenced,
        late_writes=late,
        new_leader_repairs=repairs,
    )
    assert code == 1, f"the old leader exited with {code}:\n{leader.tail()}"
    assert len(changed) <= late, f"the resumed old leader wrote (late writes logged: {late}): {changed}"
    assert repairs <= late, "the new leader repaired more than the old leader's late writes"
    checker.wait_converged(c, wl, CONVERGE_TIMEOUT, alive=standby.dead)

    # 3. A new standby; the leader is killed in the middle of a converge.
    leader = standby
    standby = controllers.start(name="c")
    _caches_synced(standby)
    base = leader.settled_writes()
    wl.edit_round(c, 2)
    leader.wait_writes(base + 10)
    leader.kill9()
    killed = time.monotonic()
    pending = checker.check(c, wl)
    conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=killed, alive=standby.dead)
    lost = checker.lost(c, wl)
    bound = LEASE + RETRY + reference
    figure(
        "failover: leader killed (SIGKILL) mid-converge, standby converged",
        pending=len(pending),
        converge_s=conv.seconds,
        bound_s=bound,
        writes=standby.settled_writes(),
        lost=len(lost),
    )
    assert pending, "the leader was killed after its converge, not in the middle of it"
    assert not lost, lost
    assert conv.seconds <= bound, f"converged {conv.seconds:.1f}s after the kill (bound {bound:.1f}s)"
    assert standby.stop() == 0, standby.tail()
