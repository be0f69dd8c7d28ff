"""example1 to the edge: prep-for-syncer's credentials do what the upstream syncer does.

One environment for the module (two kcp servers, example1 with ``python -m cmd.kubestellar start``,
``prep-for-syncer`` per SyncTarget through the CLI, each manifest applied in its edge workspace).
Then, with exactly the credentials of the manifests: the mailbox half of the syncer (SyncerConfigs,
``the-one``, the EdgeSyncConfig, list + watch + read of everything ``the-one`` names, an upsync
object created, updated and deleted) and the edge half (SelfSubjectAccessReviews).  When
``KUBESTELLAR_SYNCER`` names an upstream v0.14.0 syncer binary, it is run against the same
environment; without it that test skips, saying why.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pkg import bootstrap, syncerprep
from pkg.runtime import kcp
from pkg.runtime.kubeconfig import KubeconfigSource, endpoint_from_dict
from pkg.runtime.rest import ApiError, RestClient
from test.e2e import example1
from test.e2e.edge.conftest import FIGURES
from test.e2e.example1 import EDGE, Example1
from test.e2e.kcpserver import REPO, KcpServer
from test.e2e.test_kubestellar import kubestellar_start
from test.e2e.test_translator import florin_spec, get, guilder_spec

LOCATIONS = ("florin", "guilder")
SYNCER_ENV = "KUBESTELLAR_SYNCER"
UPSYNC_GROUP, UPSYNC_VERSION, UPSYNC_RESOURCE = "group1.test", "v1alpha1", "sprockets"


def eventually(what: str, probe: Callable[[], Any], timeout: float = 120.0) -> Any:
    return kcp.wait_for(what, probe, timeout, interval=0.3)


def sprocket_crd() -> dict[str, Any]:
    """A CRD for the upsync clause ``group1.test/sprockets`` of example1's placements."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{UPSYNC_RESOURCE}.{UPSYNC_GROUP}"},
        "spec": {
            "group": UPSYNC_GROUP,
            "names": {
                "kind": "Sprocket",
                "listKind": "SprocketList",
                "plural": UPSYNC_RESOURCE,
                "singular": "sprocket",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": UPSYNC_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def sprocket(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{UPSYNC_GROUP}/{UPSYNC_VERSION}",
        "kind": "Sprocket",
        "metadata": {"name": name, "namespace": "orbital"},
        "spec": {"teeth": size},
    }


SPROCKETS = f"/apis/{UPSYNC_GROUP}/{UPSYNC_VERSION}/namespaces/orbital/{UPSYNC_RESOURCE}"


def collection(group: str, version: str, resource: str, namespace: str | None = None) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    return f"{base}/namespaces/{namespace}/{resource}" if namespace else f"{base}/{resource}"


def listed(spec: dict[str, Any]) -> list[tuple[str, str, str, str | None, str]]:
    """(group, version, resource, namespace, name) of every object ``the-one`` names."""
    out: list[tuple[str, str, str, str | None, str]] = []
    for entry in spec.get("namespacedObjects") or []:
        for by_ns in entry.get("objectsByNamespace") or []:
            for name in by_ns.get("names") or []:
                out.append((entry["group"], entry["apiVersion"], entry["resource"], by_ns["namespace"], name))
    for entry in spec.get("clusterScope") or []:
        for name in entry.get("objects") or []:
            out.append((entry["group"], entry["apiVersion"], entry["resource"], None, name))
    return out


def client_from_kubeconfig(raw: dict[str, Any]) -> RestClient:
    return RestClient(endpoint_from_dict(raw, KubeconfigSource()))


@dataclass
class Edge:
    central: KcpServer
    edge_server: KcpServer
    c: RestClient  # central admin
    e: RestClient  # edge admin
    ex: Example1
    tmp: Path
    manifests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=lambda: FIGURES)

    def edge_ws(self, location: str) -> str:
        return f"root:edge-{location}"

    def mailbox(self, location: str) -> RestClient:
        return kcp.cluster(self.c, f"root:{self.ex.mailbox(location)}")

    def syncer_id(self, location: str) -> str:
        return syncerprep.syncer_id(location, self.ex.sync_targets[location]["metadata"]["uid"])

    def mailbox_kubeconfig(self, location: str) -> dict[str, Any]:
        return syncerprep.manifest_kubeconfig(self.manifests[location])

    def edge_kubeconfig(self, location: str) -> dict[str, Any]:
        """What the syncer pod would get in its edge cluster: the edge ServiceAccount's token."""
        sid = self.syncer_id(location)
        ws = kcp.cluster(self.e, self.edge_ws(location))

        def token() -> str | None:
            data = (get(ws, f"/api/v1/namespaces/{sid}/secrets/{sid}-token") or {}).get("data") or {}
            return base64.b64decode(data["token"]).decode() if data.get("token") else None

        admin = yaml.safe_load(self.edge_server.kubeconfig.read_text())
        ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "edge",
                    "cluster": {"server": kcp.server_origin(self.e.prefix), "certificate-authority-data": ca},
                }
            ],
            "contexts": [
                {"name": "edge", "context": {"cluster": "edge", "user": "syncer", "namespace": sid}}
            ],
            "current-context": "edge",
            "users": [
                {"name": "syncer", "user": {"token": eventually(f"{location}'s edge token", token, 60)}}
            ],
        }


