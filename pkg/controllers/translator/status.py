"""The translator's writes back into WMWs: executing-count, singleton status, placement status.

* ``_reconcile_source`` keeps ``kubestellar.io/executing-count`` on a selected object equal to the
  number of SyncTargets it goes to (removed when no placement wants singleton state), and copies a
  singleton's reported ``status`` from its one mailbox copy back to the object.
* ``_reconcile_status`` keeps the placement's ``Projected`` condition (server-side apply, field
  manager ``placement-translator``): False with the reasons while copies are held back, refused,
  or wait too long for their resource.
"""

from __future__ import annotations

import logging
import time

from apis.edge.v2alpha1 import EdgePlacementStatus
from apis.edge.v2alpha1.client import EdgeV2alpha1Client
from pkg.controllers import conditions
from pkg.controllers.translator.base import NAME, WAIT_REPORTED_AFTER, State
from pkg.controllers.translator.desired import Desired, mailbox_of
from pkg.controllers.translator.mailbox import _collection, _gv
from pkg.controllers.what.resolve import NAMESPACES, CopyKey
from pkg.controllers.what.select import EXECUTING_COUNT
from pkg.runtime.controller import Result
from pkg.runtime.klog import V
from pkg.runtime.meta import Meta
from pkg.runtime.rest import ApiError
from pkg.runtime.store import make_key

log = logging.getLogger(__name__)

PROJECTED = "Projected"


class StatusWriter(State):
    def _reconcile_source(self, key: tuple[str, CopyKey]) -> Result | None:
        desired = self._desired
        cluster, ck = key
        st = self.caches.get(cluster)
        if desired is None or st is None or ck.gr not in st.sources:
            self._forget_annotated(key, desired)
            return None
        version, inf = st.sources[ck.gr]
        wkey = f"{cluster}|source|{ck}"
        obj = self._written.fresh(wkey, inf.get(make_key(cluster, ck.namespace, ck.name)))
        if obj is None:
            self._forget_annotated(key, desired)
            return None
        count = desired.executing_counts.get(key)
        want = None if count is None else str(count)
        have = Meta(obj).annotations.get(EXECUTING_COUNT)
        path = f"{_collection(ck.gr, _gv(ck.gr, version), ck.namespace)}/{ck.name}"
        if want != have:
            patched = st.client.patch(path, {"metadata": {"annotations": {EXECUTING_COUNT: want}}})
            self._written.wrote(wkey, patched, replaced=obj)
            obj = patched
        if want is None:
            self._forget_annotated(key, desired)
        else:
            with self._lock:
                self._annotated.add(key)
        mailbox = desired.singleton_sources.get(key)
        if mailbox is None:
            return None
        mb = self._mailboxes.get(mailbox)
        md = desired.mailboxes.get(mailbox)
        copy = md.copies.get(ck) if md else None
        if mb is None or copy is None:
            return None
        copy_version = copy.api_version.rpartition("/")[2]
        copy_inf = self._shared.get((ck.gr, copy_version)) or mb.copies.get((ck.gr, copy_version))
        mirror = copy_inf.get(make_key(mb.cluster, ck.namespace, ck.name)) if copy_inf else None
        if mirror is None or "status" not in mirror or mirror.get("status") == obj.get("status"):
            return None
        if ck.gr == NAMESPACES:
            return None  # a Namespace's status is the server's own, on both sides
        try:
            returned = st.client.update(f"{path}/status", {**obj, "status": mirror["status"]})
            self._written.wrote(wkey, returned, replaced=obj)
            log.log(V(2), "Return of singleton reported state happened object=%s", ck)
        except ApiError as e:
            if e.not_found:
                return None  # no status subresource: nothing to return
            raise
        return None

    def _forget_annotated(self, key: tuple[str, CopyKey], desired: Desired | None) -> None:
        """``key`` carries no executing-count of ours any more.  When it was the last such object
        of a WMW that has no placements left, recompute: that drops the WMW's caches."""
        cluster = key[0]
        with self._lock:
            if key not in self._annotated:
                return
            self._annotated.discard(key)
            last = not any(c == cluster for c, _ in self._annotated)
        if last and (desired is None or not any(c == cluster for c, _ in desired.wheres)):
            self.compute_ctl.enqueue("all")

    # -- placements: the Projected condition -------------------------------------------------------

    def _reconcile_status(self, key: tuple[str, str]) -> Result | None:
        cluster, name = key
        desired = self._desired
        wkey = f"{cluster}|placement|{name}"
        ep = self._written.fresh(wkey, self.placement_lister.get(cluster, name))  # ours, if fresher
        if desired is None or ep is None:
            return None
        issues = list(desired.placement_problems.get(key, []))
        for p in desired.problems:
            if p.cluster == cluster and name in p.placements and p.obj is not None:
                issues.append(p.message)
        selected = set(desired.whats.get(key, ((), ()))[0])
        for d in desired.wheres.get(key, ()):
            issues.extend(m for k, m in self._refused.get(mailbox_of(d), {}).items() if k in selected)
        # A short wait (a CRD being established) is normal; one that lasts is reported.
        now = time.monotonic()
        waits = [self._waiting.get(mailbox_of(d), ([], now)) for d in desired.wheres.get(key, ())]
        waiting = sorted(
            {w for reasons, since in waits if now - since >= WAIT_REPORTED_AFTER for w in reasons}
        )
        pending = [since + WAIT_REPORTED_AFTER - now for reasons, since in waits if reasons]
        status: conditions.Status
        status, reason = ("False", "HeldBack") if issues else ("True", "Projected")
        if waiting and not issues:
            status, reason, issues = "False", "Waiting", waiting
        message = "; ".join(sorted(set(issues)))[:2000] if issues else "every selected object is projected"
        unserved = desired.upsync_unserved.get(key)
        if unserved and reason == "Projected":  # the copies are there; upsync of some resource is not
            reason, message = "UpsyncNotServed", "; ".join(unserved)[:2000]
        current = conditions.find(ep.status.conditions if ep.status else None, PROJECTED)
        again = Result(requeue_after=max(0.1, min(pending))) if pending and not waiting else None
        condition = conditions.desired_condition(
            current, PROJECTED, status, reason, message, ep.metadata.generation or 0
        )
        if conditions.unchanged(current, condition, generation=False):
            return again
        client = EdgeV2alpha1Client(self.all).cluster(cluster).edge_placements
        status_body = EdgePlacementStatus(conditions=[condition])
        self._written.wrote(wkey, client.apply_status(name, status_body, field_manager=NAME), replaced=ep)
        return again
