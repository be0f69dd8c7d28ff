#!/usr/bin/env python3
"""``make demo``: example1 of the KubeStellar docs on a fresh kcp server, with every controller.

Starts kcp in a temporary directory, runs ``python -m cmd.kubestellar init``, creates the example1
inventory (florin, guilder), the two workload management workspaces with their workloads,
Customizers and EdgePlacements, starts ``python -m cmd.kubestellar start``, waits until both
mailboxes are complete and their ``the-one`` is stable, prints each mailbox, and stops what it
started.  With ``--edge``, a second kcp plays the edge clusters (one workspace ``root:edge-<name>``
each), ``prep-for-syncer`` prepares each mailbox and its manifest is applied at its edge; with
``--syncer PATH`` (an upstream KubeStellar v0.14.0 syncer binary) the syncers run and the demo
prints what arrived at each edge, without it what the syncer's credentials can read.

    hack/demo.py            # run it, print the mailboxes, stop everything
    hack/demo.py --keep     # leave kcp and the controllers running, print how to explore and stop
    hack/demo.py --edge [--syncer PATH]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pkg import bootstrap, syncerprep  # noqa: E402
from pkg.runtime import kcp  # noqa: E402
from pkg.runtime.kubeconfig import KubeconfigSource  # noqa: E402
from pkg.runtime.rest import ApiError, RestClient  # noqa: E402

KCP_SH = REPO / "hack" / "kcp.sh"
EXAMPLE = REPO / "config" / "examples" / "example1"
EDGE = bootstrap.EDGE_API
IMW = bootstrap.DEFAULT_IMW
SYNC_TARGET_ANNOTATION = "edge.kubestellar.io/sync-target-name"

# The inventory of the walkthrough: a SyncTarget and a Location each.
LOCATIONS = {
    "florin": ["loc-name=florin", "env=prod"],
    "guilder": ["loc-name=guilder", "env=prod", "extended=yes"],
}
WMWS = {"wmw-c": "wmw-c.yaml", "wmw-s": "wmw-s.yaml"}

# Where each copied resource lives: resource -> (API prefix, namespaced).
RESOURCES = {
    "namespaces": ("/api/v1", False),
    "configmaps": ("/api/v1", True),
    "replicasets": ("/apis/apps/v1", True),
    "deployments": ("/apis/apps/v1", True),
    "crontabs": ("/apis/stable.example.com/v1", True),
    "apiservices": ("/apis/apiregistration.k8s.io/v1", False),
    "customresourcedefinitions": ("/apis/apiextensions.k8s.io/v1", False),
}
# The copies that example1 puts in each mailbox: (resource, namespace, name).
COMMON = [
    ("namespaces", "", "commonstuff"),
    ("configmaps", "commonstuff", "httpd-htdocs"),
    ("replicasets", "commonstuff", "commond"),
]
EXPECTED = {
    "florin": COMMON,
    "guilder": [
        *COMMON,
        ("namespaces", "", "specialstuff"),
        ("customresourcedefinitions", "", "crontabs.stable.example.com"),
        ("apiservices", "", "v1090.example.my"),
        ("configmaps", "specialstuff", "httpd-htdocs"),
        ("deployments", "specialstuff", "speciald"),
        ("crontabs", "specialstuff", "my-new-cron-object"),
    ],
}
STABLE_FOR = 2.0  # seconds for which every the-one must stay unchanged


class StepFailed(Exception):
    def __init__(self, message: str, logs: list[Path] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or []


class Output:
    """``[n/N] step`` lines with their duration; progress lines that overwrite on a terminal."""

    def __init__(self, total: int, out: TextIO = sys.stdout) -> None:
        self.total = total
        self.n = 0
        self.out = out
        self.tty = out.isatty()
        self.t0 = time.monotonic()
        self.current = ""
        self.open = False  # the step's title line waits for its duration
        self.progress_shown = ""

    def print(self, text: str = "") -> None:
        self._close_line()
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        self.print(textwrap.indent(text, "      "))

    def progress(self, text: str, suffix: str = "") -> None:
        """Show ``text + suffix``; without a terminal, only when ``text`` changes."""
        if not self.tty and text == self.progress_shown:
            return
        self.progress_shown = text
        text += suffix
        if self.tty:
            if self.open:
                self.out.write("\n")
                self.open = False
            self.out.write(f"\r\x1b[K      {text}")
            self.out.flush()
        else:
            if self.open:
                self.out.write("\n")
                self.open = False
            print(f"      {text}", file=self.out, flush=True)

    def _close_line(self) -> None:
        if self.open:
            self.out.write("\n")
            self.open = False
        if self.progress_shown and self.tty:
            self.out.write("\n")
        self.progress_shown = ""

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._close_line()
        self.n += 1
        self.current = f"[{self.n}/{self.total}] {title}"
        self.out.write(self.current)
        self.out.flush()
        self.open = True
        start = time.monotonic()
        yield
        took = f"{time.monotonic() - start:.1f}s"
        if self.progress_shown and self.tty:
            self.out.write("\n")
            self.progress_shown = ""
        if self.open:
            self.out.write(f" ... {took}\n")
            self.open = False
        else:
            self.out.write(f"      done in {took}\n")
        self.out.flush()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


@dataclass
class Demo:
    dir: Path
    keep: bool
    timeout: float
    out: Output
    kcp_dir: Path = field(init=False)
    steps_log: Path = field(init=False)
    controllers_log: Path = field(init=False)
    controllers: subprocess.Popen[bytes] | None = None
    kcp_started: bool = False
    client: RestClient | None = None
    mailboxes: dict[str, str] = field(default_factory=dict)  # location -> workspace name
    edge: Edge | None = None

    def __post_init__(self) -> None:
        self.kcp_dir = self.dir / "kcp"
        self.steps_log = self.dir / "steps.log"
        self.controllers_log = self.dir / "kubestellar.log"

    @property
    def kubeconfig(self) -> Path:
        return self.kcp_dir / "admin.kubeconfig"

    @property
    def kcp_log(self) -> Path:
        return self.kcp_dir / "kcp.log"

    # --- running commands ---------------------------------------------------------------------

    def run(self, *args: str, what: str) -> str:
        """Run a command with its output appended to steps.log; return its stdout."""
        with self.steps_log.open("a") as log:
            log.write(f"$ {' '.join(args)}\n")
            log.flush()
            proc = subprocess.run(args, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
            log.write(proc.stdout)
        if proc.returncode != 0:
            raise StepFailed(f"{what} exited with {proc.returncode}", [self.steps_log])
        return proc.stdout.strip()

    def kubestellar(self, *args: str) -> str:
        return self.run(
            sys.executable,
            "-m",
            "cmd.kubestellar",
            *args,
            "--kubeconfig",
            str(self.kubeconfig),
            what=f"python -m cmd.kubestellar {' '.join(args)}",
        )

    # --- the steps ----------------------------------------------------------------------------

    def binaries(self) -> dict[str, str]:
        names = ["kcp", "kubectl", "kubectl-ws"] if self.keep else ["kcp"]
        return {name: self.run(str(KCP_SH), "path", name, what=f"hack/kcp.sh path {name}") for name in names}

    def start_kcp(self) -> None:
        self.kcp_started = True
        self.run(str(KCP_SH), "start", str(self.kcp_dir), what="hack/kcp.sh start")
        source = KubeconfigSource(kubeconfig=str(self.kubeconfig), context=kcp.BASE_CONTEXT)
        endpoint = source.load()
        self.client = RestClient(endpoint, kcp.server_origin(endpoint.server))

    def apply_workloads(self) -> list[str]:
        assert self.client is not None
        lines = []
        for wmw, file in WMWS.items():
            docs = [d for d in yaml.safe_load_all((EXAMPLE / file).read_text()) if d]
            bootstrap.apply_objects(self.client, f"root:{wmw}", docs)
            kinds: dict[str, int] = {}
            for d in docs:
                kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
            lines.append(f"root:{wmw}: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
        return lines

    def start_controllers(self) -> int:
        with self.controllers_log.open("wb") as log:
            self.controllers = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cmd.kubestellar",
                    "start",
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--server-bind-address",
                    "127.0.0.1:0",
                    "-v",
                    "2",
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only the demo, which then stops it
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_controllers()
            port = metrics_port(self.controllers_log)
            if port:
                return port
            time.sleep(0.2)
        raise StepFailed("the controllers did not start serving within 60s", [self.controllers_log])

    def check_controllers(self) -> None:
        if self.controllers is not None and self.controllers.poll() is not None:
            raise StepFailed(
                f"python -m cmd.kubestellar start exited with {self.controllers.returncode}",
                [self.controllers_log],
            )

    def find_mailboxes(self) -> None:
        assert self.client is not None
        items = kcp.cluster(self.client, kcp.ROOT).get(f"{kcp.TENANCY}/workspaces").get("items", [])
        for ws in items:
            md = ws["metadata"]
            target = (md.get("annotations") or {}).get(SYNC_TARGET_ANNOTATION)
            if target in LOCATIONS and ws.get("status", {}).get("phase") == "Ready":
                self.mailboxes[target] = md["name"]

    def the_one(self, location: str) -> dict[str, Any] | None:
        assert self.client is not None
        mailbox = self.mailboxes.get(location)
        if mailbox is None:
            return None
        obj = get(kcp.cluster(self.client, f"root:{mailbox}"), f"{EDGE}/syncerconfigs/the-one")
        return None if obj is None else obj.get("spec")

    def copy(self, location: str, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert self.client is not None
        prefix, namespaced = RESOURCES[resource]
        ns = f"/namespaces/{namespace}" if namespaced else ""
        return get(
            kcp.cluster(self.client, f"root:{self.mailboxes[location]}"), f"{prefix}{ns}/{resource}/{name}"
        )

    def wait_converged(self) -> None:
        deadline = time.monotonic() + self.timeout
        start = time.monotonic()
        total = sum(len(v) for v in EXPECTED.values())
        last: dict[str, Any] = {}
        stable_since = time.monotonic()
        while True:
            self.check_controllers()
            try:
                self.find_mailboxes()
                specs = {loc: self.the_one(loc) for loc in LOCATIONS}
                copies = sum(
                    1
                    for loc, expected in EXPECTED.items()
                    if loc in self.mailboxes
                    for key in expected
                    if self.copy(loc, *key) is not None
                )
            except ApiError as e:
                self.out.progress(f"waiting: {e}")
                specs, copies = {}, 0
            if specs != last:
                last, stable_since = specs, time.monotonic()
            ones = sum(1 for s in specs.values() if s)
            self.out.progress(
                f"waiting: mailboxes {len(self.mailboxes)}/{len(LOCATIONS)}, "
                f"the-one {ones}/{len(LOCATIONS)}, copies {copies}/{total}",
                f" ({time.monotonic() - start:.0f}s)",
            )
            if ones == len(LOCATIONS) and copies == total and time.monotonic() - stable_since >= STABLE_FOR:
                return
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"not converged within {self.timeout:.0f}s (mailboxes {len(self.mailboxes)}/"
                    f"{len(LOCATIONS)}, the-one {ones}/{len(LOCATIONS)}, copies {copies}/{total})",
                    [self.controllers_log],
                )
            time.sleep(0.5)

    # --- the report ---------------------------------------------------------------------------

    def report(self) -> None:
        for location in LOCATIONS:
            mailbox = self.mailboxes[location]
            self.out.print()
            self.out.print(f"=== mailbox root:{mailbox}")
            self.out.print(f"    SyncTarget: {location} (root:{IMW})")
            self.out.print("    the-one spec:")
            spec = self.the_one(location) or {}
            text = yaml.safe_dump(ordered(spec), sort_keys=False, default_flow_style=None, width=100)
            self.out.print(textwrap.indent(text.rstrip(), "      "))
            rows = [("KIND", "NAMESPACE/NAME", "CUSTOMIZED")]
            for resource, namespace, name in EXPECTED[location]:
                obj = self.copy(location, resource, namespace, name) or {}
                rows.append(
                    (
                        str(obj.get("kind", resource)),
                        f"{namespace}/{name}" if namespace else name,
                        customized(obj),
                    )
                )
            self.out.print("    copies:")
            widths = [max(len(r[i]) for r in rows) for i in range(2)]
            for kind, ref, custom in rows:
                self.out.print(f"      {kind:<{widths[0]}}  {ref:<{widths[1]}}  {custom}".rstrip())
        self.out.print()
        for wmw, file in WMWS.items():
            for d in yaml.safe_load_all((EXAMPLE / file).read_text()):
                if d and d["kind"] == "EdgePlacement":
                    self.out.print(self.placement_status(wmw, d["metadata"]["name"]))

    def placement_status(self, wmw: str, name: str) -> str:
        assert self.client is not None
        ep = get(kcp.cluster(self.client, f"root:{wmw}"), f"{EDGE}/edgeplacements/{name}") or {}
        status = ep.get("status") or {}
        conds = ", ".join(f"{c['type']}={c['status']}" for c in status.get("conditions", []))
        count = status.get("matchingLocationCount", "?")
        conds = conds or "no conditions yet"
        return f"EdgePlacement root:{wmw}/{name}: {count} matching location(s); {conds}"

    def explore(self, bins: dict[str, str], port: int) -> str:
        """Write a kubeconfig copy and stop.sh; return how to explore and how to stop."""
        mine = self.dir / "demo.kubeconfig"
        shutil.copyfile(self.kubeconfig, mine)
        stop = self.write_stop_script()
        bindir = Path(bins["kubectl"]).parent
        guilder = self.mailboxes["guilder"]
        server = kcp.server_origin(self.client.prefix) if self.client else ""
        pid = self.controllers.pid if self.controllers else "?"
        return textwrap.dedent(f"""
            Running:
              admin kubeconfig (the controllers use it): {self.kubeconfig}
              kcp log: {self.kcp_log}
              controllers (pid {pid}) log: {self.controllers_log}, metrics: http://127.0.0.1:{port}/metrics

            Explore with kubectl and the kcp workspace plugin (a copy of the kubeconfig, as `kubectl ws`
            edits the file it uses):
              export KUBECONFIG={mine}
              export PATH={bindir}:$PATH
              kubectl ws root:{IMW}
              kubectl get synctargets.edge.kubestellar.io,locations.edge.kubestellar.io
              kubectl ws root:wmw-s
              kubectl get edgeplacements,singleplacementslices -o yaml
              kubectl ws root
              kubectl get workspaces
              kubectl ws root:{guilder}
              kubectl get syncerconfigs the-one -o yaml
              kubectl get deployments -n specialstuff speciald -o yaml
            or, without switching workspaces:
              kubectl --kubeconfig {self.kubeconfig} \\
                --server {server}/clusters/root:{guilder} get syncerconfigs the-one -o yaml

            Stop everything:
              {stop}""").rstrip()

    def write_stop_script(self) -> Path:
        script = self.dir / "stop.sh"
        pid = self.controllers.pid if self.controllers else 0
        script.write_text(
            "#!/usr/bin/env bash\n"
            "# Stop what `hack/demo.py --keep` started, then remove its directory.\n"
            f"kill -TERM {pid} 2>/dev/null && for _ in $(seq 1 100); do kill -0 {pid} 2>/dev/null || break; "
            "sleep 0.2; done\n"
            f"kill -KILL {pid} 2>/dev/null || true\n"
            f"{KCP_SH} stop {self.kcp_dir}\n"
            f"rm -rf {self.dir}\n"
            f"echo 'stopped the demo in {self.dir}'\n"
        )
        script.chmod(0o755)
        return script

    # --- stopping -----------------------------------------------------------------------------

    def stop(self) -> None:
        if self.edge is not None:
            self.edge.stop()
        if self.controllers is not None and self.controllers.poll() is None:
            self.controllers.send_signal(signal.SIGTERM)
            try:
                self.controllers.wait(30)
            except subprocess.TimeoutExpired:
                self.controllers.kill()
                self.controllers.wait()
        if self.kcp_started:
            subprocess.run([str(KCP_SH), "stop", str(self.kcp_dir)], cwd=REPO, check=False)


@dataclass
class Edge:
    """The edge clusters, played by the workspaces ``root:edge-<location>`` of a second kcp."""

    demo: Demo
    syncer: str | None
    dir: Path = field(init=False)
    client: RestClient | None = None
    started: bool = False
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    manifests: dict[str, Path] = field(default_factory=dict)
    syncers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.demo.dir / "edge-kcp"

    def ws(self, location: str) -> str:
        return f"root:edge-{location}"

    def start_in_background(self) -> None:
        """Start the edge kcp and set up its workspaces while the central side is being set up."""

        def run() -> None:
            try:
                self.started = True
                self.demo.run(str(KCP_SH), "start", str(self.dir), what="hack/kcp.sh start (edge)")
                source = KubeconfigSource(
                    kubeconfig=str(self.dir / "admin.kubeconfig"), context=kcp.BASE_CONTEXT
                )
                endpoint = source.load()
                self.client = RestClient(endpoint, kcp.server_origin(endpoint.server))
                bootstrap.init(self.client)
                for location in LOCATIONS:
                    bootstrap.ensure_wmw(self.client, f"edge-{location}")
            except BaseException as e:  # reported by wait_ready
                self.error = e
            finally:
                self.ready.set()

        threading.Thread(target=run, daemon=True).start()

    def wait_ready(self) -> None:
        self.ready.wait()
        if self.error is not None:
            raise StepFailed(f"the edge kcp could not be set up: {self.error}", [self.demo.steps_log])

    def prepare(self) -> list[str]:
        assert self.client is not None
        lines = []
        for location in LOCATIONS:
            out = self.demo.dir / f"{location}-syncer.yaml"
            self.demo.kubestellar("prep-for-syncer", location, "-o", str(out))
            self.manifests[location] = out
            docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
            bootstrap.apply_objects(self.client, self.ws(location), docs)
            kinds = ", ".join(f"{d['kind']} {d['metadata']['name']}" for d in docs[:1] + docs[-1:])
            lines.append(
                f"{location}: {out.name} ({len(docs)} objects: {kinds}, ...) applied in {self.ws(location)}"
            )
        return lines

    def docs(self, location: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.manifests[location].read_text()) if d]

    def edge_kubeconfig(self, location: str) -> Path:
        """The edge ServiceAccount's token on the edge server, as the syncer's pod would have it."""
        assert self.client is not None
        sid = next(d for d in self.docs(location) if d["kind"] == "Deployment")["metadata"]["name"]
        at = kcp.cluster(self.client, self.ws(location))
        secret = kcp.wait_for(
            f"{location}'s edge token",
            lambda: ((get(at, f"/api/v1/namespaces/{sid}/secrets/{sid}-token") or {}).get("data") or {}).get(
                "token"
            ),
            60,
        )
        admin = yaml.safe_load((self.dir / "admin.kubeconfig").read_text())
        cluster = {"server": kcp.server_origin(self.client.prefix), **{
            k: v for k, v in admin["clusters"][0]["cluster"].items() if k == "certificate-authority-data"
        }}  # fmt: skip
        raw = {
            "apiVersion": "v1", "kind": "Config", "current-context": "edge",
            "clusters": [{"name": "edge", "cluster": cluster}],
            "contexts": [{"name": "edge", "context": {"cluster": "edge", "user": "syncer"}}],
            "users": [{"name": "syncer", "user": {"token": base64.b64decode(secret).decode()}}],
        }  # fmt: skip
        path = self.demo.dir / f"{location}-edge.kubeconfig"
        path.write_text(yaml.safe_dump(raw))
        return path

    def start_syncers(self) -> None:
        assert self.syncer is not None
        for location in LOCATIONS:
            docs = self.docs(location)
            mailbox = self.demo.dir / f"{location}-mailbox.kubeconfig"
            mailbox.write_text(yaml.safe_dump(syncerprep.manifest_kubeconfig(docs)))
            dep = next(d for d in docs if d["kind"] == "Deployment")
            args = [
                a
                for a in dep["spec"]["template"]["spec"]["containers"][0]["args"]
                if "from-kubeconfig" not in a
            ]
            log = (self.demo.dir / f"{location}-syncer.log").open("wb")
            self.syncers.append(
                subprocess.Popen(
                    [
                        self.syncer,
                        f"--from-kubeconfig={mailbox}",
                        f"--to-kubeconfig={self.edge_kubeconfig(location)}",
                        *args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def wait_synced(self) -> None:
        """Until every copy of every mailbox is at its edge with the mailbox's content."""
        assert self.client is not None
        deadline = time.monotonic() + max(self.demo.timeout, 300)
        start = time.monotonic()
        total = sum(len(v) for v in EXPECTED.values())
        while True:
            for proc in self.syncers:
                if proc.poll() is not None:
                    raise StepFailed(
                        f"a syncer exited with {proc.returncode}", list(self.demo.dir.glob("*-syncer.log"))
                    )
            arrived = sum(
                1
                for location, expected in EXPECTED.items()
                for key in expected
                if same(self.at_edge(location, *key), self.demo.copy(location, *key))
            )
            self.demo.out.progress(
                f"waiting: {arrived}/{total} objects at their edge", f" ({time.monotonic() - start:.0f}s)"
            )
            if arrived == total:
                return
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"only {arrived}/{total} objects reached their edge",
                    list(self.demo.dir.glob("*-syncer.log")),
                )
            time.sleep(1.0)

    def at_edge(self, location: str, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert self.client is not None
        prefix, namespaced = RESOURCES[resource]
        ns = f"/namespaces/{namespace}" if namespaced else ""
        return get(kcp.cluster(self.client, self.ws(location)), f"{prefix}{ns}/{resource}/{name}")

    def report(self) -> None:
        for location in LOCATIONS:
            self.demo.out.print()
            self.demo.out.print(f"=== edge cluster {location} ({self.ws(location)} of the edge kcp)")
            self.demo.out.print(f"    manifest: {self.manifests[location]}")
            if self.syncer:
                self.demo.out.print("    arrived from the mailbox (by the syncer):")
                for key in EXPECTED[location]:
                    obj = self.at_edge(location, *key) or {}
                    ref = f"{key[1]}/{key[2]}" if key[1] else key[2]
                    self.demo.out.print(f"      {obj.get('kind', key[0])}  {ref}  {customized(obj)}".rstrip())
                continue
            mb = RestClient(_endpoint(syncerprep.manifest_kubeconfig(self.docs(location))))
            spec = mb.get(f"{EDGE}/syncerconfigs/the-one")["spec"]
            esc = mb.get(f"{EDGE}/edgesyncconfigs")["items"]
            self.demo.out.print("    the syncer's mailbox credentials (from the manifest) read:")
            self.demo.out.print(
                f"      SyncerConfig the-one, EdgeSyncConfig {', '.join(e['metadata']['name'] for e in esc)}"
            )
            for key in EXPECTED[location]:
                prefix, namespaced = RESOURCES[key[0]]
                ns = f"/namespaces/{key[1]}" if namespaced else ""
                obj = mb.get(f"{prefix}{ns}/{key[0]}/{key[2]}")
                ref = f"{key[1]}/{key[2]}" if key[1] else key[2]
                self.demo.out.print(f"      {obj['kind']}  {ref}  {customized(obj)}".rstrip())
            upsync = ", ".join(f"{u['apiGroup']}/{r}" for u in spec.get("upsync", []) for r in u["resources"])
            self.demo.out.print(f"    upsync clauses in the-one: {upsync}")
        if not self.syncer:
            self.demo.out.print()
            self.demo.out.print("(no --syncer PATH: the syncers were not run; see the README, 'The edge')")

    def stop(self) -> None:
        for proc in self.syncers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.started:
            self.ready.wait(300)
            subprocess.run([str(KCP_SH), "stop", str(self.dir)], cwd=REPO, check=False)


def _endpoint(raw: dict[str, Any]) -> Any:
    from pkg.runtime.kubeconfig import endpoint_from_dict

    return endpoint_from_dict(raw, KubeconfigSource())


def same(edge: dict[str, Any] | None, mailbox: dict[str, Any] | None) -> bool:
    """The edge object has the mailbox copy's content (all but metadata and status)."""
    if edge is None or mailbox is None:
        return False
    return all(edge.get(k) == v for k, v in mailbox.items() if k not in ("metadata", "status"))


def get(c: RestClient, path: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = c.get(path)
        return result
    except ApiError as e:
        if e.not_found:
            return None
        raise


KEY_ORDER = ["namespaceScope", "namespacedObjects", "clusterScope", "upsync", "apiGroup", "group"]
KEY_ORDER += ["resource", "resources", "apiVersion", "namespace", "namespaces", "names", "objects"]


def ordered(value: Any) -> Any:
    """``value`` with its mappings' keys in reading order (the SyncerConfig's own order first)."""
    if isinstance(value, dict):
        rank = {k: i for i, k in enumerate(KEY_ORDER)}
        keys = sorted(value, key=lambda k: (rank.get(k, len(rank)), k))
        return {k: ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def metrics_port(log: Path) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        if "serving metrics and probes" in line:
            return int(line.rsplit(":", 1)[1])
    return None


def customized(obj: dict[str, Any]) -> str:
    """The fields that example1's parameters and Customizers change, as one short string."""
    if obj.get("kind") == "ConfigMap":
        for line in str((obj.get("data") or {}).get("index.html", "")).splitlines():
            if "Running in" in line:
                return f"index.html: {line.strip()!r}"
    if obj.get("kind") in ("ReplicaSet", "Deployment"):
        containers = obj["spec"]["template"]["spec"]["containers"]
        return f"env[0].value: {containers[0]['env'][0]['value']!r}"
    return ""


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="leave kcp and the controllers running")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for convergence")
    p.add_argument(
        "--edge", action="store_true", help="also the edge: a second kcp, prep-for-syncer, manifests"
    )
    p.add_argument("--syncer", metavar="PATH", help="with --edge: an upstream v0.14.0 syncer binary to run")
    args = p.parse_args(argv)
    if args.syncer and not args.edge:
        p.error("--syncer needs --edge")
    if args.syncer and not (Path(args.syncer).is_file() and os.access(args.syncer, os.X_OK)):
        p.error(f"--syncer {args.syncer}: not an executable file")

    # SIGTERM (as from `timeout` or a CI runner) stops what was started, like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)

    out = Output(total=12 if args.edge else 9)
    demo = Demo(Path(tempfile.mkdtemp(prefix="kubestellar-demo-")), args.keep, args.timeout, out)
    if args.edge:
        demo.edge = Edge(demo, args.syncer)
    out.print(f"kubestellar-py demo: example1 on a fresh kcp (working directory {demo.dir})")
    ok = interrupted = False
    bins: dict[str, str] = {}
    port = 0
    steps: list[tuple[str, Callable[[], None]]] = []

    def do_binaries() -> None:
        bins.update(demo.binaries())

    def do_init() -> None:
        out.note(demo.kubestellar("init"))

    def do_inventory() -> None:
        for name, labels in LOCATIONS.items():
            out.note(demo.kubestellar("ensure", "location", name, *labels) + f"  ({' '.join(labels)})")

    def do_wmws() -> None:
        results: dict[str, str] = {}
        errors: list[BaseException] = []

        def one(wmw: str) -> None:
            try:
                results[wmw] = demo.kubestellar("ensure", "wmw", wmw)
            except BaseException as e:  # re-raised below
                errors.append(e)

        threads = [threading.Thread(target=one, args=(w,)) for w in WMWS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        for wmw in WMWS:
            out.note(results[wmw])

    def do_workloads() -> None:
        for line in demo.apply_workloads():
            out.note(line)

    def do_controllers() -> None:
        nonlocal port
        port = demo.start_controllers()
        out.note(f"pid {demo.controllers.pid if demo.controllers else '?'}, log {demo.controllers_log}")

    steps = [
        ("kcp binaries (hack/kcp.sh path)", do_binaries),
        (f"start kcp in {demo.kcp_dir}", demo.start_kcp),
        ("python -m cmd.kubestellar init", do_init),
        ("inventory in root:imw1: florin, guilder", do_inventory),
        ("workload management workspaces root:wmw-c, root:wmw-s", do_wmws),
        ("workloads, Customizers and EdgePlacements", do_workloads),
        ("python -m cmd.kubestellar start (all controllers)", do_controllers),
        ("wait until both mailboxes are complete and stable", demo.wait_converged),
    ]
    if demo.edge is not None:
        edge = demo.edge

        def do_edge_ready() -> None:
            edge.wait_ready()

        def do_prep() -> None:
            for line in edge.prepare():
                out.note(line)

        def do_syncers() -> None:
            if edge.syncer is None:
                out.note("no --syncer PATH given: only what the syncer's credentials can read is shown")
                return
            edge.start_syncers()
            edge.wait_synced()

        start_central = steps[1][1]

        def start_both() -> None:
            edge.start_in_background()
            start_central()

        steps[1] = (f"start kcp in {demo.kcp_dir} (and the edge kcp in {edge.dir})", start_both)
        steps += [
            ("edge kcp: init, root:edge-florin, root:edge-guilder", do_edge_ready),
            ("prep-for-syncer florin, guilder; apply each manifest at its edge", do_prep),
            ("run the syncers; wait until every object is at its edge", do_syncers),
        ]
    title = ""
    try:
        for title, body in steps:
            with out.step(title):
                body()
        title = "report"
        demo.report()
        if demo.edge is not None:
            demo.edge.report()
        if args.keep:
            title = "leave kcp and the controllers running (--keep)"
            out.n = out.total - 1
            with out.step(title):
                text = demo.explore(bins, port)
            out.print(text)
        ok = True
    except StepFailed as e:
        out.print(f"demo: step [{out.n}/{out.total}] {title} failed: {e}")
        for log in e.logs:
            out.print(f"--- last lines of {log}")
            out.print(tail(log))
        logs = [demo.steps_log, demo.kcp_log, demo.controllers_log]
        out.print("demo: logs: " + ", ".join(str(x) for x in logs if x.exists()))
    except KeyboardInterrupt:
        interrupted = True
        out.print(f"demo: interrupted during step [{out.n}/{out.total}] {title}")
    except Exception as e:
        out.print(f"demo: step [{out.n}/{out.total}] {title} failed: {type(e).__name__}: {e}")
        out.print(f"demo: logs: {demo.steps_log}, {demo.kcp_log}, {demo.controllers_log}")
    finally:
        out.n = out.total - 1  # the last step, whichever step failed
        if not (ok and args.keep):
            with out.step("stop the controllers and kcp"):
                demo.stop()
            if ok:
                shutil.rmtree(demo.dir, ignore_errors=True)
            else:
                out.print(f"demo: kept {demo.dir} for its logs")
    if ok:
        out.print(f"demo: done in {out.elapsed():.0f}s")
    return 0 if ok else (130 if interrupted else 1)


if __name__ == "__main__":
    sys.exit(main())
