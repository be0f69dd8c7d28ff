"""The edge e2e: a central kcp running example1 with our controllers, and an edge kcp.

Every test here is marked ``edge``.  They run with ``-m edge`` (``make test-edge``, called by
.ci/run after ``make test``) or when this directory or a file in it is named on the command line;
a plain ``pytest test`` (``make test``) deselects them, so CI runs them exactly once.  They need
only kcp, so they never skip (the part that runs an upstream syncer binary skips without one).

An edge cluster is played by a workspace ``root:edge-<SyncTarget>`` of a second kcp server, set up
by ``init`` and ``ensure wmw`` there so that it serves the kube types a syncer writes; separate
servers keep separate CAs and tokens, as real clusters do.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test.e2e.kcpserver import KcpServer
from test.e2e.slow_suite import mark_and_deselect

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "edge: the edge e2e on a central and an edge kcp (make test-edge)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_and_deselect(config, items, HERE, "edge")


_failed = False
FIGURES: dict[str, float] = {}
"""Timings the tests record (seconds); printed at the end of the session."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        shown = ", ".join(f"{k}={v:.1f}" for k, v in FIGURES.items())
        terminalreporter.write_line(f"edge e2e figures (s): {shown}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    global _failed
    outcome = yield
    if outcome.get_result().failed:  # type: ignore[attr-defined]
        _failed = True


@pytest.fixture(scope="module")
def two_kcps() -> Iterator[tuple[KcpServer, KcpServer]]:
    """(central, edge): two private kcp servers started side by side, stopped afterwards."""
    servers = [
        KcpServer(Path(tempfile.mkdtemp(prefix=f"ks-e2e-{role}-kcp-"))) for role in ("central", "edge")
    ]
    errors: list[BaseException] = []

    def start(server: KcpServer) -> None:
        try:
            server.start()
        except BaseException as e:  # re-raised below
            errors.append(e)

    t0 = time.monotonic()
    for server in servers:
        atexit.register(server.stop)
    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise errors[0]
        FIGURES["kcp_start_s"] = time.monotonic() - t0
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()
            if _failed:
                print(f"\nkcp root directory kept for inspection: {server.dir} (log: {server.log})")
            else:
                shutil.rmtree(server.dir, ignore_errors=True)
