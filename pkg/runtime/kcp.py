"""Everything kcp-specific, in one place (spec decision 2).

Nothing else in the code builds a kcp URL path or knows which admin-kubeconfig context means what.
The facts here are those of kcp v0.11.0:

* a logical cluster is addressed by the path prefix ``/clusters/<name or workspace path>``;
* ``/clusters/*`` lists and watches across all logical clusters (list/watch only); resources that
  come from an APIBinding need the export's identity hash: ``<resource>:<identityHash>``;
* an APIExport's virtual workspace is at ``status.virtualWorkspaces[0].url`` of the export, under
  which ``/clusters/*`` or ``/clusters/<consumer>`` addresses the consumers;
* objects listed across clusters carry their logical cluster in annotation ``kcp.io/cluster``;
* the admin kubeconfig that ``kcp start`` writes has contexts ``root`` (``/clusters/root``),
  ``base`` (the server root) and ``system:admin`` (the server root, as ``system:masters``).
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from apis.machinery.meta import CLUSTER_ANNOTATION as CLUSTER_ANNOTATION
from apis.machinery.meta import cluster_of as cluster_of
from apis.machinery.resource import ResourceInfo, group_version_path
from apis.machinery.resource import cluster_prefix as cluster_prefix
from pkg.runtime.rest import ApiError, RestClient

KCP_VERSION = "v0.11.0"

# Admin kubeconfig contexts (v0.11.0). In newer kcp `system:admin` points at /clusters/system:admin.
ROOT_CONTEXT = "root"
BASE_CONTEXT = "base"
ALLCLUSTERS_CONTEXT = "system:admin"

ROOT = "root"
WILDCARD = "*"
PATH_ANNOTATION = "kcp.io/path"

TENANCY = group_version_path("tenancy.kcp.io", "v1alpha1")
APIS = group_version_path("apis.kcp.io", "v1alpha1")
CORE = group_version_path("core.kcp.io", "v1alpha1")

# kcp's resources, for the one path builder (ResourceInfo.path).
WORKSPACES = ResourceInfo("tenancy.kcp.io", "v1alpha1", "workspaces", "Workspace")
API_BINDINGS = ResourceInfo("apis.kcp.io", "v1alpha1", "apibindings", "APIBinding")
API_EXPORTS = ResourceInfo("apis.kcp.io", "v1alpha1", "apiexports", "APIExport")
API_RESOURCE_SCHEMAS = ResourceInfo("apis.kcp.io", "v1alpha1", "apiresourceschemas", "APIResourceSchema")
LOGICAL_CLUSTERS = ResourceInfo("core.kcp.io", "v1alpha1", "logicalclusters", "LogicalCluster")

# The workspace type that KubeStellar's workspaces use (binds the kcp core APIs, v0.11.0).
UNIVERSAL_TYPE = {"name": "universal", "path": "root"}
COMPUTE_WORKSPACE = "root:compute"
KUBERNETES_EXPORT = "kubernetes"


class KcpError(Exception):
    """kcp did not do what was asked within the time allowed, or answered unexpectedly."""


def server_origin(server_url: str) -> str:
    """``https://host:port/clusters/root`` -> ``https://host:port``."""
    s = urlsplit(server_url)
    return f"{s.scheme}://{s.netloc}"


def with_identity(resource: str, identity_hash: str | None) -> str:
    """A bound resource's name in ``/clusters/*`` requests."""
    return f"{resource}:{identity_hash}" if identity_hash else resource


def parent_and_name(path: str) -> tuple[str, str]:
    """``root:a:b`` -> (``root:a``, ``b``)."""
    if ":" not in path:
        raise ValueError(f"workspace path {path!r} has no parent")
    parent, _, name = path.rpartition(":")
    return parent, name


def cluster(client: RestClient, cluster: str) -> RestClient:
    """A client for one logical cluster on ``client``'s server."""
    return client.at(server_origin(client.prefix) + cluster_prefix(cluster))


def wildcard(client: RestClient) -> RestClient:
    """A client for kcp's ``/clusters/*`` (list and watch only)."""
    return cluster(client, WILDCARD)


WaitObserver = Callable[[str, float, bool], None]
"""Told ``(what, seconds waited so far, done)`` while :func:`wait_for` polls, and once when it is done."""

wait_observer: contextvars.ContextVar[WaitObserver | None] = contextvars.ContextVar(
    "wait_observer", default=None
)
"""Who watches the waits (a CLI's progress display); nobody by default."""


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float,
    interval: float = 0.2,
    max_interval: float = 2.0,
) -> Any:
    """Call ``probe`` until it returns something truthy; raise :class:`KcpError` on timeout.

    Polls after ``interval`` seconds, then at intervals growing by half each time up to
    ``max_interval``, never sleeping past the deadline.  An :class:`ApiError` of the probe counts
    as "not yet" (its text ends the timeout's message), except that 401 and 403 are raised once
    the time is up.  The :data:`wait_observer` of the calling context, if any, sees each poll and
    the end.
    """
    start = time.monotonic()
    deadline = start + timeout
    last_error: Exception | None = None
    observer = wait_observer.get()
    while True:
        try:
            value = probe()
            if value:
                if observer is not None:
                    observer(what, time.monotonic() - start, True)
                return value
        except ApiError as e:
            if e.status in (401, 403) and time.monotonic() > deadline:
                raise
            last_error = e
        if time.monotonic() > deadline:
            detail = f": last error {last_error}" if last_error else ""
            raise KcpError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        if observer is not None:
            observer(what, time.monotonic() - start, False)
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.01)))
        interval = min(interval * 1.5, max_interval)


