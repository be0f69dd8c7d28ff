"""The Indexer (keys, built-in and custom indexes, replace) and the reflector's Backoff: pure parts,
tested without a server.  The reflector's list and watch behaviour is tested against kcp in
test/e2e/test_informer.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkg.runtime import kcp
from pkg.runtime.clock import FakeClock
from pkg.runtime.informer import Backoff
from pkg.runtime.store import (
    CLUSTER_INDEX,
    NAMESPACE_INDEX,
    Indexer,
    Object,
    cluster_namespace_key,
    make_key,
    split_key,
)


def obj(name: str, namespace: str = "", cluster: str = "", labels: dict[str, str] | None = None) -> Object:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if cluster:
        meta["annotations"] = {kcp.CLUSTER_ANNOTATION: cluster}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta}


def by_label(label: str) -> Callable[[Object], list[str]]:
    def index(o: Object) -> list[str]:
        value = (o["metadata"].get("labels") or {}).get(label)
        return [value] if value else []

    return index


def names(objects: list[Object]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("o", "key"),
    [
        (obj("a", "ns", "c1"), "c1|ns/a"),
        (obj("a", "", "c1"), "c1|a"),
        (obj("a", "ns"), "ns/a"),  # client-go's MetaNamespaceKeyFunc when there is no cluster
        (obj("a"), "a"),
        (obj("a", "ns", "root:org:ws"), "root:org:ws|ns/a"),
    ],
)
def test_default_key(o: Object, key: str) -> None:
    assert cluster_namespace_key(o) == key
    meta = o["metadata"]
    parts = (kcp.cluster_of(o), meta.get("namespace", ""), meta["name"])
    assert split_key(key) == parts
    assert make_key(*parts) == key


def test_key_needs_a_name() -> None:
    with pytest.raises(KeyError):
        cluster_namespace_key({"metadata": {"namespace": "ns"}})


# --- Indexer ---------------------------------------------------------------------------------


def test_add_update_delete_keep_indexes() -> None:
    s = Indexer(indexers={"app": by_label("app")})
    a = obj("a", "ns1", "c1", {"app": "x"})
    assert s.add(a) is None
    s.add(obj("b", "ns2", "c1", {"app": "x"}))
    s.add(obj("c", "", "c2"))
    assert len(s) == 3 and "c1|ns1/a" in s
    assert s.get("c1|ns1/a") is a
    assert names(s.by_index(NAMESPACE_INDEX, "ns1")) == ["a"]
    assert names(s.by_index(CLUSTER_INDEX, "c1")) == ["a", "b"]
    assert names(s.by_index(CLUSTER_INDEX, "c2")) == ["c"]
    assert sorted(s.index_values(NAMESPACE_INDEX)) == ["ns1", "ns2"]  # cluster-scoped c is not there
    assert names(s.by_index("app", "x")) == ["a", "b"]

    a2 = obj("a", "ns1", "c1", {"app": "y"})
    assert s.update(a2) is a
    assert names(s.by_index("app", "x")) == ["b"]
    assert names(s.by_index("app", "y")) == ["a"]
    assert s.get_object(a) is a2

    assert s.delete(obj("b", "ns2", "c1")) is not None
    assert s.by_index("app", "x") == []
    assert "x" not in s.index_values("app")  # no empty sets left behind
    assert s.index_values(NAMESPACE_INDEX) == ["ns1"]
    assert s.delete(obj("b", "ns2", "c1")) is None
    assert sorted(s.list_keys()) == ["c1|ns1/a", "c2|c"]


def test_index_matches_shared_values() -> None:
    s = Indexer(indexers={"app": by_label("app")})
    s.add(obj("a", "ns", labels={"app": "x"}))
    s.add(obj("b", "ns", labels={"app": "x"}))
    s.add(obj("c", "ns", labels={"app": "z"}))
    assert names(s.index("app", obj("q", labels={"app": "x"}))) == ["a", "b"]
    assert sorted(s.index_keys("app", "x")) == ["ns/a", "ns/b"]
    with pytest.raises(KeyError):
        s.by_index("nope", "x")
    with pytest.raises(KeyError):
        s.index("nope", obj("a"))


def test_multi_valued_index() -> None:
    s = Indexer(indexers={"finalizers": lambda o: list(o["metadata"].get("finalizers", []))})
    s.add({"metadata": {"name": "a", "finalizers": ["f1", "f2"]}})
    s.add({"metadata": {"name": "b", "finalizers": ["f2"]}})
    assert names(s.by_index("finalizers", "f2")) == ["a", "b"]
    s.update({"metadata": {"name": "a", "finalizers": []}})
    assert names(s.by_index("finalizers", "f2")) == ["b"]
    assert s.index_values("finalizers") == ["f2"]


def test_add_indexers_over_existing_items_and_conflicts() -> None:
    s = Indexer()
    s.add(obj("a", labels={"app": "x"}))
    s.add(obj("b"))
    func = by_label("app")
    s.add_indexers({"app": func})
    assert names(s.by_index("app", "x")) == ["a"]
    s.add_indexers({"app": func})  # same function: no-op
    with pytest.raises(ValueError, match="already exists"):
        s.add_indexers({"app": by_label("app")})
    with pytest.raises(ValueError):
        s.add_indexers({NAMESPACE_INDEX: by_label("ns")})
    assert sorted(s.indexer_names()) == ["app", CLUSTER_INDEX, NAMESPACE_INDEX]


def test_replace_is_atomic_and_returns_dropped() -> None:
    s = Indexer(indexers={"app": by_label("app")})
    old_a = obj("a", "ns", labels={"app": "x"})
    s.add(old_a)
    s.add(obj("b", "ns", labels={"app": "x"}))
    new_a = obj("a", "ns", labels={"app": "y"})
    dropped = s.replace([new_a, obj("c", "other")], "42")
    assert list(dropped) == ["ns/b"]
    assert s.resource_version == "42"
    assert sorted(s.list_keys()) == ["ns/a", "other/c"]
    assert s.get("ns/a") is new_a
    assert s.by_index("app", "x") == []
    assert names(s.by_index(NAMESPACE_INDEX, "ns")) == ["a"]
    assert sorted(s.replace([], "43")) == ["ns/a", "other/c"]
    assert len(s) == 0 and s.index_values(NAMESPACE_INDEX) == []


def test_custom_key_func() -> None:
    s = Indexer(key_func=lambda o: o["metadata"]["uid"])
    s.add({"metadata": {"name": "a", "uid": "u1"}})
    assert s.list_keys() == ["u1"]


def _check_invariant(s: Indexer, funcs: Mapping[str, Callable[[Object], list[str]]]) -> None:
    items = dict(s.items())
    for name, func in funcs.items():
        expected: dict[str, set[str]] = {}
        for key, o in items.items():
            for value in func(o):
                expected.setdefault(value, set()).add(key)
        actual = {value: set(s.index_keys(name, value)) for value in s.index_values(name)}
        assert actual == expected, name


_names = st.sampled_from(["a", "b", "c", "d"])
_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "delete", "replace"]),
        st.lists(
            st.tuples(
                _names,
                st.sampled_from(["", "ns1", "ns2"]),
                st.sampled_from(["", "c1", "c2"]),
                st.sampled_from(["", "x", "y"]),
            ),
            min_size=1,
            max_size=4,
        ),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(_ops)
def test_indexes_always_match_items(ops: list[tuple[str, list[tuple[str, str, str, str]]]]) -> None:
    app = by_label("app")
    s = Indexer(indexers={"app": app})
    model: dict[str, Object] = {}
    for op, specs in ops:
        objects = [obj(n, ns, c, {"app": a} if a else None) for n, ns, c, a in specs]
        if op == "add":
            for o in objects:
                s.add(o)
                model[cluster_namespace_key(o)] = o
        elif op == "delete":
            for o in objects:
                s.delete(o)
                model.pop(cluster_namespace_key(o), None)
        else:
            fresh = {cluster_namespace_key(o): o for o in objects}
            dropped = s.replace(objects)
            assert set(dropped) == set(model) - set(fresh)
            model = fresh
        assert dict(s.items()) == model
    _check_invariant(
        s,
        {
            "app": app,
            NAMESPACE_INDEX: lambda o: [o["metadata"]["namespace"]] if "namespace" in o["metadata"] else [],
            CLUSTER_INDEX: lambda o: [kcp.cluster_of(o)] if kcp.cluster_of(o) else [],
        },
    )


def test_concurrent_writers_and_readers() -> None:
    s = Indexer(indexers={"app": by_label("app")})
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        for i in range(2000):
            name = f"o{i % 50}"
            if i % 3 == 2:
                s.delete(obj(name, f"ns{w}"))
            else:
                s.add(obj(name, f"ns{w}", labels={"app": str(i % 4)}))

    def reader() -> None:
        try:
            while not stop.is_set():
                for value in s.index_values("app"):
                    for o in s.by_index("app", value):
                        assert o["metadata"]["labels"]["app"] == value
                s.list()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    _check_invariant(s, {"app": by_label("app")})


# --- Backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_caps_and_resets() -> None:
    clock = FakeClock()
    b = Backoff(clock=clock, jitter=0.0)
    delays = [b.next() for _ in range(8)]
    assert delays == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    clock.step(120.0)
    assert b.next() == 30.0  # not more than 2 min since the last backoff
    clock.step(120.1)
    assert b.next() == 0.8


def test_backoff_jitter_stays_within_one_more_delay() -> None:
    b = Backoff(clock=FakeClock())
    for expected in [0.8, 1.6, 3.2]:
        assert expected <= b.next() < 2 * expected
