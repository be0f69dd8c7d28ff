"""The mailbox controller (behaviour 3, spec decisions 1 and 8, scenarios A.1, C3, C15, C29).

One mailbox workspace under ``root`` per SyncTarget of every inventory workspace, named by
:func:`~apis.edge.v2alpha1.naming.mailbox_name`, annotated with the SyncTarget's name, and
holding an APIBinding ``bind-edge`` to the edge export plus ``bind-<export>`` for every kube-type
export in root:compute, as a WMW gets them (but not a WMW's ``bind-espw``: a second binding to the
edge export would be a naming conflict in kcp), so that a mailbox serves every kube type a WMW can
hold.

Work items are mailbox names.  They come from SyncTarget events (read through the edge APIExport's
virtual workspace), from events on root's Workspaces whose names look like mailboxes, and from
APIBinding events in a mailbox's logical cluster (so a deleted binding comes back).  Reconciling a
name:

1. no live SyncTarget has that mailbox name: delete the workspace (UID precondition) unless it is
   absent or already being deleted;
2. the workspace is absent: create it;
3. it is being deleted: wait (requeue) until it is gone, then create it again;
4. its ``edge.kubestellar.io/sync-target-name`` annotation differs: patch it;
5. once it is Ready, create each missing APIBinding (an existing one is left as it is).

Only what is missing is written: a restart with everything in place writes nothing.  A SyncTarget
whose (cluster, UID) gives no valid workspace name is reported once per process, with a Warning
Event on the SyncTarget (in its inventory workspace) and a log line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from apis.edge.v2alpha1 import SyncTarget, resources
from apis.edge.v2alpha1 import constants as edge_api
from apis.edge.v2alpha1.naming import (
    SYNC_TARGET_NAME_ANNOTATION,
    InvalidMailboxName,
    is_mailbox_name,
    mailbox_name,
)
from apis.machinery.meta import cluster_of
from pkg.controllers.where.controller import edge_view
from pkg.runtime import kcp
from pkg.runtime.connections import ESPW_PATH, Connections
from pkg.runtime.controller import Controller, Result
from pkg.runtime.events import EventRecorder, ObjectRef
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.klog import V, kv
from pkg.runtime.manager import Manager
from pkg.runtime.meta import Meta
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import CLUSTER_INDEX, NAME_INDEX, Object, name_index

log = logging.getLogger(__name__)

NAME = "mailbox-controller"
FIELD_MANAGER = "mailbox-controller"
DEFAULT_WORKERS = 4
EDGE_BINDING = "bind-edge"

MAILBOX_INDEX = "mailbox"  # on SyncTargets: the mailbox name
LOGICAL_CLUSTER_INDEX = "logicalcluster"  # on Workspaces: spec.cluster

REASON_INVALID_NAME = "InvalidMailboxName"
CLAIM_LABEL = "claimed.internal.apis.kcp.io"


def mailbox_of(sync_target: SyncTarget) -> str:
    """The mailbox name of a SyncTarget listed across clusters; raises :class:`InvalidMailboxName`."""
    return mailbox_name(cluster_of(sync_target), sync_target.metadata.uid or "")


def _mailbox_index(sync_target: SyncTarget) -> list[str]:
    try:
        return [mailbox_of(sync_target)]
    except InvalidMailboxName:
        return []


def _logical_cluster_index(obj: Object) -> list[str]:
    cluster = _spec(obj).get("cluster")
    return [str(cluster)] if cluster else []


def _spec(obj: Object) -> Mapping[str, Any]:
    """The ``spec`` of a kcp Workspace (an unstructured object)."""
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _deleting(st: SyncTarget) -> bool:
    return st.metadata.deletion_timestamp is not None


def kube_exports(allclusters: RestClient) -> list[str]:
    """The names of the kube-type APIExports in root:compute (TMC's ``kubernetes`` and those that
    ``init`` adds)."""
    listed = kcp.cluster(allclusters, kcp.COMPUTE_WORKSPACE).get(kcp.API_EXPORTS.path())
    return sorted(Meta(e).name for e in listed.get("items") or [])


def wanted_bindings(exports: Sequence[str], espw_path: str = ESPW_PATH) -> list[tuple[str, str, str]]:
    """(binding name, export workspace path, export name) for every binding a mailbox gets: the
    edge export's, then one per kube export in root:compute."""
    kube = [
        (f"bind-{n}", kcp.COMPUTE_WORKSPACE, n) for n in sorted(set(exports)) if n != edge_api.EXPORT_NAME
    ]
    return [(EDGE_BINDING, espw_path, edge_api.EXPORT_NAME), *kube]


