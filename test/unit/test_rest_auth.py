"""The Authorization header is computed once per AUTHORIZATION_TTL, not on every request (the
official client's token-refresh hook runs on every computation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pkg.runtime import rest
from pkg.runtime.kubeconfig import Endpoint, KubeconfigSource


def kubeconfig(path: Path, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_the_token_hook_runs_once_per_ttl_and_again_after_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kubeconfig(tmp_path / "kc", "one")
    client = rest.RestClient(KubeconfigSource(kubeconfig=str(path)).load())
    t = client._t
    assert t.endpoint.configuration.refresh_api_key_hook is not None  # set even for a static token
    calls: list[int] = []
    real = Endpoint.authorization

    def counting(self: Endpoint) -> str | None:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(Endpoint, "authorization", counting)
    now = [1000.0]
    monkeypatch.setattr(rest.time, "monotonic", lambda: now[0])
    for _ in range(100):
        assert t.headers()["Authorization"] == "Bearer one"
    assert len(calls) == 1
    now[0] += rest.AUTHORIZATION_TTL + 0.1
    t.headers()
    assert len(calls) == 2  # recomputed once the TTL is over

    kubeconfig(path, "two")  # kcp restarted with a new token; a 401 reloads the kubeconfig
    t.reload(t.generation)
    assert t.headers()["Authorization"] == "Bearer two"
