"""example1 of the KubeStellar docs, set up on the shared kcp with names unique to one test."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from apis.edge.v2alpha1.naming import mailbox_name
from pkg import bootstrap
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError, RestClient
from test.e2e.kcpserver import REPO, unique

EXAMPLE = REPO / "config" / "examples" / "example1"
EDGE = "/apis/edge.kubestellar.io/v2alpha1"


def manifests(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(Path(EXAMPLE / name).read_text()) if d]


@dataclass
class Example1:
    imw: str  # workspace path
    imw_cluster: str
    wmw_c: str
    wmw_s: str
    wmw_c_cluster: str
    wmw_s_cluster: str
    run: str  # a label value that only this test's Locations carry
    sync_targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def mailbox(self, location: str) -> str:
        return mailbox_name(self.imw_cluster, self.sync_targets[location]["metadata"]["uid"])


def setup(client: RestClient, *, placements: bool = True) -> Example1:
    """Inventory (florin, guilder) in a fresh IMW, and fresh wmw-c / wmw-s with their objects.

    The Locations carry ``run=<unique>`` and the EdgePlacements select it too, so that Locations
    of other tests on the shared server are never selected.
    """
    run = unique("run")
    imw = unique("imw")
    bootstrap.ensure_location(client, "florin", {"loc-name": "florin", "env": "prod", "run": run}, imw=imw)
    bootstrap.ensure_location(
        client, "guilder", {"loc-name": "guilder", "env": "prod", "extended": "yes", "run": run}, imw=imw
    )
    imw_ws = kcp.wait_workspace_ready(client, f"root:{imw}")
    ex = Example1(
        imw=imw_ws.path,
        imw_cluster=imw_ws.cluster,
        wmw_c=f"root:{unique('wmw-c')}",
        wmw_s=f"root:{unique('wmw-s')}",
        wmw_c_cluster="",
        wmw_s_cluster="",
        run=run,
    )
    for name in ("florin", "guilder"):
        ex.sync_targets[name] = kcp.cluster(client, ex.imw).get(f"{EDGE}/synctargets/{name}")
    _parallel(
        lambda: bootstrap.ensure_wmw(client, ex.wmw_c.split(":")[1]),
        lambda: bootstrap.ensure_wmw(client, ex.wmw_s.split(":")[1]),
    )
    ex.wmw_c_cluster = kcp.wait_workspace_ready(client, ex.wmw_c).cluster
    ex.wmw_s_cluster = kcp.wait_workspace_ready(client, ex.wmw_s).cluster
    for path, file in ((ex.wmw_c, "wmw-c.yaml"), (ex.wmw_s, "wmw-s.yaml")):
        docs = manifests(file)
        for d in docs:
            if d["kind"] == "EdgePlacement":
                for sel in d["spec"]["locationSelectors"]:
                    sel["matchLabels"]["run"] = run
        bootstrap.apply_objects(client, path, [d for d in docs if placements or d["kind"] != "EdgePlacement"])
    return ex


def _parallel(*fns: Any) -> list[Any]:
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = fns[i]()
        except BaseException as e:  # re-raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def make_mailbox(client: RestClient, ex: Example1, location: str) -> str:
    """What the mailbox controller does for one SyncTarget: the workspace and its bindings."""
    name = ex.mailbox(location)
    ws = kcp.ensure_workspace(
        client, f"root:{name}", annotations={"edge.kubestellar.io/sync-target-name": location}
    )
    bindings = [b for b in bootstrap.wmw_bindings() if b[0] != "bind-espw"]
    bindings.append(("bind-edge", bootstrap.ESPW, bootstrap.EDGE_EXPORT))
    for binding, export_path, export_name in bindings:
        kcp.ensure_binding(client, ws.path, binding, export_path, export_name)
    kcp.wait_bindings_bound(client, ws.path, [b[0] for b in bindings])
    return ws.path


def make_slice(client: RestClient, ex: Example1, wmw: str, placement: str, locations: list[str]) -> None:
    """What the where resolver does for one EdgePlacement."""
    body = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "SinglePlacementSlice",
        "metadata": {"name": placement},
        "destinations": [
            {
                "cluster": ex.imw_cluster,
                "locationName": loc,
                "syncTargetName": loc,
                "syncTargetUID": ex.sync_targets[loc]["metadata"]["uid"],
            }
            for loc in locations
        ],
    }
    try:
        kcp.cluster(client, wmw).create(f"{EDGE}/singleplacementslices", body)
    except ApiError as e:
        if not e.already_exists:
            raise
