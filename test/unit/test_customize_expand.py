"""Parameter expansion (behaviour.md section 6, scenarios.md C12, spec decision 5)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pkg.customize import CustomizeError, expand_object, expand_string

PARAMS = {"env": "prod", "loc-name": "florin", "pct": "%(env)", "empty": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("no parameters", "no parameters"),
        ("env is %(env)", "env is prod"),
        ("%(env)%(loc-name)", "prodflorin"),
        ("[%(empty)]", "[]"),
        ("100%%", "100%"),
        ("%%(env)", "%(env)"),
        ("%%%(env)", "%prod"),
        ("50% off", "50% off"),
        ("%d %s", "%d %s"),
        ("trailing %", "trailing %"),
        ("%(pct)", "%(env)"),  # a value is inserted as it is, never expanded again
        ("%(env))", "prod)"),
    ],
)
def test_expand_string(text: str, expected: str) -> None:
    assert expand_string(text, PARAMS) == expected


def test_undefined_parameter_is_an_error_naming_it() -> None:
    with pytest.raises(CustomizeError, match=r"undefined parameter 'nosuch' in \$\.x"):
        expand_string("a %(nosuch) b", PARAMS, "in $.x")
    with pytest.raises(CustomizeError, match="undefined parameter ''"):
        expand_string("%()", PARAMS)


def test_unterminated_reference_is_an_error() -> None:
    with pytest.raises(CustomizeError, match=r"unterminated parameter reference '%\(env'"):
        expand_string("x %(env", PARAMS)


def test_expand_object_touches_string_values_only() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cm",
            "namespace": "ns",
            "labels": {"%(env)": "%(env)"},
            "annotations": {"edge.kubestellar.io/expand-parameters": "true"},
        },
        "data": {"index.html": "Running in %(loc-name).", "n": 5, "b": True, "z": None, "f": 1.5},
        "list": ["%(env)", ["%%"], {"k": "%(env)"}],
    }
    before = copy.deepcopy(obj)
    out = expand_object(obj, PARAMS)
    assert obj == before
    assert out["metadata"]["labels"] == {"%(env)": "prod"}
    assert out["data"] == {"index.html": "Running in florin.", "n": 5, "b": True, "z": None, "f": 1.5}
    assert out["list"] == ["prod", ["%"], {"k": "prod"}]
    out["list"][1].append("x")
    assert obj["list"][1] == ["%%"]


def test_identity_fields_are_never_expanded() -> None:
    obj = {
        "apiVersion": "%(undefined)",
        "kind": "%(undefined)",
        "metadata": {"name": "%(undefined)", "namespace": "%(undefined)", "generateName": "%(env)-"},
        "spec": {"template": {"metadata": {"name": "%(env)"}}, "kind": "%(env)"},
    }
    out = expand_object(obj, PARAMS)
    assert out["apiVersion"] == out["kind"] == "%(undefined)"
    assert out["metadata"] == {"name": "%(undefined)", "namespace": "%(undefined)", "generateName": "prod-"}
    assert out["spec"] == {"template": {"metadata": {"name": "prod"}}, "kind": "prod"}


def test_error_names_where_the_string_is() -> None:
    where = re.escape("in $.spec.containers[0]['a b']")
    with pytest.raises(CustomizeError, match=f"undefined parameter 'id' {where}"):
        expand_object({"spec": {"containers": [{"a b": "%(id)"}]}}, PARAMS)


@given(st.text(alphabet="ab%()"))
def test_expansion_raises_only_our_error(text: str) -> None:
    try:
        out = expand_string(text, {"a": "A", "": "E"})
    except CustomizeError:
        assert "%(" in text.replace("%%", "")
    else:
        assert out == text or "%" in text
