"""The translator's work per event, from scratch and incremental (no server).

    python -m bench.compute [--size small|medium|large] [--repeat R]

Builds a synthetic workload shaped like ``bench.scale``'s (N SyncTargets with one Location each, W
WMWs holding M ConfigMaps and Deployments, a quarter of them expanding a parameter, P placements,
placement j in WMW j mod W selecting the Locations of groups j and j+1) and times what the
controllers do for one event: the what resolver resolves again the placements that the event
concerns (:class:`pkg.controllers.what.controller.PlacementIndex` says which, as the controller
routes events), then :func:`pkg.controllers.translator.desired.compute` joins every placement's
resolved what with its destinations:

* ``scratch``: every what resolved inside ``compute``, without a memo, as every recomputation was
  built before the memo and the what resolver existed (the baseline, measured in the same run);
* ``unchanged``: nothing changed (fresh views of the same cached objects and resolved whats, as the
  controller builds for every event);
* ``object edit``: one ConfigMap replaced by an edited copy (as an informer delivers an update);
* ``unselected edit``: one object of a resource that no placement could select edited (before the
  what resolver was its own controller, any object event cost a whole join: ``unchanged``);
* ``placement edit``: one EdgePlacement's spec replaced by an equal-but-new one plus a new clause;
* ``location relabel``: one Location's labels changed (a parameter of its mailbox's copies).

Each figure is the median of R runs (CPU time of the process), with the number of mailboxes built
again, and the ratio to ``scratch``.  The incremental cost should follow the fan-out of the change
(the mailboxes it reaches), not the size of the whole workload.

The edge objects (EdgePlacement specs, Locations, destinations) are pydantic models, decoded once
as an informer does at ingest; ``decode`` is that cost for the whole input, per object.  With
``--baseline DIR`` (another checkout, e.g. main before a change) the same cases run there too, in a
subprocess with that checkout's code, and a ``/base`` column shows the ratio of each figure to
that checkout's.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apis.edge.v2alpha1 import EdgePlacementSpec, Location, SinglePlacement
from apis.edge.v2alpha1 import constants as api
from pkg.controllers.translator.desired import Memo, Placement, Workspace, compute, mailbox_of
from pkg.controllers.what.controller import PlacementIndex
from pkg.controllers.what.resolve import CRDS, NAMESPACES, Resolved, ServedResource, resolve
from pkg.controllers.what.select import GroupResource

CM = GroupResource("", "configmaps")
DEPLOY = GroupResource("apps", "deployments")
SECRETS = GroupResource("", "secrets")  # served, selected by no placement
INFO = {
    SECRETS: ServedResource(SECRETS, "Secret", True, ("v1",)),
    CM: ServedResource(CM, "ConfigMap", True, ("v1",)),
    DEPLOY: ServedResource(DEPLOY, "Deployment", True, ("v1",)),
    NAMESPACES: ServedResource(NAMESPACES, "Namespace", False, ("v1",)),
    CRDS: ServedResource(CRDS, "CustomResourceDefinition", False, ("v1",)),
}
SIZES = {  # N SyncTargets, W WMWs, M objects, P placements
    "small": (10, 2, 20, 2),
    "medium": (100, 5, 250, 5),
    "large": (1000, 10, 1000, 10),
}
Locations = dict[tuple[str, str], Location]


@dataclass
class World:
    """The caches: what the informers would hold (replaced on change, never mutated)."""

    locations: Locations
    destinations: list[SinglePlacement]
    objects: list[dict[GroupResource, list[dict[str, Any]]]]  # per WMW
    specs: dict[int, EdgePlacementSpec]  # placement j -> spec
    n: int
    w: int
    p: int

    def resolve(self, j: int) -> Resolved:
        """Placement j's what, as the what resolver makes it from its WMW's caches."""
        objs = self.objects[j % self.w]
        namespaces = {str(o["metadata"]["name"]): {} for o in objs[NAMESPACES]}
        return resolve(self.specs[j], f"root:wmw{j % self.w}", INFO, objs, namespaces)

    def views(self, whats: dict[int, Resolved] | None = None) -> list[Workspace]:
        out = []
        for w in range(self.w):
            placements = []
            for j in range(self.p):
                if j % self.w == w:
                    dests = [
                        d for i, d in enumerate(self.destinations) if i % self.p in (j, (j + 1) % self.p)
                    ]
                    what = whats.get(j) if whats is not None else None
                    placements.append(Placement(f"ep{j}", self.specs[j], dests, what))
            objs = self.objects[w]
            namespaces = {str(o["metadata"]["name"]): {} for o in objs[NAMESPACES]}
            out.append(Workspace(f"wmw{w}", f"root:wmw{w}", placements, INFO, objs, namespaces, {}))
        return out

    def mailboxes(self) -> list[str]:
        return sorted(mailbox_of(d) for d in self.destinations)


@dataclass
class Raw:
    """The edge objects as the server sends them (dicts), before decoding."""

    locations: dict[tuple[str, str], dict[str, Any]]
    destinations: list[dict[str, Any]]
    specs: dict[int, dict[str, Any]]

    def count(self) -> int:
        return len(self.locations) + len(self.destinations) + len(self.specs)


def decode(raw: Raw) -> tuple[Locations, list[SinglePlacement], dict[int, EdgePlacementSpec]]:
    """What the typed informers do once per object at ingest."""
    return (
        {k: Location.model_validate(v) for k, v in raw.locations.items()},
        [SinglePlacement.model_validate(d) for d in raw.destinations],
        {j: EdgePlacementSpec.model_validate(s) for j, s in raw.specs.items()},
    )


def raw_inputs(n: int, p: int) -> Raw:
    resource = {"group": "edge.kubestellar.io", "version": "v2alpha1", "resource": "synctargets"}
    locations: dict[tuple[str, str], dict[str, Any]] = {}
    destinations = []
    for i in range(n):
        labels = {"group": f"g{i % p}", "loc-name": f"loc{i}", "region": f"r{i % 3}"}
        locations[("imw1", f"loc{i}")] = {
            "apiVersion": "edge.kubestellar.io/v2alpha1",
            "kind": "Location",
            "metadata": {"name": f"loc{i}", "uid": f"l{i}", "labels": labels},
            "spec": {"resource": resource, "instanceSelector": {"matchLabels": {"id": f"st{i}"}}},
        }
        destinations.append(
            {
                "cluster": "imw1",
                "locationName": f"loc{i}",
                "syncTargetName": f"st{i}",
                "syncTargetUID": str(uuid.UUID(int=i + 1)),
            }
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
    return Raw(locations, destinations, specs)


def build(n: int, w: int, m: int, p: int) -> World:
    locations, destinations, specs = decode(raw_inputs(n, p))
    objects: list[dict[GroupResource, list[dict[str, Any]]]] = [
        {CM: [], DEPLOY: [], NAMESPACES: [], CRDS: [], SECRETS: []} for _ in range(w)
    ]
    for j in range(m):
        ns = f"ns{j // 10}"
        md: dict[str, Any] = {"name": f"o{j}", "namespace": ns, "uid": f"u{j}", "resourceVersion": "1"}
        md["labels"] = {"app": "bench"}
        if j % 4 == 0:
            md["annotations"] = {api.EXPAND_PARAMETERS_ANNOTATION: "true"}
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
    return World(locations, destinations, objects, specs, n, w, p)


def edit_object(world: World, k: int) -> None:
    objs = world.objects[0][CM]
    new = copy.deepcopy(objs[0])
    new["metadata"]["resourceVersion"] = str(k + 2)
    new["data"] = {**new["data"], "edit": str(k)}
    world.objects[0] = {**world.objects[0], CM: [new, *objs[1:]]}


def edit_unselected(world: World, k: int) -> None:
    secret = {"metadata": {"name": "s", "namespace": "ns0", "uid": "s0", "resourceVersion": str(k + 2)}}
    world.objects[0] = {**world.objects[0], SECRETS: [secret]}


def edit_placement(world: World, k: int) -> None:
    spec = world.specs[0].model_dump(mode="json", exclude_unset=True)
    spec["downsync"] = [
        *spec["downsync"][:2],
        {"apiGroup": "", "resources": ["configmaps"], "objectNames": [f"x{k}"]},
    ]
    world.specs = {**world.specs, 0: EdgePlacementSpec.model_validate(spec)}


def relabel_location(world: World, k: int) -> None:
    key = ("imw1", "loc0")
    loc = world.locations[key].model_dump(mode="json", exclude_unset=True)
    loc["metadata"]["labels"]["region"] = f"edited{k}"
    world.locations = {**world.locations, key: Location.model_validate(loc)}


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds of this process spent in ``fn``: on a shared machine, other processes' load
    changes wall-clock figures several-fold, CPU time much less."""
    start = time.process_time()
    fn()
    return time.process_time() - start


