"""config/deploy: kustomize renders it, and every object is valid against the Kubernetes API schemas.

Rendering uses ``kubectl kustomize`` from ``hack/kcp.sh path kubectl`` (built from Go modules and
cached; the first call may take a minute or more).  If that kubectl cannot be built, these tests
fail: they never skip.

Validation is strict.  The schemas are the pydantic v2 models of the official ``kubernetes`` client
(``kubernetes.client.models``), used like this:

* ``Model.model_validate`` checks types (the models declare strict ints and strings, so
  ``replicas: "2"`` or an unquoted annotation value ``10204`` are errors), required fields, and
  rejects unknown fields at every depth (``extra="forbid"``);
* but the models also accept each field under its Python name (``image_pull_policy`` for
  ``imagePullPolicy``: the API server would drop or reject it), and ``Model.from_dict`` silently
  drops unknown fields; so :func:`unknown_fields` walks the object against ``model_fields`` and
  reports every key that is not a field's wire name, nested ones included.
"""

from __future__ import annotations

import shutil
import subprocess
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import models
from pydantic import BaseModel, ValidationError

REPO = Path(__file__).resolve().parents[2]
KCP_SH = REPO / "hack" / "kcp.sh"
DEPLOY = REPO / "config" / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))

NAMESPACE = "kubestellar"
SECRET = "kcp-admin-kubeconfig"
PORT = 10204

# (apiVersion, kind) -> the schema.  A kind that is not listed here is an error, not a pass.
SCHEMAS: dict[tuple[str, str], type[BaseModel]] = {
    ("v1", "Namespace"): models.V1Namespace,
    ("v1", "ServiceAccount"): models.V1ServiceAccount,
    ("v1", "Service"): models.V1Service,
    ("v1", "Secret"): models.V1Secret,
    ("v1", "ConfigMap"): models.V1ConfigMap,
    ("apps/v1", "Deployment"): models.V1Deployment,
    ("rbac.authorization.k8s.io/v1", "Role"): models.V1Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): models.V1RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): models.V1ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): models.V1ClusterRoleBinding,
    ("policy/v1", "PodDisruptionBudget"): models.V1PodDisruptionBudget,
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


# ---------------------------------------------------------------------------------------------
# The validator


class SchemaError(AssertionError):
    """An object does not conform to its Kubernetes API schema."""


def _wire_names(model: type[BaseModel]) -> dict[str, str]:
    """Wire (JSON) name -> Python field name."""
    return {(f.serialization_alias or f.alias or name): name for name, f in model.model_fields.items()}


def _unknown_in_value(annotation: Any, value: Any, path: str) -> Iterator[str]:
    """The unknown fields inside ``value``, which the field type ``annotation`` describes."""
    if value is None:
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _unknown_in_value(args[0], value, path)
    elif origin in (typing.Union, types.UnionType):
        # Optional[X], or int-or-string: descend into the member whose shape fits the value.
        for member in args:
            member_origin = typing.get_origin(member) or member
            if (
                (isinstance(value, list) and member_origin is list)
                or (isinstance(value, dict) and member_origin is dict)
                or (isinstance(value, dict) and isinstance(member, type) and issubclass(member, BaseModel))
                or typing.get_origin(member) is typing.Annotated
            ):
                yield from _unknown_in_value(member, value, path)
                return
    elif origin is list and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unknown_in_value(args[0], item, f"{path}[{i}]")
    elif origin is dict and isinstance(value, dict):
        for key, item in value.items():
            yield from _unknown_in_value(args[1], item, f"{path}[{key!r}]")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
        yield from unknown_fields(annotation, value, path)


def unknown_fields(model: type[BaseModel], data: dict[str, Any], path: str = "") -> Iterator[str]:
    """Every key of ``data``, at any depth, that is not the wire name of a field of ``model``."""
    wire = _wire_names(model)
    python_names = {name: w for w, name in wire.items()}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in wire:
            hint = f" (the Python name of {python_names[key]!r})" if key in python_names else ""
            yield f"{where}: unknown field in {model.__name__}{hint}"
            continue
        yield from _unknown_in_value(model.model_fields[wire[key]].annotation, value, where)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_errors(obj: Any) -> list[str]:
    """All the problems of one rendered object (empty when it is valid)."""
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    key = (obj.get("apiVersion"), obj.get("kind"))
    model = SCHEMAS.get(key)  # type: ignore[arg-type]
    if model is None:
        return [f"apiVersion/kind {key[0]}/{key[1]}: no schema known for it"]
    errors = list(unknown_fields(model, obj))
    try:
        model.model_validate(obj)
    except ValidationError as e:
        for err in e.errors():
            if err["type"] != "extra_forbidden":  # already reported above, with the wire path
                errors.append(f"{_loc(err['loc'])}: {err['msg']} (got {err.get('input')!r})")
    return errors


def validate(obj: Any) -> None:
    errors = schema_errors(obj)
    if errors:
        name = obj.get("metadata", {}).get("name") if isinstance(obj, dict) else None
        kind = obj.get("kind") if isinstance(obj, dict) else None
        raise SchemaError(f"{kind} {name}:\n  " + "\n  ".join(errors))


