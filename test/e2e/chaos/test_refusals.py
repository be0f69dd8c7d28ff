"""kcp refuses some mailbox writes; the controllers report them, retry with backoff, and the rest
converges.

One scenario (this module's fixture) on a private kcp started with the ``user`` battery
(``KCP_EXTRA_ARGS=--batteries-included=+user``), with the workload plus a custom resource
(wmw-a's CRD ``widgets.chaos.test`` and Widget ``w-0`` with ``spec.size: 10``):

* loc-00's mailbox: its edge admin has a stricter ``widgets.chaos.test`` (``size`` at most 5):
  the copy of ``w-0`` is refused by the target's schema (422 Invalid);
* loc-02's mailbox: a ResourceQuota ``count/configmaps: 3`` in ``app-a``: ConfigMap copies beyond
  it are refused by quota admission (403 Forbidden, "exceeded quota");
* loc-04's mailbox: ``app-a`` is Terminating (a finalizer holds it): every copy into it is refused
  by the NamespaceLifecycle admission plugin (403 Forbidden);
* loc-09: the controllers run with ``--root-context user`` (the battery's non-admin user, allowed
  to read Workspaces in root but not to create them), so creating loc-09's mailbox workspace is a
  forbidden write (403).  The other mailboxes were made beforehand by an admin, as the mailbox
  controller would.

The obstacles stay OBSERVE seconds after the controllers start, then are removed (the user gets
the right to create Workspaces; the strict CRD, the quota and the finalizer go away) and
everything must converge.  The tests assert on what the scenario recorded.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pkg import bootstrap
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError, RestClient
from test.e2e.chaos import checker
from test.e2e.chaos.conftest import Controllers, figure
from test.e2e.kcpserver import KcpServer

pytestmark = pytest.mark.chaos

USER_BATTERY = "--batteries-included=+user"
OBSERVE = 60.0
CONVERGE_TIMEOUT = 300.0
MAX_RETRIES = 25  # per key within OBSERVE: client-go's 5 ms doubling backoff allows ~14
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SCHEMA = "loc-00"
QUOTA = "loc-02"
TERMINATING = "loc-04"
FORBIDDEN = "loc-09"
OBSTACLES = (SCHEMA, QUOTA, TERMINATING)
STRICT = {
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer", "maximum": 5}}}},
}
_ERROR = re.compile(r"^E\d{4} (\d\d):(\d\d):(\d\d\.\d+) .*Reconciler error controller=(\S+) key=(\S+)")
_REFUSED = re.compile(
    r"^W\d{4} (\d\d):(\d\d):(\d\d\.\d+) .*Event occurred object=(\S+) .*reason=MailboxWriteRefused "
    r"message=.mailbox (\S+) "
)


@dataclass
class Scenario:
    workload: checker.Workload
    controllers: Controllers
    others_converged_s: float | None = None  # the mailboxes without obstacles, from the start
    problems: dict[str, list[str]] = field(default_factory=dict)  # location -> check_mailbox problems
    copies: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)  # location -> present
    the_one: dict[str, Any] = field(default_factory=dict)  # location -> spec (None: absent)
    retries: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (controller, key) -> times
    forbidden_log: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # Warning Events in the WMWs
    projected: dict[str, dict[str, Any]] = field(default_factory=dict)  # WMW -> Projected condition
    recovered_s: float | None = None
    recover_error: str = ""
    lost: list[str] = field(default_factory=list)  # checker.lost() once converged


def _make_mailbox(c: RestClient, wl: checker.Workload, location: str) -> None:
    """What the mailbox controller does for one SyncTarget: the workspace and its bindings."""
    ws = kcp.ensure_workspace(
        c, f"root:{wl.mailbox(location)}", annotations={"edge.kubestellar.io/sync-target-name": location}
    )
    bindings = [b for b in bootstrap.wmw_bindings() if b[0] != "bind-espw"]
    bindings.append(("bind-edge", bootstrap.ESPW, bootstrap.EDGE_EXPORT))
    for binding, export_path, export_name in bindings:
        kcp.ensure_binding(c, ws.path, binding, export_path, export_name)


def _grant(c: RestClient, name: str, rules: list[dict[str, Any]]) -> None:
    root = kcp.cluster(c, "root")
    root.create(f"{RBAC}/clusterroles", {"metadata": {"name": name}, "rules": rules})
    root.create(
        f"{RBAC}/clusterrolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "user"}],
        },
    )


def _obstacles(c: RestClient, wl: checker.Workload) -> None:
    schema = kcp.cluster(c, f"root:{wl.mailbox(SCHEMA)}")
    schema.create(f"{checker.CRDS.collection()}", checker.widget_crd(STRICT))
    kcp.wait_for("strict widgets served", lambda: _served(schema), 120)

    quota = kcp.cluster(c, f"root:{wl.mailbox(QUOTA)}")
    quota.create("/api/v1/namespaces", {"metadata": {"name": "app-a"}})
    quota.create(
        "/api/v1/namespaces/app-a/resourcequotas",
        {"metadata": {"name": "chaos"}, "spec": {"hard": {"count/configmaps": "3"}}},
    )
    kcp.wait_for(
        "quota status",
        lambda: (quota.get("/api/v1/namespaces/app-a/resourcequotas/chaos").get("status") or {}).get("used"),
        120,
    )

    term = kcp.cluster(c, f"root:{wl.mailbox(TERMINATING)}")
    term.create("/api/v1/namespaces", {"metadata": {"name": "app-a", "finalizers": ["chaos.test/hold"]}})
    term.delete("/api/v1/namespaces/app-a")

    _grant(
        c,
        "chaos-user-read",
        [
            {"nonResourceURLs": ["/"], "verbs": ["access"]},
            {"apiGroups": ["tenancy.kcp.io"], "resources": ["workspaces"], "verbs": ["get", "list", "watch"]},
        ],
    )


def _served(c: RestClient) -> bool:
    try:
        c.get(checker.WIDGETS.collection())
        return True
    except ApiError:
        return False


def _remove_obstacles(c: RestClient, wl: checker.Workload) -> None:
    _grant(
        c,
        "chaos-user-create",
        [
            {"apiGroups": ["tenancy.kcp.io"], "resources": ["workspaces"], "verbs": ["create"]},
            {"apiGroups": ["tenancy.kcp.io"], "resources": ["workspacetypes"], "verbs": ["use"]},
        ],
    )
    kcp.cluster(c, f"root:{wl.mailbox(SCHEMA)}").delete(f"{checker.CRDS.collection()}/{checker.WIDGET_CRD}")
    kcp.cluster(c, f"root:{wl.mailbox(QUOTA)}").delete("/api/v1/namespaces/app-a/resourcequotas/chaos")
    kcp.cluster(c, f"root:{wl.mailbox(TERMINATING)}").patch(
        "/api/v1/namespaces/app-a", {"metadata": {"finalizers": None}}
    )


def _retries(text: str) -> dict[tuple[str, str], list[float]]:
    """The times of each failed attempt: a reconcile error (controller, key) or a refused copy
    reported by the translator (mailbox, object)."""
    out: dict[tuple[str, str], list[float]] = {}
    for line in text.splitlines():
        m = _ERROR.match(line)
        if m:
            h, mi, sec, controller, key = m.groups()
            out.setdefault((controller, key), []).append(int(h) * 3600 + int(mi) * 60 + float(sec))
        m = _REFUSED.match(line)
        if m:
            h, mi, sec, obj, mailbox = m.groups()
            out.setdefault((mailbox, obj), []).append(int(h) * 3600 + int(mi) * 60 + float(sec))
    return out


def _others_converged(c: RestClient, wl: checker.Workload) -> bool:
    want = wl.expected()
    for loc in wl.locations:
        if loc in (*OBSTACLES, FORBIDDEN):
            continue
        name = wl.mailbox(loc)
        if checker.check_mailbox(c, name, want[name], wl.resources()):
            return False
    return True


def _observe(c: RestClient, s: Scenario) -> None:
    wl = s.workload
    want = wl.expected()
    for loc in wl.locations:
        name = wl.mailbox(loc)
        if loc == FORBIDDEN:
            s.problems[loc] = [] if name in checker.mailbox_names(c) else ["mailbox missing"]
            continue
        s.problems[loc] = checker.check_mailbox(c, name, want[name], wl.resources())
        s.copies[loc] = set(checker.list_copies(c, name, wl.resources()))
        the_one = checker.get(kcp.cluster(c, f"root:{name}"), f"{checker.EDGE}/syncerconfigs/the-one")
        s.the_one[loc] = None if the_one is None else the_one.get("spec")
    text = "\n".join(p.text() for p in s.controllers.all)
    s.retries = _retries(text)
    mailbox_key = f"key={wl.mailbox(FORBIDDEN)}"
    s.forbidden_log = [ln for ln in text.splitlines() if "403" in ln and "workspaces" in ln] + [
        ln for ln in text.splitlines() if mailbox_key in ln and "mailbox-controller" in ln
    ]
    for w in wl.wmws:
        wc = kcp.cluster(c, w.path)
        for ev in (checker.get(wc, "/api/v1/events") or {"items": []})["items"]:
            if ev.get("type") == "Warning":
                s.events.append({"wmw": w.name, **ev})
        ep = checker.get(wc, f"{checker.EDGE}/edgeplacements/{w.placement}") or {}
        for cond in (ep.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Projected":
                s.projected[w.name] = cond


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    server = KcpServer(Path(tempfile.mkdtemp(prefix="ks-chaos-refusals-kcp-")), extra_args=USER_BATTERY)
    controllers = Controllers(server, tmp_path_factory.mktemp("refusals"))
    ok = False
    try:
        server.start()
        c = server.client()
        bootstrap.init(c)
        wl = checker.create(c, widgets=True)
        threads = [
            threading.Thread(target=_make_mailbox, args=(c, wl, loc))
            for loc in wl.locations
            if loc != FORBIDDEN
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _obstacles(c, wl)
        s = Scenario(wl, controllers)
        p = controllers.start("--root-context", "user", name="kubestellar-as-user")
        p.wait_leading()
        started = time.monotonic()
        deadline = started + CONVERGE_TIMEOUT
        while time.monotonic() < deadline:
            if _others_converged(c, wl):
                s.others_converged_s = time.monotonic() - started
                break
            assert p.alive(), p.tail()
            time.sleep(2)
        time.sleep(max(0.0, started + OBSERVE - time.monotonic()))
        _observe(c, s)
        figure(
            "refusals: during the obstacles",
            others_converged_s=s.others_converged_s if s.others_converged_s is not None else "never",
            failing_keys=len(s.retries),
            max_retries_per_key=max((len(v) for v in s.retries.values()), default=0),
            warning_events=len(s.events),
            projected=",".join(f"{k}={v.get('status')}" for k, v in sorted(s.projected.items())),
        )
        _remove_obstacles(c, wl)
        fixed = time.monotonic()
        try:
            conv = checker.wait_converged(c, wl, CONVERGE_TIMEOUT, since=fixed, alive=p.dead)
            s.recovered_s = conv.seconds
            s.lost = checker.lost(c, wl)
            figure(
                "refusals: obstacles removed, converged",
                converge_s=conv.seconds,
                writes=p.read_writes(),
                lost=len(s.lost),
            )
        except AssertionError as e:
            s.recover_error = str(e)
        yield s
        ok = True
    finally:
        controllers.stop_all()
        server.stop()
        if ok:
            shutil.rmtree(server.dir, ignore_errors=True)
        else:
            print(f"\n{controllers.tails()}\nkcp root directory kept: {server.dir} (log: {server.log})")


def test_refusals_retried_with_backoff_then_converge(scenario: Scenario) -> None:
    s = scenario
    # Other mailboxes are not blocked.
    assert s.others_converged_s is not None, {k: v[:5] for k, v in s.problems.items()}
    # The forbidden Workspace creation is logged and retried.
    assert any("403" in ln or "Forbidden" in ln for ln in s.forbidden_log), s.forbidden_log[-5:]
    assert ("mailbox-controller", s.workload.mailbox(FORBIDDEN)) in s.retries
    # Each refusal retried with a growing backoff, never in a hot loop.
    assert s.retries, "no refused write was retried"
    for key, times in s.retries.items():
        assert len(times) <= MAX_RETRIES, f"{key}: {len(times)} attempts in {OBSERVE:.0f}s: a hot loop"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        if len(gaps) >= 5:
            assert gaps[-1] >= 2.0, f"{key}: retries not backing off: {gaps}"
    # Once the obstacles are gone, everything converges: the refused writes were retried.
    assert s.recovered_s is not None, f"{s.recover_error}\n{s.controllers.tails()}"
    assert not s.lost, s.lost


def _refused(location: str, key: tuple[str, str, str]) -> bool:
    """Whether the obstacle in ``location``'s mailbox refuses the copy ``key``."""
    if location == SCHEMA:  # the edge admin's own CRD is no projected copy either
        return key[0] in ("widgets", "customresourcedefinitions")
    if location == QUOTA:
        return key[0] == "configmaps"
    return key[1] == "app-a"


