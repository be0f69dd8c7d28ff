"""The where resolver on kcp: SinglePlacementSlices and EdgePlacement status (A.3, C1-C4, C30)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pkg import bootstrap
from pkg.controllers import where
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError, RestClient
from test.e2e.kcpserver import KcpServer, unique
from test.e2e.test_mailbox_controller import Running, run_entry_point

EDGE = bootstrap.EDGE_API
WAIT = 30.0


@pytest.fixture
def resolver(kcp_server: KcpServer, initialized: RestClient) -> Iterator[Running]:
    running = Running(kcp_server, where.NAME, where.setup)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def inventory(initialized: RestClient) -> Iterator[tuple[str, str, dict[str, str]]]:
    """example1's imw1 (A.0) in a fresh IMW, every Location also labelled with a unique ``suite``
    (EdgePlacements select Locations of every IMW): (IMW path, its logical cluster, ids).

    Shared by this module's tests: a test that changes it puts it back."""
    imw = unique("imw")
    suite = unique("s")
    bootstrap.ensure_location(
        initialized, "florin", {"loc-name": "florin", "env": "prod", "suite": suite}, imw=imw
    )
    bootstrap.ensure_location(
        initialized,
        "guilder",
        {"loc-name": "guilder", "env": "prod", "extended": "yes", "suite": suite},
        imw=imw,
    )
    path = f"root:{imw}"
    c = kcp.cluster(initialized, path)
    uids = {n: c.get(f"{EDGE}/synctargets/{n}")["metadata"]["uid"] for n in ("florin", "guilder")}
    ws = kcp.get_workspace(initialized, path)
    assert ws is not None
    yield path, ws["spec"]["cluster"], {"suite": suite, **uids}
    kcp.delete_workspace(initialized, path)


@pytest.fixture(scope="module")
def wmw(initialized: RestClient) -> Iterator[str]:
    """One WMW for this module's tests (each uses its own EdgePlacement names)."""
    name = unique("wmw")
    bootstrap.ensure_wmw(initialized, name)
    yield f"root:{name}"
    bootstrap.remove_wmw(initialized, name)


def _placement(name: str, selectors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "EdgePlacement",
        "metadata": {"name": name},
        "spec": {
            "locationSelectors": selectors,
            "downsync": [{"apiGroup": "", "resources": ["configmaps"], "namespaces": ["commonstuff"]}],
        },
    }


def _dest(cluster: str, name: str, uid: str) -> dict[str, str]:
    return {"cluster": cluster, "locationName": name, "syncTargetName": name, "syncTargetUID": uid}


