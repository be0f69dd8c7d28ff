"""Setting up a kcp server for KubeStellar: the ESPW, the kube-type exports, IMWs, WMWs, Locations.

Every function is idempotent and writes only what differs, so a second run writes nothing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from apis.edge.v2alpha1 import constants as api
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError, RestClient

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
EDGE_EXPORTS_DIR = REPO / "config" / "exports"
KUBE_EXPORTS_DIR = REPO / "config" / "kube-exports"

ESPW = "root:espw"
EDGE_EXPORT = api.EXPORT_NAME
EDGE_API = api.API_PATH
DEFAULT_IMW = "imw1"

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class BootstrapError(Exception):
    """A user-facing error: the message is one clear line."""


def check_workspace_name(name: str) -> None:
    if len(name) > 63 or not _NAME.match(name):
        raise BootstrapError(
            f"invalid workspace name {name!r}: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )


def check_object_name(name: str) -> None:
    if len(name) > 253 or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", name):
        raise BootstrapError(f"invalid name {name!r}: must be a DNS subdomain (lowercase, digits, '-', '.')")


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the kube schemas are ~1 MB


def load_manifests(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "index.yaml":
            continue
        for doc in yaml.load_all(path.read_text(), Loader=_Loader):
            if isinstance(doc, dict) and doc.get("kind"):
                docs.append(doc)
    return docs


@functools.cache
def kube_export_names() -> list[str]:
    """Names of the kube-type APIExports that `init` creates in root:compute (besides `kubernetes`)."""
    index = yaml.load((KUBE_EXPORTS_DIR / "index.yaml").read_text(), Loader=_Loader)
    return sorted(str(e["name"]) for e in index["exports"])


def apply_exports(client: RestClient, cluster: str, docs: Iterable[dict[str, Any]]) -> int:
    """Create the APIResourceSchemas, then create or update the APIExports; return the writes made."""
    c = kcp.cluster(client, cluster)
    writes = 0
    docs = list(docs)
    for doc in (d for d in docs if d["kind"] == "APIResourceSchema"):
        name = doc["metadata"]["name"]
        try:
            have = c.get(f"{kcp.APIS}/apiresourceschemas/{name}")
        except ApiError as e:
            if not e.not_found:
                raise
            c.create(f"{kcp.APIS}/apiresourceschemas", doc)
            writes += 1
            continue
        if have.get("spec") != doc["spec"]:
            raise BootstrapError(
                f"APIResourceSchema {name} in {cluster} differs from config (schemas are immutable; "
                "a changed schema needs a new name)"
            )
    for doc in (d for d in docs if d["kind"] == "APIExport"):
        name = doc["metadata"]["name"]
        try:
            have = c.get(f"{kcp.APIS}/apiexports/{name}")
        except ApiError as e:
            if not e.not_found:
                raise
            c.create(f"{kcp.APIS}/apiexports", doc)
            writes += 1
            continue
        want = doc.get("spec") or {}
        if any(have.get("spec", {}).get(k) != v for k, v in want.items()):
            c.patch(f"{kcp.APIS}/apiexports/{name}", {"spec": want})
            writes += 1
    return writes


def init(client: RestClient, imw: str = DEFAULT_IMW, timeout: float = 180.0) -> int:
    """Create root:espw with the edge export, the kube exports in root:compute, and the IMW.

    Returns the number of writes made (0 on a second run).
    """
    writes = 0
    espw = kcp.ensure_workspace(client, ESPW, timeout=timeout)
    writes += apply_exports(client, espw.path, load_manifests(EDGE_EXPORTS_DIR))
    kcp.wait_export_ready(client, espw.path, EDGE_EXPORT, timeout)
    compute = kcp.wait_workspace_ready(client, kcp.COMPUTE_WORKSPACE, timeout)
    writes += apply_exports(client, compute.path, load_manifests(KUBE_EXPORTS_DIR))
    for name in kube_export_names():
        kcp.wait_export_ready(client, compute.path, name, timeout)
    writes += ensure_imw(client, imw, timeout)
    return writes


def _workspace(client: RestClient, name: str, timeout: float) -> tuple[kcp.Workspace, int]:
    check_workspace_name(name)
    path = f"{kcp.ROOT}:{name}"
    existed = kcp.get_workspace(client, path) is not None
    return kcp.ensure_workspace(client, path, timeout=timeout), 0 if existed else 1


def ensure_imw(client: RestClient, imw: str = DEFAULT_IMW, timeout: float = 120.0) -> int:
    ws, writes = _workspace(client, imw, timeout)
    writes += kcp.ensure_binding(client, ws.path, "bind-espw", ESPW, EDGE_EXPORT)
    kcp.wait_bindings_bound(client, ws.path, ["bind-espw"], timeout)
    return writes


def wmw_bindings() -> list[tuple[str, str, str]]:
    """(binding name, export workspace, export name) for every binding a WMW (or mailbox) gets."""
    bindings = [("bind-espw", ESPW, EDGE_EXPORT), ("bind-kubernetes", kcp.COMPUTE_WORKSPACE, "kubernetes")]
    bindings += [(f"bind-{name}", kcp.COMPUTE_WORKSPACE, name) for name in kube_export_names()]
    return bindings


def ensure_wmw(client: RestClient, name: str, timeout: float = 180.0) -> int:
    ws, writes = _workspace(client, name, timeout)
    for binding, export_path, export_name in wmw_bindings():
        writes += kcp.ensure_binding(client, ws.path, binding, export_path, export_name)
    kcp.wait_bindings_bound(client, ws.path, [b for b, _, _ in wmw_bindings()], timeout)
    return writes


def remove_wmw(client: RestClient, name: str) -> bool:
    check_workspace_name(name)
    return kcp.delete_workspace(client, f"{kcp.ROOT}:{name}")


def _ensure_object(c: RestClient, collection: str, obj: dict[str, Any]) -> int:
    """Create ``obj`` or merge-patch the labels and spec that differ; return writes made."""
    name = obj["metadata"]["name"]
    try:
        have = c.get(f"{collection}/{name}")
    except ApiError as e:
        if not e.not_found:
            raise
        c.create(collection, obj)
        return 1
    patch: dict[str, Any] = {}
    if (have["metadata"].get("labels") or {}) != obj["metadata"].get("labels", {}):
        removed = {
            k: None for k in (have["metadata"].get("labels") or {}) if k not in obj["metadata"]["labels"]
        }
        patch["metadata"] = {"labels": {**removed, **obj["metadata"]["labels"]}}
    if "spec" in obj and any(have.get("spec", {}).get(k) != v for k, v in obj["spec"].items()):
        patch["spec"] = obj["spec"]
    if not patch:
        return 0
    c.patch(f"{collection}/{name}", patch)
    return 1


def ensure_location(
    client: RestClient, name: str, labels: dict[str, str], imw: str = DEFAULT_IMW, timeout: float = 120.0
) -> int:
    """A SyncTarget ``name`` labelled ``id=name`` plus ``labels``, and a Location selecting it."""
    check_object_name(name)
    writes = ensure_imw(client, imw, timeout)
    c = kcp.cluster(client, f"{kcp.ROOT}:{imw}")
    sync_target = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "SyncTarget",
        "metadata": {"name": name, "labels": {"id": name, **labels}},
    }
    location = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "Location",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "resource": {"group": "edge.kubestellar.io", "version": "v2alpha1", "resource": "synctargets"},
            "instanceSelector": {"matchLabels": {"id": name}},
        },
    }
    writes += _ensure_object(c, f"{EDGE_API}/synctargets", sync_target)
    writes += _ensure_object(c, f"{EDGE_API}/locations", location)
    return writes


def apply_objects(
    client: RestClient, workspace: str, docs: Iterable[dict[str, Any]], timeout: float = 60.0
) -> int:
    """Create each object in ``workspace`` unless it exists; wait for a CRD's resource to be served.

    Objects are created in the order given; a kind that is not served yet (its CRD was just
    created) is retried until ``timeout``.  Returns the number of objects created.
    """
    from pkg.runtime.discovery import Discovery

    c = kcp.cluster(client, workspace)
    discovery = Discovery()
    created = 0
    for doc in docs:
        group, _, version = str(doc["apiVersion"]).rpartition("/")
        kind = doc["kind"]
        md = doc.get("metadata") or {}

        def find(group: str = group, kind: str = kind, version: str = version) -> Any:
            for api in discovery.resources(c).values():
                if api.group == group and api.kind == kind and version in api.versions:
                    return api
            discovery.invalidate(c)
            return None

        api = kcp.wait_for(f"{kind}.{group or 'core'}/{version} to be served in {workspace}", find, timeout)
        path = api.path(version, md.get("namespace"))
        try:
            c.create(path, doc)
            created += 1
        except ApiError as e:
            if not e.already_exists:
                raise
    return created