def _parallel(*fns: Callable[[], Any]) -> None:
    """Run ``fns`` at once; wait for all, then raise the first one's error, if any."""
    with ThreadPoolExecutor(max_workers=len(fns)) as pool:
        futures = [pool.submit(fn) for fn in fns]
    for future in futures:
        future.result()


def prep_cli(central: KcpServer, location: str, imw: str, output: Path) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cmd.kubestellar",
            "prep-for-syncer",
            location,
            "--kubeconfig",
            str(central.kubeconfig),
            "--imw",
            imw,
            "-o",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def edge(two_kcps: tuple[KcpServer, KcpServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    central, edge_server = two_kcps
    t0 = time.monotonic()
    c, e = central.client(), edge_server.client()
    tmp = tmp_path_factory.mktemp("edge")
    holder: dict[str, Example1] = {}

    def central_side() -> None:
        bootstrap.init(c)
        ex = holder["ex"] = example1.setup(c)
        # wmw-c defines the resource of an upsync clause: the translator projects its CRD.
        bootstrap.apply_objects(c, ex.wmw_c, [sprocket_crd()])

    def edge_side() -> None:
        bootstrap.init(e)
        for location in LOCATIONS:
            bootstrap.ensure_wmw(e, f"edge-{location}")

    _parallel(central_side, edge_side)
    env = Edge(central, edge_server, c, e, holder["ex"], tmp)
    env.figures["setup_s"] = time.monotonic() - t0
    with contextlib.ExitStack() as stack:
        stack.enter_context(kubestellar_start(central, tmp / "kubestellar.log"))
        for location in LOCATIONS:
            out = tmp / f"{location}-syncer.yaml"
            prep_cli(central, location, env.ex.imw, out)
            env.manifests[location] = [d for d in yaml.safe_load_all(out.read_text()) if d]
            bootstrap.apply_objects(e, env.edge_ws(location), env.manifests[location])
        env.figures["prepared_edge_s"] = time.monotonic() - t0
        env.figures["prepared_edge_from_nothing_s"] = env.figures["prepared_edge_s"] + FIGURES.get(
            "kcp_start_s", 0
        )
        yield env


def test_prep_for_syncer_is_idempotent(edge: Edge) -> None:
    for location in LOCATIONS:
        out = edge.tmp / f"{location}-again.yaml"
        text = prep_cli(edge.central, location, edge.ex.imw, out)
        assert "up to date" in text, text
        assert out.read_text() == (edge.tmp / f"{location}-syncer.yaml").read_text()


def test_mailbox_credentials_see_what_the_syncer_needs(edge: Edge) -> None:
    want = {"florin": florin_spec(), "guilder": guilder_spec()}
    for location in LOCATIONS:
        mb = client_from_kubeconfig(edge.mailbox_kubeconfig(location))
        admin_mb = edge.mailbox(location)
        names = [o["metadata"]["name"] for o in mb.get(f"{EDGE}/syncerconfigs")["items"]]
        assert names == ["the-one"], names
        eventually(
            f"{location}'s the-one",
            lambda mb=mb, location=location: (
                mb.get(f"{EDGE}/syncerconfigs/the-one")["spec"] == want[location]
            ),
        )
        spec = mb.get(f"{EDGE}/syncerconfigs/the-one")["spec"]
        assert mb.get(f"{EDGE}/edgesyncconfigs/{location}")["metadata"]["name"] == location
        objects = listed(spec)
        assert objects
        for group, version, resource, namespace, name in objects:
            path = collection(group, version, resource, namespace)
            items = mb.get(path)["items"]
            assert name in [i["metadata"]["name"] for i in items], (location, path)
            events = list(mb.stream(path, {"watch": "true", "timeoutSeconds": 2}, read_timeout=30))
            assert name in [ev["object"]["metadata"]["name"] for ev in events if ev["type"] == "ADDED"]
            obj = mb.get(f"{path}/{name}")
            assert obj == admin_mb.get(f"{path}/{name}")
            assert obj["metadata"]["labels"]["edge.kubestellar.io/projected"] == "yes"
        assert "sprockets" not in json.dumps(
            spec.get("clusterScope")
        )  # the projected upsync CRD is not listed
        cm = mb.get("/api/v1/namespaces/commonstuff/configmaps/httpd-htdocs")
        assert f"Running in {location}." in cm["data"]["index.html"]
        rs = mb.get("/apis/apps/v1/namespaces/commonstuff/replicasets/commond")
        assert rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "env is prod"
    guilder = client_from_kubeconfig(edge.mailbox_kubeconfig("guilder"))
    dep = guilder.get("/apis/apps/v1/namespaces/specialstuff/deployments/speciald")
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "in prod env"


def _served(c: RestClient, path: str) -> bool:
    try:
        c.get(path)
        return True
    except ApiError as e:
        if e.not_found:
            return False
        raise


def test_upsync_object_lifecycle_in_the_mailbox(edge: Edge) -> None:
    for location in LOCATIONS:
        admin_mb = edge.mailbox(location)
        mb = client_from_kubeconfig(edge.mailbox_kubeconfig(location))
        # Served thanks to the CRD the translator projects from wmw-c (nobody made it by hand).
        eventually(f"sprockets served in {location}'s mailbox", lambda mb=mb: _served(mb, SPROCKETS), 90)
        projected = admin_mb.get(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{UPSYNC_RESOURCE}.{UPSYNC_GROUP}"
        )
        assert projected["metadata"]["labels"]["edge.kubestellar.io/projected"] == "yes"
        with contextlib.suppress(ApiError):
            mb.create(
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orbital"}},
            )
        made = mb.create(SPROCKETS, sprocket("george", 12))
        made["spec"]["teeth"] = 13
        mb.update(f"{SPROCKETS}/george", made)
        assert admin_mb.get(f"{SPROCKETS}/george")["spec"]["teeth"] == 13
        mb.delete(f"{SPROCKETS}/george")
        eventually(
            "george deleted", lambda admin_mb=admin_mb: get(admin_mb, f"{SPROCKETS}/george") is None, 30
        )


def _condition(c: RestClient, wmw: str, placement: str) -> dict[str, Any]:
    ep = c.get(f"/clusters/{wmw}{EDGE}/edgeplacements/{placement}")
    return next((x for x in (ep.get("status") or {}).get("conditions") or [] if x["type"] == "Projected"), {})


def test_upsync_resources_nobody_defines_are_reported(edge: Edge) -> None:
    # edge-placement-s upsyncs widgets.group3.test, which no workspace defines.
    def reported() -> dict[str, Any] | None:
        cond = _condition(edge.c, edge.ex.wmw_s, "edge-placement-s")
        return cond if cond.get("reason") == "UpsyncNotServed" else None

    cond = eventually("edge-placement-s's Projected condition", reported, 60)
    assert cond["status"] == "True"  # every downsynced copy is there
    assert "widgets.group3.test" in cond["message"]
    assert "sprockets" not in cond["message"]  # wmw-c serves those to guilder's mailbox
    events = edge.c.get(f"/clusters/{edge.ex.wmw_s}/api/v1/namespaces/default/events")["items"]
    assert any(
        e.get("reason") == "UpsyncNotServed" and "widgets.group3.test" in e.get("message", "") for e in events
    )


def test_edge_credentials_may_do_what_the_syncer_does(edge: Edge) -> None:
    for location in LOCATIONS:
        e = client_from_kubeconfig(edge.edge_kubeconfig(location))
        spec = edge.mailbox(location).get(f"{EDGE}/syncerconfigs/the-one")["spec"]
        checks = {(g, r, ns) for g, _, r, ns, _ in listed(spec)}
        checks |= {(u["apiGroup"], r, None) for u in spec.get("upsync") or [] for r in u["resources"]}
        for group, resource, namespace in sorted(checks, key=str):
            for verb in ("get", "list", "watch", "create", "update", "delete"):
                attrs = {"group": group, "resource": resource, "verb": verb}
                if namespace:
                    attrs["namespace"] = namespace
                review = e.create(
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    {
                        "apiVersion": "authorization.k8s.io/v1",
                        "kind": "SelfSubjectAccessReview",
                        "spec": {"resourceAttributes": attrs},
                    },
                )
                assert review["status"].get("allowed") is True, (location, attrs, review["status"])
    # Another identity in the same edge workspace is not allowed: the grant is the manifest's RBAC.
    ws = kcp.cluster(edge.e, edge.edge_ws("florin"))
    with contextlib.suppress(ApiError):
        ws.create(
            "/api/v1/namespaces/default/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}},
        )
        ws.create(
            "/api/v1/namespaces/default/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "nobody-token",
                    "annotations": {"kubernetes.io/service-account.name": "nobody"},
                },
                "type": "kubernetes.io/service-account-token",
            },
        )

    def nobody_token() -> str | None:
        data = (get(ws, "/api/v1/namespaces/default/secrets/nobody-token") or {}).get("data") or {}
        return base64.b64decode(data["token"]).decode() if data.get("token") else None

    raw = edge.edge_kubeconfig("florin")
    raw["users"][0]["user"]["token"] = eventually("nobody's token", nobody_token, 60)
    review = client_from_kubeconfig(raw).create(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "group": "",
                    "resource": "configmaps",
                    "verb": "create",
                    "namespace": "commonstuff",
                }
            },
        },
    )
    assert review["status"].get("allowed") is not True


