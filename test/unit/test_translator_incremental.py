"""Incremental desired state: ``compute(..., memo=m)`` equals ``compute(...)`` after any change.

The translator keeps a :class:`~pkg.controllers.translator.desired.Memo` across recomputations so
that only the mailboxes whose inputs changed are built again.  A wrong memo would leave a mailbox
with stale content, so the property below drives random worlds (the isolation property's
generators) through random sequences of the changes informers deliver: an object edited, replaced
by an equal copy, deleted or added; a placement's spec replaced; a Location relabelled; a
Customizer edited; a WMW's served versions or path changed.  Like an informer, a change replaces
dicts and never mutates one that an earlier run saw.  After every step the memoized result must
equal a computation from scratch.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from apis.edge.v2alpha1 import UpsyncSet
from apis.edge.v2alpha1 import constants as api
from pkg.controllers.translator.desired import Memo, Placement, Workspace, compute
from pkg.controllers.what.resolve import resolve
from test.unit.property_settings import Coverage, coverage_fixture, examples
from test.unit.test_isolation_property import (
    CLUSTER_ANN,
    CM,
    CRD_NAME,
    CRDS,
    CRONTABS,
    CUSTOMIZER,
    CUSTOMIZERS,
    EXPAND,
    NS,
    Obj,
    World,
    _obj,
    gr_of,
    inputs,
    placements,
    upsync_sets,
    worlds,
)

KINDS = [
    "edit",
    "same",
    "delete",
    "add",
    "placement",
    "upsync",
    "location",
    "zone",
    "customizer",
    "versions",
    "path",
]


def _wmw(world: World, i: int, **changes: Any) -> World:
    """``world`` with WMW ``i``'s top-level fields replaced (other WMWs are shared, not copied)."""
    wmws = list(world.wmws)
    wmws[i] = {**wmws[i], **changes}
    return World(world.inventory, wmws)


def _replace_object(world: World, i: int, j: int, new: Obj | None) -> World:
    objects = list(world.wmws[i]["objects"])
    old = objects[j]
    customizers = world.wmws[i]["customizers"]
    if new is None:
        del objects[j]
    else:
        objects[j] = new
    if gr_of(old).resource == "customizers":
        ref = (old["metadata"]["namespace"], old["metadata"]["name"])
        customizers = {k: v for k, v in customizers.items() if k != ref}
        if new is not None:
            customizers[ref] = new
    return _wmw(world, i, objects=objects, customizers=customizers)


