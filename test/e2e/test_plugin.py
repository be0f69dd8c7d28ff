"""``kubectl kubestellar ...`` through a real kubectl on the session kcp, and the CLI's terminal output.

kubectl is the one ``hack/kcp.sh path kubectl`` builds; it finds the plugin ``kubectl-kubestellar``
(the console script ``make venv`` installs beside this Python) on ``PATH``.  Every command runs in a
scratch directory, not the repository.  Also here: progress on a terminal (stderr a pty) and the
error of ``kubestellar start`` whose metrics address is taken.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pkg.runtime import kcp
from pkg.runtime.rest import RestClient
from test.e2e.kcpserver import REPO, KcpServer, kcp_sh, unique

EDGE = "/apis/edge.kubestellar.io/v2alpha1"
SCRIPTS = Path(sysconfig.get_paths()["scripts"])
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def kubectl() -> str:
    return kcp_sh("path", "kubectl")


@pytest.fixture
def run(kubectl: str, tmp_path: Path) -> Run:
    """``run(*args, env=...)``: ``kubectl kubestellar ARGS`` in a scratch directory, no KUBECONFIG."""

    def go(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PYTHONPATH")}
        base["PATH"] = f"{SCRIPTS}{os.pathsep}{base.get('PATH', '')}"
        base["HOME"] = str(tmp_path)  # no ~/.kube/config to fall back on
        return subprocess.run(
            [kubectl, "kubestellar", *args],
            cwd=tmp_path,
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    return go


def test_plugin_is_installed_beside_python() -> None:
    assert os.access(SCRIPTS / "kubectl-kubestellar", os.X_OK)


def test_kubectl_lists_the_plugin(kubectl: str, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [kubectl, "plugin", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert str(SCRIPTS / "kubectl-kubestellar") in done.stdout, done.stdout + done.stderr


def test_ensure_location_wmw_and_remove_through_kubectl(
    run: Run, kcp_server: KcpServer, initialized: RestClient
) -> None:
    go = run
    kubeconfig = str(kcp_server.kubeconfig)
    # init: already done by the fixture, so it writes nothing; KUBECONFIG as kubectl honours it.
    done = go("init", env={"KUBECONFIG": kubeconfig})
    assert (done.returncode, done.stdout, done.stderr) == (0, "init: up to date\n", "")

    name, imw = unique("loc"), unique("imw")
    done = go(
        "ensure", "location", name, "loc-name=florin", "env=prod", "--imw", imw, "--kubeconfig", kubeconfig
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"location {name}: ") and "written" in done.stdout
    c = kcp.cluster(initialized, f"root:{imw}")
    assert c.get(f"{EDGE}/synctargets/{name}")["metadata"]["labels"] == {
        "id": name,
        "loc-name": "florin",
        "env": "prod",
    }
    loc = c.get(f"{EDGE}/locations/{name}")
    assert loc["spec"]["instanceSelector"] == {"matchLabels": {"id": name}}
    # upstream's spelling of the IMW (a workspace path) means the same; nothing to write
    done = go(
        "ensure",
        "location",
        name,
        "loc-name=florin",
        "env=prod",
        f"--imw=root:{imw}",
        f"--kubeconfig={kubeconfig}",
    )
    assert (done.returncode, done.stdout) == (0, f"location {name}: up to date\n"), done.stderr

    wmw = unique("wmw")
    done = go("--kubeconfig", kubeconfig, "--context", "base", "ensure", "wmw", wmw)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wmw root:{wmw}: ")
    assert kcp.get_workspace(initialized, f"root:{wmw}") is not None
    done = go("remove", "wmw", wmw, "--kubeconfig", kubeconfig)
    assert (done.returncode, done.stdout) == (0, f"wmw root:{wmw}: removed\n"), done.stderr


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["ensure", "wmw", "Not_Valid"], "invalid workspace name 'Not_Valid'"),
        (["remove", "wmw", "a:b"], "invalid workspace name 'a:b'"),
        (["ensure", "location", "Bad_Loc", "env=prod"], "invalid name 'Bad_Loc'"),
        (["ensure", "location", "x", "novalue"], "label 'novalue' is not of the form key=value"),
        (["ensure", "location", "x", "env=not valid"], "invalid label value 'not valid'"),
        (["ensure", "location", "x", "_bad=1"], "invalid label key '_bad'"),
        (["ensure", "location", "x", "--imw", "root:a:b"], "invalid IMW 'root:a:b'"),
        (["ensure", "location", "x", "--imw", "IMW"], "invalid workspace name 'IMW'"),
        (["init", "--context", "nope"], "no context named 'nope'"),
    ],
)
def test_bad_input_is_one_line(run: Run, kcp_server: KcpServer, args: list[str], expect: str) -> None:
    done = run(*args, "--kubeconfig", str(kcp_server.kubeconfig))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kubectl kubestellar: error: ")
    assert expect in lines[0]
    assert done.stdout == ""


def test_no_kubeconfig_and_unreachable_server(run: Run, kcp_server: KcpServer, tmp_path: Path) -> None:
    done = run("init")
    assert done.returncode == 1
    missing = tmp_path / ".kube" / "config"
    assert done.stderr.strip().splitlines() == [
        f"kubectl kubestellar: error: cannot read kubeconfig {missing}: No such file or directory"
    ]
    bad = tmp_path / "unreachable.kubeconfig"
    origin = kcp.server_origin(kcp_server.source().load().server)
    bad.write_text(kcp_server.kubeconfig.read_text().replace(origin, "https://127.0.0.1:1"))
    done = run("ensure", "wmw", "w1", env={"KUBECONFIG": str(bad)})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "kubectl kubestellar: error: cannot reach the server https://127.0.0.1:1: "
        "Failed to establish a new connection: [Errno 111] Connection refused"
    ]


def _read_pty(fd: int, proc: subprocess.Popen[str], timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_progress_on_a_terminal(kcp_server: KcpServer, initialized: RestClient, tmp_path: Path) -> None:
    """stderr a terminal: the waits show; stdout keeps just the result line."""
    name = unique("wmw")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [str(SCRIPTS / "kubestellar"), "ensure", "wmw", name, "--kubeconfig", str(kcp_server.kubeconfig)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    try:
        shown = _read_pty(primary, proc, 300).decode(errors="replace")
        stdout, _ = proc.communicate(timeout=60)
    finally:
        os.close(primary)
    assert proc.returncode == 0, shown
    assert stdout.startswith(f"wmw root:{name}: ") and stdout.endswith("object(s) written\n"), stdout
    assert stdout.count("\n") == 1
    # kcp takes a moment to make a new workspace Ready: that wait is shown, and its end.
    assert f"wmw root:{name}: waiting for workspace root:{name} to be Ready" in shown, shown
    assert f"wmw root:{name}: workspace root:{name} to be Ready: done (" in shown, shown
    assert shown.endswith("\r\x1b[K") or shown.endswith("\n"), repr(shown[-40:])


def test_taken_metrics_port_names_the_address_and_flag(kcp_server: KcpServer, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cmd.kubestellar",
                "start",
                "--kubeconfig",
                str(kcp_server.kubeconfig),
                "--server-bind-address",
                f"127.0.0.1:{port}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    errors = [ln for ln in done.stderr.splitlines() if "error:" in ln]
    assert errors == [
        f"kubestellar: error: cannot serve /metrics, /healthz and /readyz on 127.0.0.1:{port}: "
        "Address already in use (choose another address with --server-bind-address)"
    ], done.stderr
    assert "cannot reach the server" not in done.stderr
    assert "Traceback" not in done.stderr