# ---------------------------------------------------------------------------------------------
# Rendering


class KustomizeError(RuntimeError):
    pass


@pytest.fixture(scope="module")
def kubectl() -> str:
    proc = subprocess.run(
        [str(KCP_SH), "path", "kubectl"], capture_output=True, text=True, timeout=1800, cwd=REPO
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"hack/kcp.sh path kubectl failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip()


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """A scratch copy of config/deploy (base and overlays, so relative references hold)."""
    dst = tmp_path / "deploy"
    shutil.copytree(DEPLOY, dst)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))


# ---------------------------------------------------------------------------------------------
# The manifests as they are


def test_there_is_a_dev_overlay() -> None:
    assert "dev" in [p.name for p in OVERLAYS]


@pytest.mark.parametrize("target", [BASE, *OVERLAYS], ids=lambda p: str(p.relative_to(DEPLOY)))
def test_renders_and_every_object_is_valid(kubectl: str, target: Path) -> None:
    objs = kustomize(kubectl, target)
    problems = [p for obj in objs for p in schema_errors(obj)]
    assert not problems, "\n".join(problems)
    assert sorted(o["kind"] for o in objs) == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
        ]
    )
    for obj in objs:
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "kubestellar-py"


def test_base_deployment(kubectl: str) -> None:
    objs = kustomize(kubectl, BASE)
    dep = one(objs, "Deployment")
    assert dep["spec"]["replicas"] == 2  # leader election picks the active one
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"].items() >= dep["spec"]["selector"]["matchLabels"].items()
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics",
    }
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert c["command"] + c["args"] == [
        "python",
        "-m",
        "cmd.kubestellar",
        "start",
        "--kubeconfig",
        "/etc/kcp/admin.kubeconfig",
        "--server-bind-address",
        f":{PORT}",
    ]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["ports"] == [{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    for part in ("requests", "limits"):
        assert set(c["resources"][part]) == {"cpu", "memory"}
    # The kcp kubeconfig: a directory mount of the Secret (no subPath, so updates reach the pod).
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    kcfg = next(v for v in volumes.values() if "secret" in v)
    assert kcfg["secret"]["secretName"] == SECRET
    assert kcfg["secret"]["items"] == [{"key": "admin.kubeconfig", "path": "admin.kubeconfig"}]
    assert mounts[kcfg["name"]] == {"name": kcfg["name"], "mountPath": "/etc/kcp", "readOnly": True}
    # A read-only root filesystem still needs a writable /tmp.
    assert "emptyDir" in volumes[next(n for n, m in mounts.items() if m["mountPath"] == "/tmp")]

    sa = one(objs, "ServiceAccount")
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["automountServiceAccountToken"] is False
    role, binding = one(objs, "Role"), one(objs, "RoleBinding")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get", "watch"]}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kubestellar-controllers",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]

    svc = one(objs, "Service")
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": PORT, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_dev_overlay(kubectl: str) -> None:
    base = one(kustomize(kubectl, BASE), "Deployment")
    dev = one(kustomize(kubectl, DEPLOY / "overlays" / "dev"), "Deployment")
    (bc,) = base["spec"]["template"]["spec"]["containers"]
    (dc,) = dev["spec"]["template"]["spec"]["containers"]
    assert dc["image"] == "kubestellar-py:dev" != bc["image"]
    assert dev["spec"]["replicas"] == 1
    assert dc["args"] == [*bc["args"], "--v=4"]
    assert dc["command"] == bc["command"]


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")  # join continued lines
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    base_arg = next(ln for ln in lines if ln.startswith("ARG PYTHON_IMAGE="))
    image = base_arg.split("=", 1)[1]
    name, _, tag = image.partition(":")
    assert name == "python"
    assert tag.startswith("3.11.") and tag.split("-")[0].count(".") == 2, "pin an exact Python release"
    # The dependencies at the locked versions, and the sources compiled once (the image sets
    # PYTHONDONTWRITEBYTECODE, so a process would compile them again at every start).
    assert "RUN pip install -c requirements.lock . && python -m compileall -q apis pkg cmd" in lines
    for src in ("apis/", "pkg/", "cmd/", "config/"):
        assert any(ln.startswith(f"COPY {src}") for ln in lines), src
    users = [ln for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["python", "-m", "cmd.kubestellar"]' in lines


# ---------------------------------------------------------------------------------------------
# The validator rejects what the API server would


def minimal_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": "b"}},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "ports": [{"containerPort": 1}],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                        }
                    ]
                },
            },
        },
    }


def test_validator_accepts_a_minimal_deployment() -> None:
    validate(minimal_deployment())


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    for p in parents:
        obj = obj[int(p)] if p.isdigit() else obj[p]  # type: ignore[index]
    if value is _DELETE:
        del obj[last]
    else:
        obj[last] = value