@st.composite
def changes(draw: st.DrawFn, world: World, kind: str) -> tuple[str, World]:
    """One change of ``kind`` to ``world``, as a new World sharing every untouched dict."""
    i = draw(st.integers(0, len(world.wmws) - 1))
    w = world.wmws[i]
    movable = [j for j, o in enumerate(w["objects"]) if gr_of(o) not in (NS, CRDS)]
    if kind in ("edit", "same", "delete") and movable:
        j = draw(st.sampled_from(movable))
        if kind == "delete":
            return kind, _replace_object(world, i, j, None)
        new = copy.deepcopy(w["objects"][j])
        if kind == "edit":
            new["metadata"]["labels"] = draw(st.sampled_from([{}, {"app": "web"}, {"app": "db"}]))
            new["data"] = {"k": draw(st.sampled_from(["v", "w", "x-%(env)", "x-%(region)"]))}
            if draw(st.booleans()):
                new["metadata"]["annotations"]["edge.kubestellar.io/expand-parameters"] = "true"
        return kind, _replace_object(world, i, j, new)
    if kind == "add":
        taken = {
            (o["metadata"].get("namespace"), o["metadata"]["name"]) for o in w["objects"] if gr_of(o) == CM
        }
        free = [(ns, name) for ns in ("ns1", "ns2") for name in ("a", "b", "c") if (ns, name) not in taken]
        if not free:
            return "add (exists)", world
        ns, name = draw(st.sampled_from(free))
        o = _obj(CM, name, ns, w["cluster"], "")
        o["data"] = {"k": "added"}
        return kind, _wmw(world, i, objects=[*w["objects"], o])
    if kind == "placement" and w["placements"]:
        k = draw(st.integers(0, len(w["placements"]) - 1))
        ps = list(w["placements"])
        ps[k] = {"name": ps[k]["name"], "spec": draw(placements(k))["spec"]}
        return kind, _wmw(world, i, placements=ps)
    if kind == "upsync" and w["placements"]:  # the same selection, another upsync
        k = draw(st.integers(0, len(w["placements"]) - 1))
        ps = list(w["placements"])
        spec = {key: value for key, value in ps[k]["spec"].items() if key != "upsync"}
        ups = draw(st.lists(upsync_sets(), max_size=2))
        if ups:
            spec["upsync"] = ups
        ps[k] = {"name": ps[k]["name"], "spec": spec}
        return kind, _wmw(world, i, placements=ps)
    if kind == "zone":  # the same destinations, another value of a parameter: every Location of an IMW
        inventory = list(world.inventory)
        m = draw(st.integers(0, len(inventory) - 1))
        imw, locs, targets = inventory[m]
        zone = draw(st.sampled_from([None, "z1", "z2", "z3"]))
        moved = []
        for loc in locs:
            loc = copy.deepcopy(loc)
            loc["metadata"]["annotations"].pop("zone", None)
            if zone:
                loc["metadata"]["annotations"]["zone"] = zone
            moved.append(loc)
        inventory[m] = (imw, moved, targets)
        return kind, World(inventory, world.wmws)
    if kind == "location":
        inventory = list(world.inventory)
        m = draw(st.integers(0, len(inventory) - 1))
        imw, locs, targets = inventory[m]
        if locs:
            n = draw(st.integers(0, len(locs) - 1))
            loc = copy.deepcopy(locs[n])
            loc["metadata"]["labels"] = draw(
                st.sampled_from([{}, {"env": "prod"}, {"env": "dev", "region": "east"}, {"region": "west"}])
            )
            loc["metadata"]["annotations"] = {CLUSTER_ANN: imw, **draw(st.sampled_from([{}, {"zone": "z9"}]))}
            inventory[m] = (imw, [*locs[:n], loc, *locs[n + 1 :]], targets)
            return kind, World(inventory, world.wmws)
    if kind == "customizer":  # edited, or created where the WMW has none (objects may refer to it)
        for j, o in enumerate(w["objects"]):
            if gr_of(o).resource == "customizers":
                new = copy.deepcopy(o)
                was = o["replacements"][0]["value"]
                value = draw(
                    st.sampled_from([v for v in ('"set"', '"other"', '"%(env)"', "[bad") if v != was])
                )
                new["replacements"] = [{"path": "$.data.w", "value": value}]
                return kind, _replace_object(world, i, j, new)
        c = _obj(CUSTOMIZERS, "cust", "ns1", w["cluster"], "")
        c["replacements"] = [{"path": "$.data.w", "value": draw(st.sampled_from(['"set"', '"%(env)"']))}]
        customizers = {**w["customizers"], ("ns1", "cust"): c}
        return kind, _wmw(world, i, objects=[*w["objects"], c], customizers=customizers)
    if kind == "versions":
        versions = draw(st.sampled_from([("v1",), ("v2",), ("v1", "v2"), ("v1", "v1beta1")]))
        if draw(st.booleans()):
            return kind, _wmw(world, i, versions=versions)
        return "versions (all)", World(world.inventory, [{**x, "versions": versions} for x in world.wmws])
    if kind == "path":
        return kind, _wmw(world, i, path=draw(st.sampled_from(["root:w0", "root:w1", "root:w2", "root:a"])))
    return "nothing", world


FLOORS = {**{f"change: {kind}": 0.05 for kind in KINDS}, "a mailbox patched": 0.05}
"""Every kind of change is followed by a recomputation in at least 5 % of the examples, and some
recomputation patches a mailbox (builds only the copies of replaced objects) in as many."""


@pytest.fixture
def coverage() -> Iterator[Coverage]:
    yield from coverage_fixture(FLOORS)


