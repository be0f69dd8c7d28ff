"""The e2e harness: one kcp per test run, fresh workspaces per test.

kcp is built (or taken from the cache) and started once per session by hack/kcp.sh; if that fails,
every test that needs it errors (it is never skipped).  kcp is stopped when the session ends, even
after failures or Ctrl-C; when any test failed, its root directory and log are kept and named.
Tests that stop or restart kcp use ``private_kcp``, which starts a server of their own.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pkg import bootstrap
from pkg.runtime.rest import RestClient
from test.e2e.kcpserver import KcpServer, unique

_failed = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    global _failed
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        _failed = True


def _finish(server: KcpServer) -> None:
    try:
        server.stop()
    finally:
        if _failed:
            print(f"\nkcp root directory kept for inspection: {server.dir} (log: {server.log})")
        else:
            shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kcp_server() -> Iterator[KcpServer]:
    server = KcpServer(Path(tempfile.mkdtemp(prefix="ks-e2e-kcp-")))
    atexit.register(server.stop)  # also on interruption
    try:
        server.start()
        yield server
    finally:
        _finish(server)


@pytest.fixture(scope="session")
def admin(kcp_server: KcpServer) -> RestClient:
    """An admin client at the shared server's root."""
    return kcp_server.client()


@pytest.fixture(scope="session")
def initialized(admin: RestClient) -> RestClient:
    """The shared server after `kubestellar init`."""
    bootstrap.init(admin)
    return admin


@pytest.fixture
def wmw(initialized: RestClient) -> Iterator[str]:
    """A fresh WMW (workspace path) for one test, removed afterwards."""
    name = unique("wmw")
    bootstrap.ensure_wmw(initialized, name)
    yield f"root:{name}"
    bootstrap.remove_wmw(initialized, name)


def _private_servers() -> Iterator[Callable[..., KcpServer]]:
    servers: list[KcpServer] = []

    def start(extra_args: str = "") -> KcpServer:
        server = KcpServer(Path(tempfile.mkdtemp(prefix="ks-e2e-private-kcp-")), extra_args=extra_args)
        servers.append(server)
        atexit.register(server.stop)
        return server.start()

    yield start
    for server in servers:
        _finish(server)


@pytest.fixture
def private_kcp() -> Iterator[Callable[..., KcpServer]]:
    """Start private kcp servers (for tests that stop or restart kcp); all stopped afterwards."""
    yield from _private_servers()


@pytest.fixture(scope="module")
def module_private_kcp() -> Iterator[Callable[..., KcpServer]]:
    """As ``private_kcp``, for servers that the tests of one module share (one start, ~20-70 s)."""
    yield from _private_servers()