# The baseline's own ``timed`` may use wall-clock time: it is replaced by the one above, by name.
_BASELINE = """
import sys, time
import bench.compute as b
def timed(fn):
    start = time.process_time()
    fn()
    return time.process_time() - start
b.timed = timed
raise SystemExit(b.main(sys.argv[1:]))
"""


def affected(world: World, index: PlacementIndex, name: str) -> list[int]:
    """The placements an event concerns, by the what resolver's routing."""
    if name == "object edit":  # a ConfigMap of WMW 0
        return sorted(int(n[2:]) for n in index.selecting("wmw0", CM))
    if name == "unselected edit":  # a Secret of WMW 0, which no placement could select
        return sorted(int(n[2:]) for n in index.selecting("wmw0", SECRETS))
    if name == "placement edit":
        return [0]
    return []  # unchanged; a Location concerns no what, only the join


def run(size: str, repeat: int) -> list[tuple[str, float, int, int]]:
    world = build(*SIZES[size])
    mailboxes = world.mailboxes()
    rows: list[tuple[str, float, int, int]] = []
    scratch = [timed(lambda: compute(world.views(), world.locations, mailboxes)) for _ in range(repeat)]
    desired = compute(world.views(), world.locations, mailboxes)
    copies = sum(len(md.copies) for md in desired.mailboxes.values())
    rows.append(("scratch", statistics.median(scratch), len(desired.mailboxes), copies))
    index = PlacementIndex()
    whats = {j: world.resolve(j) for j in range(world.p)}
    for j, what in whats.items():
        index.set((f"wmw{j % world.w}", f"ep{j}"), what.compiled)
    memo = Memo()
    compute(world.views(whats), world.locations, mailboxes, memo=memo)
    changes: list[tuple[str, Callable[[World, int], None] | None]] = [
        ("unchanged", None),
        ("object edit", edit_object),
        ("unselected edit", edit_unselected),
        ("placement edit", edit_placement),
        ("location relabel", relabel_location),
    ]

    def event(name: str) -> None:
        concerned = affected(world, index, name)
        for j in concerned:
            whats[j] = world.resolve(j)
            index.set((f"wmw{j % world.w}", f"ep{j}"), whats[j].compiled)
        if name == "unselected edit" and not concerned:
            memo.built = 0
            return  # no what changed and the join's inputs did not: the translator does nothing
        compute(world.views(whats), world.locations, mailboxes, memo=memo)

    for name, change in changes:
        times, built = [], []
        for k in range(repeat):
            if change is not None:
                change(world, k)
            times.append(timed(functools.partial(event, name)))
            built.append(memo.built)
            got = compute(world.views(whats), world.locations, mailboxes, memo=memo)
            assert got == compute(world.views(), world.locations, mailboxes), f"{name}: memo differs"
        rows.append((name, statistics.median(times), max(built), copies))
    return rows


