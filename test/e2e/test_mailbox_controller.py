"""The mailbox controller on kcp: create, bind, re-create, delete (scenarios A.1, C3, C15, C29)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from cmd import mailbox_controller
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from pkg import bootstrap
from pkg.controllers import mailbox
from pkg.runtime import kcp
from pkg.runtime.connections import Connections
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.manager import Manager
from pkg.runtime.rest import RestClient, WriteCounter
from test.e2e.kcpserver import REPO, KcpServer, unique

EDGE = bootstrap.EDGE_API
WAIT = 60.0

SetupFn = Callable[[Manager, SharedInformerFactory, Connections, EventRecorder, int], Any]


class Running:
    """A controller run in-process on its own Manager (no leader election, probes on a free port)."""

    def __init__(self, server: KcpServer, name: str, setup: SetupFn) -> None:
        self.writes = WriteCounter()
        self.connections = Connections(
            root=server.client(kcp.ROOT_CONTEXT, writes=self.writes),
            allclusters=server.client(kcp.ALLCLUSTERS_CONTEXT, writes=self.writes),
            espw=kcp.cluster(server.client(writes=self.writes), bootstrap.ESPW),
        )
        self.factory = SharedInformerFactory()
        self.recorder = EventRecorder(self.connections.allclusters, name)
        self.manager = Manager(name, self.factory, bind_address="127.0.0.1:0")
        self.controller = setup(self.manager, self.factory, self.connections, self.recorder, 4)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.manager.run()), daemon=True)
        self.thread.start()
        kcp.wait_for(f"{name} caches to sync", lambda: self.manager.ready()[0], WAIT)

    def quiet(self, seconds: float = 2.0, timeout: float = WAIT) -> None:
        """Wait until the queue is empty and nothing was written for ``seconds``."""
        queue = self.controller.controller.queue
        last = (-1, 0.0)

        def settled() -> bool:
            nonlocal last
            total = self.writes.total()
            if len(queue) or queue.num_waiting() or total != last[0]:
                last = (total, time.monotonic())
                return False
            return time.monotonic() - last[1] >= seconds

        kcp.wait_for("the controller to settle", settled, timeout, interval=0.2)

    def stop(self) -> None:
        self.manager.stop()
        self.thread.join(30)
        self.recorder.stop()
        assert not self.thread.is_alive()
        assert self.result == [0]


@pytest.fixture
def controller(kcp_server: KcpServer, initialized: RestClient) -> Iterator[Running]:
    running = Running(kcp_server, mailbox.NAME, mailbox.setup)
    yield running
    running.stop()


def _workspace(admin: RestClient, name: str) -> dict[str, Any] | None:
    return kcp.get_workspace(admin, f"root:{name}")


def _ready(admin: RestClient, name: str, not_uid: str = "") -> dict[str, Any] | None:
    ws = _workspace(admin, name)
    if ws is None or ws["metadata"]["uid"] == not_uid or ws["metadata"].get("deletionTimestamp"):
        return None
    if (ws.get("status") or {}).get("phase") != "Ready" or not ws["spec"].get("cluster"):
        return None
    return ws


def _annotation(admin: RestClient, name: str) -> str | None:
    ws = _workspace(admin, name) or {}
    value = (ws.get("metadata", {}).get("annotations") or {}).get(mailbox.SYNC_TARGET_NAME_ANNOTATION)
    return str(value) if value is not None else None


def _bound(admin: RestClient, cluster: str) -> bool:
    want = {b for b, _, _ in mailbox.wanted_bindings(mailbox_controller.kube_exports())}
    items = kcp.cluster(admin, cluster).get(f"{kcp.APIS}/apibindings")["items"]
    bound = {b["metadata"]["name"] for b in items if (b.get("status") or {}).get("phase") == "Bound"}
    return want <= bound


def _wait_mailbox(admin: RestClient, name: str, not_uid: str = "", timeout: float = WAIT) -> dict[str, Any]:
    """Wait until mailbox ``name`` (not the one with UID ``not_uid``) is Ready with every binding Bound."""

    def probe() -> dict[str, Any] | None:
        ws = _ready(admin, name, not_uid)
        return ws if ws is not None and _bound(admin, ws["spec"]["cluster"]) else None

    found: dict[str, Any] = kcp.wait_for(f"mailbox {name} with its bindings", probe, timeout)
    return found


def _wait_gone(admin: RestClient, name: str, timeout: float = 90.0) -> None:
    kcp.wait_for(f"workspace {name} to go", lambda: _workspace(admin, name) is None, timeout)


def _imw_cluster(admin: RestClient, imw: str) -> str:
    ws = _workspace(admin, imw)
    assert ws is not None
    return str(ws["spec"]["cluster"])


def _inventory(admin: RestClient, imw: str) -> dict[str, dict[str, Any]]:
    bootstrap.ensure_location(admin, "florin", {"loc-name": "florin", "env": "prod"}, imw=imw)
    bootstrap.ensure_location(
        admin, "guilder", {"loc-name": "guilder", "env": "prod", "extended": "yes"}, imw=imw
    )
    c = kcp.cluster(admin, f"root:{imw}")
    return {n: c.get(f"{EDGE}/synctargets/{n}") for n in ("florin", "guilder")}


def test_mailbox_lifecycle(initialized: RestClient, controller: Running) -> None:
    admin = initialized
    imw = unique("imw")
    names: dict[str, str] = {}
    try:
        targets = _inventory(admin, imw)
        imw_cluster = _imw_cluster(admin, imw)
        names = {n: f"{imw_cluster}-mb-{st['metadata']['uid']}" for n, st in targets.items()}

        # A.1: one mailbox per SyncTarget, annotated with the SyncTarget's name, with every binding.
        for st_name, mb in names.items():
            ws = _wait_mailbox(admin, mb)
            assert ws["metadata"]["annotations"][mailbox.SYNC_TARGET_NAME_ANNOTATION] == st_name
            served = kcp.cluster(admin, ws["spec"]["cluster"])
            assert served.get(f"{EDGE}/syncerconfigs")["items"] == []
            assert served.get("/apis/apps/v1/deployments")["items"] == []
            assert served.get("/apis/apps/v1/replicasets")["items"] == []

        # A changed sync-target-name annotation is put back.
        ann = mailbox.SYNC_TARGET_NAME_ANNOTATION
        root = kcp.cluster(admin, kcp.ROOT)
        root.patch(f"{kcp.TENANCY}/workspaces/{names['guilder']}", {"metadata": {"annotations": {ann: "x"}}})
        kcp.wait_for(
            "the annotation to be repaired", lambda: _annotation(admin, names["guilder"]) == "guilder", WAIT
        )

        # C15: a deleted mailbox comes back, with the same name, once the old one is gone.
        florin_mb = names["florin"]
        old = _workspace(admin, florin_mb)
        assert old is not None
        kcp.delete_workspace(admin, f"root:{florin_mb}")
        ws = _wait_mailbox(admin, florin_mb, not_uid=old["metadata"]["uid"], timeout=90)
        assert ws["metadata"]["annotations"][mailbox.SYNC_TARGET_NAME_ANNOTATION] == "florin"

        # A deleted binding comes back.
        mb_client = kcp.cluster(admin, ws["spec"]["cluster"])
        mb_client.delete(f"{kcp.APIS}/apibindings/bind-batch")
        kcp.wait_for("bind-batch to come back", lambda: _bound(admin, ws["spec"]["cluster"]), WAIT)

        # C3: the mailbox of a deleted SyncTarget is deleted.
        kcp.cluster(admin, f"root:{imw}").delete(f"{EDGE}/synctargets/guilder")
        _wait_gone(admin, names["guilder"])
        assert _ready(admin, florin_mb) is not None

        # ... and re-creating the SyncTarget gives a new mailbox (new UID, new name).
        bootstrap.ensure_location(admin, "guilder", {"env": "prod"}, imw=imw)
        uid = kcp.cluster(admin, f"root:{imw}").get(f"{EDGE}/synctargets/guilder")["metadata"]["uid"]
        assert uid != targets["guilder"]["metadata"]["uid"]
        names["guilder"] = f"{imw_cluster}-mb-{uid}"
        _wait_mailbox(admin, names["guilder"])
    finally:
        _clean_up(admin, imw, names.values())


def _clean_up(admin: RestClient, imw: str, mailboxes: Iterable[str]) -> None:
    """Delete the IMW and, without waiting for the controller, the mailboxes of its SyncTargets."""
    kcp.delete_workspace(admin, f"root:{imw}")
    for name in mailboxes:
        kcp.delete_workspace(admin, f"root:{name}")


def test_stray_mailbox_shaped_workspace_is_deleted(initialized: RestClient, controller: Running) -> None:
    admin = initialized
    stray = f"{unique('nosuchimw')}-mb-{uuid.uuid4()}"
    other = unique("not-a-mailbox")
    kcp.ensure_workspace(admin, f"root:{other}")
    try:
        kcp.cluster(admin, kcp.ROOT).create(
            f"{kcp.TENANCY}/workspaces",
            {
                "apiVersion": "tenancy.kcp.io/v1alpha1",
                "kind": "Workspace",
                "metadata": {"name": stray},
                "spec": {"type": kcp.UNIVERSAL_TYPE},
            },
        )
        kcp.wait_for("the stray mailbox to be deleted", lambda: _workspace(admin, stray) is None, 90)
        assert _workspace(admin, other) is not None  # names that are not mailbox-shaped are left alone
    finally:
        kcp.delete_workspace(admin, f"root:{other}")
        kcp.delete_workspace(admin, f"root:{stray}")  # False when the controller did it


def test_restart_writes_nothing(kcp_server: KcpServer, initialized: RestClient) -> None:
    admin = initialized
    imw = unique("imw")
    mailboxes: list[str] = []
    try:
        first = Running(kcp_server, mailbox.NAME, mailbox.setup)
        try:
            targets = _inventory(admin, imw)
            imw_cluster = _imw_cluster(admin, imw)
            mailboxes = [f"{imw_cluster}-mb-{st['metadata']['uid']}" for st in targets.values()]
            for mb in mailboxes:
                _wait_mailbox(admin, mb)
            first.quiet()
            assert first.writes.total() > 0
        finally:
            first.stop()
        second = Running(kcp_server, mailbox.NAME, mailbox.setup)
        try:
            second.quiet(seconds=3.0)
            assert second.writes.total() == 0, second.writes.snapshot()
        finally:
            second.stop()
    finally:
        _clean_up(admin, imw, mailboxes)


# --- the command line --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def run_entry_point(server: KcpServer, module: str, lease: str, admin: RestClient) -> None:
    """Run ``python -m <module>`` with leader election on: it serves /readyz, holds its Lease in
    root:espw (namespace default), and exits 0 on SIGTERM, releasing the Lease."""
    port = free_port()
    args = [sys.executable, "-m", module, "--kubeconfig", str(server.kubeconfig), "-v", "2"]
    args += ["--server-bind-address", f"127.0.0.1:{port}"]
    espw = kcp.cluster(admin, bootstrap.ESPW)
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/default/leases/{lease}"
    with tempfile.TemporaryFile("w+") as log:  # a pipe could fill up and block the process
        proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            kcp.wait_for(
                f"{module} to be ready",
                lambda: proc.poll() is None and http_status(port, "/readyz") == 200,
                90,
            )
            kcp.wait_for(
                f"{module} to hold Lease {lease}",
                lambda: (espw.get(lease_path)["spec"].get("holderIdentity") or "") != "",
                30,
            )
            assert http_status(port, "/metrics") == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.seek(0)
            out = log.read()
    assert proc.returncode == 0, out[-3000:]
    assert "Command line flag" in out
    assert espw.get(lease_path)["spec"].get("holderIdentity") in (None, "")


def test_entry_point(kcp_server: KcpServer, initialized: RestClient) -> None:
    run_entry_point(kcp_server, "cmd.mailbox_controller", "mailbox-controller", initialized)


def test_bad_flags_give_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cmd.mailbox_controller", "--leader-elect=maybe"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "argument --leader-elect: expected true or false, got 'maybe'" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "cmd.mailbox_controller", "--kubeconfig", "/nonexistent/kubeconfig"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("mailbox-controller: error:") and "Traceback" not in out.stderr