# --- the real syncer, when a binary is given -------------------------------------------------


@contextlib.contextmanager
def running_syncers(edge: Edge, binary: str) -> Iterator[dict[str, Path]]:
    procs: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}
    try:
        for location in LOCATIONS:
            mbfile = edge.tmp / f"{location}-mailbox.kubeconfig"
            mbfile.write_text(yaml.safe_dump(edge.mailbox_kubeconfig(location)))
            edgefile = edge.tmp / f"{location}-edge.kubeconfig"
            edgefile.write_text(yaml.safe_dump(edge.edge_kubeconfig(location)))
            dep = next(d for d in edge.manifests[location] if d["kind"] == "Deployment")
            args = [
                a
                for a in dep["spec"]["template"]["spec"]["containers"][0]["args"]
                if not a.startswith("--from-kubeconfig")
            ]
            logs[location] = edge.tmp / f"{location}-syncer.log"
            with logs[location].open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [binary, f"--from-kubeconfig={mbfile}", f"--to-kubeconfig={edgefile}", *args],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "NAMESPACE": edge.syncer_id(location)},
                    )
                )
        yield logs
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _content(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def test_upstream_syncer_end_to_end(edge: Edge) -> None:
    binary = os.environ.get(SYNCER_ENV)
    if not binary:
        pytest.skip(
            f"{SYNCER_ENV} is not set: no upstream v0.14.0 syncer binary to run (see README, 'The edge')"
        )
    assert os.access(binary, os.X_OK), f"{SYNCER_ENV}={binary} is not an executable"
    timeout = 300.0  # the syncer cycles every 15 s and walks its objects in random order
    t0 = time.monotonic()
    with running_syncers(edge, binary) as logs:

        def tail(location: str) -> str:
            return logs[location].read_text(errors="replace")[-3000:]

        for location in LOCATIONS:
            mb = edge.mailbox(location)
            at = kcp.cluster(edge.e, edge.edge_ws(location))
            spec = mb.get(f"{EDGE}/syncerconfigs/the-one")["spec"]
            for group, version, resource, namespace, name in listed(spec):
                path = f"{collection(group, version, resource, namespace)}/{name}"
                want = _content(mb.get(path))
                try:
                    eventually(
                        f"{path} at {location}'s edge",
                        lambda at=at, path=path, want=want: _content(get(at, path)) == want,
                        timeout,
                    )
                except kcp.KcpError as err:
                    raise AssertionError(f"{err}\nsyncer log:\n{tail(location)}") from err
            cms = {
                cm["metadata"]["name"]
                for cm in at.get("/api/v1/namespaces/commonstuff/configmaps")["items"]
                if cm["metadata"]["name"] != "kube-root-ca.crt"
            }
            assert cms == {"httpd-htdocs"}, cms
        edge.figures["syncer_downsync_s"] = time.monotonic() - t0

        # Upsync from guilder's edge: a matching object reaches the mailbox, another does not.
        g_edge = kcp.cluster(edge.e, edge.edge_ws("guilder"))
        g_mb = edge.mailbox("guilder")
        with contextlib.suppress(ApiError):
            g_edge.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", sprocket_crd())
        eventually("sprockets served at guilder's edge", lambda: _served(g_edge, SPROCKETS), 60)
        with contextlib.suppress(ApiError):
            g_edge.create(
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orbital"}},
            )
        g_edge.create(SPROCKETS, sprocket("kramer", 1))
        g_edge.create(SPROCKETS, sprocket("george", 2))
        eventually(
            "george upsynced to guilder's mailbox",
            lambda: get(g_mb, f"{SPROCKETS}/george") is not None,
            timeout,
        )
        g_edge.create(SPROCKETS, sprocket("cosmo", 3))
        eventually(
            "cosmo upsynced to guilder's mailbox",
            lambda: get(g_mb, f"{SPROCKETS}/cosmo") is not None,
            timeout,
        )
        assert get(g_mb, f"{SPROCKETS}/kramer") is None

        # A Location relabel moves the special workload out of guilder's edge, and back.
        speciald = "/apis/apps/v1/namespaces/specialstuff/deployments/speciald"
        imw = kcp.cluster(edge.c, edge.ex.imw)
        imw.patch(f"{EDGE}/locations/guilder", {"metadata": {"labels": {"extended": "no"}}})
        eventually("speciald gone from guilder's edge", lambda: get(g_edge, speciald) is None, timeout)
        imw.patch(f"{EDGE}/locations/guilder", {"metadata": {"labels": {"extended": "yes"}}})
        eventually("speciald back at guilder's edge", lambda: get(g_edge, speciald) is not None, timeout)

        # An edge-side deletion of a downsynced object is repaired.
        f_edge = kcp.cluster(edge.e, edge.edge_ws("florin"))
        cm = "/api/v1/namespaces/commonstuff/configmaps/httpd-htdocs"
        f_edge.delete(cm)
        eventually("florin's configmap restored at its edge", lambda: get(f_edge, cm) is not None, timeout)
        edge.figures["syncer_total_s"] = time.monotonic() - t0
