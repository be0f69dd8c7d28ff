"""Where a connection's credentials come from: kubeconfig flag triplets, as in client-go.

A :class:`KubeconfigSource` names a kubeconfig file (flag, then ``$KUBECONFIG``, then
``~/.kube/config``) and optional context / cluster / user overrides.  :meth:`load` turns it into
an :class:`Endpoint` (server URL plus a ``kubernetes.client.Configuration`` holding TLS material and
credentials).  The file is read again on every :meth:`load`, which is how a client recovers when kcp
restarts and issues a new admin token.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import Configuration
from kubernetes.config import ConfigException
from kubernetes.config.kube_config import load_kube_config_from_dict


class KubeconfigError(Exception):
    """The kubeconfig is missing, unreadable or does not name what was asked for."""


@dataclass(frozen=True)
class KubeconfigSource:
    """One connection's kubeconfig flags (``--X-kubeconfig``, ``--X-context``, ...)."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None

    def path(self) -> Path:
        if self.kubeconfig:
            return Path(self.kubeconfig).expanduser()
        env = os.environ.get("KUBECONFIG")
        if env:
            # Like kubectl we merge nothing: the first existing file of the list is used.
            for part in env.split(os.pathsep):
                if part and Path(part).expanduser().exists():
                    return Path(part).expanduser()
            return Path(env.split(os.pathsep)[0]).expanduser()
        return Path("~/.kube/config").expanduser()

    def with_defaults(self, other: KubeconfigSource) -> KubeconfigSource:
        """Fill the fields this source leaves unset from ``other``."""
        return replace(
            self,
            kubeconfig=self.kubeconfig or other.kubeconfig,
            context=self.context or other.context,
            cluster=self.cluster or other.cluster,
            user=self.user or other.user,
        )

    def load(self) -> Endpoint:
        path = self.path()
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as e:
            raise KubeconfigError(f"cannot read kubeconfig {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {e}") from e
        if not isinstance(raw, dict):
            raise KubeconfigError(f"kubeconfig {path} is not a kubeconfig")
        return endpoint_from_dict(raw, self)


@dataclass(frozen=True)
class Endpoint:
    """A server URL and what it takes to talk to it."""

    server: str
    configuration: Configuration
    source: KubeconfigSource | None = None

    def authorization(self) -> str | None:
        """The Authorization header value, from the configuration's auth settings."""
        setting = self.configuration.auth_settings().get("BearerToken")
        return str(setting["value"]) if setting and setting.get("value") else None


def _named(items: Any, name: str, what: str, path: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    raise KubeconfigError(f"kubeconfig {path} has no {what} named {name!r}")


def endpoint_from_dict(raw: dict[str, Any], source: KubeconfigSource) -> Endpoint:
    """Resolve ``source``'s context/cluster/user overrides inside kubeconfig ``raw``."""
    where = source.kubeconfig or "in use"
    doc = copy.deepcopy(raw)
    context_name = source.context or doc.get("current-context")
    if not context_name:
        raise KubeconfigError(f"kubeconfig {where} has no current-context and no context was given")
    context = _named(doc.get("contexts"), context_name, "context", where)
    ctx = context.setdefault("context", {})
    if source.cluster:
        _named(doc.get("clusters"), source.cluster, "cluster", where)
        ctx["cluster"] = source.cluster
    if source.user:
        _named(doc.get("users"), source.user, "user", where)
        ctx["user"] = source.user
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", where)
    server = str(cluster.get("cluster", {}).get("server", ""))
    if not server:
        raise KubeconfigError(f"cluster {ctx.get('cluster')!r} in kubeconfig {where} has no server")
    configuration = Configuration()
    try:
        load_kube_config_from_dict(  # type: ignore[no-untyped-call]
            doc,
            context=context_name,
            client_configuration=configuration,
            persist_config=False,
            temp_file_path=None,
        )
    except ConfigException as e:
        raise KubeconfigError(f"kubeconfig {where}, context {context_name!r}: {e}") from e
    return Endpoint(server=server.rstrip("/"), configuration=configuration, source=source)