_DELETE = object()
CONTAINER = "spec/template/spec/containers/0"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        pytest.param(
            f"{CONTAINER}/imagee",
            "i",
            "spec.template.spec.containers[0].imagee: unknown field in V1Container",
            id="misspelled-container-field",
        ),
        pytest.param(
            f"{CONTAINER}/image_pull_policy",
            "Always",
            "image_pull_policy: unknown field in V1Container (the Python name of 'imagePullPolicy')",
            id="python-name-instead-of-wire-name",
        ),
        pytest.param(
            f"{CONTAINER}/livenessProbe/httpGet/paht",
            "/x",
            "livenessProbe.httpGet.paht: unknown field in V1HTTPGetAction",
            id="deeply-nested-unknown",
        ),
        pytest.param(
            "spec/template/spec/volumes",
            [{"name": "v", "secret": {"secretname": "s"}}],
            "volumes[0].secret.secretname: unknown field in V1SecretVolumeSource",
            id="unknown-inside-list-item",
        ),
        pytest.param("metadata/labelz", {}, "metadata.labelz: unknown field in V1ObjectMeta", id="metadata"),
        pytest.param("status2", {}, "status2: unknown field in V1Deployment", id="top-level"),
        pytest.param(
            "spec/replicas", "2", "spec.replicas: Input should be a valid integer", id="string-for-int"
        ),
        pytest.param(
            f"{CONTAINER}/ports/0/containerPort",
            "1",
            "ports[0].containerPort: Input should be a valid integer",
            id="string-for-port",
        ),
        pytest.param(
            "metadata/annotations",
            {"prometheus.io/port": 10204},
            "metadata.annotations.prometheus.io/port: Input should be a valid string",
            id="int-annotation",
        ),
        pytest.param(f"{CONTAINER}/args", "start", "Input should be a valid list", id="string-for-list"),
        pytest.param("spec/selector", _DELETE, "spec.selector: Field required", id="missing-selector"),
        pytest.param(
            f"{CONTAINER}/name", _DELETE, "containers[0].name: Field required", id="missing-container-name"
        ),
        pytest.param("kind", "Deploymnet", "no schema known", id="unknown-kind"),
    ],
)
def test_validator_rejects(path: str, value: Any, expected: str) -> None:
    obj = minimal_deployment()
    _set(obj, path, value)
    with pytest.raises(SchemaError) as e:
        validate(obj)
    assert expected in str(e.value)


def test_every_reachable_model_forbids_extra_fields() -> None:
    """What pydantic itself guarantees for the kinds we use (the walker does not rely on it)."""
    seen: set[type[BaseModel]] = set()

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                return
            seen.add(annotation)
            assert annotation.model_config.get("extra") == "forbid", annotation.__name__
            for f in annotation.model_fields.values():
                visit(f.annotation)
        for arg in typing.get_args(annotation):
            visit(arg)

    for model in SCHEMAS.values():
        visit(model)
    assert models.V1Container in seen and models.V1HTTPGetAction in seen


# ---------------------------------------------------------------------------------------------
# Broken manifests in a scratch copy of the overlay fail


def test_misspelled_field_in_base_fails(kubectl: str, deploy_copy: Path) -> None:
    edit(
        deploy_copy / "base" / "deployment.yaml",
        "          imagePullPolicy: IfNotPresent\n",
        "          imagePullPolicy: IfNotPresent\n          imagee: typo\n",
    )
    objs = kustomize(kubectl, deploy_copy / "overlays" / "dev")  # kustomize itself does not mind
    with pytest.raises(SchemaError, match=r"spec\.template\.spec\.containers\[0\]\.imagee: unknown field"):
        validate(one(objs, "Deployment"))


def test_misspelled_field_in_overlay_patch_fails(kubectl: str, deploy_copy: Path) -> None:
    edit(
        deploy_copy / "overlays" / "dev" / "kustomization.yaml",
        "        path: /spec/template/spec/containers/0/args/-\n        value: --v=4\n",
        "        path: /spec/template/spec/containers/0/readinessProbe/periodSecond\n        value: 5\n",
    )
    objs = kustomize(kubectl, deploy_copy / "overlays" / "dev")
    with pytest.raises(SchemaError, match=r"readinessProbe\.periodSecond: unknown field in V1Probe"):
        validate(one(objs, "Deployment"))


def test_wrong_type_fails(kubectl: str, deploy_copy: Path) -> None:
    edit(deploy_copy / "base" / "deployment.yaml", "containerPort: 10204", 'containerPort: "10204"')
    objs = kustomize(kubectl, deploy_copy / "overlays" / "dev")
    with pytest.raises(SchemaError, match=r"ports\[0\]\.containerPort: Input should be a valid integer"):
        validate(one(objs, "Deployment"))


def test_broken_kustomization_fails_to_render(kubectl: str, deploy_copy: Path) -> None:
    edit(deploy_copy / "base" / "kustomization.yaml", "  - service.yaml\n", "  - services.yaml\n")
    with pytest.raises(KustomizeError, match=r"services\.yaml"):
        kustomize(kubectl, deploy_copy / "overlays" / "dev")