@examples(0.3)
@given(data=st.data())
def test_memoized_compute_equals_compute_from_scratch(coverage: Coverage, data: st.DataObject) -> None:
    world = data.draw(worlds())
    memo = Memo()
    memo_resolved = Memo()  # as the controller runs it: whats resolved beforehand, by the what resolver
    applied: list[str] = []  # the changes that a computation followed
    # Three to six changes, their kinds taken in a random order of all kinds (a kind repeats only in
    # a sequence longer than KINDS).  Drawn one per step, in sequences of one change or more,
    # Hypothesis's preference for short sequences and early list elements left some kinds under
    # their floor in a run of 300 examples.
    order = data.draw(st.permutations(KINDS))
    kind = ""
    patched = False
    for step in range(data.draw(st.integers(4, 7))):
        views, locations, mailboxes = inputs(world)
        got = compute(views, locations, mailboxes, memo=memo)
        want = compute(views, locations, mailboxes)
        assert got == want, f"step {step}"
        joined = compute(resolved(views), locations, mailboxes, memo=memo_resolved)
        assert joined == want, f"step {step}: with resolved whats"
        event(f"mailboxes reused: {memo.built < len(got.mailboxes)}")
        patched = patched or memo.patched > 0 or memo_resolved.patched > 0
        if step:
            event(f"change: {kind}")
            applied.append(kind.split(" ")[0])
        kind, world = data.draw(changes(world, order[step % len(order)]))
    coverage.example({**{f"change: {k}": k in applied for k in KINDS}, "a mailbox patched": patched})


def resolved(views: list[Workspace]) -> list[Workspace]:
    """The same workspaces, each placement carrying its what as the what resolver resolves it."""
    return [
        dataclasses.replace(
            ws,
            placements=[
                dataclasses.replace(p, what=resolve(p.spec, ws.path, ws.resources, ws.objects, ws.namespaces))
                for p in ws.placements
            ],
        )
        for ws in views
    ]


def two_wmws() -> World:
    """Two WMWs, each placing its own ConfigMap on its own Location (and SyncTarget)."""
    edge = "edge.kubestellar.io"
    targets = [
        {
            "metadata": {
                "name": f"st{i}",
                "uid": f"u{i}",
                "labels": {"id": f"st{i}"},
                "annotations": {CLUSTER_ANN: "imw"},
            }
        }
        for i in range(2)
    ]
    locs = [
        {
            "apiVersion": f"{edge}/v2alpha1",
            "kind": "Location",
            "metadata": {"name": f"loc{i}", "labels": {"site": f"s{i}"}, "annotations": {CLUSTER_ANN: "imw"}},
            "spec": {
                "resource": {"group": edge, "version": "v2alpha1", "resource": "synctargets"},
                "instanceSelector": {"matchLabels": {"id": f"st{i}"}},
            },
        }
        for i in range(2)
    ]
    wmws = []
    for i in range(2):
        o = _obj(CM, "a", "ns1", f"k{i}", "")
        o["data"] = {"k": f"v{i}"}
        spec = {
            "locationSelectors": [{"matchLabels": {"site": f"s{i}"}}],
            "downsync": [{"apiGroup": "", "resources": ["configmaps"], "namespaces": ["ns1"]}],
        }
        wmws.append(
            {
                "cluster": f"k{i}",
                "path": f"root:w{i}",
                "versions": ("v1",),
                "namespaces": {"ns1": {}},
                "objects": [_obj(NS, "ns1", "", f"k{i}", ""), o],
                "customizers": {},
                "placements": [{"name": "ep", "spec": spec}],
            }
        )
    return World([("imw", locs, targets)], wmws)


def test_an_unchanged_world_builds_nothing_and_shares_the_mailboxes() -> None:
    world = two_wmws()
    memo = Memo()
    first = compute(*inputs(world), memo=memo)
    assert memo.built == 2 and len(first.mailboxes) == 2
    # Fresh views of the same cached objects, as the controller builds for every recomputation.
    second = compute(*inputs(world), memo=memo)
    assert memo.built == 0
    assert second == first
    for name, md in second.mailboxes.items():
        assert md is first.mailboxes[name]


def test_an_edit_rebuilds_only_the_mailboxes_that_its_placements_reach() -> None:
    """Editing one WMW's object rebuilds that WMW's mailbox only; relabelling a Location rebuilds
    the mailbox it leads to only."""
    world = two_wmws()
    memo = Memo()
    first = compute(*inputs(world), memo=memo)
    assert set(first.mailboxes) == {"imw-mb-u0", "imw-mb-u1"}

    edited = copy.deepcopy(world.wmws[0]["objects"][1])
    edited["data"] = {"k": "changed"}
    world = _replace_object(world, 0, 1, edited)
    second = compute(*inputs(world), memo=memo)
    assert memo.built == 1
    assert memo.patched == 1  # the same selection: only the edited object's copy is built again
    assert second == compute(*inputs(world))
    assert second.mailboxes["imw-mb-u1"] is first.mailboxes["imw-mb-u1"]
    (copy_,) = second.mailboxes["imw-mb-u0"].copies.values()
    assert copy_.body["data"] == {"k": "changed"}

    imw, locs, targets = world.inventory[0]
    relabelled = copy.deepcopy(locs[1])
    relabelled["metadata"]["labels"]["extra"] = "yes"
    world = World([(imw, [locs[0], relabelled], targets)], world.wmws)
    third = compute(*inputs(world), memo=memo)
    assert memo.built == 1
    assert third.mailboxes["imw-mb-u0"] is second.mailboxes["imw-mb-u0"]
    assert third == compute(*inputs(world))


