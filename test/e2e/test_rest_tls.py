"""The REST client's TLS on kcp: one context per transport, sessions resumed, verification kept."""

from __future__ import annotations

import base64
import ssl
import threading
import time
from pathlib import Path

import pytest
import urllib3
import yaml

from pkg.runtime.kubeconfig import KubeconfigSource
from pkg.runtime.rest import RestClient, _Resumption
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


def test_a_session_is_read_only_by_the_thread_reading_its_connection(
    kcp_server: KcpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL replaces a connection's session as a TLS 1.3 ticket arrives, during a read; another
    thread reading that session meanwhile can get a ticket without its secret (the server refuses
    the next handshake offering it, ``decrypt error``) or a freed one.  A watch is left blocked in
    a read on one thread while another opens new connections: no session of a connection is read
    while a different thread is inside a read of it, and the new connections still resume."""
    client = RestClient(KubeconfigSource(kubeconfig=str(kcp_server.kubeconfig)).load())
    cls = client._t.pool.connection_pool_kw["ssl_context"].sslsocket_class
    reading: dict[int, int] = {}  # id(socket) -> the thread inside a read of it
    crossed: list[str] = []
    read, session = cls.read, ssl.SSLSocket.session

    def tracked_read(self: ssl.SSLSocket, *args: object, **kwargs: object) -> object:
        reading[id(self)] = threading.get_ident()
        try:
            return read(self, *args, **kwargs)
        finally:
            reading.pop(id(self), None)

    def tracked_session(self: ssl.SSLSocket) -> object:
        reader = reading.get(id(self))
        if reader is not None and reader != threading.get_ident():
            crossed.append(f"thread {threading.get_ident()} read a session thread {reader} reads")
        return session.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(cls, "read", tracked_read)
    monkeypatch.setattr(cls, "session", property(tracked_session))
    started = threading.Event()

    def watch() -> None:
        for _ in client.stream("/api/v1/namespaces", {"watch": "true", "timeoutSeconds": 4}, read_timeout=10):
            started.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert started.wait(10), "the watch listed the namespaces"
    time.sleep(0.3)  # the watcher is blocked in a read now
    reused = []
    for _ in range(3):
        assert client.get("/api")["kind"] == "APIVersions"  # a new connection: the watch holds the other
        reused.append(_pooled_socket(client).session_reused)
        client._t.pool.clear()
    watcher.join(15)
    assert crossed == []
    assert reused[1:] == [True, True]


def test_a_refused_resumption_is_forgotten_and_the_request_sent_over_a_full_handshake(
    kcp_server: KcpServer,
) -> None:
    """The server's refusal of an offered session is played by failing the first handshake that
    offers one (kcp itself declines a ticket it cannot read by a full handshake, never an error):
    the request is sent once more over a full handshake, and the session is not offered again."""
    client = RestClient(KubeconfigSource(kubeconfig=str(kcp_server.kubeconfig)).load())
    assert client.get("/api")["kind"] == "APIVersions"
    resumption = client._t.pool.connection_pool_kw["ssl_context"].wrap_socket.__self__
    assert isinstance(resumption, _Resumption) and resumption._session is not None
    client._t.pool.clear()
    real, offered = resumption._wrap, []

    def refusing(sock: object, *args: object, **kwargs: object) -> ssl.SSLSocket:
        offered.append(kwargs.get("session") is not None)
        if len(offered) == 1:
            raise ssl.SSLError(1, "[SSL: TLSV1_ALERT_DECRYPT_ERROR] tlsv1 alert decrypt error")
        return real(sock, *args, **kwargs)  # type: ignore[no-any-return]

    resumption._wrap = refusing  # type: ignore[method-assign]
    assert client.get("/api")["kind"] == "APIVersions"
    assert offered == [True, False]
    assert not _pooled_socket(client).session_reused
