"""Object identity for decoded-JSON dicts and generated models alike, and the cluster-aware key.

An informer's cache holds either plain dicts (the decoded JSON) or instances of a generated
model (:class:`apis.edge.v2alpha1.KubeObject`, whose ``metadata`` is an ``ObjectMeta`` model).
The functions here read the few metadata fields that keys and indexes need from either form, so
one key function and one set of index functions serve both.  The dict branch comes first and does
exactly what the dict-only code did, so dict caches pay nothing for the model support.

Keys are kcp's cluster-aware form of client-go's ``MetaNamespaceKeyFunc``:
``[<cluster>|][<namespace>/]<name>``, where the cluster is the object's ``kcp.io/cluster``
annotation (set by kcp on every object it serves).  Names, namespaces and cluster names contain
neither ``|`` nor ``/``, so :func:`split_key` inverts :func:`make_key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CLUSTER_ANNOTATION = "kcp.io/cluster"
"""The annotation in which kcp names the logical cluster an object belongs to."""

NAMESPACE_INDEX = "namespace"
"""The built-in index of an object's namespace (client-go's ``NamespaceIndex``)."""
CLUSTER_INDEX = "cluster"
"""The built-in index of an object's logical cluster (kcp's ``ClusterIndexName``)."""
NAME_INDEX = "name"
"""An index of ``metadata.name`` (not built in: added with :func:`name_index` where needed)."""


def name_of(obj: Any) -> str:
    """``metadata.name`` of a dict or model ('' when absent)."""
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("name") or "")
    meta = getattr(obj, "metadata", None)
    return str(getattr(meta, "name", None) or "")


def namespace_of(obj: Any) -> str:
    """``metadata.namespace`` of a dict or model ('' for cluster-scoped objects)."""
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("namespace") or "")
    meta = getattr(obj, "metadata", None)
    return str(getattr(meta, "namespace", None) or "")


def labels_of(obj: Any) -> Mapping[str, str]:
    """``metadata.labels`` of a dict or model (empty when absent); read-only."""
    if isinstance(obj, dict):
        return (obj.get("metadata") or {}).get("labels") or {}
    meta = getattr(obj, "metadata", None)
    return getattr(meta, "labels", None) or {}


def annotations_of(obj: Any) -> Mapping[str, str]:
    """``metadata.annotations`` of a dict or model (empty when absent); read-only."""
    if isinstance(obj, dict):
        return (obj.get("metadata") or {}).get("annotations") or {}
    meta = getattr(obj, "metadata", None)
    return getattr(meta, "annotations", None) or {}


def cluster_of(obj: Any) -> str:
    """The logical cluster of an object served by kcp (its ``kcp.io/cluster`` annotation); ''
    when unknown."""
    if isinstance(obj, dict):
        return str(((obj.get("metadata") or {}).get("annotations") or {}).get(CLUSTER_ANNOTATION, ""))
    meta = getattr(obj, "metadata", None)
    return str((getattr(meta, "annotations", None) or {}).get(CLUSTER_ANNOTATION, ""))


def make_key(cluster: str, namespace: str, name: str) -> str:
    """kcp's ``ToClusterAwareKey``: ``[<cluster>|][<namespace>/]<name>``."""
    key = f"{cluster}|" if cluster else ""
    if namespace:
        key += f"{namespace}/"
    return key + name


def split_key(key: str) -> tuple[str, str, str]:
    """``cluster|ns/name`` -> ``(cluster, ns, name)``; absent parts are ``""``."""
    cluster, _, rest = key.rpartition("|")
    namespace, _, name = rest.rpartition("/")
    return cluster, namespace, name


def object_key(obj: Any) -> str:
    """The cluster-aware key of a dict or model; ``KeyError`` when it has no ``metadata.name``."""
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise KeyError(f"object has no metadata.name: {str(obj)[:200]}")
        annotations = meta.get("annotations") or {}
        return make_key(
            str(annotations.get(CLUSTER_ANNOTATION, "")), str(meta.get("namespace") or ""), str(name)
        )
    meta = getattr(obj, "metadata", None)
    name = getattr(meta, "name", None)
    if not name:
        raise KeyError(f"object has no metadata.name: {str(obj)[:200]}")
    annotations = getattr(meta, "annotations", None) or {}
    return make_key(
        str(annotations.get(CLUSTER_ANNOTATION, "")), str(getattr(meta, "namespace", None) or ""), name
    )


def namespace_index(obj: Any) -> list[str]:
    """The :data:`NAMESPACE_INDEX` function: ``[namespace]``, or ``[]`` for cluster-scoped objects."""
    namespace = namespace_of(obj)
    return [namespace] if namespace else []


def name_index(obj: Any) -> list[str]:
    """The :data:`NAME_INDEX` function: ``[name]``, or ``[]`` when the object has none."""
    name = name_of(obj)
    return [name] if name else []


def cluster_index(obj: Any) -> list[str]:
    """The :data:`CLUSTER_INDEX` function: ``[cluster]``, or ``[]`` when the object names none."""
    cluster = cluster_of(obj)
    return [cluster] if cluster else []
