"""``prep-for-syncer``: make a SyncTarget's mailbox ready for the edge syncer and write its manifest.

The edge syncer (upstream KubeStellar's ``cmd/syncer``; not part of this project) runs in the edge
cluster.  It reads the mailbox workspace of its SyncTarget with a ServiceAccount token of that
mailbox, and writes into the edge cluster with its own in-cluster ServiceAccount.  This module
sets up both halves, with the same objects and names as upstream's ``kubectl kubestellar
prep-for-syncer`` so that its documentation applies:

* in the mailbox: the EdgeSyncConfig named after the SyncTarget, and (owned by it) a ServiceAccount,
  a ClusterRole allowing everything (all resources, and non-resource URL ``/``), its
  ClusterRoleBinding, and a token Secret for the ServiceAccount;
* the manifest for the edge cluster: a Namespace, the edge ServiceAccount with its token Secret, a
  ClusterRole allowing everything and its binding, a Secret holding the mailbox kubeconfig, and
  the syncer Deployment.

Invariants: every name derives from the SyncTarget's name and UID only (``syncer_id``), so a second
run finds what the first made and writes nothing; the mailbox kubeconfig's server URL carries no
``/clusters/...`` path, because kcp routes a ServiceAccount token to the ServiceAccount's own
logical cluster.  Upstream's syncer_gen draws a fresh random UID on every run, giving a new
ServiceAccount each time; here the SyncTarget's real UID is used, which makes the command
idempotent and the ``--sync-target-uid`` argument true.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from apis.edge.v2alpha1 import resources
from apis.edge.v2alpha1.naming import InvalidMailboxName, mailbox_name
from apis.machinery.resource import ResourceInfo
from pkg import bootstrap
from pkg.runtime import kcp, kube
from pkg.runtime.rest import ApiError, RestClient

DEFAULT_SYNCER_IMAGE = "quay.io/kubestellar/syncer:release-0.14"
"""The image upstream v0.14.0's prep-for-syncer puts in the Deployment."""

MAILBOX_NAMESPACE = "default"
"""Namespace of the mailbox ServiceAccount and the context namespace of the mailbox kubeconfig."""

KUBECONFIG_KEY = "kubeconfig"
QPS = 20
BURST = 30
SYNCER_COMMAND = "/ko-app/syncer"
EDGE_SYNC_CONFIGS = resources.EDGE_SYNC_CONFIGS.path()

Progress = Callable[[str], None]


class PrepError(bootstrap.BootstrapError):
    """A user-facing prep-for-syncer error (one clear line)."""


def _base36(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def syncer_id(sync_target_name: str, uid: str) -> str:
    """``kubestellar-syncer-<name>-<8 base-36 digits of SHA-224(uid)>``, upstream's naming."""
    return f"kubestellar-syncer-{sync_target_name}-{_base36(hashlib.sha224(uid.encode()).digest())[:8]}"


def imw_path(imw: str) -> str:
    """``imw1`` or ``root:imw1`` -> ``root:imw1`` (a name is taken under root, as in our other verbs)."""
    if imw.startswith(f"{kcp.ROOT}:"):
        for part in imw.split(":")[1:]:
            bootstrap.check_workspace_name(part)
        return imw
    bootstrap.check_workspace_name(imw)
    return f"{kcp.ROOT}:{imw}"


@dataclass(frozen=True)
class Prepared:
    """What prep-for-syncer did and produced."""

    sync_target: str
    sync_target_uid: str
    mailbox: str  # workspace path, root:<cluster>-mb-<uid>
    syncer_id: str
    writes: int  # objects created or changed in the mailbox
    manifest: list[dict[str, Any]]

    def manifest_yaml(self) -> str:
        return dump_yaml(self.manifest)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the kubeconfig) as literal blocks, as a person would write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def dump_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, explicit_start=True)


