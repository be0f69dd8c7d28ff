"""The translator's desired-state computation, from scratch and incremental (no server).

    python -m bench.compute [--size small|medium|large] [--repeat R]

Builds a synthetic workload shaped like ``bench.scale``'s (N SyncTargets with one Location each, W
WMWs holding M ConfigMaps and Deployments, a quarter of them expanding a parameter, P placements,
placement j in WMW j mod W selecting the Locations of groups j and j+1) and times
:func:`pkg.controllers.translator.desired.compute`:

* ``scratch``: without a memo, as every recomputation was built before the memo existed (the
  baseline, measured in the same run);
* ``unchanged``: with a memo, nothing changed (fresh views of the same cached objects, as the
  controller builds for every event);
* ``object edit``: one ConfigMap replaced by an edited copy (as an informer delivers an update);
* ``placement edit``: one EdgePlacement's spec replaced by an equal-but-new one plus a new clause;
* ``location relabel``: one Location's labels changed (a parameter of its mailbox's copies).

Each figure is the median of R runs, with the number of mailboxes built again, and the ratio to
``scratch``.  The incremental cost should follow the fan-out of the change (the mailboxes it
reaches), not the size of the whole workload.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pkg.controllers.translator.desired import (
    CRDS,
    NAMESPACES,
    Destination,
    Memo,
    Placement,
    ResourceInfo,
    Workspace,
    compute,
)
from pkg.controllers.what.select import EXPAND_PARAMETERS, GroupResource

CM = GroupResource("", "configmaps")
DEPLOY = GroupResource("apps", "deployments")
INFO = {
    CM: ResourceInfo(CM, "ConfigMap", True, ("v1",)),
    DEPLOY: ResourceInfo(DEPLOY, "Deployment", True, ("v1",)),
    NAMESPACES: ResourceInfo(NAMESPACES, "Namespace", False, ("v1",)),
    CRDS: ResourceInfo(CRDS, "CustomResourceDefinition", False, ("v1",)),
}
SIZES = {  # N SyncTargets, W WMWs, M objects, P placements
    "small": (10, 2, 20, 2),
    "medium": (100, 5, 250, 5),
    "large": (1000, 10, 1000, 10),
}
Locations = dict[tuple[str, str], dict[str, Any]]


@dataclass
class World:
    """The caches: what the informers would hold (replaced on change, never mutated)."""

    locations: Locations
    destinations: list[Destination]
    objects: list[dict[GroupResource, list[dict[str, Any]]]]  # per WMW
    specs: dict[int, dict[str, Any]]  # placement j -> spec
    n: int
    w: int
    p: int

    def views(self) -> list[Workspace]:
        out = []
        for w in range(self.w):
            placements = []
            for j in range(self.p):
                if j % self.w == w:
                    dests = [
                        d for i, d in enumerate(self.destinations) if i % self.p in (j, (j + 1) % self.p)
                    ]
                    placements.append(Placement(f"ep{j}", self.specs[j], dests))
            objs = self.objects[w]
            namespaces = {str(o["metadata"]["name"]): {} for o in objs[NAMESPACES]}
            out.append(Workspace(f"wmw{w}", f"root:wmw{w}", placements, INFO, objs, namespaces, {}))
        return out

    def mailboxes(self) -> list[str]:
        return sorted(d.mailbox for d in self.destinations)


def build(n: int, w: int, m: int, p: int) -> World:
    locations: Locations = {}
    destinations = []
    for i in range(n):
        labels = {"group": f"g{i % p}", "loc-name": f"loc{i}", "region": f"r{i % 3}"}
        locations[("imw1", f"loc{i}")] = {"metadata": {"name": f"loc{i}", "uid": f"l{i}", "labels": labels}}
        destinations.append(Destination("imw1", f"loc{i}", f"st{i}", str(uuid.UUID(int=i + 1))))
    objects: list[dict[GroupResource, list[dict[str, Any]]]] = [
        {CM: [], DEPLOY: [], NAMESPACES: [], CRDS: []} for _ in range(w)
    ]
    for j in range(m):
        ns = f"ns{j // 10}"
        md: dict[str, Any] = {"name": f"o{j}", "namespace": ns, "uid": f"u{j}", "resourceVersion": "1"}
        md["labels"] = {"app": "bench"}
        if j % 4 == 0:
            md["annotations"] = {EXPAND_PARAMETERS: "true"}
        if j % 2 == 0:
            gr = CM
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"where": "%(loc-name)"}}
        else:
            gr = DEPLOY
            spec = {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
            obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": spec}
        objects[j % w][gr].append(obj)
        if not any(o["metadata"]["name"] == ns for o in objects[j % w][NAMESPACES]):
            objects[j % w][NAMESPACES].append(
                {"metadata": {"name": ns, "uid": f"n{ns}", "resourceVersion": "1"}}
            )
    specs = {
        j: {
            "locationSelectors": [{"matchLabels": {"group": f"g{j}"}}],
            "downsync": [
                {"apiGroup": "", "resources": ["configmaps"], "namespaceSelectors": [{}]},
                {"apiGroup": "apps", "resources": ["deployments"], "namespaceSelectors": [{}]},
            ],
        }
        for j in range(p)
    }
    return World(locations, destinations, objects, specs, n, w, p)


def edit_object(world: World, k: int) -> None:
    objs = world.objects[0][CM]
    new = copy.deepcopy(objs[0])
    new["metadata"]["resourceVersion"] = str(k + 2)
    new["data"] = {**new["data"], "edit": str(k)}
    world.objects[0] = {**world.objects[0], CM: [new, *objs[1:]]}


def edit_placement(world: World, k: int) -> None:
    spec = copy.deepcopy(world.specs[0])
    spec["downsync"] = [
        *spec["downsync"][:2],
        {"apiGroup": "", "resources": ["configmaps"], "objectNames": [f"x{k}"]},
    ]
    world.specs = {**world.specs, 0: spec}


def relabel_location(world: World, k: int) -> None:
    key = ("imw1", "loc0")
    loc = copy.deepcopy(world.locations[key])
    loc["metadata"]["labels"]["region"] = f"edited{k}"
    world.locations = {**world.locations, key: loc}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(size: str, repeat: int) -> list[tuple[str, float, int, int]]:
    world = build(*SIZES[size])
    mailboxes = world.mailboxes()
    rows: list[tuple[str, float, int, int]] = []
    scratch = [timed(lambda: compute(world.views(), world.locations, mailboxes)) for _ in range(repeat)]
    desired = compute(world.views(), world.locations, mailboxes)
    copies = sum(len(md.copies) for md in desired.mailboxes.values())
    rows.append(("scratch", statistics.median(scratch), len(desired.mailboxes), copies))
    memo = Memo()
    compute(world.views(), world.locations, mailboxes, memo=memo)
    changes: list[tuple[str, Callable[[World, int], None] | None]] = [
        ("unchanged", None),
        ("object edit", edit_object),
        ("placement edit", edit_placement),
        ("location relabel", relabel_location),
    ]
    for name, change in changes:
        times, built = [], []
        for k in range(repeat):
            if change is not None:
                change(world, k)
            times.append(timed(lambda: compute(world.views(), world.locations, mailboxes, memo=memo)))
            built.append(memo.built)
            got = compute(world.views(), world.locations, mailboxes, memo=memo)
            assert got == compute(world.views(), world.locations, mailboxes), f"{name}: memo differs"
        rows.append((name, statistics.median(times), max(built), copies))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="medium")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    n, w, m, p = SIZES[args.size]
    print(f"size {args.size}: N={n} SyncTargets, W={w} WMWs, M={m} objects, P={p} placements")
    rows = run(args.size, args.repeat)
    base = rows[0][1]
    print(f"{'case':<18}{'median ms':>10}{'built':>8}{'ratio':>8}")
    for name, seconds, built, _ in rows:
        print(f"{name:<18}{seconds * 1000:>10.1f}{built:>8}{seconds / base:>8.2f}")
    print(f"copies in the desired state: {rows[0][3]}; 'built' = mailboxes built (scratch: all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
