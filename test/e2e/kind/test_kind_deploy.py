"""The Dockerfile's image and config/deploy/overlays/dev, deployed into a kind cluster next to kcp.

Runs only where a Docker engine answers ``docker info`` (a docker client alone is not enough) and
``kind`` is on PATH; otherwise the test skips and says which of the two is missing.  The checks
happen before any fixture starts kcp, so a skip costs nothing.

What it does: build the image with the tag that the dev overlay names, create a kind cluster, load
the image into it, start a private kcp (the controllers in the cluster act on every workspace of
the kcp they are given, and hold the Lease ``kubestellar`` in ``root:espw``: on the shared session
kcp they would interfere with the other tests) and run ``kubestellar init`` on it, apply the
overlay, create the Secret ``kcp-admin-kubeconfig`` from the kcp admin kubeconfig, wait for the
Deployment to be Available (``/readyz`` OK: the caches synced against kcp) and for the pod to hold
the leader Lease in kcp; then delete the cluster.

Reaching kcp from the kind node.  kcp listens on 127.0.0.1 (hack/kcp.sh), which a pod cannot
reach.  The test relays TCP from the gateway address of the docker network ``kind`` (the host's
address on that bridge, which the nodes' containers route to) to kcp, and rewrites every cluster
entry of the kubeconfig in the Secret to ``https://<gateway>:<relay port>`` with
``tls-server-name: 127.0.0.1`` (kcp's serving certificate is valid for 127.0.0.1, and TLS passes
through the relay untouched).  Assumptions: a Linux Docker engine whose bridge gateway is an
address of this host (not Docker Desktop's VM; there, use host.docker.internal), and no firewall
dropping traffic from the kind network to the host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from pkg import bootstrap
from pkg.runtime import kcp

pytestmark = [pytest.mark.kind, pytest.mark.kcp]

REPO = Path(__file__).resolve().parents[3]
OVERLAY = REPO / "config" / "deploy" / "overlays" / "dev"
NAMESPACE = "kubestellar"
DEPLOYMENT = "kubestellar-controllers"
SECRET = "kcp-admin-kubeconfig"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/kubestellar"
KIND_NETWORK = "kind"


def why_not_runnable() -> str | None:
    """None when Docker and kind are usable, else the reason (naming what is missing)."""
    reasons = []
    if shutil.which("docker") is None:
        reasons.append("no docker client on PATH (and so no Docker engine)")
    else:
        try:
            info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
            if info.returncode != 0:
                last = (info.stderr.strip().splitlines() or ["no output"])[-1]
                reasons.append(f"no Docker engine answers `docker info` ({last})")
        except subprocess.TimeoutExpired:
            reasons.append("`docker info` did not answer within 60s")
    if shutil.which("kind") is None:
        reasons.append("kind is not on PATH")
    return "; ".join(reasons) or None


def run(*args: str, timeout: float = 600, input: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def overlay_image() -> str:
    """The image reference the dev overlay deploys (what the test must build and load)."""
    k = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    (entry,) = [i for i in k["images"] if i["name"] == "kubestellar-py"]
    return f"{entry.get('newName', entry['name'])}:{entry['newTag']}"


def kind_gateway() -> str:
    """The IPv4 gateway of the docker network kind's nodes are on: this host, seen from a node."""
    out = run("docker", "network", "inspect", KIND_NETWORK, "--format", "{{json .IPAM.Config}}")
    for cfg in json.loads(out) or []:
        gw = cfg.get("Gateway")
        if gw and ipaddress.ip_address(gw).version == 4:
            return str(gw)
    raise AssertionError(f"docker network {KIND_NETWORK!r} has no IPv4 gateway: {out}")