def _waiter(progress: Progress, timeout: float) -> Callable[[str, Callable[[], Any]], Any]:
    """:func:`kcp.wait_for` with one deadline for all the waits of a run, and, for a script's
    stderr, a line saying what is awaited after 2 s and then every 10 s."""
    deadline = time.monotonic() + timeout

    def wait(what: str, probe: Callable[[], Any]) -> Any:
        outer = kcp.wait_observer.get()
        next_line = 2.0

        def observe(awaited: str, waited: float, done: bool) -> None:
            nonlocal next_line
            if outer is not None:
                outer(awaited, waited, done)
            if not done and waited >= next_line:
                progress(f"waiting for {awaited} ({deadline - time.monotonic():.0f}s left)")
                next_line = waited + 10.0

        token = kcp.wait_observer.set(observe)
        try:
            return kcp.wait_for(what, probe, max(deadline - time.monotonic(), 0.0))
        except kcp.KcpError as e:
            raise PrepError(f"timed out after {timeout:.0f}s waiting for {what}") from e
        finally:
            kcp.wait_observer.reset(token)

    return wait


def _ca_data(client: RestClient) -> str | None:
    """The server's CA certificate (base64), as the admin kubeconfig gives it; None if unverified."""
    conf = client.endpoint.configuration
    if not conf.verify_ssl or not conf.ssl_ca_cert:
        return None
    return base64.b64encode(Path(conf.ssl_ca_cert).read_bytes()).decode()


def find_sync_target(client: RestClient, name: str, imw: str) -> tuple[dict[str, Any], str]:
    """The SyncTarget ``name`` of inventory workspace ``imw`` and its mailbox's workspace name."""
    bootstrap.check_object_name(name)
    path = imw_path(imw)
    if kcp.get_workspace(client, path) is None:
        raise PrepError(f"inventory workspace {path} does not exist")
    try:
        st = kcp.cluster(client, path).get(f"{bootstrap.EDGE_API}/synctargets/{name}")
    except ApiError as e:
        if e.not_found:
            raise PrepError(f"SyncTarget {name!r} not found in {path}") from e
        raise
    try:
        mb = mailbox_name(kcp.cluster_of(st), str(st["metadata"].get("uid", "")))
    except InvalidMailboxName as e:
        raise PrepError(f"SyncTarget {name!r} in {path}: {e}") from e
    return st, mb


def prep_for_syncer(
    client: RestClient,
    sync_target: str,
    *,
    imw: str = bootstrap.DEFAULT_IMW,
    espw: str = bootstrap.ESPW,
    image: str = DEFAULT_SYNCER_IMAGE,
    timeout: float = 120.0,
    progress: Progress = lambda _: None,
) -> Prepared:
    """Prepare ``sync_target``'s mailbox for its syncer and return the edge cluster's manifest.

    Waits (up to ``timeout`` seconds in all, reporting through ``progress``) for the mailbox
    workspace, its ``bind-edge`` APIBinding and the EdgeSyncConfig resource there: the mailbox
    controller makes them.  Raises :class:`PrepError` for an unknown SyncTarget or IMW, a missing
    edge export, or a timeout.
    """
    if not image:
        raise PrepError("the syncer image must not be empty")
    st, mb_name = find_sync_target(client, sync_target, imw)
    uid = str(st["metadata"]["uid"])
    sid = syncer_id(sync_target, uid)
    if len(sid) > 63:
        raise PrepError(
            f"SyncTarget name {sync_target!r} is too long: the syncer's namespace {sid!r} "
            "would exceed 63 characters"
        )
    if kcp.cluster(client, espw).get_or_none(kcp.API_EXPORTS.path(name=bootstrap.EDGE_EXPORT)) is None:
        raise PrepError(
            f"{espw} has no APIExport {bootstrap.EDGE_EXPORT}: it is not the edge service provider workspace"
        )

    wait = _waiter(progress, timeout)
    mb_path = f"{kcp.ROOT}:{mb_name}"
    hint = "is the mailbox controller running?"

    def ready() -> bool:
        ws = kcp.get_workspace(client, mb_path)
        return bool(ws and (ws.get("status") or {}).get("phase") == "Ready")

    wait(f"mailbox workspace {mb_path} to be Ready ({hint})", ready)
    mb = kcp.cluster(client, mb_path)

    def bound() -> bool:
        b = mb.get_or_none(kcp.API_BINDINGS.path(name="bind-edge"))
        return bool(b and (b.get("status") or {}).get("phase") == "Bound")

    wait(f"APIBinding bind-edge in {mb_path} to be Bound ({hint})", bound)
    wait(f"EdgeSyncConfigs to be served in {mb_path}", lambda: mb.get(EDGE_SYNC_CONFIGS) is not None)

    writes, token = _prepare_mailbox(mb, sync_target, sid, wait)
    manifest = edge_manifest(
        sync_target=sync_target,
        uid=uid,
        syncer_id=sid,
        server=kcp.server_origin(client.endpoint.server),
        ca_data=_ca_data(client),
        token=token,
        image=image,
    )
    return Prepared(sync_target, uid, mb_path, sid, writes, manifest)


