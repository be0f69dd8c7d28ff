"""Everything together: `python -m cmd.kubestellar start` runs example1 from nothing on kcp."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pkg.runtime import kcp
from pkg.runtime.rest import RestClient
from test.e2e import example1
from test.e2e.example1 import EDGE
from test.e2e.kcpserver import REPO, KcpServer
from test.e2e.test_translator import eventually, florin_spec, get, guilder_spec, the_one


@contextlib.contextmanager
def kubestellar_start(server: KcpServer, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cmd.kubestellar",
                "start",
                "--kubeconfig",
                str(server.kubeconfig),
                "--server-bind-address",
                "127.0.0.1:0",
                "-v",
                "2",
                *extra,
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _port(log: Path) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        if "serving metrics and probes" in line:
            return int(line.rsplit(":", 1)[1])
    return None


def test_example1_from_nothing(kcp_server: KcpServer, initialized: RestClient, tmp_path: Path) -> None:
    c = initialized
    ex = example1.setup(c)
    log = tmp_path / "kubestellar.log"
    with kubestellar_start(kcp_server, log) as proc:
        # The mailbox controller makes the mailboxes, the where resolver the slices, the translator the rest.
        eventually("florin's the-one", lambda: the_one(c, ex, "florin") == florin_spec(), 120)
        eventually("guilder's the-one", lambda: the_one(c, ex, "guilder") == guilder_spec(), 60)
        sps = get(kcp.cluster(c, ex.wmw_s), f"{EDGE}/singleplacementslices/edge-placement-s")
        assert sps is not None
        assert [d["locationName"] for d in sps["destinations"]] == ["guilder"]
        guilder = kcp.cluster(c, f"root:{ex.mailbox('guilder')}")
        dep = eventually(
            "speciald", lambda: get(guilder, "/apis/apps/v1/namespaces/specialstuff/deployments/speciald")
        )
        assert dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "in prod env"
        ep = get(kcp.cluster(c, ex.wmw_c), f"{EDGE}/edgeplacements/edge-placement-c") or {}
        types = {x["type"]: x["status"] for x in ep.get("status", {}).get("conditions", [])}
        assert types.get("LocationsResolved") == "True"
        eventually("Projected", lambda: _projected(c, ex.wmw_c) == "True")
        assert ep["status"]["matchingLocationCount"] == 2

        port = eventually("the metrics port", lambda: _port(log))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "kubestellar_client_writes_total" in metrics
        assert "workqueue_adds_total" in metrics
        # One workqueue per controller: the mailbox controller, both resolvers, the translator's.
        for queue in (
            "mailbox-controller",
            "where-resolver",
            "what-resolver",
            "placement-translator-mailbox",
        ):
            assert f'workqueue_adds_total{{name="{queue}"}}' in metrics, queue

        # A Location label change moves the special workload away from guilder.
        imw = kcp.cluster(c, ex.imw)
        imw.patch(f"{EDGE}/locations/guilder", {"metadata": {"labels": {"extended": "no"}}})
        eventually(
            "speciald gone from guilder",
            lambda: get(guilder, "/apis/apps/v1/namespaces/specialstuff/deployments/speciald") is None,
        )
        assert proc.poll() is None, log.read_text()[-3000:]
    assert proc.returncode == 0, log.read_text()[-3000:]


def _projected(c: RestClient, wmw: str) -> str | None:
    ep = get(kcp.cluster(c, wmw), f"{EDGE}/edgeplacements/edge-placement-c") or {}
    types = {x["type"]: x["status"] for x in ep.get("status", {}).get("conditions", [])}
    return types.get("Projected")
