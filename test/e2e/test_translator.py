"""The placement translator on kcp, with example1 (mailboxes and slices made by the test).

The mailbox controller's and where resolver's output is pre-created here, so these tests exercise
the translator alone; test_kubestellar.py runs everything together.
"""

from __future__ import annotations

import contextlib
import threading
from cmd import placement_translator
from collections.abc import Iterator
from typing import Any

import pytest

from pkg.controllers import translator
from pkg.runtime import kcp
from pkg.runtime.app import build_manager
from pkg.runtime.manager import Manager
from pkg.runtime.rest import WRITES, ApiError, RestClient
from test.e2e import example1
from test.e2e.example1 import EDGE, Example1
from test.e2e.kcpserver import KcpServer

TIMEOUT = 60


@contextlib.contextmanager
def running_translator(server: KcpServer) -> Iterator[Manager]:
    args = placement_translator.parser().parse_args(
        [
            "--kubeconfig",
            str(server.kubeconfig),
            "--leader-elect=false",
            "--server-bind-address",
            "127.0.0.1:0",
        ]
    )
    manager, recorder = build_manager("placement-translator", args, [translator.setup])
    recorder.start()
    thread = threading.Thread(target=manager.run, daemon=True)
    thread.start()
    try:
        yield manager
    finally:
        manager.stop()
        thread.join(30)
        recorder.stop()


