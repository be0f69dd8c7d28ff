"""API discovery per endpoint (a logical cluster), cached until invalidated.

:meth:`Discovery.resources` answers, for one endpoint, every resource it serves with its kind,
scope, verbs and served versions (subresources excluded), and each group's preferred version.  The
answer is cached; :meth:`invalidate` drops it (callers do so when CRDs or APIBindings change, and
when a resource they expected is missing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apis.machinery.resource import ResourceInfo
from apis.machinery.resource import group_version_path as group_version_path
from pkg.runtime.rest import ApiError, RestClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class APIResource:
    group: str
    resource: str
    kind: str
    namespaced: bool
    versions: tuple[str, ...]  # served, in the server's order of preference
    preferred: str
    verbs: frozenset[str] = field(default_factory=frozenset)

    def path(self, version: str | None = None, namespace: str | None = None) -> str:
        """The collection path, e.g. ``/apis/apps/v1/namespaces/ns/deployments``."""
        info = ResourceInfo(self.group, version or self.preferred, self.resource, self.kind, self.namespaced)
        return info.path(namespace=namespace if self.namespaced else None)

    @property
    def listable(self) -> bool:
        return {"list", "watch"} <= self.verbs


class Discovery:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, dict[tuple[str, str], APIResource]] = {}

        self._served: dict[tuple[str, str, str], frozenset[str]] = {}  # (prefix, group, version)

    def invalidate(self, client: RestClient) -> None:
        with self._lock:
            self._cache.pop(client.prefix, None)
            for key in [k for k in self._served if k[0] == client.prefix]:
                del self._served[key]

    def serves(self, client: RestClient, group: str, version: str, resource: str) -> bool:
        """Whether the endpoint serves ``resource`` at ``group/version`` (one GET per group-version,
        cached; a resource found missing is asked about again next time)."""
        key = (client.prefix, group, version)
        with self._lock:
            known = self._served.get(key)
        if known is not None and resource in known:
            return True
        try:
            listing = client.get(group_version_path(group, version)) or {}
        except ApiError as e:
            if e.status in (403, 404, 503):
                return False
            raise
        names = frozenset(str(r.get("name", "")) for r in listing.get("resources") or [])
        with self._lock:
            self._served[key] = names
        return resource in names

    def resources(self, client: RestClient) -> Mapping[tuple[str, str], APIResource]:
        """(group, resource) -> APIResource for the endpoint of ``client``."""
        with self._lock:
            cached = self._cache.get(client.prefix)
        if cached is not None:
            return cached
        found = discover(client.get)
        with self._lock:
            self._cache[client.prefix] = found
        return found

    def find(self, client: RestClient, group: str, resource: str) -> APIResource | None:
        return self.resources(client).get((group, resource))


def discover(get: Callable[[str], Any]) -> dict[tuple[str, str], APIResource]:
    """Run discovery with ``get(path) -> JSON``; group-versions that fail are skipped and logged."""
    groups: list[tuple[str, list[str], str]] = []
    core = get("/api") or {}
    for v in core.get("versions") or []:
        groups.append(("", [v], v))
    for g in (get("/apis") or {}).get("groups") or []:
        versions = [str(v["version"]) for v in g.get("versions") or []]
        preferred = str((g.get("preferredVersion") or {}).get("version") or (versions[0] if versions else ""))
        groups.append((str(g.get("name", "")), versions, preferred))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for group, versions, preferred in groups:
        for version in versions:
            try:
                listing = get(group_version_path(group, version)) or {}
            except ApiError as e:
                log.info("discovery skipped group=%s version=%s err=%s", group, version, e.status)
                continue
            for r in listing.get("resources") or []:
                name = str(r.get("name", ""))
                if "/" in name:
                    continue  # subresource
                entry = found.setdefault(
                    (group, name),
                    {
                        "kind": r.get("kind", ""),
                        "namespaced": bool(r.get("namespaced")),
                        "versions": [],
                        "preferred": preferred,
                        "verbs": set(),
                    },
                )
                entry["versions"].append(version)
                entry["verbs"].update(r.get("verbs") or [])
    out: dict[tuple[str, str], APIResource] = {}
    for (group, name), entry in found.items():
        preferred = entry["preferred"] if entry["preferred"] in entry["versions"] else entry["versions"][0]
        out[(group, name)] = APIResource(
            group=group,
            resource=name,
            kind=str(entry["kind"]),
            namespaced=bool(entry["namespaced"]),
            versions=tuple(entry["versions"]),
            preferred=preferred,
            verbs=frozenset(entry["verbs"]),
        )
    return out
