#!/usr/bin/env python3
"""``make demo``: example1 of the KubeStellar docs on a fresh kcp server, with every controller.

Starts kcp in a temporary directory, runs ``python -m cmd.kubestellar init``, creates the example1
inventory (florin, guilder), the two workload management workspaces with their workloads,
Customizers and EdgePlacements, starts ``python -m cmd.kubestellar start``, waits until both
mailboxes are complete and their ``the-one`` is stable, prints each mailbox, and stops what it
started.  The edge side of the walkthrough (kind clusters, syncers) is left out.

    hack/demo.py            # run it, print the mailboxes, stop everything
    hack/demo.py --keep     # leave kcp and the controllers running, print how to explore and stop
"""

from __future__ import annotations

import argparse
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

from pkg import bootstrap  # noqa: E402
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
            sys.executable, "-m", "cmd.kubestellar", *args, "--kubeconfig", str(self.kubeconfig),
            what=f"python -m cmd.kubestellar {' '.join(args)}",
        )  # fmt: skip

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
                    sys.executable, "-m", "cmd.kubestellar", "start",
                    "--kubeconfig", str(self.kubeconfig),
                    "--server-bind-address", "127.0.0.1:0", "-v", "2",
                ],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only the demo, which then stops it
            )  # fmt: skip
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
        if self.controllers is not None and self.controllers.poll() is None:
            self.controllers.send_signal(signal.SIGTERM)
            try:
                self.controllers.wait(30)
            except subprocess.TimeoutExpired:
                self.controllers.kill()
                self.controllers.wait()
        if self.kcp_started:
            subprocess.run([str(KCP_SH), "stop", str(self.kcp_dir)], cwd=REPO, check=False)


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
    args = p.parse_args(argv)

    # SIGTERM (as from `timeout` or a CI runner) stops what was started, like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)

    out = Output(total=9)
    demo = Demo(Path(tempfile.mkdtemp(prefix="kubestellar-demo-")), args.keep, args.timeout, out)
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
    title = ""
    try:
        for title, body in steps:
            with out.step(title):
                body()
        title = "report"
        demo.report()
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