def get(c: RestClient, path: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = c.get(path)
        return result
    except ApiError as e:
        if e.not_found:
            return None
        raise


def eventually(what: str, probe: Any, timeout: float = TIMEOUT) -> Any:
    return kcp.wait_for(what, probe, timeout, interval=0.2)


GROUP1 = {
    "apiGroup": "group1.test",
    "resources": ["sprockets", "flanges"],
    "namespaces": ["orbital"],
    "names": ["george", "cosmo"],
}
GROUP2 = {"apiGroup": "group2.test", "resources": ["cogs"], "names": ["william"]}
GROUP3 = {"apiGroup": "group3.test", "resources": ["widgets"], "names": ["*"]}


def florin_spec() -> dict[str, Any]:
    return {
        "namespaceScope": {},
        "namespacedObjects": [
            {
                "group": "",
                "resource": "configmaps",
                "apiVersion": "v1",
                "objectsByNamespace": [{"namespace": "commonstuff", "names": ["httpd-htdocs"]}],
            },
            {
                "group": "apps",
                "resource": "replicasets",
                "apiVersion": "v1",
                "objectsByNamespace": [{"namespace": "commonstuff", "names": ["commond"]}],
            },
        ],
        "upsync": sorted([GROUP1, GROUP2], key=_canon),
    }


def guilder_spec(with_common: bool = True) -> dict[str, Any]:
    configmaps = [{"namespace": "specialstuff", "names": ["httpd-htdocs"]}]
    if with_common:
        configmaps.insert(0, {"namespace": "commonstuff", "names": ["httpd-htdocs"]})
    namespaced: list[dict[str, Any]] = [
        {"group": "", "resource": "configmaps", "apiVersion": "v1", "objectsByNamespace": configmaps},
        {
            "group": "apps",
            "resource": "deployments",
            "apiVersion": "v1",
            "objectsByNamespace": [{"namespace": "specialstuff", "names": ["speciald"]}],
        },
    ]
    if with_common:
        namespaced.append(
            {
                "group": "apps",
                "resource": "replicasets",
                "apiVersion": "v1",
                "objectsByNamespace": [{"namespace": "commonstuff", "names": ["commond"]}],
            }
        )
    namespaced.append(
        {
            "group": "stable.example.com",
            "resource": "crontabs",
            "apiVersion": "v1",
            "objectsByNamespace": [{"namespace": "specialstuff", "names": ["my-new-cron-object"]}],
        }
    )
    return {
        "namespaceScope": {},
        "namespacedObjects": namespaced,
        "clusterScope": [
            {"group": "", "resource": "namespaces", "apiVersion": "v1", "objects": ["specialstuff"]},
            {
                "group": "apiextensions.k8s.io",
                "resource": "customresourcedefinitions",
                "apiVersion": "v1",
                "objects": ["crontabs.stable.example.com"],
            },
            {
                "group": "apiregistration.k8s.io",
                "resource": "apiservices",
                "apiVersion": "v1",
                "objects": ["v1090.example.my"],
            },
        ],
        "upsync": sorted([GROUP1, GROUP2, GROUP3] if with_common else [GROUP1, GROUP3], key=_canon),
    }


def _canon(d: dict[str, Any]) -> str:
    import json

    return json.dumps(d, sort_keys=True, separators=(",", ":"))


@pytest.fixture
def ex1(kcp_server: KcpServer, initialized: RestClient) -> Example1:
    ex = example1.setup(initialized)
    for loc in ("florin", "guilder"):
        example1.make_mailbox(initialized, ex, loc)
    example1.make_slice(initialized, ex, ex.wmw_c, "edge-placement-c", ["florin", "guilder"])
    example1.make_slice(initialized, ex, ex.wmw_s, "edge-placement-s", ["guilder"])
    return ex


def the_one(c: RestClient, ex: Example1, location: str) -> dict[str, Any] | None:
    obj = get(kcp.cluster(c, f"root:{ex.mailbox(location)}"), f"{EDGE}/syncerconfigs/the-one")
    return None if obj is None else obj.get("spec")


def test_example1_converges_and_repairs(
    kcp_server: KcpServer, initialized: RestClient, ex1: Example1
) -> None:
    c = initialized
    florin = kcp.cluster(c, f"root:{ex1.mailbox('florin')}")
    guilder = kcp.cluster(c, f"root:{ex1.mailbox('guilder')}")
    wmw_c = kcp.cluster(c, ex1.wmw_c)
    wmw_s = kcp.cluster(c, ex1.wmw_s)
    with running_translator(kcp_server):
        # A.5: the-one in each mailbox, exactly (sorted, decision 4).
        eventually("florin's the-one", lambda: the_one(c, ex1, "florin") == florin_spec())
        eventually("guilder's the-one", lambda: the_one(c, ex1, "guilder") == guilder_spec())

        # A.6: the copies, customized per destination.
        cm = eventually(
            "florin's configmap",
            lambda: get(florin, "/api/v1/namespaces/commonstuff/configmaps/httpd-htdocs"),
        )
        assert "Running in florin." in cm["data"]["index.html"]
        assert cm["metadata"]["labels"] == {"edge.kubestellar.io/projected": "yes"}
        assert "kubestellar.io/executing-count" not in cm["metadata"].get("annotations", {})
        rs = get(guilder, "/apis/apps/v1/namespaces/commonstuff/replicasets/commond")
        assert rs is not None
        assert rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "env is prod"
        dep = eventually(
            "guilder's deployment",
            lambda: get(guilder, "/apis/apps/v1/namespaces/specialstuff/deployments/speciald"),
        )
        assert dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "in prod env"
        gcm = get(guilder, "/api/v1/namespaces/specialstuff/configmaps/httpd-htdocs")
        assert (
            gcm is not None
            and "This is a special web site.\n    Running in guilder." in gcm["data"]["index.html"]
        )
        ns = get(guilder, "/api/v1/namespaces/specialstuff")
        assert ns is not None and ns["metadata"]["labels"]["special"] == "yes"
        assert ns["metadata"]["annotations"]["just-for"] == "fun"
        assert get(guilder, "/apis/stable.example.com/v1/namespaces/specialstuff/crontabs/my-new-cron-object")
        assert get(guilder, "/apis/apiregistration.k8s.io/v1/apiservices/v1090.example.my")
        assert get(florin, "/apis/apps/v1/namespaces/specialstuff/deployments/speciald") is None
        assert get(florin, "/api/v1/namespaces/commonstuff") is not None  # created bare

        # A.7: executing counts in the WMWs.
        def count(w: RestClient, path: str) -> str | None:
            obj = get(w, path) or {}
            return (obj.get("metadata", {}).get("annotations") or {}).get("kubestellar.io/executing-count")

        eventually(
            "counts", lambda: count(wmw_c, "/apis/apps/v1/namespaces/commonstuff/replicasets/commond") == "2"
        )
        eventually(
            "count 1",
            lambda: count(wmw_s, "/apis/apps/v1/namespaces/specialstuff/deployments/speciald") == "1",
        )
        rs_path = "/apis/apps/v1/namespaces/commonstuff/replicasets/commond"
        eventually(
            "count 2", lambda: count(wmw_c, "/api/v1/namespaces/commonstuff/configmaps/httpd-htdocs") == "2"
        )
        crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.stable.example.com"
        assert count(wmw_s, crd) is None

        # Singleton status return: the edge reports status on guilder's copy.
        path = "/apis/apps/v1/namespaces/specialstuff/deployments/speciald"
        mirror = get(guilder, path)
        assert mirror is not None
        mirror["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        # As the syncer would (kcp's maximal permission policy lets only the shard admin write it).
        kcp.cluster(kcp_server.client(kcp.ALLCLUSTERS_CONTEXT), f"root:{ex1.mailbox('guilder')}").update(
            f"{path}/status", mirror
        )
        eventually(
            "status returned", lambda: (get(wmw_s, path) or {}).get("status", {}).get("readyReplicas") == 1
        )

        # Placement status.
        ep = get(wmw_c, f"{EDGE}/edgeplacements/edge-placement-c") or {}
        conditions = {x["type"]: x for x in ep.get("status", {}).get("conditions", [])}
        assert conditions["Projected"]["status"] == "True"

        # Drift: an edited copy is restored, a deleted one re-created, mailbox-only labels kept.
        cm_path = "/api/v1/namespaces/commonstuff/configmaps/httpd-htdocs"
        edited = get(florin, cm_path) or {}
        edited["data"] = {"index.html": "tampered"}
        edited["metadata"]["labels"]["edge-only"] = "kept"
        florin.update(cm_path, edited)
        eventually(
            "drift repaired",
            lambda: "florin" in ((get(florin, cm_path) or {}).get("data") or {}).get("index.html", ""),
        )
        assert (get(florin, cm_path) or {})["metadata"]["labels"].get("edge-only") == "kept"
        florin.delete(cm_path)
        eventually("copy re-created", lambda: get(florin, cm_path) is not None)
        florin.delete(f"{EDGE}/syncerconfigs/the-one")
        eventually("the-one re-created", lambda: the_one(c, ex1, "florin") == florin_spec())

        # A source change propagates.
        src = get(wmw_c, cm_path) or {}
        src["data"]["extra"] = "new"
        wmw_c.update(cm_path, src)
        eventually(
            "update propagated", lambda: (get(guilder, cm_path) or {}).get("data", {}).get("extra") == "new"
        )

        # A.8: delete edge-placement-c (and its slice, as garbage collection would).
        wmw_c.delete(f"{EDGE}/edgeplacements/edge-placement-c")
        wmw_c.delete(f"{EDGE}/singleplacementslices/edge-placement-c")
        eventually("florin emptied", lambda: the_one(c, ex1, "florin") == {"namespaceScope": {}})
        eventually(
            "guilder keeps wmw-s", lambda: the_one(c, ex1, "guilder") == guilder_spec(with_common=False)
        )
        eventually("florin copy deleted", lambda: get(florin, cm_path) is None)
        assert get(guilder, "/apis/apps/v1/namespaces/commonstuff/replicasets/commond") is None
        assert get(florin, "/api/v1/namespaces/commonstuff") is not None  # namespaces stay
        # wmw-c has no placement left: none wants singleton state of its objects any more, so
        # their executing-count goes (it stayed at "2" on commond before).
        eventually("commond's count removed", lambda: count(wmw_c, rs_path) is None)
        assert count(wmw_c, cm_path) is None

    # A restart with nothing changed writes nothing (into this test's workspaces: other tests on
    # the shared server may have left bad input that is rightly retried).
    mine = [
        ex1.wmw_c_cluster,
        ex1.wmw_s_cluster,
        _mailbox_cluster(c, ex1, "florin"),
        _mailbox_cluster(c, ex1, "guilder"),
    ]
    WRITES.reset()
    with running_translator(kcp_server) as manager:
        eventually("ready", lambda: manager.ready()[0])
        import time

        time.sleep(5)
        writes = [(verb, url) for verb, url in WRITES.urls if any(f"/clusters/{m}/" in url for m in mine)]
        assert writes == [], writes


def _mailbox_cluster(c: RestClient, ex: Example1, location: str) -> str:
    return kcp.wait_workspace_ready(c, f"root:{ex.mailbox(location)}").cluster


def test_example1_writes_once_and_follows_changes(
    kcp_server: KcpServer, initialized: RestClient, ex1: Example1
) -> None:
    c = initialized
    clusters = {
        "florin": _mailbox_cluster(c, ex1, "florin"),
        "guilder": _mailbox_cluster(c, ex1, "guilder"),
        "wmw-c": ex1.wmw_c_cluster,
        "wmw-s": ex1.wmw_s_cluster,
    }
    guilder = kcp.cluster(c, f"root:{ex1.mailbox('guilder')}")
    florin = kcp.cluster(c, f"root:{ex1.mailbox('florin')}")
    wmw_s = kcp.cluster(c, ex1.wmw_s)
    WRITES.reset()
    with running_translator(kcp_server):
        eventually("florin", lambda: the_one(c, ex1, "florin") == florin_spec())
        eventually("guilder", lambda: the_one(c, ex1, "guilder") == guilder_spec())
        eventually("Projected", lambda: _projected(c, ex1.wmw_s, "edge-placement-s") == "True")
        eventually("Projected", lambda: _projected(c, ex1.wmw_c, "edge-placement-c") == "True")
        import time

        time.sleep(3)  # let stragglers (there must be none) happen before counting
        mine: dict[tuple[str, str, str], int] = {}
        for verb, url in WRITES.urls:
            where = next((k for k, v in clusters.items() if f"/clusters/{v}/" in url), None)
            if where is None:
                continue
            resource = url.split("?")[0].rstrip("/").split("/")
            kind = resource[-2] if resource[-1] == "status" else resource[-1]
            if verb in ("update", "patch", "delete"):
                kind = resource[-3] if resource[-1] == "status" else resource[-2]
            mine[(where, verb, kind)] = mine.get((where, verb, kind), 0) + 1
        # Each copy, each the-one and each implicit Namespace is written exactly once.
        assert mine == {
            ("florin", "create", "namespaces"): 1,
            ("florin", "create", "configmaps"): 1,
            ("florin", "create", "replicasets"): 1,
            ("florin", "create", "syncerconfigs"): 1,
            ("guilder", "create", "namespaces"): 2,
            ("guilder", "create", "configmaps"): 2,
            ("guilder", "create", "replicasets"): 1,
            ("guilder", "create", "deployments"): 1,
            ("guilder", "create", "crontabs"): 1,
            ("guilder", "create", "customresourcedefinitions"): 1,
            ("guilder", "create", "apiservices"): 1,
            ("guilder", "create", "syncerconfigs"): 1,
            # executing-count on the 2 + 5 selected sources, and one Projected condition each
            ("wmw-c", "patch", "configmaps"): 1,
            ("wmw-c", "patch", "replicasets"): 1,
            ("wmw-c", "patch", "edgeplacements"): 1,
            ("wmw-s", "patch", "configmaps"): 1,
            ("wmw-s", "patch", "deployments"): 1,
            ("wmw-s", "patch", "crontabs"): 1,
            ("wmw-s", "patch", "apiservices"): 1,
            ("wmw-s", "patch", "namespaces"): 1,
            ("wmw-s", "patch", "edgeplacements"): 1,
        }, mine

        # An upsync-only change of a placement reaches the-one.
        ep_path = f"{EDGE}/edgeplacements/edge-placement-s"
        ep = get(wmw_s, ep_path) or {}
        group4 = {"apiGroup": "group4.test", "resources": ["gears"], "names": ["*"]}
        wmw_s.patch(ep_path, {"spec": {"upsync": [*ep["spec"]["upsync"], group4]}})
        eventually(
            "upsync reaches the-one",
            lambda: group4 in ((the_one(c, ex1, "guilder") or {}).get("upsync") or []),
        )

        # A Namespace relabel moves the objects selected by namespaceSelectors out, and back in.
        dep = "/apis/apps/v1/namespaces/specialstuff/deployments/speciald"
        wmw_s.patch("/api/v1/namespaces/specialstuff", {"metadata": {"labels": {"special": "no"}}})
        eventually("moved out", lambda: get(guilder, dep) is None)
        assert get(guilder, "/apis/stable.example.com/v1/namespaces/specialstuff/crontabs/my-new-cron-object")
        wmw_s.patch("/api/v1/namespaces/specialstuff", {"metadata": {"labels": {"special": "yes"}}})
        eventually("moved back in", lambda: get(guilder, dep) is not None)

    # A stale projected copy left while the translator was down is removed after its restart,
    # whatever its resource.
    stale_cm = {"metadata": {"name": "stale", "labels": {"edge.kubestellar.io/projected": "yes"}}, "data": {}}
    florin.create("/api/v1/namespaces/commonstuff/configmaps", stale_cm)
    stale_secret = {"metadata": {"name": "stale", "labels": {"edge.kubestellar.io/projected": "yes"}}}
    florin.create("/api/v1/namespaces/commonstuff/secrets", stale_secret)
    kept = {"metadata": {"name": "not-ours"}, "data": {}}
    florin.create("/api/v1/namespaces/commonstuff/configmaps", kept)
    with running_translator(kcp_server):
        eventually(
            "stale configmap removed",
            lambda: get(florin, "/api/v1/namespaces/commonstuff/configmaps/stale") is None,
        )
        eventually(
            "stale secret removed",
            lambda: get(florin, "/api/v1/namespaces/commonstuff/secrets/stale") is None,
        )
        assert get(florin, "/api/v1/namespaces/commonstuff/configmaps/not-ours") is not None


def _projected(c: RestClient, wmw: str, name: str) -> str | None:
    ep = get(kcp.cluster(c, wmw), f"{EDGE}/edgeplacements/{name}") or {}
    types = {x["type"]: x["status"] for x in ep.get("status", {}).get("conditions", [])}
    return types.get("Projected")
