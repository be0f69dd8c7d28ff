"""Typed, cluster-aware REST clients for one resource (client-go's typed clientsets, addressed
as kcp needs).

A client sends JSON through a :class:`Transport` (anything with the six methods below; the
runtime's ``pkg.runtime.rest.RestClient`` is one, bound to a server, a logical cluster or an
APIExport virtual workspace) and returns model instances.  ``.cluster(name)`` gives the same client
addressing ``/clusters/<name>/...`` under the transport's prefix, as kcp's cluster-aware
clientsets do with ``Cluster(path)``; without it, paths are relative to the transport's prefix
(which may itself be a logical cluster).  Paths come from the resource's
:class:`~apis.machinery.resource.ResourceInfo`, never from string building at the call site.

Objects are written as ``model_dump(by_alias=True, exclude_unset=True, mode="json")``: exactly the
fields that were read or set, so a read-modify-write keeps what the model does not know about
metadata, and nothing the caller did not set is sent.  Errors are the transport's (an
``ApiError`` from ``RestClient``); an answer the model rejects (an object the CRD's schema
admits but the model does not, e.g. a time in year 0) raises ``pydantic.ValidationError``, after
the server has done the request.

The generated ``apis/edge/v2alpha1/client.py`` has one subclass per resource, with
``apply_status`` where the CRD has a status subresource.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel

from apis.machinery.meta import name_of, namespace_of
from apis.machinery.resource import ResourceInfo

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

M = TypeVar("M", bound=BaseModel)


class Transport(Protocol):
    """The JSON requests a typed client needs (``pkg.runtime.rest.RestClient`` satisfies it)."""

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any: ...

    def create(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any: ...

    def update(self, path: str, body: Any) -> Any: ...

    def patch(self, path: str, body: Any, content_type: str = ..., **params: Any) -> Any: ...

    def apply(self, path: str, body: Any, field_manager: str, force: bool = True) -> Any: ...

    def delete(self, path: str, body: Any = None) -> Any: ...


def dump(obj: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a model (what was read or set, by JSON name) or of a mapping as it is."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return dict(obj)


class _ResourceClient(Generic[M]):
    RESOURCE: ClassVar[ResourceInfo]
    """The resource addressed (set by each generated subclass)."""
    MODEL: ClassVar[type[BaseModel]]
    """The model class of the resource (set by each generated subclass)."""

    def __init__(self, transport: Transport, cluster: str | None = None) -> None:
        self.transport = transport
        self.logical_cluster = cluster or None
        """The kcp logical cluster (name or workspace path) addressed, or ``None``: the transport's prefix."""

    def cluster(self, cluster: str) -> Self:
        """This client addressing logical cluster ``cluster`` (``/clusters/<cluster>/...``)."""
        return type(self)(self.transport, cluster)

    def _decode(self, data: Any) -> M:
        obj: M = self.MODEL.model_validate(data)  # type: ignore[assignment]
        return obj

    def _path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        return self.RESOURCE.path(self.logical_cluster, namespace or None, name, sub)

    def _list(
        self,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        limit: int | None,
    ) -> builtins.list[M]:
        params: dict[str, Any] = {
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "limit": limit,
        }
        items: builtins.list[M] = []
        path = self._path(namespace)
        while True:
            page = self.transport.get(path, params) or {}
            kind = str(page.get("kind") or "").removesuffix("List")
            api_version = page.get("apiVersion")
            for item in page.get("items") or ():
                if kind and "kind" not in item:
                    item["kind"] = kind
                if api_version and "apiVersion" not in item:
                    item["apiVersion"] = api_version
                items.append(self._decode(item))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params = {**params, "continue": token}

    def _create(self, obj: M | Mapping[str, Any], namespace: str | None) -> M:
        return self._decode(self.transport.create(self._path(namespace), dump(obj)))

    def _update(self, obj: M | Mapping[str, Any], namespace: str | None, sub: str | None = None) -> M:
        return self._decode(self.transport.update(self._path(namespace, _name(obj), sub), dump(obj)))

    def _apply_status(
        self,
        namespace: str | None,
        name: str,
        status: BaseModel | Mapping[str, Any],
        field_manager: str,
        force: bool,
    ) -> M:
        body: dict[str, Any] = {
            "apiVersion": self.RESOURCE.api_version,
            "kind": self.RESOURCE.kind,
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "status": dump(status),
        }
        path = self._path(namespace, name, "status")
        return self._decode(self.transport.apply(path, body, field_manager, force))