def test_refused_copy_does_not_block_its_mailbox(scenario: Scenario) -> None:
    """Beside a refused copy, every other copy of the mailbox and the-one are written."""
    s = scenario
    wl = s.workload
    want = wl.expected()
    missing: dict[str, list[tuple[str, str, str]]] = {}
    for loc in OBSTACLES:
        exp = want[wl.mailbox(loc)]
        missing[loc] = sorted(k for k in exp.copies if not _refused(loc, k) and k not in s.copies[loc])
        if s.the_one[loc] is None:
            missing[loc].append(("syncerconfigs", "", "the-one"))
    assert all(not v for v in missing.values()), f"copies not written beside a refused one: {missing}"
    assert any(k[0] == "configmaps" for k in s.copies[QUOTA]), "quota: no ConfigMap copy at all"


def test_refused_write_is_reported(scenario: Scenario) -> None:
    """Decisions 6 and 7: a Warning Event on the source object in its WMW; Projected False."""
    s = scenario
    wl = s.workload
    sources = {f"cm-{i}" for i in range(8)} | {"sec-0", "sec-1", "w-0"}
    for loc in OBSTACLES:
        mailbox = wl.mailbox(loc)
        found = [
            ev
            for ev in s.events
            if ev["wmw"] == "wmw-a"
            and ev["involvedObject"].get("name") in sources
            and mailbox in ev.get("message", "")
        ]
        assert found, f"{loc}: no Warning Event on a refused source: {[e['message'][:120] for e in s.events]}"
    assert s.projected.get("wmw-a", {}).get("status") == "False", s.projected.get("wmw-a")
