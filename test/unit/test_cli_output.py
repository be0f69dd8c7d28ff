"""The CLI's terminal progress (cmd.progress) and its one-line errors (pkg.runtime.app.report_errors)."""

from __future__ import annotations

import io
import re
import socket
from cmd.progress import terminal_progress

import pytest

from pkg.runtime import kcp
from pkg.runtime.app import report_errors
from pkg.runtime.manager import Manager


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _becomes_true_after(n: int) -> object:
    calls = [0]

    def probe() -> bool:
        calls[0] += 1
        return calls[0] > n

    return probe


def test_not_a_terminal_shows_nothing_and_observes_nothing() -> None:
    out = io.StringIO()
    with terminal_progress("init", out):
        assert kcp.wait_observer.get() is None
        kcp.wait_for("thing", _becomes_true_after(2), timeout=10, interval=0.01)  # type: ignore[arg-type]
    assert out.getvalue() == ""


def test_a_terminal_shows_each_wait_and_its_end() -> None:
    out = Terminal()
    with terminal_progress("wmw root:w", out):
        kcp.wait_for("workspace root:w to be Ready", _becomes_true_after(3), timeout=10, interval=0.25)  # type: ignore[arg-type]
        kcp.wait_for("quick", lambda: True, timeout=10)
    assert kcp.wait_observer.get() is None  # reset on exit
    shown = out.getvalue()
    assert re.search(r"\r\x1b\[K[|/\\-] wmw root:w: waiting for workspace root:w to be Ready \(0s\)", shown)
    assert "wmw root:w: workspace root:w to be Ready: done (" in shown
    assert "quick" not in shown  # a wait that ended at once leaves nothing behind
    assert shown.endswith("\n") or shown.endswith("\r\x1b[K")


def test_a_failed_wait_clears_the_status_line() -> None:
    out = Terminal()
    with pytest.raises(kcp.KcpError), terminal_progress("init", out):
        kcp.wait_for("never", lambda: False, timeout=0.3, interval=0.05)
    assert out.getvalue().endswith("\r\x1b[K")


def _errors(capsys: pytest.CaptureFixture[str], body: object) -> tuple[int, list[str]]:
    rc = report_errors("kubestellar", body)  # type: ignore[arg-type]
    return rc, capsys.readouterr().err.splitlines()


def test_taken_address_names_it_and_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        manager = Manager("m", caches=None, bind_address=f"127.0.0.1:{port}")  # type: ignore[arg-type]
        rc, lines = _errors(capsys, manager._serve)
    assert rc == 1
    assert lines == [
        f"kubestellar: error: cannot serve /metrics, /healthz and /readyz on 127.0.0.1:{port}: "
        "Address already in use (choose another address with --server-bind-address)"
    ]


def test_a_local_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    def body() -> None:
        open("/nonexistent-dir/x.yaml", "w")  # noqa: SIM115

    rc, lines = _errors(capsys, body)
    assert (rc, lines) == (1, ["kubestellar: error: /nonexistent-dir/x.yaml: No such file or directory"])


def test_an_unreachable_server_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> None:
        socket.create_connection(("127.0.0.1", 1), timeout=5)

    rc, lines = _errors(capsys, body)
    assert rc == 1
    assert lines == ["kubestellar: error: cannot reach the server: [Errno 111] Connection refused"]


def test_wait_for_backs_off_to_max_interval_and_never_sleeps_past_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    monkeypatch.setattr(kcp.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(kcp.time, "sleep", sleep)
    with pytest.raises(kcp.KcpError, match="timed out after 10s waiting for never"):
        kcp.wait_for("never", lambda: False, timeout=10, interval=0.2, max_interval=2.0)
    assert slept[:4] == pytest.approx([0.2, 0.3, 0.45, 0.675])
    assert max(slept) == pytest.approx(2.0)
    assert clock[0] == pytest.approx(10.0, abs=0.02)  # the last sleep ends at the deadline
    slept.clear()
    clock[0] = 0.0
    with pytest.raises(kcp.KcpError):
        kcp.wait_for("never", lambda: False, timeout=3, interval=0.25, max_interval=0.25)
    assert set(slept[:-1]) == {0.25}  # the last one may be shorter: it ends at the deadline