def _name(obj: BaseModel | Mapping[str, Any]) -> str:
    name = name_of(obj if isinstance(obj, BaseModel) else dict(obj))
    if not name:
        raise ValueError("the object has no metadata.name")
    return name


def _namespace(obj: BaseModel | Mapping[str, Any], namespace: str | None) -> str:
    ns = namespace or namespace_of(obj if isinstance(obj, BaseModel) else dict(obj))
    if not ns:
        raise ValueError("a namespaced object needs metadata.namespace (or a namespace argument)")
    return ns


class ClusterScopedClient(_ResourceClient[M]):
    """Create, read, list, update, patch, apply and delete objects of a cluster-scoped resource."""

    def create(self, obj: M | Mapping[str, Any]) -> M:
        """Create ``obj``; return it as the server stored it."""
        return self._create(obj, None)

    def get(self, name: str) -> M:
        return self._decode(self.transport.get(self._path(None, name)))

    def list(
        self,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[M]:
        """Every object (following ``continue`` tokens, ``limit`` per page), as models."""
        return self._list(None, label_selector, field_selector, limit)

    def update(self, obj: M | Mapping[str, Any]) -> M:
        """Replace ``obj`` (``metadata.resourceVersion`` makes it conditional, as in Kubernetes)."""
        return self._update(obj, None)

    def patch(self, name: str, patch: Any, content_type: str = MERGE_PATCH) -> M:
        """Patch ``name`` (a merge patch by default; a list of operations for a JSON patch)."""
        return self._decode(self.transport.patch(self._path(None, name), patch, content_type))

    def apply(self, obj: M | Mapping[str, Any], field_manager: str, force: bool = True) -> M:
        """Server-side apply ``obj`` (the fields it sets) as ``field_manager``."""
        body = dump(obj)
        return self._decode(self.transport.apply(self._path(None, _name(obj)), body, field_manager, force))

    def delete(self, name: str) -> None:
        self.transport.delete(self._path(None, name))


class NamespacedClient(_ResourceClient[M]):
    """Create, read, list, update, patch, apply and delete objects of a namespaced resource."""

    def create(self, obj: M | Mapping[str, Any], namespace: str | None = None) -> M:
        """Create ``obj`` in ``namespace`` (default: its ``metadata.namespace``)."""
        return self._create(obj, _namespace(obj, namespace))

    def get(self, namespace: str, name: str) -> M:
        return self._decode(self.transport.get(self._path(namespace, name)))

    def list(
        self,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[M]:
        """The objects of ``namespace`` (``None``: all namespaces), as models."""
        return self._list(namespace, label_selector, field_selector, limit)

    def update(self, obj: M | Mapping[str, Any]) -> M:
        return self._update(obj, _namespace(obj, None))

    def patch(self, namespace: str, name: str, patch: Any, content_type: str = MERGE_PATCH) -> M:
        return self._decode(self.transport.patch(self._path(namespace, name), patch, content_type))

    def apply(self, obj: M | Mapping[str, Any], field_manager: str, force: bool = True) -> M:
        path = self._path(_namespace(obj, None), _name(obj))
        return self._decode(self.transport.apply(path, dump(obj), field_manager, force))

    def delete(self, namespace: str, name: str) -> None:
        self.transport.delete(self._path(namespace, name))
