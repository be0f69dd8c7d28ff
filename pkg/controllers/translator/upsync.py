"""Which CRDs a mailbox needs so that the syncer can upsync into it.

The syncer upsyncs an object into the mailbox only if the mailbox serves its resource.  Kube types
are served there by the same APIBindings a WMW has; a resource that a WMW defines by a CRD is not,
unless that CRD is projected.  :func:`upsync_crds` is the pure rule, for one mailbox:

* every resource named by an upsync clause of a placement reaching the mailbox, that the
  placement's own WMW defines by a CRD, brings that CRD (a ``"*"`` resource names every CRD of the
  clause's group in that WMW);
* a resource named that way which no contributing WMW serves at all is reported, once per
  (WMW, placement, resource), with a message that does not depend on the mailbox;
* a resource the WMW serves without a CRD (a bound kube type) needs nothing.

Two WMWs offering different CRDs of one name are resolved by the caller's conflict rule for
copies (the smallest workspace path wins, reported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apis.edge.v2alpha1 import UpsyncSet
from pkg.runtime.meta import Meta


@dataclass(frozen=True)
class UpsyncSource:
    """One placement reaching the mailbox, with what its WMW serves."""

    cluster: str  # the WMW's logical cluster
    path: str  # the WMW's workspace path
    placement: str
    upsync: Sequence[UpsyncSet]  # the placement's upsync clauses
    served: Mapping[tuple[str, str], str | None]  # (group, resource) -> defining CRD name, or None
    crds: Mapping[str, Mapping[str, Any]]  # CRD name -> the CRD object in the WMW


@dataclass(frozen=True)
class Unserved:
    cluster: str
    placement: str
    message: str


def upsync_crds(
    sources: Sequence[UpsyncSource],
) -> tuple[dict[str, dict[str, Mapping[str, Any]]], list[Unserved]]:
    """(CRD name -> WMW cluster -> CRD object to project, the upsync resources nobody serves)."""
    wanted: dict[str, dict[str, Mapping[str, Any]]] = {}
    asked: list[tuple[UpsyncSource, str, str]] = []  # (source, group, resource) needing a server
    served_anywhere: set[tuple[str, str]] = set()
    for src in sources:
        served_anywhere.update(src.served)
        for clause in src.upsync:
            group, resources = clause.api_group, clause.resources
            if group is None or group == "*":
                continue  # a clause of every group names no resource in particular
            for resource in resources:
                if resource == "*":
                    crds = [crd for (g, _), crd in src.served.items() if g == group and crd]
                elif (group, resource) in src.served:
                    crd = src.served[(group, resource)]
                    crds = [crd] if crd else []
                else:
                    asked.append((src, group, resource))
                    continue
                for name in crds:
                    obj = src.crds.get(name)
                    if obj is not None and not Meta(obj).deleting:
                        wanted.setdefault(name, {})[src.cluster] = obj
    unserved: dict[tuple[str, str, str], Unserved] = {}
    for src, group, resource in asked:
        if (group, resource) in served_anywhere:
            continue
        what = f"{resource}.{group}" if group else resource
        message = (
            f"upsync of {what}: no workspace sending to its mailboxes defines it, so it is not served "
            "there and the syncer cannot upsync it"
        )
        unserved[(src.cluster, src.placement, message)] = Unserved(src.cluster, src.placement, message)
    return wanted, [unserved[k] for k in sorted(unserved)]
