"""Typed ingest without a server: the decoder, and a typed informer's cache and reporting logic
fed decoded events directly (its list/watch loop against kcp is in test/e2e/test_typed_client.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

import apis.edge.v2alpha1 as api
from apis.edge.v2alpha1 import EdgePlacement, SyncTarget
from pkg.runtime.decode import ModelDecoder, drop_managed_fields, summarize
from pkg.runtime.informer import Informer
from pkg.runtime.rest import RestClient

GOOD: dict[str, Any] = {
    "apiVersion": "edge.kubestellar.io/v2alpha1",
    "kind": "EdgePlacement",
    "metadata": {
        "name": "p",
        "resourceVersion": "10",
        "annotations": {"kcp.io/cluster": "wmw1"},
        "managedFields": [{"manager": "kubectl", "operation": "Update"}],
    },
    "spec": {
        "locationSelectors": [{"matchLabels": {"env": "prod"}}],
        "downsync": [{"resources": ["configmaps"]}],
    },
    "status": {
        "conditions": [
            {
                "type": "LocationsResolved",
                "status": "True",
                "lastTransitionTime": "2026-12-01T20:00:00Z",
                "reason": "Resolved",
                "message": "",
            }
        ]
    },
}


def _bad(rv: str = "11") -> dict[str, Any]:
    """What the CRD's schema accepts but the model does not: a condition time without a zone."""
    bad = copy.deepcopy(GOOD)
    bad["metadata"]["resourceVersion"] = rv
    bad["status"]["conditions"][0]["lastTransitionTime"] = "2026-12-01T20:00:00"
    return bad


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode()


def _with(obj: dict[str, Any], **meta: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].update(meta)
    return out


decoder = ModelDecoder(EdgePlacement)


def test_an_accepted_event_decodes_as_model_validate_would() -> None:
    event = decoder.decode_event(_line("MODIFIED", GOOD))
    assert event.type == "MODIFIED" and event.error is None and event.raw is None
    assert event.obj == EdgePlacement.model_validate(GOOD)
    dumped = event.obj.model_dump(by_alias=True, exclude_unset=True, mode="json") if event.obj else None
    assert dumped == GOOD


def test_a_rejected_event_carries_the_object_as_sent_and_the_error() -> None:
    event = decoder.decode_event(_line("ADDED", _bad()))
    assert event.obj is None
    assert event.raw == _bad()
    assert isinstance(event.error, ValidationError)
    assert "status.conditions.0.lastTransitionTime" in summarize(event.error)


def test_bookmarks_and_errors_are_no_objects() -> None:
    bookmark = {
        "kind": "EdgePlacement",
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "metadata": {"resourceVersion": "7"},
    }
    event = decoder.decode_event(_line("BOOKMARK", bookmark))
    assert event.obj is None and event.error is None
    assert event.raw is not None and event.raw["metadata"]["resourceVersion"] == "7"
    status = {"kind": "Status", "apiVersion": "v1", "code": 410, "reason": "Expired"}
    event = decoder.decode_event(_line("ERROR", status))
    assert event.obj is None and event.error is None and event.raw == status


def test_a_page_keeps_the_good_items_and_sets_the_bad_ones_aside() -> None:
    other = _with(GOOD, name="q")
    page = decoder.decode_page(
        json.dumps(
            {
                "kind": "EdgePlacementList",
                "metadata": {"resourceVersion": "12", "continue": "t"},
                "items": [GOOD, _bad(), other],
            }
        )
    )
    assert [p.metadata.name for p in page.items] == ["p", "q"]
    assert [r.obj["metadata"]["resourceVersion"] for r in page.rejected] == ["11"]
    assert page.metadata == {"resourceVersion": "12", "continue": "t"}


def test_malformed_json_is_an_error_of_the_stream_not_of_an_object() -> None:
    with pytest.raises(ValueError):
        decoder.decode_event(b"{not json")
    with pytest.raises(ValueError):
        decoder.decode_page(b"[1, 2")


