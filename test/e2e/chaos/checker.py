"""The chaos tests' workload and its independent checker.

:func:`create` sets up the benchmark's small size on a kcp server after ``kubestellar init``: 10
SyncTargets with their Locations in ``root:imw1``, 2 WMWs, 20 workload objects (in each WMW 8
ConfigMaps, half of them with ``%(...)`` parameters, and 2 Secrets) and 2 EdgePlacements:

* ``root:wmw-a`` / ``place-a``: ConfigMaps and Secrets of namespace ``app-a`` to the Locations
  labelled ``tier-a=yes`` (loc-00 .. loc-05), with one UpsyncSet;
* ``root:wmw-b`` / ``place-b``: ConfigMaps and Secrets of namespace ``app-b``, and the Namespace
  ``app-b`` itself, to the Locations labelled ``tier-b=yes`` (loc-04 .. loc-09).

:meth:`Workload.expected` computes, from the :class:`Workload` description alone (no controller
code), what every mailbox must hold: ``the-one``'s spec, the projected copies with their customized
content, the Namespaces it must have and the only ones it may have (those needed now or in an
earlier state: decision 5 never deletes one).  ``create(..., widgets=True)`` adds a custom resource
and its CRD to wmw-a.  :func:`check` compares that with what kcp holds and
returns every difference (an empty list means converged); :func:`lost` measures the figure the
tests report and assert as ``lost``: the desired copies missing, out of date or wrong, and stale
copies left.  :func:`wait_converged` retries only the errors of a kcp that restarts or is busy
(:func:`transient`); any other error is the checker's own and fails at once.  Edits made by the
tests go through :class:`Workload` methods, so the expectation follows them.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3

from pkg import bootstrap
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError, RestClient

EDGE = "/apis/edge.kubestellar.io/v2alpha1"
PROJECTED = "edge.kubestellar.io/projected"
EXPAND = "edge.kubestellar.io/expand-parameters"
IMW = "imw1"
N_LOCATIONS = 10
UPSYNC_A = {
    "apiGroup": "group1.test",
    "resources": ["sprockets"],
    "namespaces": ["orbital"],
    "names": ["george"],
}
# What kcp itself puts in every new workspace (everything else in a mailbox comes from us).
BASE_NAMESPACES = frozenset({"default"})


def _env(i: int) -> str:
    return "prod" if i % 2 == 0 else "dev"


@dataclass(frozen=True, order=True)
class Res:
    """A resource the workload uses."""

    group: str
    resource: str
    kind: str
    namespaced: bool = True
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection(self, namespace: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.resource}" if namespace else f"{base}/{self.resource}"


CONFIGMAPS = Res("", "configmaps", "ConfigMap")
SECRETS = Res("", "secrets", "Secret")
WIDGETS = Res("chaos.test", "widgets", "Widget")
CRDS = Res("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", False)
WIDGET_CRD = "widgets.chaos.test"


def widget_crd(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CRD of Widgets; by default any spec is valid."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": WIDGET_CRD},
        "spec": {
            "group": "chaos.test",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": schema
                        or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


@dataclass
class Source:
    """One workload object of a WMW: what the test created, and what it changed since.

    ``data`` is a ConfigMap's data, a Secret's (decoded) data, a Widget's spec; a CRD's is unused.
    """

    res: Res
    namespace: str
    name: str
    data: dict[str, Any]
    expand: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        return self.res.resource

    def body(self) -> dict[str, Any]:
        if self.res == CRDS:
            return widget_crd()
        md: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels)}
        if self.expand:
            md["annotations"] = {EXPAND: "true"}
        body: dict[str, Any] = {"apiVersion": self.res.api_version, "kind": self.res.kind, "metadata": md}
        if self.res == SECRETS:
            body["stringData"] = dict(self.data)
            body["type"] = "Opaque"
        elif self.res == CONFIGMAPS:
            body["data"] = dict(self.data)
        else:
            body["spec"] = copy.deepcopy(self.data)
        return body

    def expected_data(self, params: dict[str, str]) -> dict[str, Any]:
        if self.res == CRDS:
            return {"group": "chaos.test", "plural": "widgets"}
        if not self.expand:
            return copy.deepcopy(self.data)
        out = {}
        for k, v in self.data.items():
            for p, value in params.items():
                v = v.replace(f"%({p})", value)
            out[k] = v
        return out


def content(res: Res, obj: dict[str, Any]) -> Any:
    """What :meth:`Source.expected_data` describes, read from an object."""
    if res == SECRETS:
        import base64

        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    if res == CONFIGMAPS:
        return obj.get("data") or {}
    spec = obj.get("spec") or {}
    if res == CRDS:
        return {"group": spec.get("group"), "plural": (spec.get("names") or {}).get("plural")}
    return spec


@dataclass
class Wmw:
    name: str  # workspace name under root
    namespace: str  # the one namespace holding its objects
    namespace_labels: dict[str, str]
    placement: str
    selector: dict[str, str]  # the placement's location selector (matchLabels)
    select_namespace: bool  # the placement also selects the Namespace object itself
    upsync: list[dict[str, Any]]
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)  # (resource, name) -> source
    cluster: str = ""

    @property
    def path(self) -> str:
        return f"root:{self.name}"

    def placement_body(self) -> dict[str, Any]:
        downsync: list[dict[str, Any]] = [
            {"apiGroup": "", "resources": ["configmaps", "secrets"], "namespaces": [self.namespace]}
        ]
        if self.select_namespace:
            downsync.append({"apiGroup": "", "resources": ["namespaces"], "objectNames": [self.namespace]})
        if any(src.res == WIDGETS for src in self.sources.values()):
            downsync.append(
                {"apiGroup": "chaos.test", "resources": ["widgets"], "namespaces": [self.namespace]}
            )
        spec: dict[str, Any] = {
            "locationSelectors": [{"matchLabels": dict(self.selector)}],
            "downsync": downsync,
        }
        if self.upsync:
            spec["upsync"] = copy.deepcopy(self.upsync)
        return {
            "apiVersion": "edge.kubestellar.io/v2alpha1",
            "kind": "EdgePlacement",
            "metadata": {"name": self.placement},
            "spec": spec,
        }


@dataclass
class Expected:
    """What one mailbox must hold."""

    location: str
    the_one: dict[str, Any]
    copies: dict[tuple[str, str, str], Any]  # (resource, namespace, name) -> expected content
    labels: dict[tuple[str, str, str], dict[str, str]]  # -> labels the copy must carry
    namespaces: set[str]  # the Namespaces the mailbox must have
    allowed_namespaces: set[str]  # those it may have: needed now or at some point before (never deleted)
    namespace_labels: dict[str, dict[str, str]]  # selected Namespaces -> labels they must carry


@dataclass
class Workload:
    imw_cluster: str
    locations: dict[str, dict[str, str]]  # Location name -> labels
    uids: dict[str, str]  # SyncTarget name -> UID
    wmws: list[Wmw]
    # Location -> every Namespace its mailbox needed in some state the workload went through.
    ns_history: dict[str, set[str]] = field(default_factory=dict)

    def note(self) -> None:
        """Record the Namespaces needed now (call after every edit)."""
        for exp in self.expected().values():
            self.ns_history.setdefault(exp.location, set()).update(exp.namespaces)

    def mailbox(self, location: str) -> str:
        return f"{self.imw_cluster}-mb-{self.uids[location]}"

    def resources(self) -> list[Res]:
        """Every resource a mailbox may hold copies of (besides Namespaces)."""
        return sorted({CONFIGMAPS, SECRETS} | {src.res for w in self.wmws for src in w.sources.values()})

    def expected(self) -> dict[str, Expected]:
        """Every mailbox, from the workload description alone (spec decisions 4 and 5)."""
        out: dict[str, Expected] = {}
        for loc, labels in sorted(self.locations.items()):
            copies: dict[tuple[str, str, str], Any] = {}
            copy_labels: dict[tuple[str, str, str], dict[str, str]] = {}
            namespaces = set(BASE_NAMESPACES)
            ns_labels: dict[str, dict[str, str]] = {}
            namespaced: dict[Res, dict[str, set[str]]] = {}
            cluster_scoped: dict[Res, set[str]] = {}
            upsync: list[dict[str, Any]] = []
            for w in self.wmws:
                if any(labels.get(k) != v for k, v in w.selector.items()):
                    continue
                upsync.extend(w.upsync)
                for src in w.sources.values():
                    key = (src.resource, src.namespace, src.name)
                    copies[key] = src.expected_data(labels)
                    copy_labels[key] = {**src.labels, PROJECTED: "yes"}
                    if src.res.namespaced:
                        namespaced.setdefault(src.res, {}).setdefault(src.namespace, set()).add(src.name)
                        namespaces.add(src.namespace)
                    else:
                        cluster_scoped.setdefault(src.res, set()).add(src.name)
                if w.select_namespace:
                    namespaces.add(w.namespace)
                    ns_labels[w.namespace] = {**w.namespace_labels, PROJECTED: "yes"}
                    cluster_scoped.setdefault(Res("", "namespaces", "Namespace", False), set()).add(
                        w.namespace
                    )
            spec: dict[str, Any] = {"namespaceScope": {}}
            if namespaced:
                spec["namespacedObjects"] = [
                    {
                        "group": res.group,
                        "resource": res.resource,
                        "apiVersion": res.version,
                        "objectsByNamespace": [
                            {"namespace": ns, "names": sorted(names)} for ns, names in sorted(by_ns.items())
                        ],
                    }
                    for res, by_ns in sorted(namespaced.items(), key=lambda kv: (kv[0].group, kv[0].resource))
                ]
            if cluster_scoped:
                spec["clusterScope"] = [
                    {
                        "group": res.group,
                        "resource": res.resource,
                        "apiVersion": res.version,
                        "objects": sorted(names),
                    }
                    for res, names in sorted(
                        cluster_scoped.items(), key=lambda kv: (kv[0].group, kv[0].resource)
                    )
                ]
            if upsync:
                canon = sorted({json.dumps(u, sort_keys=True, separators=(",", ":")) for u in upsync})
                spec["upsync"] = [json.loads(u) for u in canon]
            allowed = namespaces | self.ns_history.get(loc, set())
            out[self.mailbox(loc)] = Expected(loc, spec, copies, copy_labels, namespaces, allowed, ns_labels)
        return out

    # -- edits (the expectation follows them) ----------------------------------------------------

    def wmw(self, name: str) -> Wmw:
        return next(w for w in self.wmws if w.name == name)

    def update_source(
        self, client: RestClient, wmw: str, resource: str, name: str, data: dict[str, str]
    ) -> None:
        w = self.wmw(wmw)
        src = w.sources[(resource, name)]
        src.data = dict(data)
        c = kcp.cluster(client, w.path)
        path = f"{src.res.collection(src.namespace)}/{name}"
        have = c.get(path)
        if src.res == SECRETS:
            have.pop("data", None)
            have["stringData"] = dict(data)
        elif src.res == CONFIGMAPS:
            have["data"] = dict(data)
        else:
            have["spec"] = dict(data)
        c.update(path, have)

    def add_source(self, client: RestClient, wmw: str, src: Source) -> None:
        w = self.wmw(wmw)
        w.sources[(src.resource, src.name)] = src
        kcp.cluster(client, w.path).create(src.res.collection(src.namespace), src.body())
        self.note()

    def delete_source(self, client: RestClient, wmw: str, resource: str, name: str) -> None:
        w = self.wmw(wmw)
        src = w.sources.pop((resource, name))
        kcp.cluster(client, w.path).delete(f"{src.res.collection(src.namespace)}/{name}")
        self.note()

    def set_location_label(self, client: RestClient, location: str, key: str, value: str | None) -> None:
        labels = self.locations[location]
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
        c = kcp.cluster(client, f"root:{IMW}")
        c.patch(f"{EDGE}/locations/{location}", {"metadata": {"labels": {key: value}}})
        self.note()

    def edit_round(self, client: RestClient, round_: int) -> None:
        """A batch of edits touching every mailbox: updates, an addition, a deletion, a move."""
        for w in self.wmws:
            plain = [(k, src) for k, src in sorted(w.sources.items()) if src.res in (CONFIGMAPS, SECRETS)]
            for (resource, name), src in plain[:3]:
                self.update_source(client, w.name, resource, name, {**src.data, "round": str(round_)})
            self.add_source(
                client,
                w.name,
                Source(
                    CONFIGMAPS,
                    w.namespace,
                    f"added-{round_}",
                    {"round": str(round_), "where": "%(loc-name)"},
                    True,
                ),
            )
            victim = next((k for k in sorted(w.sources) if k[1].startswith("cm-")), None)
            if victim is not None:
                self.delete_source(client, w.name, *victim)
        # loc-03 moves into tier b, loc-08 out of it (both stay in the inventory).
        flip = {"yes": None, None: "yes"}
        for loc in ("loc-03", "loc-08"):
            self.set_location_label(client, loc, "tier-b", flip[self.locations[loc].get("tier-b")])


def create(
    client: RestClient, n_locations: int = N_LOCATIONS, timeout: float = 300.0, *, widgets: bool = False
) -> Workload:
    """The small workload on a server after ``bootstrap.init`` (IMW ``root:imw1``).

    With ``widgets``, wmw-a also holds the CRD of a custom resource and one Widget (``w-0``, spec
    ``{"size": 10}``) that place-a selects too (the CRD goes along, as decision 8 says)."""
    locations: dict[str, dict[str, str]] = {}
    for i in range(n_locations):
        name = f"loc-{i:02d}"
        labels = {"loc-name": name, "env": _env(i)}
        if i < 6:
            labels["tier-a"] = "yes"
        if i >= 4:
            labels["tier-b"] = "yes"
        locations[name] = labels
        bootstrap.ensure_location(client, name, labels, imw=IMW)
    imw = kcp.wait_workspace_ready(client, f"root:{IMW}")
    c_imw = kcp.cluster(client, imw.path)
    uids = {name: c_imw.get(f"{EDGE}/synctargets/{name}")["metadata"]["uid"] for name in locations}
    wmws = [
        Wmw("wmw-a", "app-a", {}, "place-a", {"tier-a": "yes"}, False, [dict(UPSYNC_A)]),
        Wmw("wmw-b", "app-b", {"team": "b"}, "place-b", {"tier-b": "yes"}, True, []),
    ]
    for w in wmws:
        for i in range(8):
            expand = i < 4
            data = {"index": str(i), "where": "Running in %(loc-name), env %(env)." if expand else "fixed"}
            w.sources[("configmaps", f"cm-{i}")] = Source(
                CONFIGMAPS, w.namespace, f"cm-{i}", data, expand, {"app": w.name}
            )
        for i in range(2):
            w.sources[("secrets", f"sec-{i}")] = Source(
                SECRETS, w.namespace, f"sec-{i}", {"token": f"{w.name}-{i}"}
            )
    if widgets:
        a = wmws[0]
        a.sources[("customresourcedefinitions", WIDGET_CRD)] = Source(CRDS, "", WIDGET_CRD, {})
        a.sources[("widgets", "w-0")] = Source(
            WIDGETS, a.namespace, "w-0", {"size": 10}, labels={"app": a.name}
        )
    threads = [threading.Thread(target=bootstrap.ensure_wmw, args=(client, w.name, timeout)) for w in wmws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in wmws:
        w.cluster = kcp.wait_workspace_ready(client, w.path, timeout).cluster
        ns = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": w.namespace, "labels": w.namespace_labels},
        }
        # CRDs first: apply_objects waits until a kind is served before creating its objects.
        ordered = sorted(w.sources.values(), key=lambda src: src.res != CRDS)
        docs = [ns, *(src.body() for src in ordered), w.placement_body()]
        bootstrap.apply_objects(client, w.path, docs, timeout)
    workload = Workload(imw.cluster, locations, uids, wmws)
    workload.note()
    return workload


# -- reading kcp -------------------------------------------------------------------------------------


def get(c: RestClient, path: str, params: dict[str, Any] | None = None) -> Any:
    try:
        return c.get(path, params)
    except ApiError as e:
        if e.not_found:
            return None
        raise


def mailbox_names(client: RestClient) -> dict[str, dict[str, Any]]:
    found = get(kcp.cluster(client, "root"), f"{kcp.TENANCY}/workspaces") or {}
    return {ws["metadata"]["name"]: ws for ws in found.get("items", []) if "-mb-" in ws["metadata"]["name"]}


def check(client: RestClient, workload: Workload) -> list[str]:
    """Every difference between kcp and the expectation (empty: converged).  Read-only."""
    problems: list[str] = []
    want = workload.expected()
    have = mailbox_names(client)
    for name in sorted(set(have) - set(want)):
        problems.append(f"unexpected mailbox workspace {name}")
    for name, exp in sorted(want.items()):
        ws = have.get(name)
        if ws is None:
            problems.append(f"{exp.location}: mailbox {name} missing")
            continue
        if (ws.get("status") or {}).get("phase") != "Ready":
            problems.append(f"{exp.location}: mailbox not Ready")
            continue
        problems.extend(
            f"{exp.location}: {p}" for p in check_mailbox(client, name, exp, workload.resources())
        )
    problems.extend(check_sources(client, workload))
    return problems


def list_copies(client: RestClient, mailbox: str, resources: list[Res]) -> dict[tuple[str, str, str], Any]:
    """Every projected copy in a mailbox, by (resource, namespace, name)."""
    c = kcp.cluster(client, f"root:{mailbox}")
    found: dict[tuple[str, str, str], Any] = {}
    for res in resources:
        listed = get(c, res.collection(), {"labelSelector": f"{PROJECTED}=yes"}) or {"items": []}
        for obj in listed["items"]:
            md = obj["metadata"]
            found[(res.resource, md.get("namespace", ""), md["name"])] = obj
    return found


def check_mailbox(client: RestClient, name: str, exp: Expected, resources: list[Res]) -> list[str]:
    problems: list[str] = []
    c = kcp.cluster(client, f"root:{name}")
    the_one = get(c, f"{EDGE}/syncerconfigs/the-one")
    spec = None if the_one is None else the_one.get("spec")
    if spec != exp.the_one:
        problems.append(
            f"the-one spec {json.dumps(spec, sort_keys=True)} != {json.dumps(exp.the_one, sort_keys=True)}"
        )
    found = list_copies(client, name, resources)
    problems.extend(copy_problems(found, exp, resources))
    for key, obj in sorted(found.items()):
        if (
            key in exp.copies and obj.get("status") and key[0] != CRDS.resource
        ):  # a CRD's status is the server's
            problems.append(f"copy {key} has a status")
    namespaces = get(c, "/api/v1/namespaces") or {"items": []}
    ns_by_name = {n["metadata"]["name"]: n for n in namespaces["items"]}
    extra = sorted(set(ns_by_name) - exp.allowed_namespaces)
    missing = sorted(exp.namespaces - set(ns_by_name))
    if extra or missing:
        problems.append(f"namespaces: extra {extra}, missing {missing}")
    for ns, labels in exp.namespace_labels.items():
        got = (ns_by_name.get(ns, {}).get("metadata") or {}).get("labels") or {}
        if any(got.get(k) != v for k, v in labels.items()):
            problems.append(f"namespace {ns} labels {got} lack {labels}")
    return problems


def copy_problems(found: dict[tuple[str, str, str], Any], exp: Expected, resources: list[Res]) -> list[str]:
    """The copies of one mailbox (``found``) that differ from ``exp``: stale (no placement wants
    them), missing, or with content or labels other than the desired ones; one line each."""
    problems: list[str] = []
    by_name = {res.resource: res for res in resources}
    for key in sorted(set(found) - set(exp.copies)):
        problems.append(f"stale copy {key}")
    for key, data in sorted(exp.copies.items()):
        obj = found.get(key)
        if obj is None:
            problems.append(f"missing copy {key}")
            continue
        got = content(by_name[key[0]], obj)
        if got != data:
            problems.append(f"copy {key} data {got} != {data}")
            continue
        labels = obj["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in exp.labels[key].items()):
            problems.append(f"copy {key} labels {labels} lack {exp.labels[key]}")
    return problems


def lost(client: RestClient, workload: Workload) -> list[str]:
    """What the chaos figures call *lost*, measured: every desired copy that is missing (its
    mailbox too), out of date or with wrong content or labels, and every stale copy still present;
    one line each (empty: nothing lost).  Read-only; errors propagate."""
    out: list[str] = []
    have = mailbox_names(client)
    for name, exp in sorted(workload.expected().items()):
        if name not in have:
            out.extend(f"{exp.location}: missing copy {key} (no mailbox)" for key in sorted(exp.copies))
            continue
        found = list_copies(client, name, workload.resources())
        out.extend(f"{exp.location}: {p}" for p in copy_problems(found, exp, workload.resources()))
    return out


def check_sources(client: RestClient, workload: Workload) -> list[str]:
    """Nothing lost upstream: every workload object is still in its WMW with its content."""
    problems: list[str] = []
    for w in workload.wmws:
        c = kcp.cluster(client, w.path)
        for res in workload.resources():
            listed = get(c, res.collection(w.namespace if res.namespaced else "")) or {"items": []}
            got = {o["metadata"]["name"]: o for o in listed["items"]}
            for src in w.sources.values():
                if src.res != res:
                    continue
                obj = got.get(src.name)
                if obj is None:
                    problems.append(f"{w.path}: source {res.resource}/{src.name} lost")
                    continue
                data = content(res, obj)
                if data != (src.data if src.expand else src.expected_data({})):
                    problems.append(f"{w.path}: source {res.resource}/{src.name} changed: {data}")
        ep = get(c, f"{EDGE}/edgeplacements/{w.placement}")
        if ep is None:
            problems.append(f"{w.path}: EdgePlacement {w.placement} lost")
    return problems


def transient(err: Exception) -> bool:
    """Whether ``err`` is what a check meets while kcp restarts or is busy: a refused or broken
    connection, a timeout, or an answer 5xx, 429, 401 (a new admin token not read yet) or 403 (the
    authorizer not ready).  Anything else is the checker's own error."""
    if isinstance(err, ApiError):
        return err.status >= 500 or err.status in (401, 403, 429)
    return isinstance(err, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


@dataclass
class Converged:
    seconds: float
    checks: int


def wait_converged(
    client: RestClient,
    workload: Workload,
    timeout: float,
    *,
    since: float | None = None,
    alive: Callable[[], str | None] = lambda: None,
    interval: float = 2.0,
) -> Converged:
    """Poll :func:`check` until it finds nothing; the time from ``since`` (default: now).

    ``alive`` returns a reason to stop waiting (a controller process died), or None.
    """
    start = since if since is not None else time.monotonic()
    deadline = time.monotonic() + timeout
    checks = 0
    problems: list[str] = []
    while True:
        checks += 1
        try:
            problems = check(client, workload)
        except Exception as e:
            if not transient(e):
                raise  # a bug in the checker, or an answer it does not expect: fail now
            problems = [f"check failed: {e!r}"]  # kcp restarting: keep trying until the deadline
        if not problems:
            return Converged(time.monotonic() - start, checks)
        dead = alive()
        if dead:
            raise AssertionError(f"{dead}; not converged: {problems[:10]}")
        if time.monotonic() > deadline:
            shown = "\n  ".join(problems[:25])
            try:
                gone = f"lost={len(lost(client, workload))}"
            except Exception as e:
                gone = f"lost not measured: {e!r}"
            raise AssertionError(
                f"not converged after {timeout:.0f}s ({len(problems)} problems; {gone}):\n  {shown}"
            )
        time.sleep(interval)


def snapshot(client: RestClient, workload: Workload) -> dict[tuple[str, str, str, str], str]:
    """The resourceVersion of everything a controller writes: mailbox workspaces, their bindings,
    Namespaces, copies and the-one; each WMW's placements, slices and sources."""
    out: dict[tuple[str, str, str, str], str] = {}

    def collect(cluster: str, path: str) -> None:
        listed = get(kcp.cluster(client, cluster), path) or {"items": []}
        for obj in listed["items"]:
            md = obj["metadata"]
            out[(cluster, path, md.get("namespace", ""), md["name"])] = md["resourceVersion"]

    collect("root", f"{kcp.TENANCY}/workspaces")
    for name in mailbox_names(client):
        cluster = f"root:{name}"
        for path in (
            *(res.collection() for res in workload.resources()),
            "/api/v1/namespaces",
            f"{EDGE}/syncerconfigs",
            f"{kcp.APIS}/apibindings",
        ):
            collect(cluster, path)
    for w in workload.wmws:
        for path in (
            *(res.collection() for res in workload.resources()),
            f"{EDGE}/edgeplacements",
            f"{EDGE}/singleplacementslices",
        ):
            collect(w.path, path)
    return out


def changed(
    before: dict[tuple[str, str, str, str], str], after: dict[tuple[str, str, str, str], str]
) -> list[str]:
    keys = set(before) | set(after)
    return sorted(f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys if before.get(k) != after.get(k))
