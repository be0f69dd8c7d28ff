"""Resource metadata and the one builder of API paths (lightkube's ``ApiInfo``, client-go's
``RESTClient`` path rules), with kcp's logical-cluster prefix.

A :class:`ResourceInfo` names a resource (group, version, plural, kind, scope, subresources); its
:meth:`~ResourceInfo.path` gives every URL path a client needs::

    /apis/<group>/<version>/<plural>                                  all objects (all namespaces)
    /apis/<group>/<version>/namespaces/<ns>/<plural>                  one namespace's collection
    /apis/<group>/<version>[/namespaces/<ns>]/<plural>/<name>[/<sub>]  one object or subresource

(``/api/v1`` for the core group), each behind ``/clusters/<cluster>`` when a logical cluster is
given.  Paths are relative to the client's URL prefix, so the same path works on a server's base
URL and on an APIExport virtual workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def cluster_prefix(cluster: str) -> str:
    """The path prefix of a kcp logical cluster, given its name, its workspace path
    (``root:wmw1``) or ``*`` (the wildcard that lists and watches across clusters)."""
    return f"/clusters/{cluster}"


def group_version_path(group: str, version: str) -> str:
    """``/apis/<group>/<version>``, or ``/api/<version>`` for the core group (``""``)."""
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


@dataclass(frozen=True)
class ResourceInfo:
    """One resource of one API group version.

    Invariants: ``plural`` and ``kind`` are non-empty; a cluster-scoped resource never takes a
    namespace (:meth:`path` raises ``ValueError``), and only subresources listed in
    ``subresources`` are addressed.
    """

    group: str
    """The API group; ``""`` for the core group."""
    version: str
    plural: str
    """The lowercase plural resource name (``edgeplacements``)."""
    kind: str
    namespaced: bool = False
    subresources: frozenset[str] = field(default=frozenset())
    """The subresources the resource serves, e.g. ``{"status"}``."""

    @property
    def api_version(self) -> str:
        """``<group>/<version>``, or ``<version>`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``<plural>.<group>`` (kubectl's fully qualified resource name), or ``<plural>``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def path(
        self,
        cluster: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of the collection (no ``name``) or of one object or its subresource.

        ``cluster`` prefixes kcp's ``/clusters/<cluster>``; ``namespace`` (namespaced resources
        only) narrows the collection or names the object's namespace; a namespaced resource without
        ``namespace`` gives the all-namespaces collection.
        """
        if namespace and not self.namespaced:
            raise ValueError(f"{self.group_resource} is cluster-scoped; it has no namespace {namespace!r}")
        if subresource is not None:
            if name is None:
                raise ValueError(f"subresource {subresource!r} of {self.group_resource} needs a name")
            if subresource not in self.subresources:
                raise ValueError(f"{self.group_resource} has no subresource {subresource!r}")
        path = cluster_prefix(cluster) if cluster else ""
        path += group_version_path(self.group, self.version)
        if namespace:
            path += f"/namespaces/{namespace}"
        path += f"/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError(f"an object of {self.group_resource} needs a non-empty name")
            path += f"/{name}"
            if subresource is not None:
                path += f"/{subresource}"
        return path
