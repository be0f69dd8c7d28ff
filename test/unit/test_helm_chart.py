"""config/helm/kubestellar: helm lints and renders it, every object is valid, defaults = the kustomize base.

helm comes from ``hack/kcp.sh path helm`` (built from its Go module into the cache on first use,
a few minutes); kubectl (for ``kubectl kustomize``) from ``hack/kcp.sh path kubectl``.  If either
cannot be built these tests fail: they never skip.  Objects are validated strictly against the
``kubernetes`` client's models with the validator of ``test_deploy_manifests``; the one kind those
models lack, the prometheus-operator ServiceMonitor, is checked field by field here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from test.unit.test_deploy_manifests import (
    BASE,
    KCP_SH,
    REPO,
    by_kind,
    kubectl,
    kustomize,
    one,
    schema_errors,
)

__all__ = ["kubectl"]  # the fixture, shared with test_deploy_manifests

CHART = REPO / "config" / "helm" / "kubestellar"
NAMESPACE = "kubestellar"
RELEASE = "kubestellar"
# What Helm adds to the labels of config/deploy/base (and, for instance, to its selectors).
HELM_LABELS = {
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}

NON_DEFAULT: dict[str, Any] = {
    "image": {"repository": "registry.example.com/ks/kubestellar-py", "tag": "1.2.3", "pullPolicy": "Always"},
    "replicas": 1,
    "leaderElection": {"enabled": False},
    "kcpKubeconfig": {"secretName": "my-kcp", "key": "kcp.kubeconfig"},
    # Helm merges maps with the defaults: null removes the default CPU limit.
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": None, "memory": "2Gi"}},
    "verbosity": 3,
    "extraArgs": ["--concurrency=8"],
    "metrics": {
        "port": 9090,
        "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"team": "ks"}},
    },
    "podDisruptionBudget": {"enabled": False},
    "namespace": {"create": True},
    "imagePullSecrets": [{"name": "pull"}],
}


@pytest.fixture(scope="module")
def helm() -> str:
    proc = subprocess.run(
        [str(KCP_SH), "path", "helm"], capture_output=True, text=True, timeout=3600, cwd=REPO
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"hack/kcp.sh path helm failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip()


def _values_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(values))
    return f


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=300, cwd=REPO)


def template(
    helm: str, tmp_path: Path, values: dict[str, Any] | None = None, chart: Path = CHART
) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(_values_file(tmp_path, values))]
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def servicemonitor_errors(obj: dict[str, Any]) -> list[str]:
    """The ServiceMonitor fields this chart sets, checked against prometheus-operator's v1 API."""
    errors = []
    if set(obj) != {"apiVersion", "kind", "metadata", "spec"}:
        errors.append(f"top-level fields {sorted(obj)}")
    spec = obj["spec"]
    if not set(spec) <= {"endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels"}:
        errors.append(f"unknown spec fields {sorted(spec)}")
    for i, ep in enumerate(spec.get("endpoints", [])):
        if not set(ep) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}:
            errors.append(f"endpoints[{i}] fields {sorted(ep)}")
        if not all(isinstance(v, str) for v in ep.values()):
            errors.append(f"endpoints[{i}] values must be strings: {ep}")
    if set(spec["selector"]) != {"matchLabels"}:
        errors.append(f"selector {spec['selector']}")
    return errors