class Relay:
    """A TCP relay from ``listen_host``:<ephemeral port> to ``target`` (host, port)."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server((listen_host, 0))
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, name="kind-kcp-relay", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        self.server.close()


def kubeconfig_via(kubeconfig: dict[str, Any], host: str, port: int) -> dict[str, Any]:
    """``kubeconfig`` with every cluster's server moved to host:port, certificates checked as 127.0.0.1."""
    out = json.loads(json.dumps(kubeconfig))
    for entry in out["clusters"]:
        cluster = entry["cluster"]
        parts = urlsplit(cluster["server"])
        original_host = parts.hostname or "127.0.0.1"
        cluster["server"] = urlunsplit(parts._replace(netloc=f"{host}:{port}"))
        cluster.setdefault("tls-server-name", original_host)
    return out


@contextlib.contextmanager
def kind_cluster(name: str, kubeconfig: Path) -> Iterator[None]:
    run(
        "kind",
        "create",
        "cluster",
        "--name",
        name,
        "--kubeconfig",
        str(kubeconfig),
        "--wait",
        "180s",
        timeout=900,
    )
    try:
        yield
    finally:
        run("kind", "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig), timeout=300)


def diagnostics(kubectl: list[str]) -> str:
    parts = []
    for args in (
        ["-n", NAMESPACE, "get", "all,events", "-o", "wide"],
        ["-n", NAMESPACE, "describe", "pods"],
        ["-n", NAMESPACE, "logs", f"deployment/{DEPLOYMENT}", "--all-containers", "--tail=200"],
    ):
        proc = subprocess.run([*kubectl, *args], capture_output=True, text=True, timeout=60)
        parts.append(f"$ kubectl {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    return "\n".join(parts)


def test_deploy_into_kind(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    reason = why_not_runnable()
    if reason:
        print(f"skipping the kind deployment test: {reason}")
        pytest.skip(reason)

    kubectl_bin = run(str(REPO / "hack" / "kcp.sh"), "path", "kubectl", timeout=1800).strip()
    image = overlay_image()
    run("docker", "build", "-t", image, str(REPO), timeout=1800)

    name = f"ks-py-{uuid.uuid4().hex[:8]}"
    kind_kubeconfig = tmp_path / "kind.kubeconfig"
    with kind_cluster(name, kind_kubeconfig):
        run("kind", "load", "docker-image", image, "--name", name, timeout=600)

        server = request.getfixturevalue("private_kcp")()
        admin = server.client()
        bootstrap.init(admin)
        kcp_url = urlsplit(yaml.safe_load(server.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
        relay = Relay(kind_gateway(), (kcp_url.hostname or "127.0.0.1", kcp_url.port or 443))
        request.addfinalizer(relay.close)
        pod_kubeconfig = tmp_path / "admin.kubeconfig"
        pod_kubeconfig.write_text(
            yaml.safe_dump(
                kubeconfig_via(yaml.safe_load(server.kubeconfig.read_text()), kind_gateway(), relay.port)
            )
        )

        kubectl = [kubectl_bin, "--kubeconfig", str(kind_kubeconfig)]
        run(*kubectl, "apply", "-k", str(OVERLAY))
        run(
            *kubectl,
            "-n",
            NAMESPACE,
            "create",
            "secret",
            "generic",
            SECRET,
            f"--from-file=admin.kubeconfig={pod_kubeconfig}",
        )
        try:
            run(
                *kubectl,
                "-n",
                NAMESPACE,
                "wait",
                "--for=condition=Available",
                f"deployment/{DEPLOYMENT}",
                "--timeout=300s",
                timeout=330,
            )
            pods = json.loads(
                run(
                    *kubectl,
                    "-n",
                    NAMESPACE,
                    "get",
                    "pods",
                    "-l",
                    "app.kubernetes.io/component=controllers",
                    "-o",
                    "json",
                )
            )
            pod_names = {p["metadata"]["name"] for p in pods["items"]}
            espw = kcp.cluster(admin, "root:espw")

            def leader() -> str | None:
                holder = (espw.get(LEASE).get("spec") or {}).get("holderIdentity") or ""
                return holder if holder.split("_")[0] in pod_names else None

            kcp.wait_for(
                "a controller pod in kind to hold the leader Lease in root:espw", leader, timeout=120
            )
        except (AssertionError, kcp.KcpError) as e:
            raise AssertionError(f"{e}\n{diagnostics(kubectl)}") from None
