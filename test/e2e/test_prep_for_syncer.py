"""`python -m cmd.kubestellar prep-for-syncer` on the shared kcp: errors, waiting, idempotence.

The whole edge path (controllers, manifests applied at an edge, the credentials used) is in
test/e2e/edge; here the mailbox is made by hand, as the mailbox controller would make it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from pkg import bootstrap, syncerprep
from pkg.runtime import kcp
from pkg.runtime.rest import RestClient
from test.e2e import example1
from test.e2e.example1 import EDGE, Example1
from test.e2e.kcpserver import REPO, KcpServer, unique


def prep(server: KcpServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cmd.kubestellar",
            "prep-for-syncer",
            "--kubeconfig",
            str(server.kubeconfig),
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prep_for_syncer_cli(kcp_server: KcpServer, initialized: RestClient, tmp_path: Path) -> None:
    c = initialized
    imw = unique("imw")
    bootstrap.ensure_location(c, "florin", {"env": "prod"}, imw=imw)

    unknown = prep(kcp_server, "nosuch", "--imw", imw)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        f"kubestellar: error: SyncTarget 'nosuch' not found in root:{imw}"
    ]
    no_imw = prep(kcp_server, "florin", "--imw", unique("imw"))
    assert no_imw.returncode == 1 and "does not exist" in no_imw.stderr and "Traceback" not in no_imw.stderr

    # No mailbox controller runs here: prep-for-syncer waits, says so, and gives up at the timeout.
    out = tmp_path / "florin-syncer.yaml"
    waited = prep(kcp_server, "florin", "--imw", f"root:{imw}", "--timeout", "4", "-o", str(out))
    assert waited.returncode == 1, waited.stderr
    assert "waiting for mailbox workspace" in waited.stderr
    assert "timed out after 4s" in waited.stderr and "is the mailbox controller running?" in waited.stderr
    assert "Traceback" not in waited.stderr and not out.exists()

    imw_ws = kcp.wait_workspace_ready(c, f"root:{imw}")
    st = kcp.cluster(c, imw_ws.path).get(f"{EDGE}/synctargets/florin")
    ex = Example1(imw_ws.path, imw_ws.cluster, "", "", "", "", "", sync_targets={"florin": st})
    mailbox = example1.make_mailbox(c, ex, "florin")

    first = prep(kcp_server, "florin", "--imw", imw, "-o", str(out))
    assert first.returncode == 0, first.stderr
    assert "5 object(s) written" in first.stderr
    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    sid = syncerprep.syncer_id("florin", st["metadata"]["uid"])
    assert [d["kind"] for d in docs] == [
        "Namespace",
        "ServiceAccount",
        "Secret",
        "ClusterRole",
        "ClusterRoleBinding",
        "Secret",
        "Deployment",
    ]
    mb = kcp.cluster(c, mailbox)
    esc = mb.get(f"{EDGE}/edgesyncconfigs/florin")
    for path in (
        f"/api/v1/namespaces/default/serviceaccounts/{sid}",
        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{sid}",
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{sid}",
        f"/api/v1/namespaces/default/secrets/{sid}-token",
    ):
        obj = mb.get(path)
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [esc["metadata"]["uid"]], path

    # A second run finds everything in place and writes the same manifest.
    again = prep(kcp_server, "florin", "--imw", imw, "-o", "-")
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stderr
    assert again.stdout == out.read_text()

    # A ClusterRole edited by hand is restored.
    mb.patch(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{sid}", {"rules": []})
    repaired = prep(kcp_server, "florin", "--imw", imw, "-o", str(out))
    assert "1 object(s) written" in repaired.stderr, repaired.stderr
    assert len(mb.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{sid}")["rules"]) == 2