@dataclass(frozen=True)
class Workspace:
    path: str  # root:name
    cluster: str  # logical cluster name
    url: str
    obj: dict[str, Any]


def get_workspace(client: RestClient, path: str) -> dict[str, Any] | None:
    parent, name = parent_and_name(path)
    try:
        result: dict[str, Any] = cluster(client, parent).get(WORKSPACES.path(name=name))
        return result
    except ApiError as e:
        if e.not_found:
            return None
        raise


def ensure_workspace(
    client: RestClient,
    path: str,
    *,
    annotations: dict[str, str] | None = None,
    workspace_type: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> Workspace:
    """Create workspace ``path`` unless it exists, then wait until it is Ready.

    Writes nothing when the workspace exists (its annotations are not reconciled here).
    """
    parent, name = parent_and_name(path)
    ws = get_workspace(client, path)
    if ws is None:
        body: dict[str, Any] = {
            "apiVersion": "tenancy.kcp.io/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "spec": {"type": workspace_type or UNIVERSAL_TYPE},
        }
        try:
            cluster(client, parent).create(WORKSPACES.path(), body)
        except ApiError as e:
            if not e.already_exists:
                raise
    return wait_workspace_ready(client, path, timeout)


def wait_workspace_ready(client: RestClient, path: str, timeout: float = 120.0) -> Workspace:
    def ready() -> dict[str, Any] | None:
        ws = get_workspace(client, path)
        if ws and (ws.get("status") or {}).get("phase") == "Ready" and ws.get("spec", {}).get("cluster"):
            return ws
        return None

    ws = wait_for(f"workspace {path} to be Ready", ready, timeout)
    return Workspace(path=path, cluster=ws["spec"]["cluster"], url=ws["spec"].get("URL", ""), obj=ws)


def delete_workspace(client: RestClient, path: str) -> bool:
    """Delete workspace ``path``; False when it did not exist."""
    parent, name = parent_and_name(path)
    try:
        cluster(client, parent).delete(WORKSPACES.path(name=name))
        return True
    except ApiError as e:
        if e.not_found:
            return False
        raise


def ensure_binding(
    client: RestClient, cluster_name: str, binding: str, export_path: str, export_name: str
) -> bool:
    """Create APIBinding ``binding`` in ``cluster_name`` to ``export_path``/``export_name``.

    Returns True when it wrote something.  An existing binding to the same export is left alone.
    """
    c = cluster(client, cluster_name)
    try:
        existing = c.get(API_BINDINGS.path(name=binding))
    except ApiError as e:
        if not e.not_found:
            raise
        existing = None
    want = {"path": export_path, "name": export_name}
    if existing is not None:
        have = ((existing.get("spec") or {}).get("reference") or {}).get("export") or {}
        if have == want:
            return False
        raise KcpError(
            f"APIBinding {binding} in {cluster_name} binds {have}, not {want}; remove it to re-bind"
        )
    body = {
        "apiVersion": "apis.kcp.io/v1alpha1",
        "kind": "APIBinding",
        "metadata": {"name": binding},
        "spec": {"reference": {"export": want}},
    }
    try:
        c.create(API_BINDINGS.path(), body)
    except ApiError as e:
        if not e.already_exists:
            raise
        return False
    return True


def wait_bindings_bound(
    client: RestClient, cluster_name: str, names: list[str], timeout: float = 120.0
) -> None:
    c = cluster(client, cluster_name)

    def bound(name: str) -> bool:
        return (c.get(API_BINDINGS.path(name=name)).get("status") or {}).get("phase") == "Bound"

    for name in names:
        wait_for(f"APIBinding {name} in {cluster_name} to be Bound", functools.partial(bound, name), timeout)


def get_export(client: RestClient, export_cluster: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster(client, export_cluster).get(API_EXPORTS.path(name=name))
    return result


def export_identity(export: dict[str, Any]) -> str:
    return str((export.get("status") or {}).get("identityHash") or "")


def export_virtual_workspace_url(export: dict[str, Any]) -> str:
    """The APIExport's virtual-workspace URL (``.../services/apiexport/<cluster>/<name>``)."""
    vws = (export.get("status") or {}).get("virtualWorkspaces") or []
    return str(vws[0]["url"]) if vws else ""


def wait_export_ready(
    client: RestClient, export_cluster: str, name: str, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until the export has an identity hash and a virtual-workspace URL; return it."""

    def ready() -> dict[str, Any] | None:
        ex = get_export(client, export_cluster, name)
        return ex if export_identity(ex) and export_virtual_workspace_url(ex) else None

    result: dict[str, Any] = wait_for(f"APIExport {export_cluster}/{name} to be ready", ready, timeout)
    return result


def virtual_workspace(client: RestClient, export: dict[str, Any], consumer: str = WILDCARD) -> RestClient:
    """A client for the export's virtual workspace, scoped to one consumer cluster or all (``*``)."""
    url = export_virtual_workspace_url(export)
    if not url:
        raise KcpError(f"APIExport {export.get('metadata', {}).get('name')} has no virtual workspace URL")
    return client.at(url + cluster_prefix(consumer))


def logical_cluster_path(client: RestClient, cluster_name: str) -> str:
    """The workspace path (``root:wmw1``) of a logical cluster, from its LogicalCluster object."""
    lc = cluster(client, cluster_name).get(LOGICAL_CLUSTERS.path(name="cluster"))
    return str(((lc.get("metadata") or {}).get("annotations") or {}).get(PATH_ANNOTATION, ""))