def _get(c: RestClient, path: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = c.get(path)
        return found
    except ApiError as e:
        if e.not_found:
            return None
        raise


def _wait_slice(
    c: RestClient, name: str, destinations: list[dict[str, str]], not_uid: str = ""
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        sps = _get(c, f"{EDGE}/singleplacementslices/{name}")
        if sps is None or sps["metadata"]["uid"] == not_uid or sps.get("destinations") != destinations:
            return None
        return sps

    found: dict[str, Any] = kcp.wait_for(f"SinglePlacementSlice {name} = {destinations}", probe, WAIT)
    return found


def _condition(ep: dict[str, Any]) -> dict[str, Any]:
    conditions = (ep.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "LocationsResolved"), {})


def _wait_status(c: RestClient, name: str, count: int, status: str = "True") -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        ep = c.get(f"{EDGE}/edgeplacements/{name}")
        st = ep.get("status") or {}
        cond = _condition(ep)
        ok = (
            st.get("specGeneration") == ep["metadata"]["generation"]
            and st.get("matchingLocationCount") == count
            and cond.get("status") == status
            and cond.get("observedGeneration") == ep["metadata"]["generation"]
        )
        return ep if ok else None

    found: dict[str, Any] = kcp.wait_for(f"status of {name} ({count} Locations, {status})", probe, WAIT)
    return found


def test_slices_and_status_follow_locations(
    initialized: RestClient, resolver: Running, wmw: str, inventory: tuple[str, str, dict[str, str]]
) -> None:
    imw_path, imw, ids = inventory
    suite = ids["suite"]
    c = kcp.cluster(initialized, wmw)
    c.create(
        f"{EDGE}/edgeplacements",
        _placement("edge-placement-c", [{"matchLabels": {"env": "prod", "suite": suite}}]),
    )
    c.create(
        f"{EDGE}/edgeplacements",
        _placement("edge-placement-s", [{"matchLabels": {"env": "prod", "extended": "yes", "suite": suite}}]),
    )
    c.create(
        f"{EDGE}/edgeplacements", _placement("e-none", [{"matchLabels": {"env": "nowhere", "suite": suite}}])
    )
    florin = _dest(imw, "florin", ids["florin"])
    guilder = _dest(imw, "guilder", ids["guilder"])

    # A.3, C1: one slice per placement, owned by it, with the right destinations (an empty list too).
    sps = _wait_slice(c, "edge-placement-c", [florin, guilder])
    ep = c.get(f"{EDGE}/edgeplacements/edge-placement-c")
    assert sps["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "edge.kubestellar.io/v2alpha1",
            "kind": "EdgePlacement",
            "name": "edge-placement-c",
            "uid": ep["metadata"]["uid"],
            "controller": True,
        }
    ]
    assert not sps["metadata"].get("labels")
    _wait_slice(c, "edge-placement-s", [guilder])
    assert _wait_slice(c, "e-none", [])["destinations"] == []

    # Status: written by server-side apply with field manager where-resolver.
    ep = _wait_status(c, "edge-placement-c", 2)
    assert _condition(ep)["reason"] == "Resolved"
    assert _condition(ep)["message"] == "2 Locations, 2 SyncTargets"
    managers = {m["manager"]: m for m in ep["metadata"].get("managedFields") or []}
    assert managers["where-resolver"]["operation"] == "Apply"
    assert managers["where-resolver"].get("subresource") == "status"
    _wait_status(c, "edge-placement-s", 1)
    _wait_status(c, "e-none", 0)

    # C4: relabelling the guilder Location takes it out of both placements.
    inv = kcp.cluster(initialized, imw_path)
    inv.patch(f"{EDGE}/locations/guilder", {"metadata": {"labels": {"env": "dev"}}})
    _wait_slice(c, "edge-placement-c", [florin])
    _wait_slice(c, "edge-placement-s", [])
    _wait_status(c, "edge-placement-c", 1)
    _wait_status(c, "edge-placement-s", 0)
    inv.patch(f"{EDGE}/locations/guilder", {"metadata": {"labels": {"env": "prod"}}})
    _wait_slice(c, "edge-placement-c", [florin, guilder])

    # A SyncTarget's label change matters too (the Location's instanceSelector stops matching).
    inv.patch(f"{EDGE}/synctargets/florin", {"metadata": {"labels": {"id": "florin-off"}}})
    _wait_slice(c, "edge-placement-c", [guilder])
    _wait_status(c, "edge-placement-c", 2)  # both Locations still match
    inv.patch(f"{EDGE}/synctargets/florin", {"metadata": {"labels": {"id": "florin"}}})
    _wait_slice(c, "edge-placement-c", [florin, guilder])

    # C30: a deleted slice is re-created; one edited by hand is repaired.
    old = c.get(f"{EDGE}/singleplacementslices/edge-placement-c")
    c.delete(f"{EDGE}/singleplacementslices/edge-placement-c")
    _wait_slice(c, "edge-placement-c", [florin, guilder], not_uid=old["metadata"]["uid"])
    c.patch(f"{EDGE}/singleplacementslices/edge-placement-s", {"destinations": []})
    _wait_slice(c, "edge-placement-s", [guilder])

    # A spec change moves specGeneration, and a selector change the slice (C18c).
    c.patch(
        f"{EDGE}/edgeplacements/edge-placement-s",
        {"spec": {"locationSelectors": [{"matchLabels": {"env": "prod", "suite": suite}}]}},
    )
    ep = _wait_status(c, "edge-placement-s", 2)
    assert ep["status"]["specGeneration"] == 2
    _wait_slice(c, "edge-placement-s", [florin, guilder])

    # C3: a SyncTarget that appears joins the slices, and leaves them when deleted.
    bootstrap.ensure_location(
        initialized, "temp", {"env": "prod", "suite": suite}, imw=imw_path.split(":")[1]
    )
    temp = _dest(imw, "temp", inv.get(f"{EDGE}/synctargets/temp")["metadata"]["uid"])
    _wait_slice(c, "edge-placement-c", [florin, guilder, temp])
    _wait_slice(c, "edge-placement-s", [florin, guilder, temp])
    _wait_status(c, "edge-placement-c", 3)
    inv.delete(f"{EDGE}/synctargets/temp")
    _wait_slice(c, "edge-placement-c", [florin, guilder])
    _wait_status(c, "edge-placement-c", 3)  # the Location remains
    inv.delete(f"{EDGE}/locations/temp")
    _wait_status(c, "edge-placement-c", 2)


