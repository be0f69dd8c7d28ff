"""The built-in Kubernetes resources the runtime and the controllers address, as
:class:`~apis.machinery.resource.ResourceInfo` (the one path builder); kcp's own resources are in
:mod:`pkg.runtime.kcp`, the edge API's in :mod:`apis.edge.v2alpha1.resources`."""

from __future__ import annotations

from typing import Final

from apis.machinery.resource import ResourceInfo
from apis.machinery.resource import group_version_path as group_version_path

NAMESPACES: Final = ResourceInfo("", "v1", "namespaces", "Namespace", subresources=frozenset({"status"}))
EVENTS: Final = ResourceInfo("", "v1", "events", "Event", namespaced=True)
CONFIGMAPS: Final = ResourceInfo("", "v1", "configmaps", "ConfigMap", namespaced=True)
LEASES: Final = ResourceInfo("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
CUSTOM_RESOURCE_DEFINITIONS: Final = ResourceInfo(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    subresources=frozenset({"status"}),
)
SERVICE_ACCOUNTS: Final = ResourceInfo("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True)
SECRETS: Final = ResourceInfo("", "v1", "secrets", "Secret", namespaced=True)
CLUSTER_ROLES: Final = ResourceInfo("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole")
CLUSTER_ROLE_BINDINGS: Final = ResourceInfo(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding"
)