def test_drop_managed_fields_forgets_them_as_if_never_read() -> None:
    stripping = ModelDecoder(EdgePlacement, drop_managed_fields)
    event = stripping.decode_event(_line("ADDED", GOOD))
    assert event.obj is not None and event.obj.metadata.managed_fields is None
    dumped = event.obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
    assert "managedFields" not in dumped["metadata"]


# --- a typed informer's cache logic, fed lines directly (no threads, no server) -----------------


def _informer(
    **kwargs: Any,
) -> tuple[Informer[EdgePlacement], list[tuple[str, str]], list[tuple[dict[str, Any], Exception]]]:
    client = RestClient.__new__(RestClient)  # never used: nothing is listed or watched here
    client.prefix = "https://unused.invalid"
    rejected: list[tuple[dict[str, Any], Exception]] = []
    informer = Informer(
        client,
        "/apis/edge.kubestellar.io/v2alpha1/edgeplacements",
        model=EdgePlacement,
        on_decode_error=lambda obj, err: rejected.append((obj, err)),
        **kwargs,
    )
    seen: list[tuple[str, str]] = []
    informer.add_event_handler(
        on_add=lambda o: seen.append(("add", str(o.metadata.resource_version))),
        on_update=lambda old, new: seen.append(
            ("update", f"{old.metadata.resource_version}->{new.metadata.resource_version}")
        ),
        on_delete=lambda o: seen.append(("delete", str(o.metadata.resource_version))),
    )
    return informer, seen, rejected


def _deliver(informer: Informer[Any]) -> None:
    """Run what the dispatcher thread would, for the queued notifications."""
    while informer._queue:
        targets, op, old, new = informer._queue.popleft()
        if op == 4:  # _REJECTED
            informer._deliver_rejection(old, new)
            continue
        for reg in targets:
            if op == 0 and reg.on_add:
                reg.on_add(new)
            elif op == 1 and reg.on_update:
                reg.on_update(old, new)
            elif op == 2 and reg.on_delete:
                reg.on_delete(old)


def test_typed_informer_keeps_a_rejected_version_out_and_goes_on() -> None:
    informer, seen, rejected = _informer()
    feed = informer._handle_line
    assert informer._decoder is not None
    d = informer._decoder

    feed(d, _line("ADDED", GOOD))
    cached = informer.get("wmw1|p")
    assert isinstance(cached, EdgePlacement) and cached.metadata.resource_version == "10"

    feed(d, _line("MODIFIED", _bad("11")))  # rejected: the previous valid version stays
    feed(d, _line("MODIFIED", _bad("11")))  # the same version again (e.g. a relist): reported once
    assert informer.get("wmw1|p") is cached
    assert informer.stats.rejected == 1
    assert informer.last_resource_version == "11"  # the watch resumes after it

    feed(d, _line("ADDED", _with(_bad("12"), name="never-valid")))
    assert informer.get("wmw1|never-valid") is None
    assert informer.stats.rejected == 2

    feed(d, _line("MODIFIED", _with(GOOD, resourceVersion="13")))  # the next valid version is taken
    newest = informer.get("wmw1|p")
    assert newest is not None and newest.metadata.resource_version == "13"

    feed(d, _line("MODIFIED", _bad("14")))  # a new bad version is reported again
    assert informer.stats.rejected == 3

    feed(d, _line("DELETED", _bad("15")))  # a delete always deletes, even in a form the model rejects
    feed(d, _line("DELETED", _with(_bad("16"), name="never-valid")))  # nothing cached: no notification
    assert informer.get("wmw1|p") is None
    assert informer.stats.rejected == 3

    _deliver(informer)
    assert seen == [("add", "10"), ("update", "10->13"), ("delete", "13")]
    assert [obj["metadata"]["resourceVersion"] for obj, _ in rejected] == ["11", "12", "14"]
    assert all(isinstance(err, ValidationError) for _, err in rejected)


def test_a_relist_keeps_the_last_valid_version_of_a_rejected_object() -> None:
    informer, _seen, _rejected = _informer()
    informer._replace([EdgePlacement.model_validate(GOOD)], "10")
    key = informer._reject(_bad("11"), ValueError("bad"))
    assert key == "wmw1|p"
    informer._replace([], "11", [key, "wmw1|gone"])
    kept = informer.get("wmw1|p")
    assert kept is not None and kept.metadata.resource_version == "10"
    assert informer.get("wmw1|gone") is None
    assert len(informer.list()) == 1


