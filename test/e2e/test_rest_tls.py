"""The REST client's TLS on kcp: one context per transport, sessions resumed, verification kept."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import urllib3
import yaml

from pkg.runtime.kubeconfig import KubeconfigSource
from pkg.runtime.rest import RestClient
from test.e2e.kcpserver import KcpServer

SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


def _pooled_socket(client: RestClient) -> ssl.SSLSocket:
    pool = client._t.pool.connection_from_url(client.endpoint.server)
    conn = pool.pool.queue[-1]  # type: ignore[union-attr]
    sock = conn.sock
    assert isinstance(sock, ssl.SSLSocket)
    return sock


def test_new_connections_resume_the_session_and_verify_the_server(kcp_server: KcpServer) -> None:
    client = RestClient(KubeconfigSource(kubeconfig=str(kcp_server.kubeconfig)).load())
    reused = []
    for _ in range(3):
        assert client.get("/api")["kind"] == "APIVersions"
        sock = _pooled_socket(client)
        reused.append(sock.session_reused)
        assert sock.getpeercert(), "the peer certificate is still there to check the hostname against"
        client._t.pool.clear()  # the next request opens a new connection
    assert reused == [False, True, True]


@pytest.mark.skipif(not SYSTEM_CAS.exists(), reason=f"no CA bundle at {SYSTEM_CAS}")
def test_a_server_the_ca_did_not_sign_is_refused(kcp_server: KcpServer, tmp_path: Path) -> None:
    doc = yaml.safe_load(kcp_server.kubeconfig.read_text())
    for cluster in doc["clusters"]:
        cluster["cluster"].pop("insecure-skip-tls-verify", None)
        cluster["cluster"]["certificate-authority-data"] = base64.b64encode(SYSTEM_CAS.read_bytes()).decode()
    wrong = tmp_path / "wrong-ca.kubeconfig"
    wrong.write_text(yaml.safe_dump(doc))
    good = RestClient(KubeconfigSource(kubeconfig=str(kcp_server.kubeconfig)).load())
    assert good.get("/api")["kind"] == "APIVersions"
    bad = RestClient(KubeconfigSource(kubeconfig=str(wrong)).load())
    for _ in range(2):  # the first connection and a later one alike
        with pytest.raises(urllib3.exceptions.SSLError):
            bad.get("/api")
