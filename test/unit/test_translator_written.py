"""Written: our own writes hide older cached versions until the cache catches up."""

from __future__ import annotations

from typing import Any

from pkg.controllers.written import Written


def obj(rv: str, **data: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "resourceVersion": rv}, "data": data}


def test_nothing_written_returns_the_cache() -> None:
    w = Written()
    cached = obj("5")
    assert w.fresh("k", cached) is cached
    assert w.fresh("k", None) is None


def test_a_create_hides_an_empty_cache_until_it_shows_the_object() -> None:
    w = Written()
    created = obj("10", a="1")
    w.wrote("k", created)
    assert w.fresh("k", None) is created  # the cache has not seen the create yet
    newer = obj("12", a="2")
    assert w.fresh("k", newer) is newer  # the cache caught up (and moved on)
    assert w.fresh("k", None) is None  # forgotten: the cache is the truth again


def test_an_update_hides_the_version_it_replaced() -> None:
    w = Written()
    w.wrote("k", obj("20", a="new"), replaced=obj("19", a="old"))
    assert w.fresh("k", obj("19", a="old"))["data"] == {"a": "new"}
    same = obj("20", a="new")
    assert w.fresh("k", same) is same


def test_resource_versions_are_opaque_never_ordered() -> None:
    """A version we did not replace is believed, whatever it looks like next to ours."""
    w = Written()
    w.wrote("k", obj("b20", a="new"), replaced=obj("x19", a="old"))
    later = obj("a05", a="theirs")  # "smaller" as a string and not a number: still not ours to hide
    assert w.fresh("k", later) is later
    assert w.fresh("k", obj("x19")) is not None and w.fresh("k", obj("x19"))["data"] == {}


def test_a_chain_of_writes_hides_every_version_it_replaced() -> None:
    w = Written()
    first = obj("7", a="1")
    w.wrote("k", first, replaced=obj("5"))
    w.wrote("k", obj("9", a="2"), replaced=first)  # based on our own first write
    assert w.fresh("k", obj("5"))["data"] == {"a": "2"}  # the cache lags two writes behind
    assert w.fresh("k", obj("7", a="1"))["data"] == {"a": "2"}
    caught_up = obj("9", a="2")
    assert w.fresh("k", caught_up) is caught_up


def test_a_delete_hides_the_deleted_version_only() -> None:
    w = Written()
    w.deleted("k", "30")
    assert w.fresh("k", obj("30")) is None  # the cache still shows what we deleted
    recreated = obj("31")
    assert w.fresh("k", recreated) is recreated  # someone made it again: believe the cache
    assert w.fresh("k", obj("30")) is not None  # and the memory is gone


def test_a_delete_seen_by_the_cache_is_forgotten() -> None:
    w = Written()
    w.deleted("k", "40")
    assert w.fresh("k", None) is None
    cached = obj("41")
    assert w.fresh("k", cached) is cached


def test_an_event_echoes_only_our_last_write() -> None:
    w = Written()
    assert not w.echo("k", "10")  # nothing written
    w.wrote("k", obj("10"))
    assert not w.echo("k", "11") and not w.echo("k", "") and not w.echo("other", "10")
    w.wrote("k", obj("12"), replaced=obj("10"))
    assert not w.echo("k", "10")  # an older write of ours is not the last
    assert w.echo("k", "12") and w.echo("k", "12")  # the memory stays: a reconcile may lag
    assert w.fresh("k", None)["metadata"]["resourceVersion"] == "12"

    w.deleted("k", "12")
    assert not w.echo("k", "12")  # an add or update after our delete is not ours
    assert w.echo("k", "12", deleted=True)
    assert w.fresh("k", obj("14"))["metadata"]["resourceVersion"] == "14"


def test_somebody_deleting_what_we_wrote_ends_the_memory_of_it() -> None:
    w = Written()
    w.wrote("k", obj("10"))
    assert not w.echo("k", "10", deleted=True)
    assert w.fresh("k", None) is None  # the deletion is believed, not hidden by our write


def test_an_echo_that_arrives_before_the_write_returns_is_recognised_when_it_ends() -> None:
    """The watch thread may deliver our write's event before the writer records it."""
    w = Written()
    calls: list[str] = []
    w.wrote("k", obj("1"))
    with w.writing("k", lambda: calls.append("again")):
        assert w.echo("k", "2")  # deferred: the write's answer is not in yet
        w.wrote("k", obj("2"), replaced=obj("1"))
    assert calls == []  # it was the echo of the write
    assert w.echo("k", "2")  # and after the block the rule answers at once


def test_a_foreign_event_during_a_write_asks_for_another_reconcile() -> None:
    w = Written()
    calls: list[str] = []
    with w.writing("k", lambda: calls.append("again")):
        assert w.echo("k", "7")  # somebody else's version, seen while ours is in flight
        w.wrote("k", obj("8"))
    assert calls == ["again"]


def test_a_failed_write_judges_what_arrived_meanwhile() -> None:
    w = Written()
    calls: list[str] = []
    try:
        with w.writing("k", lambda: calls.append("again")):
            w.echo("k", "3")
            raise RuntimeError("the write failed")
    except RuntimeError:
        pass
    assert calls == ["again"]  # nothing of ours was written: the event is someone else's
    with w.writing("k", lambda: calls.append("again")):
        pass  # nothing arrived
    assert calls == ["again"]
    assert not w.echo("k", "3")  # not in flight any more: judged at once


def test_a_delete_echo_during_the_delete_is_ours() -> None:
    w = Written()
    calls: list[str] = []
    with w.writing("k", lambda: calls.append("again")):
        assert w.echo("k", "4", deleted=True)
        w.deleted("k", "4")
    assert calls == []