def test_a_failing_hook_or_recorder_does_not_stop_delivery() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.events: list[tuple[Any, str, str]] = []

        def warning(self, ref: Any, reason: str, message: str) -> None:
            self.events.append((ref, reason, message))

    recorder = Recorder()

    def hook(obj: dict[str, Any], err: Exception) -> None:
        raise RuntimeError("hook broke")

    informer, _seen, _rejected = _informer(event_recorder=recorder)
    informer.on_decode_error = hook
    bad = _bad()
    del bad["apiVersion"], bad["kind"]  # as in a list of core objects: the model supplies them
    informer._reject(bad, ValueError("bad"))
    _deliver(informer)
    ((ref, reason, message),) = recorder.events
    assert (ref.cluster, ref.kind, ref.api_version, ref.name) == (
        "wmw1",
        "EdgePlacement",
        "edge.kubestellar.io/v2alpha1",
        "p",
    )
    assert reason == "InvalidObject" and "resourceVersion 11" in message


def test_a_typed_informer_needs_a_model_class() -> None:
    client = RestClient.__new__(RestClient)
    client.prefix = "https://unused.invalid"
    with pytest.raises(TypeError):
        Informer(client, "/x", model=dict)


def test_typed_index_functions_get_models() -> None:
    informer, _seen, _rejected = _informer(
        indexers={"env": lambda o: sorted((o.metadata.labels or {}).values())}
    )
    assert informer._decoder is not None
    labelled = _with(GOOD, labels={"env": "prod"})
    informer._handle_line(informer._decoder, _line("ADDED", labelled))
    assert [o.metadata.name for o in informer.by_index("env", "prod")] == ["p"]
    assert isinstance(informer.by_index("cluster", "wmw1")[0], EdgePlacement)


def test_other_kinds_decode_alike() -> None:
    st = {"metadata": {"name": "edge1", "uid": "u1"}, "spec": {"cells": {"a": "b"}}}
    event = ModelDecoder(SyncTarget).decode_event(_line("ADDED", st))
    assert event.obj == SyncTarget.model_validate(st)


def test_shared_fields_sets_save_memory_and_keep_dumps_and_copies_intact() -> None:
    sharing = ModelDecoder(EdgePlacement, drop_managed_fields, share_fields_sets=True)
    a = sharing.decode_event(_line("ADDED", GOOD)).obj
    b = sharing.decode_event(_line("ADDED", _with(GOOD, name="q"))).obj
    assert a is not None and b is not None
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert a.metadata.__pydantic_fields_set__ is b.metadata.__pydantic_fields_set__
    assert a.status is not None and b.status is not None
    assert a.status.conditions is not None and b.status.conditions is not None
    assert a.status.conditions[0].__pydantic_fields_set__ is b.status.conditions[0].__pydantic_fields_set__
    # Models of fewer than SHARE_MIN_FIELDS fields keep their own (smallest-size) sets.
    assert a.spec is not None and a.spec.location_selectors is not None
    assert a.spec.location_selectors[0].__pydantic_fields_set__ == {"match_labels"}
    expected = copy.deepcopy(GOOD)
    del expected["metadata"]["managedFields"]
    assert a.model_dump(by_alias=True, exclude_unset=True, mode="json") == expected
    with pytest.raises(TypeError, match="read-only"):
        a.metadata.labels = {"x": "y"}
    changed = b.model_copy(deep=True)
    changed.metadata.labels = {"x": "y"}
    assert changed.model_dump(by_alias=True, exclude_unset=True, mode="json")["metadata"]["labels"] == {
        "x": "y"
    }
    assert "labels" not in b.model_dump(by_alias=True, exclude_unset=True, mode="json")["metadata"]
    shallow = b.model_copy(update={"kind": "EdgePlacement"})
    assert shallow.kind == "EdgePlacement"


