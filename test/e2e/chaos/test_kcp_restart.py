"""kcp stops and starts again (same root directory, same ports) under running controllers.

The controllers must ride it out without a restart of their own (same process, controllers started
once) and converge: after a restart in the middle of a converge from nothing, and after a restart
while idle with edits made as soon as kcp is back (before the controllers' watches are).

Both tests share one private kcp (this module's), which they stop and start.  The first runs the
controllers without leader election; the second with it (the default), where a Lease renewal fails
while kcp is down.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pkg import bootstrap
from test.e2e.chaos import checker
from test.e2e.chaos.conftest import Controller, Controllers, figure
from test.e2e.kcpserver import KcpServer

pytestmark = pytest.mark.chaos

CONVERGE_TIMEOUT = 300.0
DOWN = 5.0  # seconds kcp stays stopped (its start then takes ~20 s more)


@pytest.fixture(scope="module")
def restart_env() -> Iterator[tuple[KcpServer, checker.Workload]]:
    server = KcpServer(Path(tempfile.mkdtemp(prefix="ks-chaos-restart-kcp-")))
    ok = False
    try:
        server.start()
        c = server.client()
        bootstrap.init(c)
        yield server, checker.create(c)
        ok = True
    finally:
        server.stop()
        if ok:
            shutil.rmtree(server.dir, ignore_errors=True)
        else:
            print(f"kcp root directory kept: {server.dir} (log: {server.log})")


@pytest.fixture
def ctl(
    restart_env: tuple[KcpServer, checker.Workload], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Controllers]:
    controllers = Controllers(restart_env[0], tmp_path)
    try:
        yield controllers
    finally:
        controllers.stop_all()
        report = getattr(request.node, "chaos_rep_call", None)
        if report is None or report.failed:
            print(f"\n{controllers.tails()}\nkcp log: {restart_env[0].log}")


class ControllersRestarted(AssertionError):
    """The controller process did not ride out the kcp restart: it exited or restarted its work."""


def _restart_kcp(server: KcpServer) -> tuple[float, float]:
    """Stop kcp, wait DOWN seconds, start it again; (time it went down, time it was ready again)."""
    down = time.monotonic()
    server.stop()
    time.sleep(DOWN)
    server.start()
    return down, time.monotonic()


def _rode_it_out(p: Controller) -> None:
    if not p.alive():
        lines = [ln for ln in p.text().splitlines() if "lease" in ln or "error" in ln.lower()]
        raise ControllersRestarted(
            f"{p.name} exited with {p.proc.returncode} during the kcp restart:\n" + "\n".join(lines[-15:])
        )
    starts = p.text().count("Starting workers controller=placement-translator-mailbox")
    if starts != 1:
        raise ControllersRestarted(f"{p.name} started its controllers {starts} times")


def _restarts(server: KcpServer, wl: checker.Workload, p: Controller, round_: int, what: str) -> None:
    """kcp restarts in the middle of a converge (from nothing in round 0, else of edit round
    ``round_``), then again while idle with edit round ``round_ + 1`` made as soon as it is back."""
    c = server.client()
    alive = lambda: _rode_it_out(p)  # noqa: E731
    base = p.read_writes() or 0
    if round_:
        wl.edit_round(c, round_)
    writes = p.wait_writes(base + (100 if round_ == 0 else 20))
    down, up = _restart_kcp(server)
    conv = checker.wait_converged(server.client(), wl, CONVERGE_TIMEOUT, since=up, alive=alive)
    _rode_it_out(p)
    lost = checker.lost(server.client(), wl)
    figure(
        f"kcp restart mid-converge ({what})",
        writes_before=writes - base,
        down_s=up - down,
        converge_after_up_s=conv.seconds,
        writes_after=(p.read_writes() or 0) - writes,
        lost=len(lost),
    )
    assert not lost, lost
    base = p.read_writes() or 0
    down, up = _restart_kcp(server)
    c = server.client()
    wl.edit_round(c, round_ + 1)
    conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=up, alive=alive)
    _rode_it_out(p)
    lost = checker.lost(c, wl)
    figure(
        f"kcp restart while idle, edits at once ({what})",
        down_s=up - down,
        converge_after_up_s=conv.seconds,
        writes=(p.read_writes() or 0) - base,
        lost=len(lost),
    )
    assert not lost, lost


def test_kcp_restart_without_leader_election(
    restart_env: tuple[KcpServer, checker.Workload], ctl: Controllers
) -> None:
    server, wl = restart_env
    p = ctl.start("--leader-elect=false", name="no-leader-election")
    _restarts(server, wl, p, 0, "no leader election")
    assert p.stop() == 0, p.tail()


def test_kcp_restart_with_leader_election(
    restart_env: tuple[KcpServer, checker.Workload], ctl: Controllers
) -> None:
    server, wl = restart_env
    p = ctl.start(name="leader")
    checker.wait_converged(server.client(), wl, CONVERGE_TIMEOUT, alive=p.dead)
    _restarts(server, wl, p, 3, "leader election")
    assert p.stop() == 0, p.tail()
