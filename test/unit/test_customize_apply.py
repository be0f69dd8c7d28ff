"""Applying a Customizer (scenarios.md A.6, C11-C13 as amended by spec decision 5)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from apis.edge.v2alpha1 import Customizer
from apis.edge.v2alpha1 import constants as api
from pkg import customize as pkg_customize
from pkg.customize import (
    CustomizeError,
    customizer_ref,
    parse_value,
)


def _model(cust: dict[str, Any] | None) -> Customizer | None:
    return None if cust is None else Customizer.model_validate(cust)


def customize(obj: dict[str, Any], cust: dict[str, Any] | None, params: dict[str, str]) -> dict[str, Any]:
    """:func:`pkg.customize.customize` with the model that the Customizer dict decodes to."""
    return pkg_customize.customize(obj, _model(cust), params)


def needs_parameters(obj: dict[str, Any], cust: dict[str, Any] | None) -> bool:
    return pkg_customize.needs_parameters(obj, _model(cust))


ENV_PATH = "$.spec.template.spec.containers.0.env.0.value"
FLORIN = {"env": "prod", "loc-name": "florin", "extended": "no"}


def replicaset(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    if annotations is None:
        annotations = {api.CUSTOMIZER_ANNOTATION: "example-customizer"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "namespace": "commonstuff",
            "name": "commond",
            "annotations": annotations,
        },
        "spec": {
            "selector": {"matchLabels": {"app": "common"}},
            "template": {
                "metadata": {"labels": {"app": "common"}},
                "spec": {
                    "containers": [
                        {
                            "name": "httpd",
                            "env": [{"name": "EXAMPLE_VAR", "value": "example value"}],
                            "image": "library/httpd:2.4",
                        }
                    ]
                },
            },
        },
    }


def customizer(*replacements: tuple[str, str], expand: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "commonstuff", "name": "example-customizer"}
    if expand:
        meta["annotations"] = {api.EXPAND_PARAMETERS_ANNOTATION: "true"}
    return {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "Customizer",
        "metadata": meta,
        "replacements": [{"path": p, "value": v} for p, v in replacements],
    }


def env_value(obj: dict[str, Any]) -> Any:
    return obj["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]


def checked_customize(obj: Any, cust: Any, params: Any) -> dict[str, Any]:
    before = copy.deepcopy((obj, cust))
    out = customize(obj, cust, params)
    assert (obj, cust) == before, "inputs must not change"
    return out


# --- example1 (A.6) ---------------------------------------------------------------------------


def test_example1_configmap_is_expanded_per_location() -> None:
    page = "<html>\n    Running in %(loc-name).\n</html>\n"
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "namespace": "commonstuff",
            "name": "httpd-htdocs",
            "annotations": {api.EXPAND_PARAMETERS_ANNOTATION: "true"},
        },
        "data": {"index.html": page},
    }
    assert needs_parameters(cm, None)
    for loc in ("florin", "guilder"):
        out = checked_customize(cm, None, {"env": "prod", "loc-name": loc})
        assert out["data"]["index.html"] == f"<html>\n    Running in {loc}.\n</html>\n"
        assert out["metadata"] == cm["metadata"]


def test_example1_replicaset_and_deployment_get_their_env_value() -> None:
    rs = replicaset()
    out = checked_customize(rs, customizer((ENV_PATH, '"env is %(env)"')), FLORIN)
    assert env_value(out) == "env is prod"
    out["spec"].pop("template")
    assert out["spec"] == {"selector": {"matchLabels": {"app": "common"}}}
    out = checked_customize(rs, customizer((ENV_PATH, '"in %(env) env"')), FLORIN)
    assert env_value(out) == "in prod env"
    assert out["metadata"] == rs["metadata"]


# --- C11: missing Customizer, references ------------------------------------------------------


def test_missing_customizer_is_an_error() -> None:
    with pytest.raises(CustomizeError, match="Customizer commonstuff/no-such-customizer not found"):
        customize(replicaset({api.CUSTOMIZER_ANNOTATION: "no-such-customizer"}), None, FLORIN)


def test_no_reference_and_no_expansion_gives_a_plain_copy() -> None:
    rs = replicaset({})
    out = checked_customize(rs, None, {})
    assert out == rs
    assert out is not rs
    assert not needs_parameters(rs, None)


@pytest.mark.parametrize(
    ("ref", "namespace", "expected"),
    [
        ("c1", "ns1", ("ns1", "c1")),
        ("other/c1", "ns1", ("other", "c1")),
        ("other/c1.v2", None, ("other", "c1.v2")),
    ],
)
def test_customizer_ref(ref: str, namespace: str | None, expected: tuple[str, str]) -> None:
    meta: dict[str, Any] = {"name": "o", "annotations": {api.CUSTOMIZER_ANNOTATION: ref}}
    if namespace is not None:
        meta["namespace"] = namespace
    assert customizer_ref({"metadata": meta}) == expected


@pytest.mark.parametrize(
    ("ref", "namespace", "words"),
    [
        ("c1", None, "cluster-scoped"),  # C9: a bare name on a cluster-scoped object
        ("", "ns1", "valid Customizer"),
        ("/c1", "ns1", "valid namespace"),
        ("ns/", "ns1", "valid Customizer"),
        ("a/b/c", "ns1", "valid Customizer"),
        ("Bad_Name", "ns1", "valid Customizer"),
        (" c1", "ns1", "valid Customizer"),
        (7, "ns1", "not a string"),
    ],
)
def test_malformed_customizer_ref(ref: Any, namespace: str | None, words: str) -> None:
    meta: dict[str, Any] = {"name": "o", "annotations": {api.CUSTOMIZER_ANNOTATION: ref}}
    if namespace is not None:
        meta["namespace"] = namespace
    with pytest.raises(CustomizeError, match=words):
        customizer_ref({"metadata": meta})
    with pytest.raises(CustomizeError, match=words):
        customize({"metadata": meta}, customizer(), {})


def test_no_reference() -> None:
    assert customizer_ref({"metadata": {"name": "x"}}) is None
    assert customizer_ref({}) is None


# --- C12: parameters --------------------------------------------------------------------------


def test_undefined_parameter_in_object_is_an_error() -> None:
    cm = {
        "metadata": {"name": "x", "annotations": {api.EXPAND_PARAMETERS_ANNOTATION: "true"}},
        "data": {"a": "%(nosuch)"},
    }
    with pytest.raises(CustomizeError, match=r"undefined parameter 'nosuch' in \$\.data\.a"):
        customize(cm, None, FLORIN)


def test_undefined_parameter_in_customizer_is_an_error() -> None:
    with pytest.raises(CustomizeError, match=r"replacement 0: undefined parameter 'id' in value"):
        customize(replicaset(), customizer((ENV_PATH, '"%(id)"')), FLORIN)


def test_percent_percent_gives_percent_and_unterminated_is_an_error() -> None:
    out = customize(replicaset(), customizer((ENV_PATH, '"100%% %(env)"')), FLORIN)
    assert env_value(out) == "100% prod"
    with pytest.raises(CustomizeError, match="unterminated"):
        customize(replicaset(), customizer((ENV_PATH, '"%(env"')), FLORIN)


def test_expansion_follows_each_ones_own_annotation() -> None:
    rs = replicaset()
    rs["metadata"]["labels"] = {"tier": "%(env)"}
    out = customize(rs, customizer((ENV_PATH, '"%(env)"'), expand=False), FLORIN)
    assert env_value(out) == "%(env)"
    assert out["metadata"]["labels"] == {"tier": "%(env)"}
    assert not needs_parameters(rs, customizer(expand=False))
    rs["metadata"]["annotations"][api.EXPAND_PARAMETERS_ANNOTATION] = "true"
    out = customize(rs, customizer((ENV_PATH, '"%(env)"'), expand=False), FLORIN)
    assert (env_value(out), out["metadata"]["labels"]["tier"]) == ("%(env)", "prod")
    assert needs_parameters(rs, customizer(expand=False))
    rs["metadata"]["annotations"][api.EXPAND_PARAMETERS_ANNOTATION] = "True"  # only "true" counts
    assert customize(rs, customizer(expand=False), FLORIN)["metadata"]["labels"]["tier"] == "%(env)"


def test_path_is_expanded_too() -> None:
    out = customize(replicaset(), customizer(("$.metadata.labels['%(loc-name)']", '"yes"')), FLORIN)
    assert out["metadata"]["labels"] == {"florin": "yes"}


# --- C13: bad paths and values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("spec.template", "column 1"),
        ("$.a-b", "column 4"),
        ("$.spec[", "column 8"),
        ("$", "whole object"),
    ],
)
def test_bad_path_is_an_error(path: str, words: str) -> None:
    cust = customizer((ENV_PATH, '"ok"'), (path, "1"))
    with pytest.raises(CustomizeError, match=f"replacement 1: .*{words}"):
        customize(replicaset(), cust, FLORIN)


@pytest.mark.parametrize("value", ["env is prod", "", "NaN", "[1,", "Infinity", "-Infinity"])
def test_bad_value_is_an_error(value: str) -> None:
    with pytest.raises(CustomizeError, match=r"replacement 0: value .* is not JSON"):
        customize(replicaset(), customizer((ENV_PATH, value)), FLORIN)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), ('{"a":1}', {"a": 1}), ("null", None), ("[true, 1.5]", [True, 1.5]), ('"s"', "s")],
)
def test_value_is_json(value: str, expected: Any) -> None:
    assert parse_value(value) == expected
    assert env_value(customize(replicaset(), customizer((ENV_PATH, value)), FLORIN)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5.0", 5), ("1e3", 1000), ("-2.0", -2), ("0.5", 0.5), ("1e21", 1e21), ("1.5e-7", 1.5e-7)],
)
def test_integral_numbers_read_as_the_server_writes_them_back(value: str, expected: Any) -> None:
    """The API server keeps ``5.0`` as a float64 and sends it back as ``5`` (Go writes integral
    floats under 1e21 without a fraction): the value in the copy must be what reads back."""
    got = parse_value(value)
    assert got == expected and type(got) is type(expected)


def test_missing_intermediates_are_created_as_objects() -> None:
    out = customize(replicaset(), customizer(("$.spec.foo.bar", '"v"')), FLORIN)
    assert out["spec"]["foo"] == {"bar": "v"}


def test_out_of_range_index_changes_nothing() -> None:
    rs = replicaset()
    out = customize(rs, customizer(("$.spec.template.spec.containers.5.env.0.value", '"v"')), FLORIN)
    assert out == rs


def test_replacements_apply_in_order() -> None:
    cust = customizer(("$.spec.x", '{"a": 1}'), ("$.spec.x.b", "2"), ("$.spec.x.a", "3"))
    assert customize(replicaset(), cust, FLORIN)["spec"]["x"] == {"a": 3, "b": 2}


@pytest.mark.parametrize(
    "path", ["$.metadata.name", "$.metadata.namespace", "$.kind", "$.apiVersion", "$.metadata", "$..name"]
)
def test_replacements_cannot_change_identity(path: str) -> None:
    with pytest.raises(CustomizeError, match="identity"):
        customize(replicaset(), customizer((path, '"x"')), FLORIN)


@pytest.mark.parametrize(
    "replacements",
    [{"path": "$.a", "value": "1"}, [{"path": "$.a"}], [{"path": 1, "value": "1"}], ["$.a"]],
)
def test_malformed_replacements_never_become_a_model(replacements: Any) -> None:
    """The CRD's schema rejects these; so does the model decoded at ingest (never customized)."""
    cust = customizer()
    cust["replacements"] = replacements
    with pytest.raises(ValidationError, match="replacements"):
        Customizer.model_validate(cust)


def test_empty_customizer_changes_nothing() -> None:
    cust = customizer()
    del cust["replacements"]
    assert customize(replicaset(), cust, FLORIN) == replicaset()


texts = st.text(st.sampled_from(list("$.[]'\"*:,-0a%()e{}")) | st.characters(), max_size=20)


@given(texts, texts, st.booleans())
def test_customize_raises_only_our_error(path: str, value: str, expand: bool) -> None:
    rs = replicaset()
    rs["metadata"]["annotations"][api.EXPAND_PARAMETERS_ANNOTATION] = "true"
    try:
        out = checked_customize(rs, customizer((path, value), expand=expand), {"e": "1"})
    except CustomizeError:
        pass
    else:
        assert out["metadata"]["name"] == "commond"