def test_own_fields_sets_by_default() -> None:
    a = decoder.decode_event(_line("ADDED", GOOD)).obj
    b = decoder.decode_event(_line("ADDED", GOOD)).obj
    assert a is not None and b is not None
    assert a.__pydantic_fields_set__ is not b.__pydantic_fields_set__
    a.metadata.labels = {"x": "y"}  # an ordinary model (the cache's read-only rule is by contract)


# --- the ingest schema (apis/machinery/ingest.py) -----------------------------------------------


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


@pytest.mark.parametrize("share", [False, True])
def test_the_ingest_decode_equals_model_validate_of_the_object_without_managed_fields(share: bool) -> None:
    fast = ModelDecoder(EdgePlacement, drop_managed_fields, share_fields_sets=share)
    assert fast.drops_managed_fields and fast.postprocess is None
    for event_type in ("ADDED", "MODIFIED", "DELETED"):
        got = fast.decode_event(_line(event_type, GOOD)).obj
        want = EdgePlacement.model_validate(_without_managed_fields(GOOD))
        assert type(got) is EdgePlacement and got == want
        assert got.metadata.managed_fields is None and "managed_fields" not in got.metadata.model_fields_set
        assert got.model_dump(by_alias=True, exclude_unset=True, mode="json") == _without_managed_fields(GOOD)
    page = fast.decode_page(json.dumps({"metadata": {"resourceVersion": "3"}, "items": [GOOD, _bad()]}))
    assert page.items == [EdgePlacement.model_validate(_without_managed_fields(GOOD))]
    assert [r.obj["metadata"]["resourceVersion"] for r in page.rejected] == ["11"]
    assert "status.conditions.0.lastTransitionTime" in summarize(page.rejected[0].error)


def test_managed_fields_are_never_decoded_and_the_models_themselves_are_unchanged() -> None:
    odd = _with(GOOD, managedFields="not a list")  # the model would reject it; it is never read
    assert ModelDecoder(EdgePlacement, drop_managed_fields).decode_event(_line("ADDED", odd)).obj is not None
    assert decoder.decode_event(_line("ADDED", odd)).obj is None  # without the drop, it is validated
    # The generated classes still validate as before (the rewritten schema is the decoder's own).
    direct = EdgePlacement.model_validate(GOOD)
    assert direct.metadata.managed_fields == GOOD["metadata"]["managedFields"]
    assert type(direct.metadata.__pydantic_fields_set__) is set
    assert EdgePlacement.__pydantic_complete__ and EdgePlacement.__dict__["__pydantic_complete__"]


def test_unknown_metadata_members_are_kept_unless_managed_fields_are_dropped() -> None:
    extra = _with(GOOD, selfLink="/apis/x")
    kept = decoder.decode_event(_line("ADDED", extra)).obj
    assert kept is not None and kept.metadata.model_extra == {"selfLink": "/apis/x"}
    dropped = ModelDecoder(EdgePlacement, drop_managed_fields).decode_event(_line("ADDED", extra)).obj
    assert dropped is not None and not dropped.metadata.model_extra
    assert dropped == EdgePlacement.model_validate(_without_managed_fields(GOOD))


def test_a_postprocess_sees_ordinary_models_then_the_sets_are_shared() -> None:
    def relabel(obj: EdgePlacement) -> EdgePlacement:
        obj.metadata.labels = {"seen": "yes"}  # allowed: the sets are not shared yet
        return obj

    got = ModelDecoder(EdgePlacement, relabel, share_fields_sets=True).decode_event(_line("ADDED", GOOD)).obj
    assert got is not None and got.metadata.labels == {"seen": "yes"}
    assert got.metadata.managed_fields is not None  # only drop_managed_fields is done while validating
    with pytest.raises(TypeError, match="read-only"):
        got.metadata.labels = {}