def _customized_world() -> World:
    """two_wmws() where both WMWs send to SyncTarget 0 a ConfigMap ``a`` that takes a parameter
    and a Customizer, a ConfigMap ``b`` (the workspace paths decide these conflicts) and a CronTab
    (so served versions matter); WMW 1 sends the same to SyncTarget 1 too."""
    world = two_wmws()
    wmws = []
    for i, w in enumerate(world.wmws):
        cust = _obj(CUSTOMIZERS, "cust", "ns1", w["cluster"], "")
        cust["replacements"] = [{"path": "$.data.w", "value": '"set"'}]
        a = copy.deepcopy(w["objects"][1])
        a["metadata"]["annotations"].update({EXPAND: "true", CUSTOMIZER: "ns1/cust"})
        a["data"] = {"k": "x-%(zone)"}
        b = _obj(CM, "b", "ns1", w["cluster"], "")
        b["data"] = {"from": w["cluster"]}
        crd = _obj(CRDS, CRD_NAME, "", w["cluster"], "")
        crd["spec"] = {"group": "stable.example.com", "names": {"plural": "crontabs", "kind": "CronTab"}}
        tab = _obj(CRONTABS, f"tab{i}", "ns1", w["cluster"], "v1")
        sites = ["s0"] if i == 0 else ["s0", "s1"]
        spec = {
            "locationSelectors": [{"matchExpressions": [{"key": "site", "operator": "In", "values": sites}]}],
            "downsync": [
                {"apiGroup": "", "resources": ["configmaps"], "namespaces": ["ns1"]},
                {"apiGroup": "stable.example.com", "resources": ["crontabs"], "namespaces": ["ns1"]},
            ],
        }
        objects = [w["objects"][0], a, b, cust, crd, tab]
        wmws.append({**w, "objects": objects, "customizers": {("ns1", "cust"): cust}})
        wmws[-1]["placements"] = [{"name": "ep", "spec": spec}]
    imw, locs, targets = world.inventory[0]
    loc0 = copy.deepcopy(locs[0])
    loc0["metadata"]["annotations"]["zone"] = "z1"
    return World([(imw, [loc0, locs[1]], targets)], wmws)


def _zone(world: World) -> World:
    imw, locs, targets = world.inventory[0]
    loc0 = copy.deepcopy(locs[0])
    loc0["metadata"]["annotations"]["zone"] = "z2"
    return World([(imw, [loc0, *locs[1:]], targets)], world.wmws)


def _customizer(world: World) -> World:
    cust = copy.deepcopy(world.wmws[0]["objects"][3])
    cust["replacements"] = [{"path": "$.data.w", "value": '"other"'}]
    return _replace_object(world, 0, 3, cust)


def _upsync(world: World) -> World:
    ps = [
        {
            "name": "ep",
            "spec": {
                **world.wmws[1]["placements"][0]["spec"],
                "upsync": [{"apiGroup": "", "resources": ["pods"]}],
            },
        }
    ]
    return _wmw(world, 1, placements=ps)


@pytest.mark.parametrize(
    ("change", "built"),
    [
        pytest.param(_zone, 1, id="a Location's parameter"),
        pytest.param(_customizer, 1, id="a Customizer"),
        pytest.param(lambda w: _wmw(w, 1, versions=("v2",)), 2, id="a WMW's served versions"),
        pytest.param(lambda w: _wmw(w, 1, path="root:a"), 2, id="a WMW's path"),
        pytest.param(_upsync, 2, id="a placement's upsync"),
    ],
)
def test_every_input_of_a_mailbox_is_part_of_its_fingerprint(
    change: Callable[[World], World], built: int
) -> None:
    """Each change leaves the selections and destinations as they were but changes the content of
    mailbox 0; the memo must build it again, and mailbox 1 only when the change is WMW 1's."""
    world = _customized_world()
    memo = Memo()
    before = compute(*inputs(world), memo=memo)
    assert memo.built == 2
    world = change(world)
    after = compute(*inputs(world), memo=memo)
    assert after == compute(*inputs(world))
    assert after.mailboxes["imw-mb-u0"] != before.mailboxes["imw-mb-u0"]
    assert memo.built == built
    if built == 1:
        assert after.mailboxes["imw-mb-u1"] is before.mailboxes["imw-mb-u1"]


