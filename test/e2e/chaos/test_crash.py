"""The controller process dies in the middle of a converge; a restart converges with nothing lost.

* Deterministic: ``KUBESTELLAR_CRASH_AFTER_WRITES=k`` makes the process exit (code 86, like a
  kill -9: no lease release, nothing flushed) right after its k-th counted write.  From nothing,
  three processes die in a row at their 1st, 60th and 150th write (early, middle and late in the
  250-350 writes of the whole converge), then a fourth converges.  Then, on the converged system, for
  several k, a process dies at the k-th write of the re-converge after a batch of edits (updates, an
  addition, a deletion, a Location moving in and one moving out), and a restart converges: stale
  copies deleted, nothing left half-done.
* Random: SIGKILL when the victim is seen (polling its /metrics) past a number of writes drawn
  from a seeded RNG (``CHAOS_SEED`` replays the choice), so at a moment unrelated to its write
  boundaries; with leader election on, so every restart also waits out the dead leader's Lease.

After every fault the checker compares every mailbox with the desired state computed from the
workload alone: the-one, each copy and its customized content, no stale copy, the Namespaces.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from pkg.runtime.rest import CRASH_EXIT_CODE
from test.e2e.chaos import checker
from test.e2e.chaos.conftest import Controller, Controllers, figure
from test.e2e.kcpserver import KcpServer

pytestmark = pytest.mark.chaos

NO_LEADER_ELECTION = "--leader-elect=false"
CRASH = "KUBESTELLAR_CRASH_AFTER_WRITES"
CONVERGE_TIMEOUT = 300.0
LEASE = 15.0


def test_crash_after_kth_write(chaos_kcp: KcpServer, controllers: Controllers) -> None:
    c = chaos_kcp.client()
    wl = checker.create(c)

    # From nothing: three processes die at chosen points of one converge.
    done = 0
    for k in (1, 60, 150):
        p = controllers.start(NO_LEADER_ELECTION, env={CRASH: str(k)}, name=f"crash-at-{k}")
        code = p.wait_exit(CONVERGE_TIMEOUT)
        assert code == CRASH_EXIT_CODE, f"{p.name} exited with {code}, not after its write {k}"
        assert p.crashed_at() == k
        done += k
        figure("crash from nothing", k=k, writes_before_crash=done)
    start = time.monotonic()
    p = controllers.start(NO_LEADER_ELECTION, name="recover-from-nothing")
    conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=start, alive=p.dead)
    lost = checker.lost(c, wl)
    figure(
        "crash from nothing: restart converged",
        converge_s=conv.seconds,
        writes=p.settled_writes(),
        writes_of_crashed=done,
        lost=len(lost),
    )
    assert not lost, lost

    # Converged: a crash at the k-th write of the re-converge after each round of edits.
    for round_, k in enumerate((1, 10, 45), start=1):
        p.stop()
        p = controllers.start(NO_LEADER_ELECTION, env={CRASH: str(k)}, name=f"edits-{round_}-crash-at-{k}")
        p.wait_leading()
        assert p.read_writes() == 0, "a start on a converged system wrote something"
        wl.edit_round(c, round_)
        code = p.wait_exit(CONVERGE_TIMEOUT)
        assert code == CRASH_EXIT_CODE, f"{p.name} exited with {code}, not after its write {k}"
        start = time.monotonic()
        p = controllers.start(NO_LEADER_ELECTION, name=f"edits-{round_}-recover")
        conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=start, alive=p.dead)
        lost = checker.lost(c, wl)
        figure(
            "crash after edits: restart converged",
            round=round_,
            k=k,
            converge_s=conv.seconds,
            writes=p.settled_writes(),
            lost=len(lost),
        )
        assert not lost, lost
    p.wait_leading()
    assert p.stop() == 0, p.tail()


def _kill_after(p: Controller, writes: int, quiet: float = 60.0) -> tuple[float, bool]:
    """SIGKILL ``p`` as soon as it is seen past ``writes`` writes (its /metrics, polled): a moment
    unrelated to its write boundaries.  If it stops writing before (its converge needed fewer, or
    it stalls), it is killed once it has led for ``quiet`` seconds without a write.  Returns the
    seconds since it started and whether the target was reached; the tests assert it (and that the
    checker still finds work left), as a kill after the converge is not the fault they mean.  A
    loaded machine can hold a controller for several seconds between writes (waiting for kcp to
    make a mailbox workspace ready), hence a ``quiet`` far longer than that."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    last, since = -1, time.monotonic()
    reached = False
    while not reached:
        n = p.read_writes() or 0
        reached = n >= writes
        if n != last or not p.leading():
            last, since = n, time.monotonic()
        elif time.monotonic() - since > quiet:
            break
        assert p.alive(), p.tail()
        assert time.monotonic() < deadline, f"{p.name}: neither {writes} writes nor quiet in time"
        time.sleep(0.05)
    p.kill9()
    return time.monotonic() - p.started, reached


def test_kill9_at_random_moments(chaos_kcp: KcpServer, controllers: Controllers) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    print(f"CHAOS_SEED={seed}")
    c = chaos_kcp.client()
    wl = checker.create(c)

    # From nothing, with leader election (each victim first waits out its predecessor's Lease):
    # SIGKILL when the victim is seen past a random number of writes.
    for i in range(2):
        p = controllers.start(name=f"kill9-{i + 1}")
        target = rng.randint(1, 150 if i == 0 else 80)
        after, reached = _kill_after(p, target)
        pending = checker.check(c, wl)  # what the dead victim left undone
        figure(
            "kill -9 from nothing",
            victim=i + 1,
            target=target,
            reached=reached,
            pending=len(pending),
            after_s=after,
            writes=p.writes,
        )
        assert reached, f"{p.name} made no write for 60 s before its write {target}: killed when idle"
        assert pending, f"{p.name} was killed after the mailboxes were complete"
    start = time.monotonic()
    p = controllers.start(name="kill9-recover")
    conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT + LEASE, since=start, alive=p.dead)
    lost = checker.lost(c, wl)
    figure(
        "kill -9 from nothing: restart converged",
        converge_s=conv.seconds,
        writes=p.settled_writes(),
        lost=len(lost),
    )
    assert not lost, lost

    # Converged: edits, then a kill at a random point of the re-converge.
    for round_ in (1, 2):
        p.wait_leading()
        base = p.settled_writes()
        wl.edit_round(c, round_)
        target = rng.randint(1, 40)  # an edit round's re-converge makes more (see the k=45 crash above)
        _, reached = _kill_after(p, base + target)
        assert reached, f"{p.name} made no write for 60 s before write {target} of its re-converge"
        start = time.monotonic()
        p = controllers.start(name=f"kill9-edits-{round_}-recover")
        conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT + LEASE, since=start, alive=p.dead)
        lost = checker.lost(c, wl)
        figure(
            "kill -9 after edits: restart converged",
            round=round_,
            target=target,
            reached=reached,
            converge_s=conv.seconds,
            writes=p.settled_writes(),
            lost=len(lost),
        )
        assert not lost, lost
    p.wait_leading()
    assert p.stop() == 0, p.tail()
