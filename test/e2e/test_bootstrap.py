"""`python -m cmd.kubestellar` init / ensure / remove, and the kcp endpoints the controllers use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pkg import bootstrap
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError, RestClient, WriteCounter
from test.e2e.kcpserver import REPO, KcpServer, unique

EDGE = "/apis/edge.kubestellar.io/v2alpha1"


def cli(server: KcpServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cmd.kubestellar", *args, "--kubeconfig", str(server.kubeconfig)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_init_twice_writes_nothing(kcp_server: KcpServer, initialized: RestClient) -> None:
    counter = WriteCounter()
    client = kcp_server.client(writes=counter)
    assert bootstrap.init(client) == 0
    assert counter.total() == 0, counter.snapshot()
    # The CLI says so too.
    out = cli(kcp_server, "init")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "init: up to date"


def test_init_creates_espw_exports_and_imw(initialized: RestClient) -> None:
    export = kcp.get_export(initialized, bootstrap.ESPW, bootstrap.EDGE_EXPORT)
    assert kcp.export_identity(export)
    assert "/services/apiexport/" in kcp.export_virtual_workspace_url(export)
    schemas = export["spec"]["latestResourceSchemas"]
    assert sorted(s.split(".", 1)[1] for s in schemas) == sorted(
        f"{r}.edge.kubestellar.io"
        for r in (
            "customizers",
            "edgeplacements",
            "edgesyncconfigs",
            "locations",
            "singleplacementslices",
            "syncerconfigs",
            "synctargets",
        )
    )
    for name in ["apps", "batch", "autoscaling", "policy", "networking.k8s.io", "apiregistration.k8s.io"]:
        assert kcp.export_identity(kcp.get_export(initialized, kcp.COMPUTE_WORKSPACE, name)), name
    imw = kcp.cluster(initialized, "root:imw1")
    assert imw.get(f"{EDGE}/locations")["items"] is not None


def test_ensure_location_keeps_label_values(kcp_server: KcpServer, initialized: RestClient) -> None:
    name = unique("loc")
    out = cli(kcp_server, "ensure", "location", name, "env=prod", "extended=yes", "n=1")
    assert out.returncode == 0, out.stderr
    imw = kcp.cluster(initialized, "root:imw1")
    st = imw.get(f"{EDGE}/synctargets/{name}")
    loc = imw.get(f"{EDGE}/locations/{name}")
    assert st["metadata"]["labels"] == {"id": name, "env": "prod", "extended": "yes", "n": "1"}
    assert loc["metadata"]["labels"] == {"env": "prod", "extended": "yes", "n": "1"}
    assert loc["spec"]["resource"] == {
        "group": "edge.kubestellar.io",
        "version": "v2alpha1",
        "resource": "synctargets",
    }
    assert loc["spec"]["instanceSelector"] == {"matchLabels": {"id": name}}
    # Idempotent, and a label change is applied (a dropped label is removed).
    counter = WriteCounter()
    assert (
        bootstrap.ensure_location(
            kcp_server.client(writes=counter), name, {"env": "prod", "extended": "yes", "n": "1"}
        )
        == 0
    )
    assert counter.total() == 0
    assert bootstrap.ensure_location(initialized, name, {"env": "dev"}) == 2
    assert imw.get(f"{EDGE}/locations/{name}")["metadata"]["labels"] == {"env": "dev"}
    assert imw.get(f"{EDGE}/synctargets/{name}")["metadata"]["labels"] == {"id": name, "env": "dev"}


def _create(c: RestClient, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = c.create(path, obj)
    return result


def test_wmw_serves_kube_types_and_crds(kcp_server: KcpServer, initialized: RestClient) -> None:
    name = unique("wmw")
    out = cli(kcp_server, "ensure", "wmw", name)
    assert out.returncode == 0, out.stderr
    again = cli(kcp_server, "ensure", "wmw", name)
    assert again.stdout.strip() == f"wmw root:{name}: up to date", again.stdout + again.stderr
    c = kcp.cluster(initialized, f"root:{name}")
    _create(c, "/api/v1/namespaces", {"metadata": {"name": "ns1"}})
    _create(c, "/api/v1/namespaces/ns1/configmaps", {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    labels = {"app": "x"}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    rs = _create(
        c,
        "/apis/apps/v1/namespaces/ns1/replicasets",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rs"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": pod},
        },
    )
    assert rs["spec"]["replicas"] == 2
    _create(
        c,
        "/apis/apps/v1/namespaces/ns1/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": labels}, "template": pod},
        },
    )
    apisvc = _create(
        c,
        "/apis/apiregistration.k8s.io/v1/apiservices",
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1.example.io"},
            "spec": {
                "group": "example.io",
                "version": "v1",
                "groupPriorityMinimum": 100,
                "versionPriority": 10,
            },
        },
    )
    assert apisvc["spec"]["groupPriorityMinimum"] == 100
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.io"},
        "spec": {
            "group": "example.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    _create(c, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)

    def widget_created() -> bool:
        try:
            _create(
                c,
                "/apis/example.io/v1/namespaces/ns1/widgets",
                {
                    "apiVersion": "example.io/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w"},
                    "spec": {"size": 3},
                },
            )
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        return True

    kcp.wait_for("the Widget CRD to be served", widget_created, 60)
    assert c.get("/apis/example.io/v1/namespaces/ns1/widgets/w")["spec"] == {"size": 3}

    out = cli(kcp_server, "remove", "wmw", name)
    assert out.returncode == 0, out.stderr
    kcp.wait_for(
        f"root:{name} to be gone", lambda: kcp.get_workspace(initialized, f"root:{name}") is None, 120
    )
    gone = cli(kcp_server, "remove", "wmw", unique("absent"))
    assert gone.returncode == 0 and "not found" in gone.stdout


def test_edgeplacement_seen_through_virtual_workspace(initialized: RestClient, wmw: str) -> None:
    ws = kcp.wait_workspace_ready(initialized, wmw)
    ep = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "EdgePlacement",
        "metadata": {"name": "ep1"},
        "spec": {"locationSelectors": [{"matchLabels": {"env": "prod"}}]},
    }
    kcp.cluster(initialized, wmw).create(f"{EDGE}/edgeplacements", ep)
    export = kcp.get_export(initialized, bootstrap.ESPW, bootstrap.EDGE_EXPORT)
    view = kcp.virtual_workspace(initialized, export)
    items = view.get(f"{EDGE}/edgeplacements")["items"]
    mine = [i for i in items if kcp.cluster_of(i) == ws.cluster]
    assert [i["metadata"]["name"] for i in mine] == ["ep1"]
    one = kcp.virtual_workspace(initialized, export, ws.cluster).get(f"{EDGE}/edgeplacements/ep1")
    assert one["spec"]["locationSelectors"] == [{"matchLabels": {"env": "prod"}}]


def test_wildcard_list_carries_cluster_annotation(
    kcp_server: KcpServer, initialized: RestClient, wmw: str
) -> None:
    ws = kcp.wait_workspace_ready(initialized, wmw)
    shard_admin = kcp_server.client(kcp.ALLCLUSTERS_CONTEXT)
    kcp.cluster(initialized, wmw).create("/api/v1/namespaces", {"metadata": {"name": "wild"}})
    items = kcp.wildcard(shard_admin).get("/api/v1/namespaces")["items"]
    clusters = {kcp.cluster_of(i) for i in items if i["metadata"]["name"] == "wild"}
    assert ws.cluster in clusters
    assert all(kcp.cluster_of(i) for i in items)
    # A bound resource needs the export's identity in a wildcard request.
    export = kcp.get_export(initialized, bootstrap.ESPW, bootstrap.EDGE_EXPORT)
    res = kcp.with_identity("edgeplacements", kcp.export_identity(export))
    listed = kcp.wildcard(shard_admin).get(f"{EDGE}/{res}")
    assert listed["kind"] == "EdgePlacementList"


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["ensure", "wmw", "Not_Valid"], "invalid workspace name"),
        (["ensure", "location", "x", "novalue"], "not of the form key=value"),
        (["init", "--context", "nope"], "no context named 'nope'"),
    ],
)
def test_cli_bad_input_is_one_clear_line(kcp_server: KcpServer, args: list[str], expect: str) -> None:
    out = cli(kcp_server, *args)
    assert out.returncode == 1
    assert expect in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_unreachable_server(tmp_path: Path, kcp_server: KcpServer) -> None:
    bad = tmp_path / "kubeconfig"
    text = kcp_server.kubeconfig.read_text()
    origin = kcp.server_origin(kcp_server.source().load().server)
    bad.write_text(text.replace(origin, "https://127.0.0.1:1"))
    out = subprocess.run(
        [sys.executable, "-m", "cmd.kubestellar", "init", "--kubeconfig", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "cannot reach the server" in out.stderr
    assert "Traceback" not in out.stderr
