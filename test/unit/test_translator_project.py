"""pkg.controllers.translator.project: the field rules for mailbox copies (spec decision 5, A.6, C26).

create_form makes the body of a new copy; needs_update says whether an existing copy differs in
the parts the translator owns; update_form makes the body to PUT over an existing copy; compact is
the form in which the translator caches copies, and both functions answer the same for it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apis.edge.v2alpha1 import constants as api
from pkg.controllers.translator.project import (
    OWNED_DIGEST,
    compact,
    create_form,
    needs_update,
    owned_digest,
    update_form,
)


def source() -> dict[str, Any]:
    """A (customized) source object as read from a WMW, with everything a server adds."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "commond",
            "namespace": "commonstuff",
            "uid": "8d5b3c1e-0000-4000-8000-000000000001",
            "resourceVersion": "1234",
            "generation": 7,
            "creationTimestamp": "2023-10-05T12:00:00Z",
            "selfLink": "/apis/apps/v1/namespaces/commonstuff/replicasets/commond",
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {}}],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u"}],
            "labels": {"app": "common", "kcp.io/owner": "x", "tenancy.kcp.io/workspace": "y"},
            "annotations": {
                "kcp.io/cluster": "2x8kqq3n7bwyhnrs",
                "kcp.io/path": "root:wmw-c",
                "experimental.tenancy.kcp.io/owner": "z",
                api.EXECUTING_COUNT_ANNOTATION: "2",
                api.CUSTOMIZER_ANNOTATION: "example-customizer",
            },
            "finalizers": ["example.com/keep"],
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "common"}}},
        "status": {"replicas": 1, "readyReplicas": 1},
    }


def desired() -> dict[str, Any]:
    return create_form(source(), "apps/v1")


