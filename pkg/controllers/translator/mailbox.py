"""The translator's writes into one mailbox.

:class:`MailboxReconciler` turns the difference between a mailbox's desired content
(:class:`~pkg.controllers.translator.desired.MailboxDesired`) and its cached content into writes:
Namespaces first, then CRDs, then the other copies (field rules in :mod:`.project`); it deletes
stale projected copies (never Namespaces) and writes ``the-one`` last, since it lists what the
mailbox holds.  A copy the mailbox refuses is reported and retried with backoff; a copy whose
resource is not served yet waits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from apis.edge.v2alpha1 import GROUP, VERSION, ObjectMeta, SyncerConfig, SyncerConfigSpec
from apis.edge.v2alpha1 import constants as api
from apis.edge.v2alpha1.client import EdgeV2alpha1Client
from pkg.controllers.translator.desired import MailboxDesired, syncer_config_json
from pkg.controllers.translator.project import compact, needs_update, update_form
from pkg.controllers.translator.view import RETRY_SOON, Reports, View, collection_path
from pkg.controllers.what.resolve import CRDS, NAMESPACES, CopyKey
from pkg.controllers.what.select import GroupResource
from pkg.runtime import kube
from pkg.runtime.controller import Result
from pkg.runtime.events import ObjectRef
from pkg.runtime.informer import Informer
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta, resource_version_of
from pkg.runtime.rest import ApiError, RestClient
from pkg.runtime.store import make_key

THE_ONE = api.THE_ONE
log = logging.getLogger(__name__)


@dataclass
class _Checked:
    """What one reconcile of a mailbox (in one logical cluster) found in place, so that the next
    need not compare it again.  Bodies and specs are shared and replaced, never mutated, and a
    resourceVersion names one content: the same pair found equal once is equal still.  An edit of
    one object then compares one copy per mailbox, not all of them."""

    cluster: str
    # per copy: the desired body it was last found equal to (or written from), and its version then
    copies: dict[CopyKey, tuple[Mapping[str, Any], str]] = field(default_factory=dict)
    # the pair of `the-one` specs (as cached, as desired) last found equal
    spec_pair: tuple[SyncerConfigSpec | None, SyncerConfigSpec] | None = None

    def found_equal(self, have: SyncerConfigSpec | None, want: SyncerConfigSpec) -> bool:
        """Whether this very pair of specs was compared and found equal before."""
        return self.spec_pair is not None and self.spec_pair[0] is have and self.spec_pair[1] is want


class MailboxReconciler:
    """Reconciles one mailbox (key: its workspace name) against the view's desired snapshot."""

    def __init__(self, view: View, reports: Reports) -> None:
        self.view = view
        self.reports = reports
        self._checked: dict[str, _Checked] = {}  # by mailbox name, while its workspace exists

    def reconcile(self, name: str) -> Result | None:
        v = self.view
        desired = v.desired()
        if desired is None:
            return None
        ws = v.mailbox_workspace(name)
        if ws is None:
            self._checked.pop(name, None)
            return None  # not (yet) a workspace: the mailbox controller makes it, its event brings us back
        cluster = str((ws.get("spec") or {}).get("cluster") or "")
        if (ws.get("status") or {}).get("phase") != "Ready" or not cluster or Meta(ws).deleting:
            return None  # its change of phase (or deletion) brings us back
        v.set_clean(name, cluster, False)
        want = desired.mailboxes.get(name) or MailboxDesired(name)
        mb = v.mailbox(name, cluster)
        the_one_key = f"{cluster}|{THE_ONE}"
        the_one = v.written.fresh(the_one_key, v.listers.syncer_configs.get(cluster, THE_ONE))

        # The resources to look at: those wanted now, and those `the-one` says were sent before.
        versions: dict[GroupResource, str] = {}
        for key, c in want.copies.items():
            versions[key.gr] = c.api_version.rpartition("/")[2]
        for key in want.held:
            versions.setdefault(key.gr, "")
        for group, resource, version in _listed(the_one):
            versions.setdefault(GroupResource(group, resource), version)
        for bound_gr, (_, _, storage) in list(v.bound.items()):
            v.shared_informer(bound_gr, storage)  # once a mailbox exists its bindings do too
        informers: dict[GroupResource, Informer] = {}
        waiting: list[str] = []
        for gr, version in versions.items():
            if gr == NAMESPACES or not version:
                continue
            inf = v.copy_informer(name, mb, gr, version)
            if inf is None:
                if any(k.gr == gr for k in want.copies):
                    waiting.append(f"{gr} is not served yet in mailbox {name}")
                continue
            informers[gr] = inf
        if not v.namespaces.has_synced() or not all(i.has_synced() for i in informers.values()):
            return Result(requeue_after=0.2)

        client = mb.client
        cached_ns = v.namespaces_in(cluster)

        def ns_exists(ns: str) -> bool:
            key = f"{cluster}|{CopyKey(NAMESPACES, '', ns)}"
            return v.written.fresh(key, cached_ns.get(ns)) is not None

        refused: dict[CopyKey, str] = {}
        checked = self._checked.get(name)
        if checked is None or checked.cluster != cluster:
            checked = self._checked[name] = _Checked(cluster)
        verified = checked.copies
        order = sorted(want.copies.values(), key=lambda c: (c.key.gr != NAMESPACES, c.key.gr != CRDS, c.key))
        for copy in order:
            if copy.key.gr != NAMESPACES and copy.key.gr not in informers:
                continue
            wkey = f"{cluster}|{copy.key}"
            if copy.key.gr == NAMESPACES:
                cached = cached_ns.get(copy.key.name)
            else:
                cached = informers[copy.key.gr].get(make_key(cluster, copy.key.namespace, copy.key.name))
            have = v.written.fresh(wkey, cached)
            rv = resource_version_of(have) if have is not None else ""
            seen = verified.pop(copy.key, None)
            if have is not None and seen is not None and seen[0] is copy.body and seen[1] == rv:
                verified[copy.key] = seen
                continue  # this very body was found in place at this version
            ns = copy.key.namespace
            if copy.namespaced and not ns_exists(ns) and CopyKey(NAMESPACES, "", ns) not in want.copies:
                ns_key = f"{cluster}|{CopyKey(NAMESPACES, '', ns)}"
                with self._writing(ns_key, name):
                    created_ns = self._create(client, kube.NAMESPACES.path(), _bare_namespace(ns), name)
                    if created_ns is not None:
                        v.written.wrote(ns_key, created_ns)
            path = collection_path(copy.key.gr, copy.api_version.rpartition("/")[2], copy.key.namespace)
            try:
                if have is None:
                    with self._writing(wkey, name):
                        created = self._create(client, path, copy.body, name)
                        if created is not None:
                            v.written.wrote(wkey, compact(created))
                            verified[copy.key] = (copy.body, resource_version_of(created))
                elif not copy.create_only and needs_update(have, copy.body, copy.digest):
                    with self._writing(wkey, name):
                        updated = client.update(f"{path}/{copy.key.name}", update_form(have, copy.body))
                        v.written.wrote(wkey, compact(updated), replaced=have)
                        verified[copy.key] = (copy.body, resource_version_of(updated))
                    log.log(V(3), "Updated object in mailbox workspace mailbox=%s object=%s", name, copy.key)
                else:
                    verified[copy.key] = (copy.body, rv)
            except ApiError as e:
                if e.not_found and have is None:
                    # Not served (any more) although discovery said so: discover again, wait.
                    v.discovery.invalidate(client)
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
                v.recorder.warning(ref, "MailboxWriteRefused", refused[copy.key])

        if len(verified) > len(want.copies):
            for gone in [key for key in verified if key not in want.copies]:
                del verified[gone]

        # Stale copies: projected, not wanted, not held back.  Namespaces are never deleted.
        keep = set(want.copies) | set(want.held)
        candidates: dict[tuple[GroupResource, str], Informer] = {
            (gr, version): inf for (gr, version), inf in list(v.shared.items()) if gr != NAMESPACES
        }
        candidates.update({(gr, versions[gr]): inf for gr, inf in informers.items()})
        shared = set(map(id, v.shared.values()))
        for (gr, version), inf in candidates.items():
            if not inf.has_synced():
                continue
            objs = inf.by_index("cluster", cluster) if id(inf) in shared else inf.list()
            for obj in objs:
                key = CopyKey(gr, Meta(obj).namespace, Meta(obj).name)
                if key in keep or Meta(obj).deleting:
                    continue
                wkey = f"{cluster}|{key}"
                if v.written.fresh(wkey, obj) is None:
                    continue  # deleted already; the cache lags
                path = collection_path(gr, version, key.namespace)
                try:
                    with self._writing(wkey, name):
                        client.delete(
                            f"{path}/{key.name}",
                            {"preconditions": {"resourceVersion": Meta(obj).resource_version}},
                        )
                        v.written.deleted(wkey, Meta(obj).resource_version)
                    log.log(
                        V(3), "Deleted undesired object in mailbox workspace mailbox=%s object=%s", name, key
                    )
                except ApiError as e:
                    if not (e.not_found or e.conflict):
                        raise
        self.reports.set_waiting(name, waiting, desired)
        if waiting:
            self.reports.set_refused(name, refused, desired)
            log.log(V(2), "copies wait mailbox=%s reason=%r", name, "; ".join(waiting))
            return RETRY_SOON

        # `the-one` last: it lists what the mailbox now holds.
        if the_one is None and not v.discovery.serves(client, GROUP, VERSION, "syncerconfigs"):
            log.log(V(2), "waiting for SyncerConfigs to be served mailbox=%s", name)
            return RETRY_SOON  # its bind-edge is still binding
        syncer_configs = EdgeV2alpha1Client(client).syncer_configs
        if the_one is None:
            body = SyncerConfig(metadata=ObjectMeta(name=THE_ONE), spec=want.syncer_config)
            with self._writing(the_one_key, name):
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
                    v.written.wrote(the_one_key, made)
            if made is not None:
                log.log(V(2), "Created SyncerConfig mailbox=%s", name)
        elif not checked.found_equal(the_one.spec, want.syncer_config):
            if _normalized(the_one.spec) != syncer_config_json(want.syncer_config):
                with self._writing(the_one_key, name):
                    updated = syncer_configs.update(the_one.model_copy(update={"spec": want.syncer_config}))
                    v.written.wrote(the_one_key, updated, replaced=the_one)
                log.log(V(2), "Updated SyncerConfig mailbox=%s", name)
            else:
                checked.spec_pair = (the_one.spec, want.syncer_config)
        self.reports.set_refused(name, refused, desired)
        if refused:
            return Result(requeue=True)  # rate-limited: 5 ms doubling up to 1000 s per mailbox
        v.set_clean(name, cluster, True, desired)
        return None

    def _writing(self, key: str, mailbox: str) -> AbstractContextManager[None]:
        """Around a write to ``key``: an event on it that arrives meanwhile and is not the write's
        echo reconciles the mailbox again."""
        return self.view.written.writing(key, lambda: self.view.queues.mailbox(mailbox))

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


def _refusal(e: ApiError) -> bool:
    """An answer that retrying the same request cannot change soon: the object is refused."""
    return 400 <= e.status < 500 and e.status not in (404, 408, 409, 429)


def _bare_namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {api.PROJECTED_LABEL: "yes"}},
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