def all_errors(objs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objs:
        if (obj.get("apiVersion"), obj.get("kind")) == ("monitoring.coreos.com/v1", "ServiceMonitor"):
            problems += servicemonitor_errors(obj)
        else:
            problems += schema_errors(obj)
    return problems


def without_helm_labels(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_helm_labels(v) for k, v in value.items() if k not in HELM_LABELS}
    if isinstance(value, list):
        return [without_helm_labels(v) for v in value]
    return value


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------


def test_lint_strict(helm: str, tmp_path: Path) -> None:
    for extra in ([], ["-f", str(_values_file(tmp_path, NON_DEFAULT))]):
        proc = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "0 chart(s) failed" in proc.stdout


def test_default_rendering_is_valid_and_is_the_kustomize_base(
    helm: str, kubectl: str, tmp_path: Path
) -> None:
    objs = template(helm, tmp_path)
    problems = all_errors(objs)
    assert not problems, "\n".join(problems)
    for obj in objs:
        assert obj["metadata"]["namespace"] == NAMESPACE
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    # The base, less its Namespace: `helm install` needs the namespace before it starts (it stores
    # the release there), so the chart renders one only with namespace.create=true.
    base = [o for o in kustomize(kubectl, BASE) if o["kind"] != "Namespace"]

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return (o["kind"], o["metadata"]["name"])

    got = {key(o): without_helm_labels(o) for o in objs}
    want = {key(o): o for o in base}
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k


def test_non_default_values(helm: str, tmp_path: Path) -> None:
    objs = template(helm, tmp_path, NON_DEFAULT)
    problems = all_errors(objs)
    assert not problems, "\n".join(problems)
    assert sorted(o["kind"] for o in objs) == sorted(
        ["Namespace", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "ServiceMonitor"]
    )
    ns = one(objs, "Namespace")
    assert ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    dep = one(objs, "Deployment")
    assert dep["spec"]["replicas"] == 1
    pod = dep["spec"]["template"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "pull"}]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    c = container(objs)
    assert c["image"] == "registry.example.com/ks/kubestellar-py:1.2.3"
    assert c["imagePullPolicy"] == "Always"
    assert c["args"] == [
        "start",
        "--kubeconfig",
        "/etc/kcp/kcp.kubeconfig",
        "--server-bind-address",
        ":9090",
        "--leader-elect=false",
        "--v=3",
        "--concurrency=8",
    ]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
    (secret,) = [v["secret"] for v in pod["spec"]["volumes"] if "secret" in v]
    assert secret["secretName"] == "my-kcp"
    assert secret["items"] == [{"key": "kcp.kubeconfig", "path": "kcp.kubeconfig"}]
    assert one(objs, "Role")["rules"][0]["resourceNames"] == ["my-kcp"]
    svc = one(objs, "Service")
    assert svc["spec"]["ports"][0]["port"] == 9090
    sm = one(objs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["team"] == "ks"
    assert sm["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert svc["metadata"]["labels"].items() >= sm["spec"]["selector"]["matchLabels"].items()
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_leader_election_workspace_and_no_service(helm: str, tmp_path: Path) -> None:
    values = {"leaderElection": {"workspace": "root:espw:leases"}, "metrics": {"service": {"enabled": False}}}
    objs = template(helm, tmp_path, values)
    assert not all_errors(objs)
    assert not by_kind(objs, "Service")
    assert container(objs)["args"][-2:] == ["--leader-elect-workspace", "root:espw:leases"]
    assert one(objs, "Deployment")["spec"]["replicas"] == 2


def test_another_release_name_gets_its_own_names(helm: str, tmp_path: Path) -> None:
    proc = run_helm(helm, "template", "ks2", str(CHART), "--namespace", "other")
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert {o["metadata"]["name"] for o in objs} == {"ks2-controllers", "ks2-controllers-metrics"}
    dep = one(objs, "Deployment")
    assert dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "ks2"


@pytest.mark.parametrize(
    ("values", "expect"),
    [
        pytest.param(
            {"leaderElection": {"enabled": False}}, "set replicas to 1", id="no-election-two-replicas"
        ),
        pytest.param({"replica": 1}, "additional properties 'replica' not allowed", id="misspelled-value"),
        pytest.param({"replicas": "2"}, "replicas", id="string-for-int"),
        pytest.param({"metrics": {"port": 70000}}, "port", id="port-out-of-range"),
        pytest.param({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy", id="bad-pull-policy"),
        pytest.param(
            {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
            "needs metrics.service.enabled",
            id="servicemonitor-without-service",
        ),
    ],
)
def test_bad_values_fail_to_render(helm: str, tmp_path: Path, values: dict[str, Any], expect: str) -> None:
    proc = run_helm(helm, "template", RELEASE, str(CHART), "-f", str(_values_file(tmp_path, values)))
    assert proc.returncode != 0
    assert expect in proc.stderr, proc.stderr


def test_a_broken_template_is_caught(helm: str, tmp_path: Path) -> None:
    """The checks above can fail: a misspelled field in a copy of the chart is reported."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    dep = chart / "templates" / "deployment.yaml"
    text = dep.read_text()
    assert text.count("          imagePullPolicy:") == 1
    dep.write_text(text.replace("          imagePullPolicy:", "          imagePulPolicy:"))
    objs = template(helm, tmp_path, chart=chart)
    assert any("imagePulPolicy: unknown field in V1Container" in p for p in all_errors(objs))
