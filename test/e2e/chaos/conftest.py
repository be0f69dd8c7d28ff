"""Fault-injection tests: marker, selection, a private kcp per test, controller processes.

Every test here is marked ``chaos`` and is slow (minutes): they run only when asked for, with
``-m chaos`` (``make test-chaos``) or by naming this directory or a file in it on the command line;
a plain ``pytest test`` (``make test``) deselects them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pkg import bootstrap
from pkg.runtime.rest import CRASH_EXIT_CODE
from test.e2e.kcpserver import REPO, KcpServer
from test.e2e.slow_suite import mark_and_deselect

HERE = Path(__file__).resolve().parent
LOG_TAIL = 60


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: slow fault-injection tests on a private kcp (make test-chaos)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_and_deselect(config, items, HERE, "chaos")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    setattr(item, f"chaos_rep_{report.when}", report)


@pytest.fixture
def chaos_kcp(private_kcp: Callable[..., KcpServer]) -> KcpServer:
    """A private kcp (stopped after the test) after ``kubestellar init``."""
    server = private_kcp(os.environ.get("CHAOS_KCP_EXTRA_ARGS", ""))
    bootstrap.init(server.client())
    return server


_METRIC = re.compile(r"^kubestellar_client_writes_total\{[^}]*\} ([0-9.e+]+)$", re.M)


@dataclass
class Controller:
    """One ``python -m cmd.kubestellar start`` process with its own log file."""

    name: str
    log: Path
    proc: subprocess.Popen[bytes]
    started: float
    writes: int = 0  # the last value read from /metrics (or the crash hook's count)
    _port: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = LOG_TAIL) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def dead(self) -> str | None:
        """Why this process is not running any more, or None while it runs."""
        return None if self.alive() else f"{self.name} exited with {self.proc.returncode}"

    def port(self) -> int | None:
        if self._port is None:
            m = re.search(r"serving metrics and probes address=[^:\s]+:(\d+)", self.text())
            self._port = int(m.group(1)) if m else None
        return self._port

    def read_writes(self) -> int | None:
        port = self.port()
        if port is None or not self.alive():
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        self.writes = int(sum(float(v) for v in _METRIC.findall(text)))
        return self.writes

    def leading(self) -> bool:
        return "successfully acquired lease" in self.text()

    def wait_leading(self, timeout: float = 180.0) -> None:
        """Until this process has started its controllers (leading, or without leader election)."""
        deadline = time.monotonic() + timeout
        while "Starting workers controller=placement-translator-mailbox" not in self.text():
            assert self.alive(), f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"{self.name} did not start its controllers in {timeout}s"
            time.sleep(0.2)

    def wait_writes(self, at_least: int, timeout: float = 300.0) -> int:
        """Until /metrics shows ``at_least`` writes; the count seen."""
        deadline = time.monotonic() + timeout
        while (self.read_writes() or 0) < at_least:
            assert self.alive(), f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"{self.name} made fewer than {at_least} writes in {timeout}s"
            time.sleep(0.05)
        return self.writes

    def settled_writes(self, quiet: float = 3.0, timeout: float = 60.0) -> int:
        """The write count once it has not changed for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = self.read_writes()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.read_writes()
            if now == last:
                break
            last = now
        return self.writes

    def crashed_at(self) -> int | None:
        m = re.search(r"exiting after write (\d+)", self.text())
        return int(m.group(1)) if m else None

    def kill9(self) -> None:
        self.read_writes()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def freeze(self) -> None:
        self.read_writes()
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (after a last metrics read); the exit code."""
        if self.alive():
            self.read_writes()
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._stop.set()
        code = self.proc.returncode
        assert code is not None
        return code

    def wait_exit(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        if code == CRASH_EXIT_CODE:
            self.writes = self.crashed_at() or self.writes
        return code

    def _poll_metrics(self) -> None:
        while not self._stop.wait(1.0):
            if not self.alive():
                return
            self.read_writes()


class Controllers:
    """Starts controller processes on one kcp; logs under ``tmp_path``; all stopped at the end."""

    def __init__(self, server: KcpServer, tmp_path: Path) -> None:
        self.server = server
        self.dir = tmp_path
        self.all: list[Controller] = []

    def start(self, *extra: str, env: dict[str, str] | None = None, name: str | None = None) -> Controller:
        name = name or f"kubestellar-{len(self.all) + 1}"
        log = self.dir / f"{name}.log"
        out = log.open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cmd.kubestellar",
                "start",
                "--kubeconfig",
                str(self.server.kubeconfig),
                "--server-bind-address",
                "127.0.0.1:0",
                "-v",
                "2",
                *extra,
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        out.close()
        c = Controller(name, log, proc, time.monotonic())
        threading.Thread(target=c._poll_metrics, name=f"metrics-{name}", daemon=True).start()
        self.all.append(c)
        return c

    def stop_all(self) -> None:
        for c in self.all:
            try:
                c.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {c.name}: {e}")

    def tails(self) -> str:
        return "\n".join(f"===== {c.name} (pid {c.pid}) log tail: {c.log}\n{c.tail()}" for c in self.all)


@pytest.fixture
def controllers(
    chaos_kcp: KcpServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Controllers]:
    ctl = Controllers(chaos_kcp, tmp_path)
    try:
        yield ctl
    finally:
        ctl.stop_all()
        report = getattr(request.node, "chaos_rep_call", None)
        if report is None or report.failed:
            print(f"\n{ctl.tails()}\nkcp log: {chaos_kcp.log}")


def figure(what: str, **values: object) -> None:
    """One line of the fault report (shown with -s, and in the captured output of a failure)."""
    shown = " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    line = f"CHAOS {what}: {shown}"
    print(line)
    target = os.environ.get("CHAOS_FIGURES")  # a file collecting the figures of every run
    if target:
        with open(target, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