def _create(c: RestClient, collection: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Create ``body``; None if it already exists (someone else just made it)."""
    try:
        obj: dict[str, Any] = c.create(collection, body)
        return obj
    except ApiError as e:
        if e.already_exists:
            return None
        raise


def _with_owner(have: list[dict[str, Any]] | None, owner: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``have`` plus ``owner`` (matched by UID); None when ``owner`` is already there."""
    refs = list(have or [])
    if any(r.get("uid") == owner["uid"] for r in refs):
        return None
    return [*refs, owner]


def _prepare_mailbox(
    mb: RestClient, sync_target: str, sid: str, wait: Callable[[str, Callable[[], Any]], Any]
) -> tuple[int, str]:
    """Create or repair the mailbox objects; return (writes, the ServiceAccount's token)."""
    writes = 0
    esc_path = resources.EDGE_SYNC_CONFIGS.path(name=sync_target)
    esc = mb.get_or_none(esc_path)
    if esc is None:
        body = {
            "apiVersion": resources.EDGE_SYNC_CONFIGS.api_version,
            "kind": "EdgeSyncConfig",
            "metadata": {"name": sync_target},
            "spec": {},
        }
        esc = _create(mb, EDGE_SYNC_CONFIGS, body) or mb.get(esc_path)
        writes += 1
    owner = {
        "apiVersion": "edge.kubestellar.io/v2alpha1",
        "kind": "EdgeSyncConfig",
        "name": sync_target,
        "uid": esc["metadata"]["uid"],
    }
    ns = MAILBOX_NAMESPACE
    md: dict[str, Any] = {"name": sid, "ownerReferences": [owner]}

    def ensure(info: ResourceInfo, body: dict[str, Any], fields: tuple[str, ...] = ()) -> None:
        """Create ``body``, or add the owner reference and set ``fields`` where they differ."""
        nonlocal writes
        namespace = ns if info.namespaced else None
        path = info.path(namespace=namespace, name=body["metadata"]["name"])
        have = mb.get_or_none(path)
        if have is None:
            if _create(mb, info.path(namespace=namespace), body) is not None:
                writes += 1
            return
        patch: dict[str, Any] = {k: body[k] for k in fields if have.get(k) != body[k]}
        refs = _with_owner(have["metadata"].get("ownerReferences"), owner)
        if refs is not None:
            patch["metadata"] = {"ownerReferences": refs}
        if patch:
            mb.patch(path, patch)
            writes += 1

    ensure(kube.SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": md})
    rules = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["/"], "verbs": ["access"]},
    ]
    rbac = kube.CLUSTER_ROLES.api_version
    ensure(
        kube.CLUSTER_ROLES,
        {"apiVersion": rbac, "kind": kube.CLUSTER_ROLES.kind, "metadata": md, "rules": rules},
        ("rules",),
    )
    role_ref = {"apiGroup": kube.CLUSTER_ROLES.group, "kind": kube.CLUSTER_ROLES.kind, "name": sid}
    subjects = [{"kind": "ServiceAccount", "name": sid, "namespace": ns}]
    crb_path = kube.CLUSTER_ROLE_BINDINGS.path(name=sid)
    crb = mb.get_or_none(crb_path)
    if crb is not None and crb.get("roleRef") != role_ref:  # roleRef is immutable
        mb.delete(crb_path)
        writes += 1
    ensure(
        kube.CLUSTER_ROLE_BINDINGS,
        {
            "apiVersion": rbac,
            "kind": kube.CLUSTER_ROLE_BINDINGS.kind,
            "metadata": md,
            "roleRef": role_ref,
            "subjects": subjects,
        },
        ("subjects",),
    )
    secret_name = f"{sid}-token"
    ensure(
        kube.SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret_name,
                "annotations": {"kubernetes.io/service-account.name": sid},
                "ownerReferences": [owner],
            },
            "type": "kubernetes.io/service-account-token",
        },
    )

    def token() -> str | None:
        data = (mb.get_or_none(kube.SECRETS.path(namespace=ns, name=secret_name)) or {}).get("data") or {}
        return base64.b64decode(data["token"]).decode() if data.get("token") else None

    # kcp's token controller fills in a ServiceAccount token Secret, as Kubernetes' does.
    value: str = wait(f"the token of Secret {ns}/{secret_name} in the mailbox", token)
    return writes, value