def test_a_what_resolved_after_its_spec_changed_is_built_again() -> None:
    """The join reads a placement's spec from its informer and its what from the what resolver; it
    can run between the two, with the new spec and the old what.  The mailbox built then must not
    be reused once the new what arrives (seen as the-one missing an upsync-only change)."""
    world = two_wmws()
    flanges = {"apiGroup": "group1.test", "resources": ["flanges"], "names": ["*"]}
    world.wmws[0]["placements"][0]["spec"]["upsync"] = [flanges]  # already upsyncing something
    workspaces, locations, mailboxes = inputs(world)

    def with_whats(views: list[Workspace], specs: dict[str, Any]) -> list[Workspace]:
        out = []
        for ws in views:
            ps = [
                dataclasses.replace(
                    p,
                    what=resolve(
                        specs.get(ws.cluster, p.spec), ws.path, ws.resources, ws.objects, ws.namespaces
                    ),
                )
                for p in ws.placements
            ]
            out.append(dataclasses.replace(ws, placements=ps))
        return out

    memo = Memo()
    old_views = with_whats(workspaces, {})
    compute(old_views, locations, mailboxes, memo=memo)

    gears = UpsyncSet.model_validate({"apiGroup": "group4.test", "resources": ["gears"], "names": ["*"]})
    ws0 = workspaces[0]
    (p0,) = ws0.placements
    assert p0.spec is not None
    new_spec = p0.spec.model_copy(update={"upsync": [*(p0.spec.upsync or []), gears]})
    # The join before the what resolver: the new spec, the what of the old one.
    stale = [
        dataclasses.replace(
            old_views[0], placements=[dataclasses.replace(old_views[0].placements[0], spec=new_spec)]
        )
    ]
    compute([*stale, *old_views[1:]], locations, mailboxes, memo=memo)
    # Then the new what arrives.
    fresh = with_whats([dataclasses.replace(ws0, placements=[dataclasses.replace(p0, spec=new_spec)])], {})
    views = [*fresh, *old_views[1:]]
    after = compute(views, locations, mailboxes, memo=memo)
    assert after == compute(views, locations, mailboxes)
    upsync = after.mailboxes["imw-mb-u0"].syncer_config.upsync or []
    assert any(u.api_group == "group4.test" for u in upsync)


def test_a_copy_given_by_two_placements_holding_different_versions_is_built_again() -> None:
    """Two placements of one WMW select the same object and their whats are resolved one after
    the other: a join may see the first what with the old object and the second with the new.
    The copy takes the first one's object, but whether it is create-only comes from both, so the
    memo must not keep it as it was."""
    world = two_wmws()
    spec = world.wmws[0]["placements"][0]["spec"]
    world = _wmw(world, 0, placements=[{"name": "ep", "spec": spec}, {"name": "ep2", "spec": spec}])
    edited = copy.deepcopy(world.wmws[0]["objects"][1])
    edited["metadata"]["annotations"][api.DOWNSYNC_OVERWRITE_ANNOTATION] = "false"
    new_world = _replace_object(world, 0, 1, edited)

    def whats(w: World) -> list[Workspace]:
        return resolved(inputs(w)[0])

    old, new = whats(world), whats(new_world)
    locations, mailboxes = inputs(world)[1:]
    memo = Memo()
    compute(old, locations, mailboxes, memo=memo)
    ep_old, ep2_new = old[0].placements[0], new[0].placements[1]

    def configmap(p: Placement) -> Any:
        assert p.what is not None
        return next(obj for key, (obj, _) in p.what.parts.items() if key.gr == CM)

    assert configmap(ep_old) is not configmap(ep2_new)  # two versions of the ConfigMap, one each
    mixed = [dataclasses.replace(new[0], placements=[ep_old, ep2_new]), *new[1:]]
    got = compute(mixed, locations, mailboxes, memo=memo)
    assert got == compute(mixed, locations, mailboxes)
    (copy_,) = got.mailboxes["imw-mb-u0"].copies.values()
    assert copy_.create_only