def decode_cost(size: str, repeat: int) -> tuple[float, int]:
    """Median seconds to decode the whole edge input once, and how many objects that is."""
    n, _, _, p = SIZES[size]
    raw = raw_inputs(n, p)
    return statistics.median(timed(lambda: decode(raw)) for _ in range(repeat)), raw.count()


_ROW = re.compile(
    r"^(scratch|unchanged|object edit|unselected edit|placement edit|location relabel)\s+([\d.]+)\s"
)


def baseline(directory: Path, size: str, repeat: int) -> dict[str, float]:
    """Median CPU ms per case of ``bench.compute`` in another checkout (its own code, timed as
    here; no bytecode written there)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(directory)}
    out = subprocess.run(
        [sys.executable, "-c", _BASELINE, "--size", size, "--repeat", str(repeat)],
        cwd=directory,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = {m.group(1): float(m.group(2)) for line in out.splitlines() if (m := _ROW.match(line))}
    if "scratch" not in found:
        raise SystemExit(f"no figures from the baseline in {directory}:\n{out}")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="medium")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="another checkout, its bench.compute run beside")
    ap.add_argument("--rounds", type=int, default=3, help="turns of baseline and own runs")
    args = ap.parse_args(argv)
    n, w, m, p = SIZES[args.size]
    print(f"size {args.size}: N={n} SyncTargets, W={w} WMWs, M={m} objects, P={p} placements")
    # With a baseline, that checkout and this one take turns, ``--rounds`` times; each keeps
    # its fastest median per case, so load from elsewhere on the machine counts for neither.
    dicts: dict[str, float] = {}
    rows: list[tuple[str, float, int, int]] = []
    for _ in range(args.rounds if args.baseline else 1):
        if args.baseline:
            got = baseline(args.baseline, args.size, args.repeat)
            dicts = {case: min(ms, dicts.get(case, ms)) for case, ms in got.items()}
        mine = run(args.size, args.repeat)
        rows = mine if not rows else [r if r[1] <= m[1] else m for r, m in zip(rows, mine, strict=True)]
    base = rows[0][1]
    print(
        f"{'case':<18}{'median ms':>10}{'built':>8}{'ratio':>8}"
        + (f"{'base ms':>10}{'/base':>8}" if dicts else "")
    )
    for name, seconds, built, _ in rows:
        line = f"{name:<18}{seconds * 1000:>10.1f}{built:>8}{seconds / base:>8.2f}"
        if name in dicts:  # a case too quick to time at the base (0.0 ms) has no ratio
            ratio = f"{seconds * 1000 / dicts[name]:>8.2f}" if dicts[name] > 0 else f"{'-':>8}"
            line += f"{dicts[name]:>10.1f}{ratio}"
        print(line)
    print(f"copies in the desired state: {rows[0][3]}; 'built' = mailboxes built (scratch: all)")
    seconds, count = decode_cost(args.size, args.repeat)
    print(
        f"decode of the edge input at ingest: {seconds * 1000:.1f} ms for {count} objects "
        f"({seconds * 1e6 / count:.1f} us each), {seconds / base:.2f} of scratch"
    )
    if dicts:
        with_decode = (base + seconds) * 1000 / dicts["scratch"]
        print(f"scratch + one full decode, /base: {with_decode:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