def edge_manifest(
    *,
    sync_target: str,
    uid: str,
    syncer_id: str,
    server: str,
    ca_data: str | None,
    token: str,
    image: str = DEFAULT_SYNCER_IMAGE,
) -> list[dict[str, Any]]:
    """The objects to create in the edge cluster (the order matters: Namespace first)."""
    ns = syncer_id
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    else:
        cluster["insecure-skip-tls-verify"] = True
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "contexts": [
            {
                "name": "default-context",
                "context": {
                    "cluster": "default-cluster",
                    "namespace": MAILBOX_NAMESPACE,
                    "user": "default-user",
                },
            }
        ],
        "current-context": "default-context",
        "users": [{"name": "default-user", "user": {"token": token}}],
    }
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": syncer_id, "namespace": ns}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"{syncer_id}-token",
                "namespace": ns,
                "annotations": {"kubernetes.io/service-account.name": syncer_id},
            },
            "type": "kubernetes.io/service-account-token",
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": syncer_id},
            "rules": [
                {
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["clusterroles", "clusterrolebindings"],
                    "verbs": ["*"],
                },
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": syncer_id},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": syncer_id},
            "subjects": [{"kind": "ServiceAccount", "name": syncer_id, "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": syncer_id, "namespace": ns},
            "stringData": {KUBECONFIG_KEY: yaml.safe_dump(kubeconfig, sort_keys=False)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": syncer_id, "namespace": ns},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": syncer_id}},
                "template": {
                    "metadata": {"labels": {"app": syncer_id}},
                    "spec": {
                        "containers": [
                            {
                                "name": "kubestellar-syncer",
                                "command": [SYNCER_COMMAND],
                                "args": syncer_args(sync_target, uid, f"/kubestellar/{KUBECONFIG_KEY}"),
                                "env": [
                                    {
                                        "name": "NAMESPACE",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                    }
                                ],
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "terminationMessagePolicy": "FallbackToLogsOnError",
                                "volumeMounts": [
                                    {
                                        "name": "kubestellar-config",
                                        "mountPath": "/kubestellar/",
                                        "readOnly": True,
                                    }
                                ],
                            }
                        ],
                        "serviceAccountName": syncer_id,
                        "volumes": [
                            {
                                "name": "kubestellar-config",
                                "secret": {"secretName": syncer_id, "optional": False},
                            }
                        ],
                    },
                },
            },
        },
    ]


def syncer_args(sync_target: str, uid: str, from_kubeconfig: str) -> list[str]:
    """The syncer's arguments, as in the Deployment (``--v=3``, upstream's QPS and burst)."""
    return [
        f"--from-kubeconfig={from_kubeconfig}",
        f"--sync-target-name={sync_target}",
        f"--sync-target-uid={uid}",
        f"--qps={QPS}",
        f"--burst={BURST}",
        "--v=3",
    ]


def manifest_kubeconfig(manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """The mailbox kubeconfig carried by a manifest's Secret (what the syncer is given)."""
    for doc in manifest:
        data = doc.get("stringData") or {}
        if doc.get("kind") == "Secret" and KUBECONFIG_KEY in data:
            result: dict[str, Any] = yaml.safe_load(data[KUBECONFIG_KEY])
            return result
    raise PrepError("the manifest has no mailbox kubeconfig Secret")
