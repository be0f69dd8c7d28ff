"""prep-for-syncer's pure parts: names, the IMW argument, and the edge manifest."""

from __future__ import annotations

import re

import pytest
import yaml

from pkg import syncerprep
from pkg.bootstrap import BootstrapError

UID = "5ae2d22f-ef2c-406b-9604-f52da291fd40"


def test_base36_is_the_big_endian_number() -> None:
    # martinlindhe/base36's documented example, lowercased as upstream's syncer_gen does.
    assert syncerprep._base36(bytes([1, 2, 3, 4])) == "a2f44"
    assert syncerprep._base36(b"") == "0"


def test_syncer_id_depends_on_name_and_uid_only() -> None:
    sid = syncerprep.syncer_id("florin", UID)
    assert re.fullmatch(r"kubestellar-syncer-florin-[0-9a-z]{8}", sid)
    assert sid == syncerprep.syncer_id("florin", UID)
    assert sid != syncerprep.syncer_id("florin", UID.replace("5", "6"))
    assert syncerprep.syncer_id("guilder", UID).endswith(sid[-8:])


@pytest.mark.parametrize(
    ("given", "path"), [("imw1", "root:imw1"), ("root:imw1", "root:imw1"), ("root:a:b", "root:a:b")]
)
def test_imw_takes_a_name_or_a_root_path(given: str, path: str) -> None:
    assert syncerprep.imw_path(given) == path


@pytest.mark.parametrize("bad", ["", "Imw", "root:", "root:a:", "a:b", "-x"])
def test_imw_rejects_bad_names(bad: str) -> None:
    with pytest.raises(BootstrapError):
        syncerprep.imw_path(bad)


def _manifest(ca: str | None = "Q0E=") -> list[dict[str, object]]:
    sid = syncerprep.syncer_id("florin", UID)
    return syncerprep.edge_manifest(
        sync_target="florin",
        uid=UID,
        syncer_id=sid,
        server="https://127.0.0.1:6443",
        ca_data=ca,
        token="tok",
        image="example.com/syncer:test",
    )


def test_manifest_objects_and_deployment() -> None:
    docs = yaml.safe_load_all(syncerprep.dump_yaml(_manifest()))
    docs_list = list(docs)
    sid = syncerprep.syncer_id("florin", UID)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs_list]
    assert kinds == [
        ("Namespace", sid),
        ("ServiceAccount", sid),
        ("Secret", f"{sid}-token"),
        ("ClusterRole", sid),
        ("ClusterRoleBinding", sid),
        ("Secret", sid),
        ("Deployment", sid),
    ]
    assert all(d["metadata"].get("namespace", sid) == sid for d in docs_list)
    dep = docs_list[-1]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "example.com/syncer:test"
    assert container["command"] == ["/ko-app/syncer"]
    assert container["args"] == [
        "--from-kubeconfig=/kubestellar/kubeconfig",
        "--sync-target-name=florin",
        f"--sync-target-uid={UID}",
        "--qps=20",
        "--burst=30",
        "--v=3",
    ]
    assert pod["serviceAccountName"] == sid
    assert pod["volumes"][0]["secret"]["secretName"] == sid
    assert dep["spec"]["selector"]["matchLabels"] == dep["spec"]["template"]["metadata"]["labels"]


def test_manifest_kubeconfig_points_at_the_server_without_a_cluster_path() -> None:
    kc = syncerprep.manifest_kubeconfig(list(yaml.safe_load_all(syncerprep.dump_yaml(_manifest()))))
    (cluster,) = kc["clusters"]
    assert cluster["cluster"] == {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="}
    assert kc["users"][0]["user"] == {"token": "tok"}
    assert kc["contexts"][0]["context"]["namespace"] == "default"
    insecure = syncerprep.manifest_kubeconfig(_manifest(ca=None))
    assert insecure["clusters"][0]["cluster"]["insecure-skip-tls-verify"] is True


def test_manifest_without_kubeconfig_is_an_error() -> None:
    with pytest.raises(syncerprep.PrepError):
        syncerprep.manifest_kubeconfig(_manifest()[:5])
