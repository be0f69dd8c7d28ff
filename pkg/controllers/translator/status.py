"""The translator's writes back into WMWs: executing-count, singleton status, placement status.

* :class:`SourceReconciler` (key: WMW cluster and object) keeps ``kubestellar.io/executing-count``
  on a selected object equal to the number of SyncTargets it goes to (removed when no placement
  wants singleton state), and copies a singleton's reported ``status`` from its one mailbox copy
  back to the object.
* :class:`PlacementReconciler` (key: WMW cluster and placement name) keeps the placement's
  ``Projected`` condition (server-side apply, field manager ``placement-translator``): False with
  the reasons while copies are held back, refused, or wait too long for their resource.

Each decision is a pure function (:func:`wanted_count`, :func:`projected`) over the desired
snapshot and the reports.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from apis.edge.v2alpha1 import EdgePlacementStatus
from apis.edge.v2alpha1 import constants as api
from apis.edge.v2alpha1.client import EdgeV2alpha1Client
from pkg.controllers import conditions
from pkg.controllers.translator.desired import Desired, mailbox_of
from pkg.controllers.translator.view import (
    NAME,
    WAIT_REPORTED_AFTER,
    PlacementKey,
    Reports,
    SourceKey,
    View,
    collection_path,
)
from pkg.controllers.what.resolve import NAMESPACES
from pkg.runtime.controller import Result
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta
from pkg.runtime.rest import ApiError
from pkg.runtime.store import make_key

log = logging.getLogger(__name__)

PROJECTED = "Projected"


def wanted_count(desired: Desired, key: SourceKey) -> str | None:
    """The executing-count the object should carry: the number of SyncTargets it goes to while
    some placement wants its singleton state, else none (the annotation goes)."""
    count = desired.executing_counts.get(key)
    return None if count is None else str(count)


class SourceReconciler:
    """Reconciles one selected source object: its executing-count and its returned status."""

    def __init__(self, view: View) -> None:
        self.view = view

    def reconcile(self, key: SourceKey) -> Result | None:
        v = self.view
        desired = v.desired()
        cluster, ck = key
        source = v.caches.source_informer(cluster, ck.gr)
        st = v.caches.get(cluster)
        if desired is None or st is None or source is None:
            self._forget(key, desired)
            return None
        version, inf = source
        wkey = f"{cluster}|source|{ck}"
        obj = v.written.fresh(wkey, inf.get(make_key(cluster, ck.namespace, ck.name)))
        if obj is None:
            self._forget(key, desired)
            return None
        want = wanted_count(desired, key)
        have = Meta(obj).annotations.get(api.EXECUTING_COUNT_ANNOTATION)
        path = f"{collection_path(ck.gr, version, ck.namespace)}/{ck.name}"
        if want != have:
            patched = st.client.patch(
                path, {"metadata": {"annotations": {api.EXECUTING_COUNT_ANNOTATION: want}}}
            )
            v.written.wrote(wkey, patched, replaced=obj)
            obj = patched
        if want is None:
            self._forget(key, desired)
        else:
            v.annotate(key)
        mailbox = desired.singleton_sources.get(key)
        if mailbox is None:
            return None
        mb = v.known_mailbox(mailbox)
        md = desired.mailboxes.get(mailbox)
        copy = md.copies.get(ck) if md else None
        if mb is None or copy is None:
            return None
        copy_inf = v.copy_of(mailbox, ck.gr, copy.api_version.rpartition("/")[2])
        mirror = copy_inf.get(make_key(mb.cluster, ck.namespace, ck.name)) if copy_inf else None
        if mirror is None or "status" not in mirror or mirror.get("status") == obj.get("status"):
            return None
        if ck.gr == NAMESPACES:
            return None  # a Namespace's status is the server's own, on both sides
        try:
            returned = st.client.update(f"{path}/status", {**obj, "status": mirror["status"]})
            v.written.wrote(wkey, returned, replaced=obj)
            log.log(V(2), "Return of singleton reported state happened object=%s", ck)
        except ApiError as e:
            if e.not_found:
                return None  # no status subresource: nothing to return
            raise
        return None

    def _forget(self, key: SourceKey, desired: Desired | None) -> None:
        """``key`` carries no executing-count of ours any more.  When it was the last such object
        of a WMW that has no placements left, join again: that drops the WMW's caches."""
        cluster = key[0]
        if self.view.unannotate(key) and (
            desired is None or not any(c == cluster for c, _ in desired.wheres)
        ):
            self.view.queues.join("all")


@dataclass(frozen=True)
class Projected:
    """The ``Projected`` condition a placement should show, and when to look again."""

    status: conditions.Status
    reason: str
    message: str
    again: float | None  # seconds until a wait becomes reportable


def projected(desired: Desired, key: PlacementKey, reports: Reports, now: float) -> Projected:
    """A placement's ``Projected`` condition: False (HeldBack) while copies are held back or refused,
    False (Waiting) once copies have waited ``WAIT_REPORTED_AFTER`` seconds for their resource,
    UpsyncNotServed when only upsync lacks a resource, else True."""
    cluster, name = key
    issues = list(desired.placement_problems.get(key, []))
    for p in desired.problems:
        if p.cluster == cluster and name in p.placements and p.obj is not None:
            issues.append(p.message)
    selected = set(desired.whats.get(key, ((), ()))[0])
    for d in desired.wheres.get(key, ()):
        issues.extend(m for k, m in reports.refused(mailbox_of(d)).items() if k in selected)
    # A short wait (a CRD being established) is normal; one that lasts is reported.
    waits = [reports.waiting(mailbox_of(d), now) for d in desired.wheres.get(key, ())]
    waiting = sorted({w for reasons, since in waits if now - since >= WAIT_REPORTED_AFTER for w in reasons})
    pending = [since + WAIT_REPORTED_AFTER - now for reasons, since in waits if reasons]
    status: conditions.Status
    status, reason = ("False", "HeldBack") if issues else ("True", "Projected")
    if waiting and not issues:
        status, reason, issues = "False", "Waiting", waiting
    message = "; ".join(sorted(set(issues)))[:2000] if issues else "every selected object is projected"
    unserved = desired.upsync_unserved.get(key)
    if unserved and reason == "Projected":  # the copies are there; upsync of some resource is not
        reason, message = "UpsyncNotServed", "; ".join(unserved)[:2000]
    again = max(0.1, min(pending)) if pending and not waiting else None
    return Projected(status, reason, message, again)


class PlacementReconciler:
    """Reconciles one EdgePlacement's ``Projected`` condition."""

    def __init__(self, view: View, reports: Reports) -> None:
        self.view = view
        self.reports = reports

    def reconcile(self, key: PlacementKey) -> Result | None:
        cluster, name = key
        v = self.view
        desired = v.desired()
        wkey = f"{cluster}|placement|{name}"
        ep = v.written.fresh(wkey, v.listers.placements.get(cluster, name))  # ours, if fresher
        if desired is None or ep is None:
            return None
        want = projected(desired, key, self.reports, time.monotonic())
        again = Result(requeue_after=want.again) if want.again is not None else None
        current = conditions.find(ep.status.conditions if ep.status else None, PROJECTED)
        condition = conditions.desired_condition(
            current, PROJECTED, want.status, want.reason, want.message, ep.metadata.generation or 0
        )
        if conditions.unchanged(current, condition, generation=False):
            return again
        client = EdgeV2alpha1Client(v.all).cluster(cluster).edge_placements
        status_body = EdgePlacementStatus(conditions=[condition])
        v.written.wrote(wkey, client.apply_status(name, status_body, field_manager=NAME), replaced=ep)
        return again
