"""The translator's writes into one mailbox, and the informers on the copies there.

``_reconcile_mailbox`` turns the difference between a mailbox's desired content
(:class:`~pkg.controllers.translator.desired.MailboxDesired`) and its cached content into writes:
Namespaces first, then CRDs, then the other copies (field rules in :mod:`.project`); it deletes
stale projected copies (never Namespaces) and writes ``the-one`` last, since it lists what the
mailbox holds.  A copy the mailbox refuses is reported and retried with backoff; a copy whose
resource is not served yet waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from apis.edge.v2alpha1 import ObjectMeta, SyncerConfig, SyncerConfigSpec
from apis.edge.v2alpha1.client import EdgeV2alpha1Client
from pkg import bootstrap
from pkg.controllers.translator.base import (
    PROJECTED_SELECTOR,
    RETRY_SOON,
    THE_ONE,
    Mailbox,
    State,
)
from pkg.controllers.translator.desired import Desired, MailboxDesired, mailbox_of, syncer_config_json
from pkg.controllers.translator.project import needs_update, update_form
from pkg.controllers.what.resolve import CRDS, NAMESPACES, CopyKey
from pkg.controllers.what.select import EDGE_GROUP, PROJECTED_LABEL, GroupResource, excluded
from pkg.runtime import kcp
from pkg.runtime.controller import Result
from pkg.runtime.discovery import APIResource
from pkg.runtime.events import ObjectRef
from pkg.runtime.informer import Informer
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import make_key

log = logging.getLogger(__name__)


class MailboxWriter(State):
    def _setup_copy_informers(self) -> None:
        """One ``/clusters/*`` informer per resource a mailbox can hold, on projected copies only.

        Natively served resources need nothing more; resources that mailboxes get from the kube
        exports in root:compute need the export's identity hash.  These informers cover every
        mailbox at once, so a stale copy of any such resource is found, after a restart too.
        Resources defined by CRDs inside a mailbox cannot be listed in full across clusters; those
        get a per-mailbox informer when a copy needs one.
        """
        self._shared: dict[tuple[GroupResource, str], Informer] = {}
        self._bound: dict[GroupResource, tuple[str, tuple[str, ...], str]] = {}  # identity, versions, storage
        compute = kcp.cluster(self.all, kcp.COMPUTE_WORKSPACE)
        for export_name in [kcp.KUBERNETES_EXPORT, *bootstrap.kube_export_names()]:
            try:
                export = kcp.get_export(self.all, kcp.COMPUTE_WORKSPACE, export_name)
            except ApiError as e:
                log.warning("kube export not found export=%s err=%s", export_name, e.status)
                continue
            identity = kcp.export_identity(export)
            for schema_name in (export.get("spec") or {}).get("latestResourceSchemas") or []:
                spec = compute.get(f"{kcp.APIS}/apiresourceschemas/{schema_name}").get("spec") or {}
                gr = GroupResource(
                    str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", ""))
                )
                served = tuple(str(v["name"]) for v in spec.get("versions") or [] if v.get("served", True))
                storage = next(
                    (str(v["name"]) for v in spec.get("versions") or [] if v.get("storage")), served[0]
                )
                self._bound[gr] = (identity, served, storage)
        self._natives: dict[GroupResource, APIResource] = {}
        for (group, resource), api in self.discovery.resources(kcp.cluster(self.all, self.espw_path)).items():
            gr = GroupResource(group, resource)
            if api.listable and not excluded(gr) and gr not in self._bound and group != EDGE_GROUP:
                self._natives[gr] = api
        for gr, api in self._natives.items():
            self._shared_informer(gr, api.preferred)
        # Before any workspace binds an export, kcp answers 404 for its resources across clusters,
        # and an informer that cannot list would hold back the Manager's cache sync: those are
        # watched from the first mailbox reconcile on instead.
        for gr, (identity, _, storage) in self._bound.items():
            base = f"/apis/{gr.group}/{storage}" if gr.group else f"/api/{storage}"
            try:
                kcp.wildcard(self.all).get(f"{base}/{kcp.with_identity(gr.resource, identity)}", {"limit": 1})
            except ApiError:
                continue
            self._shared_informer(gr, storage)

    def _shared_informer(self, gr: GroupResource, version: str) -> Informer | None:
        """The ``/clusters/*`` informer on projected copies of ``gr`` at ``version``, if kcp serves one."""
        inf = self._shared.get((gr, version))
        if inf is not None:
            return inf
        if gr in self._natives and version in self._natives[gr].versions:
            path = self._natives[gr].path(version)
        elif gr in self._bound and version in self._bound[gr][1]:
            base = f"/apis/{gr.group}/{version}" if gr.group else f"/api/{version}"
            path = f"{base}/{kcp.with_identity(gr.resource, self._bound[gr][0])}"
        else:
            return None
        inf = self.factory.informer(kcp.wildcard(self.all), path, label_selector=PROJECTED_SELECTOR)
        inf.add_event_handler(
            on_add=lambda o: self._copy_event_any(gr, o),
            on_update=lambda o, n: self._copy_event_any(gr, n),
            on_delete=lambda o: self._copy_event_any(gr, o),
        )
        self._shared[(gr, version)] = inf
        return inf

    def _copy_event_any(self, gr: GroupResource, obj: Mapping[str, Any]) -> None:
        name = self._mailbox_by_cluster.get(kcp.cluster_of(obj))
        if name is not None:
            self._copy_event(name, gr, obj)

    def _mailbox(self, name: str, cluster: str) -> Mailbox:
        with self._lock:
            mb = self._mailboxes.get(name)
            if mb is None or mb.cluster != cluster:
                mb = self._mailboxes[name] = Mailbox(cluster, kcp.cluster(self.all, cluster))
        if mb.namespaces is None:
            mb.namespaces = self.factory.informer(mb.client, "/api/v1/namespaces")
            mb.namespaces.add_event_handler(
                on_add=lambda o: self.mailbox_ctl.enqueue(name),
                on_update=lambda o, n: None,
                on_delete=lambda o: self.mailbox_ctl.enqueue(name),
            )
        return mb

    def _copy_informer(self, name: str, mb: Mailbox, gr: GroupResource, version: str) -> Informer | None:
        """The informer on projected copies of ``gr`` in the mailbox; None while not served."""
        if not self.discovery.serves(mb.client, gr.group, version, gr.resource):
            return None  # not (yet) bound or defined in this mailbox: its copies wait
        inf = self._shared_informer(gr, version) or mb.copies.get((gr, version))
        if inf is not None:
            return inf
        api = self.discovery.find(mb.client, gr.group, gr.resource)
        if api is None or version not in api.versions:
            self.discovery.invalidate(mb.client)
            return None
        inf = self.factory.informer(mb.client, api.path(version), label_selector=PROJECTED_SELECTOR)
        inf.add_event_handler(
            on_add=lambda o: self._copy_event(name, gr, o),
            on_update=lambda o, n: self._copy_event(name, gr, n),
            on_delete=lambda o: self._copy_event(name, gr, o),
        )
        mb.copies[(gr, version)] = inf
        return inf

    def _copy_event(self, mailbox: str, gr: GroupResource, obj: Mapping[str, Any]) -> None:
        self.mailbox_ctl.enqueue(mailbox)
        desired = self._desired
        if desired is None:
            return
        md = desired.mailboxes.get(mailbox)
        key = CopyKey(gr, Meta(obj).namespace, Meta(obj).name)
        copy = md.copies.get(key) if md else None
        if copy is not None and (copy.source_cluster, key) in desired.singleton_sources:
            self.source_ctl.enqueue((copy.source_cluster, key))

    def _reconcile_mailbox(self, name: str) -> Result | None:
        desired = self._desired
        if desired is None:
            return None
        ws = self._mailbox_workspaces().get(name)
        if ws is None:
            return None  # not (yet) a workspace: the mailbox controller makes it, its event brings us back
        cluster = str((ws.get("spec") or {}).get("cluster") or "")
        if (ws.get("status") or {}).get("phase") != "Ready" or not cluster or Meta(ws).deleting:
            return RETRY_SOON
        self._clean.discard((name, cluster))
        want = desired.mailboxes.get(name) or MailboxDesired(name)
        mb = self._mailbox(name, cluster)
        assert mb.namespaces is not None
        the_one_key = f"{cluster}|the-one"
        the_one = self._written.fresh(the_one_key, self.syncer_config_lister.get(cluster, THE_ONE))

        # The resources to look at: those wanted now, and those `the-one` says were sent before.
        versions: dict[GroupResource, str] = {}
        for key, c in want.copies.items():
            versions[key.gr] = c.api_version.rpartition("/")[2]
        for key in want.held:
            versions.setdefault(key.gr, "")
        for group, resource, version in _listed(the_one):
            versions.setdefault(GroupResource(group, resource), version)
        for bound_gr, (_, _, storage) in self._bound.items():
            self._shared_informer(bound_gr, storage)  # once a mailbox exists its bindings do too
        informers: dict[GroupResource, Informer] = {}
        waiting: list[str] = []
        for gr, version in versions.items():
            if gr == NAMESPACES or not version:
                continue
            inf = self._copy_informer(name, mb, gr, version)
            if inf is None:
                if any(k.gr == gr for k in want.copies):
                    waiting.append(f"{gr} is not served yet in mailbox {name}")
                continue
            informers[gr] = inf
        if not mb.namespaces.has_synced() or not all(i.has_synced() for i in informers.values()):
            return Result(requeue_after=0.2)

        client = mb.client
        cached_ns = {Meta(n).name: n for n in mb.namespaces.list()}

        def ns_exists(ns: str) -> bool:
            key = f"{cluster}|{CopyKey(NAMESPACES, '', ns)}"
            return self._written.fresh(key, cached_ns.get(ns)) is not None

        refused: dict[CopyKey, str] = {}
        order = sorted(want.copies.values(), key=lambda c: (c.key.gr != NAMESPACES, c.key.gr != CRDS, c.key))
        for copy in order:
            if copy.key.gr != NAMESPACES and copy.key.gr not in informers:
                continue
            ns = copy.key.namespace
            if copy.namespaced and not ns_exists(ns) and CopyKey(NAMESPACES, "", ns) not in want.copies:
                created_ns = self._create(client, "/api/v1/namespaces", _bare_namespace(ns), name)
                if created_ns is not None:
                    self._written.wrote(f"{cluster}|{CopyKey(NAMESPACES, '', ns)}", created_ns)
            wkey = f"{cluster}|{copy.key}"
            if copy.key.gr == NAMESPACES:
                cached = next((n for n in mb.namespaces.list() if Meta(n).name == copy.key.name), None)
            else:
                cached = informers[copy.key.gr].get(make_key(cluster, copy.key.namespace, copy.key.name))
            have = self._written.fresh(wkey, cached)
            path = _collection(copy.key.gr, copy.api_version, copy.key.namespace)
            try:
                if have is None:
                    created = self._create(client, path, copy.body, name)
                    if created is not None:
                        self._written.wrote(wkey, created)
                elif not copy.create_only and needs_update(have, copy.body):
                    updated = client.update(f"{path}/{copy.key.name}", update_form(have, copy.body))
                    self._written.wrote(wkey, updated, replaced=have)
                    log.log(V(3), "Updated object in mailbox workspace mailbox=%s object=%s", name, copy.key)
            except ApiError as e:
                if e.not_found and have is None:
                    # Not served (any more) although discovery said so: discover again, wait.
                    self.discovery.invalidate(client)
                    waiting.append(f"{copy.key.gr} is not served yet in mailbox {name}")
                    continue
                if not _refusal(e):
                    raise
                # The mailbox refuses this copy (schema, admission, quota, permission): report it,
                # go on with the others, and retry this mailbox with backoff.
                refused[copy.key] = f"mailbox {name} refused {copy.key}: {e.status} {e.message}"
                ref = ObjectRef(
                    copy.source_cluster,
                    str(copy.body.get("apiVersion", "")),
                    str(copy.body.get("kind", "")),
                    copy.key.name,
                    copy.key.namespace,
                )
                self.recorder.warning(ref, "MailboxWriteRefused", refused[copy.key])

        # Stale copies: projected, not wanted, not held back.  Namespaces are never deleted.
        keep = set(want.copies) | set(want.held)
        candidates: dict[tuple[GroupResource, str], Informer] = {
            (gr, version): inf for (gr, version), inf in self._shared.items() if gr != NAMESPACES
        }
        candidates.update({(gr, versions[gr]): inf for gr, inf in informers.items()})
        for (gr, version), inf in candidates.items():
            if not inf.has_synced():
                continue
            objs = inf.by_index("cluster", cluster) if inf in self._shared.values() else inf.list()
            for obj in objs:
                key = CopyKey(gr, Meta(obj).namespace, Meta(obj).name)
                if key in keep or Meta(obj).deleting:
                    continue
                wkey = f"{cluster}|{key}"
                if self._written.fresh(wkey, obj) is None:
                    continue  # deleted already; the cache lags
                path = _collection(gr, f"{gr.group}/{version}" if gr.group else version, key.namespace)
                try:
                    client.delete(
                        f"{path}/{key.name}",
                        {"preconditions": {"resourceVersion": Meta(obj).resource_version}},
                    )
                    self._written.deleted(wkey, Meta(obj).resource_version)
                    log.log(
                        V(3), "Deleted undesired object in mailbox workspace mailbox=%s object=%s", name, key
                    )
                except ApiError as e:
                    if not (e.not_found or e.conflict):
                        raise
        self._set_waiting(name, waiting, desired)
        if waiting:
            self._set_refused(name, refused, desired)
            log.log(V(2), "copies wait mailbox=%s reason=%r", name, "; ".join(waiting))
            return RETRY_SOON

        # `the-one` last: it lists what the mailbox now holds.
        spec = syncer_config_json(want.syncer_config)
        if the_one is None and not self.discovery.serves(client, EDGE_GROUP, "v2alpha1", "syncerconfigs"):
            log.log(V(2), "waiting for SyncerConfigs to be served mailbox=%s", name)
            return RETRY_SOON  # its bind-edge is still binding
        syncer_configs = EdgeV2alpha1Client(client).syncer_configs
        if the_one is None:
            body = SyncerConfig(metadata=ObjectMeta(name=THE_ONE), spec=want.syncer_config)
            try:
                made: SyncerConfig | None = syncer_configs.create(body)
            except ApiError as e:
                if e.already_exists:
                    made = None  # the cache will show it
                elif e.not_found:
                    # The mailbox does not serve SyncerConfigs yet (its bind-edge is still binding).
                    log.log(V(2), "waiting for SyncerConfigs to be served mailbox=%s", name)
                    return RETRY_SOON
                else:
                    raise
            if made is not None:
                self._written.wrote(the_one_key, made)
                log.log(V(2), "Created SyncerConfig mailbox=%s", name)
        elif _normalized(the_one.spec) != spec:
            updated = syncer_configs.update(the_one.model_copy(update={"spec": want.syncer_config}))
            self._written.wrote(the_one_key, updated, replaced=the_one)
            log.log(V(2), "Updated SyncerConfig mailbox=%s", name)
        self._set_refused(name, refused, desired)
        if refused:
            return Result(requeue=True)  # rate-limited: 5 ms doubling up to 1000 s per mailbox
        if self._desired is desired:
            self._clean.add((name, cluster))
        return None

    def _set_refused(self, mailbox: str, refused: dict[CopyKey, str], desired: Desired) -> None:
        """Remember which copies the mailbox refused; their placements show it."""
        if self._refused.get(mailbox, {}) == refused:
            return
        self._refused[mailbox] = refused
        for key, destinations in desired.wheres.items():
            if any(mailbox_of(d) == mailbox for d in destinations):
                self.status_ctl.enqueue(key)

    def _set_waiting(self, mailbox: str, waiting: list[str], desired: Desired) -> None:
        """Remember why copies wait; the placements sending to that mailbox show it while it lasts."""
        if self._waiting.get(mailbox, ([], 0.0))[0] == waiting:
            return
        self._waiting[mailbox] = (waiting, time.monotonic())
        for key, destinations in desired.wheres.items():
            if any(mailbox_of(d) == mailbox for d in destinations):
                self.status_ctl.enqueue(key)

    def _create(
        self, client: RestClient, path: str, body: Mapping[str, Any], mailbox: str
    ) -> Mapping[str, Any] | None:
        """Create; the created object, or None when it existed already (the cache will show it)."""
        try:
            created: Mapping[str, Any] = client.create(path, body)
        except ApiError as e:
            if not e.already_exists:
                raise
            return None
        log.log(
            V(3),
            "Created object in mailbox workspace mailbox=%s path=%s name=%s",
            mailbox,
            path,
            Meta(body).name,
        )
        return created

    # -- sources: executing-count and singleton status --------------------------------------------


def _refusal(e: ApiError) -> bool:
    """An answer that retrying the same request cannot change soon: the object is refused."""
    return 400 <= e.status < 500 and e.status not in (404, 408, 409, 429)


def _gv(gr: GroupResource, version: str) -> str:
    return f"{gr.group}/{version}" if gr.group else version


def _collection(gr: GroupResource, api_version: str, namespace: str) -> str:
    base = f"/apis/{api_version}" if gr.group else f"/api/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{gr.resource}"


def _bare_namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {PROJECTED_LABEL: "yes"}},
    }


def _listed(the_one: SyncerConfig | None) -> list[tuple[str, str, str]]:
    """(group, resource, version) of every resource that ``the-one`` lists objects of."""
    spec = the_one.spec if the_one is not None else None
    if spec is None:
        return []
    entries = [*(spec.namespaced_objects or ()), *(spec.cluster_scope or ())]
    return [(e.group, e.resource, e.api_version) for e in entries]


def _normalized(model: SyncerConfigSpec | None) -> Any:
    """``the-one``'s spec as read back, with what the server may add removed, for comparison."""
    if model is None:
        return {"namespaceScope": {}}
    spec = model.model_dump(mode="json", exclude_unset=True)
    out = {k: v for k, v in spec.items() if v not in (None, [], {}) or k == "namespaceScope"}
    out.setdefault("namespaceScope", {})
    return out
