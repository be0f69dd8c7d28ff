"""Written: our own writes hide older cached versions until the cache catches up."""

from __future__ import annotations

from typing import Any

from pkg.controllers.translator.written import Written


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


def test_an_update_hides_older_cached_versions() -> None:
    w = Written()
    w.wrote("k", obj("20", a="new"))
    assert w.fresh("k", obj("19", a="old"))["data"] == {"a": "new"}
    same = obj("20", a="new")
    assert w.fresh("k", same) is same


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
