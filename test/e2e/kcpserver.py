"""A kcp server for tests, started and stopped through hack/kcp.sh."""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pkg.runtime import kcp
from pkg.runtime.kubeconfig import KubeconfigSource
from pkg.runtime.rest import RestClient, WriteCounter

REPO = Path(__file__).resolve().parents[2]
KCP_SH = REPO / "hack" / "kcp.sh"


class KcpUnavailable(RuntimeError):
    """kcp could not be built or started: the tests that need it fail (never skip)."""


def kcp_sh(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(
        [str(KCP_SH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise KcpUnavailable(
            f"hack/kcp.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return proc.stdout.strip()


@dataclass
class KcpServer:
    """One kcp process with root directory ``dir``."""

    dir: Path
    extra_args: str = ""
    writes: WriteCounter = field(default_factory=WriteCounter)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    @property
    def log(self) -> Path:
        return self.dir / "kcp.log"

    def start(self) -> KcpServer:
        kcp_sh("start", str(self.dir), env={"KCP_EXTRA_ARGS": self.extra_args} if self.extra_args else None)
        return self

    def stop(self) -> None:
        kcp_sh("stop", str(self.dir))

    def running(self) -> bool:
        pid = self.dir / "kcp.pid"
        if not pid.exists():
            return False
        try:
            os.kill(int(pid.read_text()), 0)
        except (OSError, ValueError):
            return False
        return True

    def source(self, context: str = kcp.BASE_CONTEXT) -> KubeconfigSource:
        return KubeconfigSource(kubeconfig=str(self.kubeconfig), context=context)

    def client(self, context: str = kcp.BASE_CONTEXT, writes: WriteCounter | None = None) -> RestClient:
        """An admin client at the server's root (``base`` context)."""
        endpoint = self.source(context).load()
        return RestClient(endpoint, kcp.server_origin(endpoint.server), writes=writes or self.writes)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