KINDS: dict[str, dict[str, Any]] = {
    "Customizer": {"metadata": {"namespace": "default"}, "replacements": [{"path": "$.x", "value": "1"}]},
    "EdgeSyncConfig": {"spec": {}, "status": {"lastSyncerHeartbeatTime": "2026-12-01T20:00:00Z"}},
    "Location": {
        "spec": {
            "resource": {"group": "edge.kubestellar.io", "version": "v2alpha1", "resource": "synctargets"},
            "instanceSelector": {"matchLabels": {"id": "x"}},
        },
        "status": {"instances": 3},
    },
    "SinglePlacementSlice": {
        "destinations": [
            {"cluster": "c1", "locationName": "l1", "syncTargetName": "s1", "syncTargetUID": "u1"}
        ]
    },
    "SyncerConfig": {"spec": {"upsync": [{"apiGroup": "", "resources": ["pods"], "names": ["*"]}]}},
    "SyncTarget": {"spec": {"cells": {"a": "b"}}, "status": {"capacity": {"cpu": "4", "pods": 110}}},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_decodes_through_the_ingest_schema_as_model_validate_would(kind: str) -> None:
    model = getattr(api, kind)
    obj = {"apiVersion": api.API_VERSION, "kind": kind, **copy.deepcopy(KINDS[kind])}
    obj["metadata"] = {**obj.get("metadata", {}), "name": "x", "managedFields": [{"manager": "m"}]}
    got = (
        ModelDecoder(model, drop_managed_fields, share_fields_sets=True).decode_event(_line("ADDED", obj)).obj
    )
    assert type(got) is model
    assert got == model.model_validate(_without_managed_fields(obj))
    assert got.model_dump(by_alias=True, exclude_unset=True, mode="json") == _without_managed_fields(obj)
    wrong = copy.deepcopy(obj)
    wrong["metadata"]["name"] = 7  # a StrictStr
    event = ModelDecoder(model, drop_managed_fields, share_fields_sets=True).decode_event(
        _line("ADDED", wrong)
    )
    assert event.obj is None and event.raw == wrong and isinstance(event.error, ValidationError)


def _kcp_list(objs: list[dict[str, Any]]) -> bytes:
    """A list as kcp writes one: compact JSON, keys sorted."""
    page = {
        "apiVersion": api.API_VERSION,
        "items": objs,
        "kind": "EdgePlacementList",
        "metadata": {"continue": "", "resourceVersion": "40"},
    }
    return json.dumps(page, separators=(",", ":"), sort_keys=True).encode()


def test_a_large_page_is_validated_item_by_item_with_the_same_result() -> None:
    objs = [_with(GOOD, name=f"p{i}") for i in range(300)]
    objs[7] = _bad("77")
    data = _kcp_list(objs)
    fast = ModelDecoder(EdgePlacement, drop_managed_fields, share_fields_sets=True)
    split = fast._split_page(data)
    assert split is not None and len(split[1]) == 300
    assert all(json.loads(piece)["kind"] == "EdgePlacement" for piece in split[1])
    page, whole = fast.decode_page(data), fast.decode_page(data.decode())  # str: decoded whole
    assert page.items == whole.items and len(page.items) == 299
    assert page.items[8] == EdgePlacement.model_validate(_without_managed_fields(objs[9]))  # 7 is out
    assert [r.obj for r in page.rejected] == [r.obj for r in whole.rejected] == [objs[7]]
    assert page.metadata == whole.metadata == {"continue": "", "resourceVersion": "40"}
    assert fast.decode_page(_kcp_list([])).items == []


def test_an_item_holding_the_bytes_that_start_an_item_makes_the_page_decode_whole() -> None:
    objs = [_with(GOOD, name=f"p{i}") for i in range(300)]
    # managedFields are free-form: one that looks like the start of another item, inside an item.
    lookalike = {"apiVersion": api.API_VERSION, "kind": "EdgePlacement", "metadata": {"name": "no"}}
    objs[5] = _with(GOOD, name="tricky", managedFields=[{"manager": "m"}, lookalike])
    data = _kcp_list(objs)
    marker = b'},{"apiVersion":"edge.kubestellar.io/v2alpha1","kind":"EdgePlacement","metadata":{"name":"no"'
    assert marker in data
    page = decoder.decode_page(data)
    assert [p.metadata.name for p in page.items] == [o["metadata"]["name"] for o in objs]
    assert page.items[5].metadata.managed_fields == [{"manager": "m"}, lookalike]
    assert not page.rejected