def in_mailbox(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as the mailbox's server would hold it after creation and an edge status report,
    with mailbox-only labels and annotations added by someone else."""
    out = copy.deepcopy(body)
    md = out["metadata"]
    md.update(
        uid="aaaaaaaa-0000-4000-8000-000000000002",
        resourceVersion="99",
        generation=1,
        creationTimestamp="2023-10-06T00:00:00Z",
        managedFields=[{"manager": "placement-translator", "operation": "Update"}],
    )
    md["labels"] = {**md["labels"], "edge-only": "yes"}
    md["annotations"] = {**md.get("annotations", {}), "kcp.io/cluster": "mailboxcluster", "edge-note": "n"}
    out["status"] = {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1}
    return out


# ---------------------------------------------------------------------------------------------
# create_form


def test_create_form_exact() -> None:
    assert desired() == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "commond",
            "namespace": "commonstuff",
            "labels": {"app": "common", api.PROJECTED_LABEL: "yes"},
            "annotations": {api.CUSTOMIZER_ANNOTATION: "example-customizer"},
            "finalizers": ["example.com/keep"],
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "common"}}},
    }


def test_create_form_uses_the_given_api_version() -> None:
    assert create_form(source(), "apps/v1beta2")["apiVersion"] == "apps/v1beta2"


def test_create_form_without_labels_or_annotations() -> None:
    src = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "annotations": {"kcp.io/cluster": "c"}},
    }
    assert create_form(src, "v1") == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {api.PROJECTED_LABEL: "yes"}},
    }


def test_create_form_forces_the_projected_label() -> None:
    src = source()
    src["metadata"]["labels"][api.PROJECTED_LABEL] = "no"
    assert create_form(src, "apps/v1")["metadata"]["labels"][api.PROJECTED_LABEL] == "yes"


def test_create_form_keeps_every_other_top_level_section() -> None:
    src = {
        "apiVersion": "edge.example/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "data": {"a": "1"},
        "binaryData": {"b": "AA=="},
        "rules": [{"verbs": ["get"]}],
        "immutable": True,
        "status": {"x": 1},
    }
    body = create_form(src, "edge.example/v1")
    assert {k: v for k, v in body.items() if k != "metadata"} == {
        "apiVersion": "edge.example/v1",
        "kind": "Thing",
        "data": {"a": "1"},
        "binaryData": {"b": "AA=="},
        "rules": [{"verbs": ["get"]}],
        "immutable": True,
    }


def test_create_form_does_not_share_or_modify_the_source() -> None:
    src = source()
    before = copy.deepcopy(src)
    body = create_form(src, "apps/v1")
    assert src == before
    body["spec"]["selector"]["matchLabels"]["app"] = "changed"
    body["metadata"]["finalizers"].append("more")
    assert src == before


# ---------------------------------------------------------------------------------------------
# needs_update


def test_fresh_copy_needs_no_update() -> None:
    assert not needs_update(desired(), desired())


def test_needs_no_update_with_mailbox_only_labels_annotations_status_and_server_metadata() -> None:
    assert not needs_update(in_mailbox(desired()), desired())


def test_needs_no_update_when_only_the_api_version_differs() -> None:
    existing = in_mailbox(desired())
    existing["apiVersion"] = "apps/v1beta2"
    assert not needs_update(existing, desired())


def test_needs_update_after_a_spec_change_in_the_source() -> None:
    existing = in_mailbox(desired())
    src = source()
    src["spec"]["replicas"] = 3
    assert needs_update(existing, create_form(src, "apps/v1"))


def test_needs_update_after_drift_in_the_mailbox() -> None:
    existing = in_mailbox(desired())
    existing["spec"]["replicas"] = 5
    assert needs_update(existing, desired())


def test_needs_update_after_a_source_label_or_annotation_change() -> None:
    existing = in_mailbox(desired())
    for section, key_, value in (
        ("labels", "app", "other"),
        ("labels", "tier", "new"),
        ("annotations", api.CUSTOMIZER_ANNOTATION, "other"),
        ("annotations", "new-note", "x"),
    ):
        src = source()
        src["metadata"][section][key_] = value
        assert needs_update(existing, create_form(src, "apps/v1")), (section, key_)


def test_needs_update_when_an_owned_label_was_changed_or_deleted_in_the_mailbox() -> None:
    for label in ("app", api.PROJECTED_LABEL):
        existing = in_mailbox(desired())
        del existing["metadata"]["labels"][label]
        assert needs_update(existing, desired()), label
        existing["metadata"]["labels"][label] = "other"
        assert needs_update(existing, desired()), label


def test_needs_update_when_an_owned_annotation_was_deleted_in_the_mailbox() -> None:
    existing = in_mailbox(desired())
    del existing["metadata"]["annotations"][api.CUSTOMIZER_ANNOTATION]
    assert needs_update(existing, desired())


def test_needs_update_when_a_top_level_section_was_removed_from_the_source_or_added_in_the_mailbox() -> None:
    src = source()
    src["extra"] = {"a": 1}
    existing = in_mailbox(create_form(src, "apps/v1"))
    assert needs_update(existing, desired())  # removed from the source
    existing = in_mailbox(desired())
    existing["spec2"] = {"b": 2}
    assert needs_update(existing, desired())  # added in the mailbox
    existing = in_mailbox(desired())
    del existing["spec"]
    assert needs_update(existing, desired())  # deleted in the mailbox


def test_needs_update_when_finalizers_differ() -> None:
    existing = in_mailbox(desired())
    existing["metadata"]["finalizers"] = []
    assert needs_update(existing, desired())


def test_needs_update_ignores_status_differences() -> None:
    existing = in_mailbox(desired())
    existing["status"] = {"replicas": 0, "conditions": [{"type": "X"}]}
    assert not needs_update(existing, desired())


def test_create_only_annotation_is_just_an_owned_annotation() -> None:
    src = source()
    src["metadata"]["annotations"][api.DOWNSYNC_OVERWRITE_ANNOTATION] = "false"
    want = create_form(src, "apps/v1")
    assert want["metadata"]["annotations"][api.DOWNSYNC_OVERWRITE_ANNOTATION] == "false"
    assert not needs_update(in_mailbox(want), want)


# ---------------------------------------------------------------------------------------------
# update_form


def _changed_source() -> dict[str, Any]:
    src = source()
    src["spec"] = {"replicas": 3, "selector": {"matchLabels": {"app": "common"}}}
    src["metadata"]["labels"]["app"] = "common2"
    src["metadata"]["annotations"]["added"] = "a"
    return src


def test_update_form_keeps_mailbox_only_parts_and_replaces_owned_ones() -> None:
    existing = in_mailbox(desired())
    want = create_form(_changed_source(), "apps/v1")
    body = update_form(existing, want)
    assert body["spec"] == {"replicas": 3, "selector": {"matchLabels": {"app": "common"}}}
    md = body["metadata"]
    assert md["labels"] == {"app": "common2", "edge-only": "yes", api.PROJECTED_LABEL: "yes"}
    assert md["annotations"] == {
        api.CUSTOMIZER_ANNOTATION: "example-customizer",
        "added": "a",
        "edge-note": "n",
        "kcp.io/cluster": "mailboxcluster",
    }
    assert md["resourceVersion"] == "99"
    assert md["uid"] == existing["metadata"]["uid"]
    assert md["name"] == "commond" and md["namespace"] == "commonstuff"
    assert "managedFields" not in md
    assert body["status"] == existing["status"]
    assert body["kind"] == "ReplicaSet" and body["apiVersion"] == "apps/v1"
    # After the update, the copy is as desired.
    assert not needs_update(body, want)


def test_update_form_uses_the_desired_api_version() -> None:
    existing = in_mailbox(desired())
    want = create_form(source(), "apps/v1beta2")
    assert update_form(existing, want)["apiVersion"] == "apps/v1beta2"


def test_update_form_restores_drift() -> None:
    existing = in_mailbox(desired())
    existing["spec"]["replicas"] = 9
    existing["metadata"]["labels"]["app"] = "drifted"
    del existing["metadata"]["labels"][api.PROJECTED_LABEL]
    body = update_form(existing, desired())
    assert body["spec"] == desired()["spec"]
    assert body["metadata"]["labels"] == {"app": "common", "edge-only": "yes", api.PROJECTED_LABEL: "yes"}
    assert not needs_update(body, desired())


def test_update_form_removes_top_level_sections_removed_from_the_source() -> None:
    src = source()
    src["extra"] = {"a": 1}
    existing = in_mailbox(create_form(src, "apps/v1"))
    existing["mailbox-added"] = True
    body = update_form(existing, desired())
    assert "extra" not in body
    assert "mailbox-added" not in body
    assert set(body) == {"apiVersion", "kind", "metadata", "spec", "status"}


def test_update_form_keeps_status_even_when_the_source_has_none() -> None:
    existing = in_mailbox(desired())
    body = update_form(existing, desired())
    assert body["status"] == {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1}


def test_update_form_does_not_modify_its_arguments() -> None:
    existing = in_mailbox(desired())
    want = create_form(_changed_source(), "apps/v1")
    before = copy.deepcopy((existing, want))
    body = update_form(existing, want)
    assert (existing, want) == before
    body["spec"]["selector"]["matchLabels"]["app"] = "x"
    body["metadata"]["labels"]["z"] = "z"
    body["status"]["replicas"] = 42
    assert (existing, want) == before


def test_update_form_sets_finalizers_from_the_source() -> None:
    existing = in_mailbox(desired())
    existing["metadata"]["finalizers"] = []
    assert update_form(existing, desired())["metadata"]["finalizers"] == ["example.com/keep"]


def test_update_form_without_annotations_anywhere() -> None:
    src = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "d"},
        "data": {"a": "1"},
    }
    want = create_form(src, "v1")
    existing = copy.deepcopy(want)
    existing["metadata"]["resourceVersion"] = "5"
    existing["data"] = {"a": "0"}
    body = update_form(existing, want)
    assert body == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "x",
            "namespace": "d",
            "resourceVersion": "5",
            "labels": {api.PROJECTED_LABEL: "yes"},
        },
        "data": {"a": "1"},
    }


# ---------------------------------------------------------------------------------------------
# Properties

_keys = st.sampled_from(["a", "b", "app", "example.com/x", "kcp.io/cluster", "x.kcp.io/y"])
_values = st.text(alphabet="abc", min_size=0, max_size=3)
_maps = st.dictionaries(_keys, _values, max_size=4)
_sections = st.dictionaries(
    st.sampled_from(["spec", "data", "rules", "extra"]),
    st.recursive(
        st.integers() | st.text(max_size=3),
        lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=2), c, max_size=2),
        max_leaves=4,
    ),
    max_size=3,
)


def _obj(labels: dict[str, str], annotations: dict[str, str], sections: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Thing",
        "metadata": {"name": "n", "namespace": "ns", "labels": labels, "annotations": annotations},
        **sections,
    }


@given(_maps, _maps, _sections, _maps, _maps, _sections)
def test_update_form_always_converges(
    labels: dict[str, str],
    annotations: dict[str, str],
    sections: dict[str, Any],
    old_labels: dict[str, str],
    old_annotations: dict[str, str],
    old_sections: dict[str, Any],
) -> None:
    """Whatever the existing copy holds, update_form gives a body that needs no further update,
    and that keeps every existing label/annotation the source does not own."""
    want = create_form(_obj(labels, annotations, sections), "v1")
    existing = _obj(old_labels, old_annotations, old_sections)
    existing["status"] = {"s": 1}
    body = update_form(existing, want)
    assert not needs_update(body, want)
    assert body["status"] == {"s": 1}
    for k, v in old_labels.items():
        if k not in want["metadata"]["labels"]:
            assert body["metadata"]["labels"][k] == v
    for k, v in old_annotations.items():
        if k not in (want["metadata"].get("annotations") or {}):
            assert body["metadata"]["annotations"][k] == v
    assert {k for k in body if k not in ("apiVersion", "kind", "metadata", "status")} == set(sections)


@given(_maps, _maps, _sections)
def test_create_form_never_carries_system_keys(
    labels: dict[str, str], annotations: dict[str, str], sections: dict[str, Any]
) -> None:
    counted = {**annotations, api.EXECUTING_COUNT_ANNOTATION: "1"}
    md = create_form(_obj(labels, counted, sections), "v1")["metadata"]
    for k in [*md["labels"], *(md.get("annotations") or {})]:
        assert not k.startswith("kcp.io/") and ".kcp.io/" not in k
    assert api.EXECUTING_COUNT_ANNOTATION not in (md.get("annotations") or {})
    assert md["labels"][api.PROJECTED_LABEL] == "yes"
    assert not needs_update(
        create_form(_obj(labels, annotations, sections), "v1"),
        create_form(_obj(labels, annotations, sections), "v1"),
    )


_OWNED_TOP = ("apiVersion", "kind", "metadata", "status")


def _differs_oracle(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    """needs_update written out on full objects, sections compared as values (the rule of the
    module docstring, independently of the digest)."""
    md, want_md = existing.get("metadata") or {}, desired.get("metadata") or {}
    if {k: v for k, v in existing.items() if k not in _OWNED_TOP} != {
        k: v for k, v in desired.items() if k not in _OWNED_TOP
    }:
        return True
    for field in ("labels", "annotations"):
        have, want = md.get(field) or {}, want_md.get(field) or {}
        if any(have.get(k) != v for k, v in want.items()):
            return True
    return "finalizers" in want_md and md.get("finalizers") != want_md.get("finalizers")


_SERVER_SET = {"managedFields": [{"manager": "m"}], "uid": "u-1", "creationTimestamp": "t", "generation": 3}


@st.composite
def _copies(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """An existing copy (with the metadata a server adds) and a desired form; ``same``: the copy
    holds what the translator owns as desired, plus what the mailbox added."""
    want = create_form(_obj(draw(_maps), draw(_maps), sections := draw(_sections)), "v1")
    old_labels, old_annotations, same = draw(_maps), draw(_maps), draw(st.booleans())
    if same:
        want_md = want["metadata"]
        old_labels = {**old_labels, **want_md["labels"]}
        old_annotations = {**old_annotations, **(want_md.get("annotations") or {})}
    existing = _obj(old_labels, old_annotations, sections if same else draw(_sections))
    existing["status"] = {"s": 1}
    existing["metadata"].update(_SERVER_SET)
    return existing, want, same


@given(_copies())
def test_the_compact_form_answers_as_the_full_one(
    copies: tuple[dict[str, Any], dict[str, Any], bool],
) -> None:
    """For any existing copy and desired form: needs_update on the compact copy equals needs_update
    on the full copy, which equals the value comparison; update_form gives the same body but for
    the metadata that the server keeps on an update whatever the body says."""
    existing, want, same = copies
    small = compact(existing)
    assert set(small) == {*_OWNED_TOP, OWNED_DIGEST} and not set(_SERVER_SET) & set(small["metadata"])
    oracle = _differs_oracle(existing, want)
    assert needs_update(existing, want) == oracle
    assert needs_update(small, want) == oracle
    assert needs_update(small, want, owned_digest(want)) == oracle
    full = update_form(existing, want)
    # the same PUT, less what the server keeps from the stored object anyway
    assert update_form(small, want) == {
        **full,
        "metadata": {k: v for k, v in full["metadata"].items() if k not in _SERVER_SET},
    }
    assert not needs_update(compact(full), want)
    if same:
        assert not oracle


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"data": {"x": "1", "y": "2"}}, {"data": {"y": "2", "x": "1"}}, True),  # key order
        ({"data": {"x": "1"}}, {"data": {"x": "1"}, "status": {"s": 1}}, True),  # not owned
        ({"spec": {"n": 1}}, {"spec": {"n": "1"}}, False),
        ({"spec": {"l": [1, 2]}}, {"spec": {"l": [2, 1]}}, False),  # list order counts
        ({"spec": {}}, {}, False),  # an empty section is a section
        ({"data": {"é": "ü"}}, {"data": {"é": "ü"}}, True),
    ],
)
def test_owned_digest_is_equal_exactly_when_the_sections_are(
    a: dict[str, Any], b: dict[str, Any], equal: bool
) -> None:
    assert (owned_digest(a) == owned_digest(b)) is equal
    assert owned_digest(compact(a)) == owned_digest(a)
