"""The source reconciler's decisions: when a WMW's executing-count annotations may be forgotten."""

from __future__ import annotations

from pkg.controllers.translator.controller import droppable_wmws
from pkg.controllers.what.resolve import CopyKey
from pkg.controllers.what.select import GroupResource

RS = GroupResource("apps", "replicasets")


def test_a_wmw_without_placements_stays_watched_while_an_object_carries_our_count() -> None:
    annotated = {("wmw-c", CopyKey(RS, "commonstuff", "commond"))}
    assert droppable_wmws({"wmw-c", "wmw-s"}, {"wmw-s"}, annotated) == set()


def test_a_wmw_without_placements_or_counts_is_dropped() -> None:
    assert droppable_wmws({"wmw-c", "wmw-s"}, {"wmw-s"}, set()) == {"wmw-c"}


def test_a_wmw_with_placements_is_kept() -> None:
    assert droppable_wmws({"wmw-c"}, {"wmw-c"}, set()) == set()
