"""apis.machinery.labels: metav1.LabelSelector parsing and matching (behaviour 1.1, 2.2, 4.2;
scenarios C2e, C28)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apis.machinery.labels import (
    Selector,
    SelectorError,
    matches_any,
    parse_selector,
    validate_label_key,
    validate_label_value,
)


@pytest.mark.parametrize("sel", [None, {}, {"matchLabels": {}}, {"matchExpressions": []}])
def test_empty_selector_matches_everything(sel: dict[str, Any] | None) -> None:
    s = parse_selector(sel)
    assert s.empty
    assert s.matches({})
    assert s.matches({"a": "b"})


def test_match_labels_are_anded() -> None:
    s = parse_selector({"matchLabels": {"env": "prod", "extended": "yes"}})
    assert s.matches({"env": "prod", "extended": "yes", "other": "x"})
    assert not s.matches({"env": "prod"})
    assert not s.matches({"env": "prod", "extended": "no"})


def test_match_labels_and_expressions_are_anded() -> None:
    s = parse_selector(
        {
            "matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
        }
    )
    assert s.matches({"env": "prod", "tier": "a"})
    assert not s.matches({"env": "prod", "tier": "c"})
    assert not s.matches({"env": "dev", "tier": "a"})


def test_operator_in() -> None:
    s = parse_selector({"matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]})
    assert s.matches({"k": "x"})
    assert s.matches({"k": "y"})
    assert not s.matches({"k": "z"})
    assert not s.matches({})


def test_operator_not_in_accepts_absent_key() -> None:
    s = parse_selector({"matchExpressions": [{"key": "k", "operator": "NotIn", "values": ["x"]}]})
    assert not s.matches({"k": "x"})
    assert s.matches({"k": "y"})
    assert s.matches({})


def test_operator_exists_and_does_not_exist() -> None:
    ex = parse_selector({"matchExpressions": [{"key": "k", "operator": "Exists"}]})
    dne = parse_selector({"matchExpressions": [{"key": "k", "operator": "DoesNotExist", "values": []}]})
    assert ex.matches({"k": ""}) and not ex.matches({})
    assert dne.matches({}) and not dne.matches({"k": "v"})


def test_matches_any() -> None:
    a = parse_selector({"matchLabels": {"foo": "bar"}})
    b = parse_selector({"matchLabels": {"foo": "baz"}})
    assert matches_any([a, b], {"foo": "baz"})
    assert not matches_any([a, b], {"foo": "qux"})
    assert not matches_any([], {"foo": "bar"})  # empty list matches none (behaviour 1.1)
    assert matches_any([Selector()], {})


@pytest.mark.parametrize(
    ("sel", "fragment"),
    [
        # C2e: invalid operator
        ({"matchExpressions": [{"key": "k", "operator": "Foo", "values": ["x"]}]}, 'unknown operator "Foo"'),
        ({"matchExpressions": [{"key": "k", "operator": "Foo"}]}, "matchExpressions[0]"),
        ({"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["x"]}]}, "values must be empty"),
        (
            {"matchExpressions": [{"key": "k", "operator": "DoesNotExist", "values": ["x"]}]},
            "values must be empty for operator DoesNotExist",
        ),
        ({"matchExpressions": [{"key": "k", "operator": "In"}]}, "values must be non-empty for operator In"),
        ({"matchExpressions": [{"key": "k", "operator": "NotIn", "values": []}]}, "non-empty"),
        ({"matchExpressions": [{"operator": "Exists"}]}, "label key"),
        ({"matchExpressions": ["k"]}, "must be an object"),
        ({"matchExpressions": {"key": "k"}}, "must be a list"),
        ({"matchExpressions": [{"key": "k", "operator": "In", "values": "x"}]}, "values must be a list"),
        ({"matchLabels": ["a"]}, "matchLabels must be an object"),
        ({"matchLabels": {"bad key": "v"}}, "invalid label key"),
        ({"matchLabels": {"-a": "v"}}, "invalid label key"),
        ({"matchLabels": {"Example.COM/a": "v"}}, "prefix part"),
        ({"matchLabels": {"/a": "v"}}, "prefix part must not be empty"),
        ({"matchLabels": {"a/b/c": "v"}}, "prefix part"),
        ({"matchLabels": {"a/": "v"}}, "name part must not be empty"),
        ({"matchLabels": {"a" * 64: "v"}}, "no more than 63"),
        ({"matchLabels": {"k": "a b"}}, "invalid label value"),
        ({"matchLabels": {"k": "x" * 64}}, "no more than 63"),
        ({"matchLabels": {"k": "-x"}}, "invalid label value"),
        # C28: YAML booleans / numbers as label values are rejected, never a crash
        ({"matchLabels": {"special": True}}, "must be a string"),
        ({"matchLabels": {"n": 1}}, "must be a string"),
        ({"matchExpressions": [{"key": "k", "operator": "In", "values": [1]}]}, "must be a string"),
        (["matchLabels"], "must be an object"),
    ],
)
def test_invalid_selectors_raise(sel: Any, fragment: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(sel)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "kubernetes.io/metadata.name",
        "edge.kubestellar.io/projected",
        "a-b_c.d",
        "A9",
        "x" * 63,
        ("a" * 63 + ".") * 3 + "a" * 61 + "/n",
    ],
)
def test_valid_keys(key: str) -> None:
    assert validate_label_key(key) is None


@pytest.mark.parametrize("value", ["", "yes", "v1.2_3-x", "A" * 63])
def test_valid_values(value: str) -> None:
    assert validate_label_value(value) is None


def test_overlong_prefix() -> None:
    assert validate_label_key("a" * 254 + "/n") is not None


_key = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?", fullmatch=True)
_value = st.from_regex(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?)?", fullmatch=True)
_labels = st.dictionaries(_key, _value, max_size=6)


@given(required=_labels, labels=_labels)
def test_match_labels_selects_exactly_supersets(required: dict[str, str], labels: dict[str, str]) -> None:
    """Property: matchLabels L matches a label set iff that set contains L."""
    s = parse_selector({"matchLabels": required})
    contains = all(labels.get(k) == v for k, v in required.items())
    assert s.matches(labels) == contains
    # and a set extended with L always matches
    assert s.matches({**labels, **required})


@given(key=_key, values=st.lists(_value, min_size=1, max_size=4), labels=_labels)
def test_in_and_not_in_are_complements(key: str, values: list[str], labels: dict[str, str]) -> None:
    in_ = parse_selector({"matchExpressions": [{"key": key, "operator": "In", "values": values}]})
    not_in = parse_selector({"matchExpressions": [{"key": key, "operator": "NotIn", "values": values}]})
    assert in_.matches(labels) != not_in.matches(labels)