def test_invalid_selector_is_reported_and_the_rest_works(
    initialized: RestClient, resolver: Running, wmw: str, inventory: tuple[str, str, dict[str, str]]
) -> None:
    _, imw, ids = inventory
    c = kcp.cluster(initialized, wmw)
    bad = {"matchExpressions": [{"key": "env", "operator": "Foo", "values": ["prod"]}]}
    good = {"matchLabels": {"extended": "yes", "suite": ids["suite"]}}
    c.create(f"{EDGE}/edgeplacements", _placement("bad", [bad, good]))
    _wait_slice(c, "bad", [_dest(imw, "guilder", ids["guilder"])])
    ep = _wait_status(c, "bad", 1, status="False")
    cond = _condition(ep)
    assert cond["reason"] == "InvalidSelector"
    assert "spec.locationSelectors[0]" in cond["message"] and "Foo" in cond["message"]

    def event() -> dict[str, Any] | None:
        items = c.get("/api/v1/namespaces/default/events")["items"]
        return next(
            (
                e
                for e in items
                if e["involvedObject"].get("name") == "bad"
                and e["involvedObject"].get("kind") == "EdgePlacement"
                and e["reason"] == "InvalidSelector"
            ),
            None,
        )

    found = kcp.wait_for("an InvalidSelector Event", event, WAIT)
    assert found["type"] == "Warning" and "Foo" in found["message"]
    assert found["involvedObject"]["uid"] == ep["metadata"]["uid"]

    # Fixing the selector turns the condition True.
    c.patch(f"{EDGE}/edgeplacements/bad", {"spec": {"locationSelectors": [good]}})
    ep = _wait_status(c, "bad", 1, status="True")
    assert _condition(ep)["reason"] == "Resolved"
    assert resolver.thread.is_alive()


def test_restart_writes_nothing(
    kcp_server: KcpServer, initialized: RestClient, wmw: str, inventory: tuple[str, str, dict[str, str]]
) -> None:
    _, imw, ids = inventory
    c = kcp.cluster(initialized, wmw)
    c.create(f"{EDGE}/edgeplacements", _placement("ep", [{"matchLabels": {"suite": ids["suite"]}}]))
    first = Running(kcp_server, where.NAME, where.setup)
    try:
        _wait_slice(c, "ep", [_dest(imw, "florin", ids["florin"]), _dest(imw, "guilder", ids["guilder"])])
        _wait_status(c, "ep", 2)
        first.quiet()
    finally:
        first.stop()
    second = Running(kcp_server, where.NAME, where.setup)
    try:
        second.quiet(seconds=3.0)
        assert second.writes.total() == 0, second.writes.snapshot()
    finally:
        second.stop()


def test_entry_point(kcp_server: KcpServer, initialized: RestClient) -> None:
    run_entry_point(kcp_server, "cmd.where_resolver", "where-resolver", initialized)
