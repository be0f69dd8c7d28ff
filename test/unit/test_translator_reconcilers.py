"""The translator reconcilers' decisions over an in-memory snapshot: the executing-count a source
should carry, the Projected condition a placement should show, and which placements the reports
enqueue."""

from __future__ import annotations

from apis.edge.v2alpha1 import SinglePlacement
from pkg.controllers.translator.desired import Desired, mailbox_of
from pkg.controllers.translator.status import projected, wanted_count
from pkg.controllers.translator.view import WAIT_REPORTED_AFTER, PlacementKey, Reports
from pkg.controllers.what.resolve import CopyKey
from pkg.controllers.what.select import GroupResource

CM = GroupResource("", "configmaps")
KEY: PlacementKey = ("wmw1", "ep")
OTHER: PlacementKey = ("wmw2", "other")
FLORIN = SinglePlacement(cluster="imw1", location_name="florin", sync_target_name="f", sync_target_uid="u1")
GUILDER = SinglePlacement(cluster="imw1", location_name="guilder", sync_target_name="g", sync_target_uid="u2")
SELECTED = CopyKey(CM, "ns", "a")


def desired(**kw: object) -> Desired:
    d = Desired(
        {}, [], {}, {}, {}, whats={KEY: ((SELECTED,), ())}, wheres={KEY: (FLORIN,), OTHER: (GUILDER,)}
    )
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def reports() -> tuple[Reports, list[PlacementKey]]:
    heard: list[PlacementKey] = []
    return Reports(heard.append), heard


def test_the_count_is_the_number_of_sync_targets_while_singleton_state_is_wanted() -> None:
    src = ("wmw1", SELECTED)
    assert wanted_count(desired(executing_counts={src: 2}), src) == "2"
    assert wanted_count(desired(executing_counts={src: 0}), src) == "0"  # no SyncTarget: "0"
    assert wanted_count(desired(), src) is None  # no placement wants it: the annotation goes


def test_a_placement_with_everything_projected_is_true() -> None:
    r, _ = reports()
    got = projected(desired(), KEY, r, now=100.0)
    assert (got.status, got.reason, got.again) == ("True", "Projected", None)


def test_a_refused_copy_of_a_selected_object_holds_the_placement_back() -> None:
    r, heard = reports()
    r.set_refused(mailbox_of(FLORIN), {SELECTED: "mailbox refused it: 422"}, desired())
    assert heard == [KEY]  # only the placement that sends to that mailbox
    got = projected(desired(), KEY, r, now=100.0)
    assert (got.status, got.reason, got.message) == ("False", "HeldBack", "mailbox refused it: 422")
    r.set_refused(mailbox_of(FLORIN), {SELECTED: "mailbox refused it: 422"}, desired())
    assert heard == [KEY]  # unchanged: nobody enqueued


def test_a_wait_is_reported_only_once_it_lasts() -> None:
    r, heard = reports()
    r.set_waiting(mailbox_of(FLORIN), ["crontabs is not served yet"], desired())
    assert heard == [KEY]
    _, since = r.waiting(mailbox_of(FLORIN), 0.0)
    early = projected(desired(), KEY, r, now=since + 1)
    assert early.status == "True" and early.again is not None
    assert abs(early.again - (WAIT_REPORTED_AFTER - 1)) < 1e-6  # look again when it becomes reportable
    late = projected(desired(), KEY, r, now=since + WAIT_REPORTED_AFTER)
    assert (late.status, late.reason, late.message) == ("False", "Waiting", "crontabs is not served yet")


def test_upsync_without_a_served_resource_is_said_when_the_copies_are_there() -> None:
    r, _ = reports()
    got = projected(desired(upsync_unserved={KEY: ["upsync of gears.group4.test: not served"]}), KEY, r, 0.0)
    assert (got.status, got.reason) == ("True", "UpsyncNotServed")


def test_problems_of_the_spec_hold_the_placement_back() -> None:
    r, _ = reports()
    got = projected(desired(placement_problems={KEY: ["downsync[0]: bad selector"]}), KEY, r, 0.0)
    assert (got.status, got.reason, got.message) == ("False", "HeldBack", "downsync[0]: bad selector")