class MailboxController:
    """The informers, handlers and reconciler of the mailbox controller."""

    def __init__(
        self,
        view: RestClient,
        root: RestClient,
        allclusters: RestClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        espw_path: str = ESPW_PATH,
        workers: int = DEFAULT_WORKERS,
        exports: Sequence[str] = (),
    ) -> None:
        self.root = kcp.cluster(root, kcp.ROOT)  # the workspace that holds the mailboxes
        self.allclusters = allclusters  # server root: /clusters/<mailbox cluster> for bindings
        self.recorder = recorder
        self.bindings_wanted = wanted_bindings(exports, espw_path)
        self.sync_targets = factory.informer(
            view, resources.SYNC_TARGETS.path(), indexers={MAILBOX_INDEX: _mailbox_index}, model=SyncTarget
        )
        self.workspaces = factory.informer(
            self.root,
            kcp.WORKSPACES.path(),
            indexers={NAME_INDEX: name_index, LOGICAL_CLUSTER_INDEX: _logical_cluster_index},
        )
        self.bindings = factory.informer(kcp.wildcard(allclusters), kcp.API_BINDINGS.path())
        self.controller: Controller[str] = Controller(NAME, self.reconcile, workers=workers)
        self._reported: set[tuple[str, str]] = set()
        # Objects we created whose add event has not come yet: (cluster or "", name).
        self._created: set[tuple[str, str]] = set()
        self._reported_lock = threading.Lock()

        self.sync_targets.add_event_handler(
            on_add=self._on_sync_target,
            on_update=lambda old, new: (
                self._on_sync_target(new) if _deleting(old) != _deleting(new) else None
            ),
            on_delete=self._on_sync_target,
        )
        self.workspaces.add_event_handler(
            on_add=self._on_workspace,
            on_update=lambda old, new: self._on_workspace(new),
            on_delete=self._on_workspace,
        )
        self.bindings.add_event_handler(
            on_add=lambda b: self._created.discard((Meta(b).cluster, Meta(b).name)),
            on_update=None,
            on_delete=self._on_binding,
        )

    # -- event handlers ---------------------------------------------------------------------------

    def _on_sync_target(self, st: SyncTarget) -> None:
        try:
            name = mailbox_of(st)
        except InvalidMailboxName as e:
            self._report_invalid(st, str(e))
            return
        self.controller.enqueue(name)

    def _report_invalid(self, st: SyncTarget, message: str) -> None:
        once = (cluster_of(st), st.metadata.uid or "")
        with self._reported_lock:
            if once in self._reported:
                return
            self._reported.add(once)
        log.error(
            "SyncTarget has no valid mailbox name %s",
            kv(cluster=once[0], syncTarget=st.metadata.name or "", uid=once[1], err=message),
        )
        ref = ObjectRef(once[0], st.api_version, st.kind, st.metadata.name or "", uid=once[1])
        self.recorder.warning(ref, REASON_INVALID_NAME, f"no mailbox workspace: {message}")

    def _on_workspace(self, ws: Object) -> None:
        name = Meta(ws).name
        self._created.discard(("", name))
        if is_mailbox_name(name):
            self.controller.enqueue(name)

    def _on_binding(self, binding: Object) -> None:
        cluster = Meta(binding).cluster
        self._created.discard((cluster, Meta(binding).name))
        for ws in self.workspaces.by_index(LOGICAL_CLUSTER_INDEX, cluster) if cluster else []:
            self._on_workspace(ws)

    # -- reconcile --------------------------------------------------------------------------------

    def reconcile(self, name: str) -> Result | None:
        targets = [st for st in self.sync_targets.by_index(MAILBOX_INDEX, name) if not _deleting(st)]
        if len(targets) > 1:
            log.error(
                "Impossible: several SyncTargets have one mailbox %s", kv(mbwsName=name, count=len(targets))
            )
        found = self.workspaces.by_index(NAME_INDEX, name)
        ws = found[0] if found else None
        if not targets:
            if ws is None or Meta(ws).deleting:
                return None
            self._delete(name, ws)
            return None
        st = targets[0]
        st_name = st.metadata.name or ""
        if ws is None:
            if ("", name) not in self._created:  # else the cache does not show it yet
                self._create(name, st_name)
            return None  # the Workspace's events continue the work
        if Meta(ws).deleting:
            log.log(V(3), "Waiting for mailbox workspace to go away %s", kv(mbwsName=name))
            return Result(requeue_after=1.0)
        if Meta(ws).annotations.get(SYNC_TARGET_NAME_ANNOTATION) != st_name:
            patch = {
                "metadata": {
                    "annotations": {SYNC_TARGET_NAME_ANNOTATION: st_name},
                    "resourceVersion": Meta(ws).resource_version,
                }
            }
            try:
                self.root.patch(kcp.WORKSPACES.path(name=name), patch)
            except ApiError as e:
                if e.not_found or e.conflict:  # our cache is behind: its events bring the name back
                    return Result(requeue=True)
                raise
            log.log(V(2), "Annotated mailbox workspace %s", kv(mbwsName=name, syncTargetName=st_name))
        cluster = str(_spec(ws).get("cluster") or "")
        status = ws.get("status")
        if not cluster or not isinstance(status, Mapping) or status.get("phase") != "Ready":
            return None  # its update to Ready enqueues it again
        return self._ensure_bindings(name, cluster)

    def _create(self, name: str, st_name: str) -> None:
        body = {
            "apiVersion": "tenancy.kcp.io/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": name, "annotations": {SYNC_TARGET_NAME_ANNOTATION: st_name}},
            "spec": {"type": dict(kcp.UNIVERSAL_TYPE)},
        }
        try:
            self.root.create(kcp.WORKSPACES.path(), body, params={"fieldManager": FIELD_MANAGER})
        except ApiError as e:
            if not e.already_exists:
                raise
            return
        self._created.add(("", name))
        log.log(V(2), "Created missing workspace %s", kv(mbwsName=name, syncTargetName=st_name))

    def _delete(self, name: str, ws: Object) -> None:
        uid = Meta(ws).uid
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        try:
            self.root.delete(kcp.WORKSPACES.path(name=name), body)
        except ApiError as e:
            if not e.not_found:
                raise
            return
        log.log(V(2), "Deleted unwanted workspace %s", kv(mbwsName=name, uid=uid))

    def _ensure_bindings(self, name: str, cluster: str) -> Result | None:
        have = {Meta(b).name for b in self.bindings.by_index(CLUSTER_INDEX, cluster)}
        client = kcp.cluster(self.allclusters, cluster)
        result: Result | None = None
        for binding, export_path, export_name in self.bindings_wanted:
            if binding in have or (cluster, binding) in self._created:
                continue
            body = {
                "apiVersion": "apis.kcp.io/v1alpha1",
                "kind": "APIBinding",
                "metadata": {"name": binding},
                "spec": {"reference": {"export": {"path": export_path, "name": export_name}}},
            }
            try:
                created = client.create(kcp.API_BINDINGS.path(), body, params={"fieldManager": FIELD_MANAGER})
            except ApiError as e:
                if e.status == 403 and CLAIM_LABEL in e.message:
                    # A just-Ready workspace whose default bindings' permission claims are still
                    # settling: kcp's admission refuses new objects for a moment.  Try again soon.
                    log.log(
                        V(2), "APIBinding refused for now %s", kv(mbwsName=name, bindingName=binding, err=e)
                    )
                    result = Result(requeue_after=1.0)
                    continue
                if not e.already_exists:
                    raise
                continue
            self._created.add((cluster, binding))
            log.log(
                V(2),
                "Created APIBinding %s",
                kv(
                    mbwsName=name,
                    mbwsCluster=cluster,
                    bindingName=binding,
                    resourceVersion=Meta(created).resource_version,
                ),
            )
        return result


def setup(
    manager: Manager,
    factory: SharedInformerFactory,
    connections: Connections,
    recorder: EventRecorder,
    concurrency: int = DEFAULT_WORKERS,
    *,
    espw_path: str = ESPW_PATH,
    exports: Sequence[str] | None = None,
) -> MailboxController:
    """Create the mailbox controller's informers (in ``factory``) and add it to ``manager``.

    ``exports`` are the kube exports whose bindings mailboxes get (by default, those found in
    root:compute now).  Waits until the edge APIExport in the ESPW has its virtual workspace.
    """
    controller = MailboxController(
        edge_view(connections.espw),
        connections.root,
        connections.allclusters,
        factory,
        recorder,
        espw_path=espw_path,
        workers=concurrency,
        exports=kube_exports(connections.allclusters) if exports is None else exports,
    )
    manager.add(controller.controller)
    return controller
