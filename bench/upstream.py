"""Upstream KubeStellar v0.14.0's placement translator beside ours, on one kcp and one workload.

    python -m bench.upstream --upstream-bin DIR [--size small] [--concurrency 4 16] [--repeat 2]

DIR holds upstream's ``mailbox-controller``, ``kubestellar-where-resolver`` and
``placement-translator`` binaries (built by hand from upstream's source outside this repository:
../shared/spec/edge-syncer.md, "Getting a syncer binary"; nothing of upstream's is in this
repository).  Without ``--upstream-bin`` it says so and exits 0.

One private kcp (``hack/kcp.sh``) with our bootstrap and bench/scale.py's workload; our
``kubestellar start`` makes the mailboxes and SinglePlacementSlices once (the cold start).  Then,
for each ``--concurrency`` value, ``--repeat`` rounds of: reset, upstream's translator, reset,
ours (interleaved, so both see about the same machine load).  Each run is timed from the process
start until every mailbox is verified (bench/scale.py's rule: a watch on SyncerConfigs, then the
copies read and compared), and the writes are counted by kcp (``apiserver_request_total`` deltas:
upstream's process has no counter of ours) once they have stopped.  Upstream's ``the-one`` is
compared on its ``namespacedObjects`` without regard to order (it does not sort them, and it
lists Namespaces in ``clusterScope``); copies are compared as for ours.

Reported per side and concurrency (median of the runs, and the runs): converge seconds, creates
per second, writes per copy, kcp reads, peak RSS; and upstream / ours ratios.  Upstream's
mailbox controller and where resolver are checked for (the set the issue names) but not run: the
comparison is the translator's converge, with mailboxes and SinglePlacementSlices in place.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import (
    EDGE,
    PROJECTED,
    SIZES,
    THE_ONE,
    Bench,
    Loc,
    Model,
    Proc,
    Size,
    log,
    proc_stats,
    run_guarded,
    server_reads,
    server_writes,
    write_json,
)
from pkg.runtime import kcp
from pkg.runtime.rest import ApiError
from test.e2e.kcpserver import REPO

BINARIES = ("mailbox-controller", "kubestellar-where-resolver", "placement-translator")
UPSTREAM_DEFAULT_CONCURRENCY = 4  # cmd/placement-translator/main.go @v0.14.0


def canonical(spec: Any) -> Any:
    """A SyncerConfig spec's namespaced objects, order-free (names, namespaces and entries sorted)."""
    entries = []
    for e in (spec or {}).get("namespacedObjects") or []:
        by_ns = sorted(
            (o.get("namespace", ""), tuple(sorted(o.get("names") or [])))
            for o in e.get("objectsByNamespace") or []
        )
        entries.append((e.get("group", ""), e.get("resource", ""), e.get("apiVersion", ""), tuple(by_ns)))
    return sorted(entries)


class ExecProc(Proc):
    """A Go binary of upstream's, with its log; readiness and writes are not read from it."""

    def start(self) -> ExecProc:
        out = self.logfile.open("ab")
        self.t0 = time.monotonic()
        env = {**os.environ, **(self.env or {})}
        self.p = subprocess.Popen(self.argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        return self

    def writes(self) -> dict[str, int]:
        return {}

    def reconciles(self) -> dict[str, dict[str, float]]:
        return {}


class UpstreamBench(Bench):
    def espw_kubeconfig(self) -> Path:
        """The admin kubeconfig with a current context at ``root:espw``, as upstream's start
        script sets up for its controllers."""
        cfg = yaml.safe_load(self.server.kubeconfig.read_text())
        base_ctx = next(c for c in cfg["contexts"] if c["name"] == kcp.BASE_CONTEXT)["context"]
        cluster = next(c for c in cfg["clusters"] if c["name"] == base_ctx["cluster"])
        espw = {
            **cluster["cluster"],
            "server": kcp.server_origin(cluster["cluster"]["server"]) + "/clusters/root:espw",
        }
        cfg["clusters"].append({"name": "espw", "cluster": espw})
        cfg["contexts"].append({"name": "espw", "context": {**base_ctx, "cluster": "espw"}})
        cfg["current-context"] = "espw"
        path = self.work / "espw.kubeconfig"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def upstream(self, name: str, binary: str, concurrency: int | None, *extra: str) -> ExecProc:
        argv = [str(Path(self.args.upstream_bin) / binary), *extra]
        if concurrency is not None:
            argv += ["--concurrency", str(concurrency)]
        p = ExecProc(name, argv, self.work / f"{name}.log", {"KUBECONFIG": str(self.espw_kubeconfig())})
        self.procs.append(p)
        return p.start()

    def reset_all(self, label: str) -> None:
        """Delete ``the-one`` and every Namespace the workload puts in a mailbox (by name:
        upstream does not label the Namespaces it creates), and wait until they are gone.

        Upstream also projects the WMW's APIBindings into the mailbox, merging its
        ``edge.kubestellar.io/projected`` label into the mailbox's own bindings of the same name
        (our mailbox controller's); our translator would then delete them as stale projected
        copies, and the mailbox would stop serving Deployments.  So that label is removed from
        every APIBinding here (our translator never projects APIBindings)."""
        t0 = time.monotonic()
        m = self.model

        def clear(loc: Loc) -> None:
            c = self.mailboxes.at(loc)
            bindings = c.get(f"{kcp.APIS}/apibindings", {"labelSelector": f"{PROJECTED}=yes"})["items"]
            for b in bindings:
                c.patch(
                    f"{kcp.APIS}/apibindings/{b['metadata']['name']}",
                    {"metadata": {"labels": {PROJECTED: None}}},
                )
            for path in [
                f"{EDGE}/syncerconfigs/{THE_ONE}",
                *(f"/api/v1/namespaces/{ns}" for ns in m.namespaces(loc)),
            ]:
                try:
                    c.delete(path)
                except ApiError as e:
                    if not (e.not_found or e.conflict):
                        raise

        def empty(loc: Loc) -> str | None:
            c = self.mailboxes.at(loc)
            if c.get_or_none(f"{EDGE}/syncerconfigs/{THE_ONE}") is not None:
                return "the-one"
            left = [ns for ns in m.namespaces(loc) if c.get_or_none(f"/api/v1/namespaces/{ns}") is not None]
            return f"namespaces {left[:3]}" if left else None

        for loc in m.locs:
            clear(loc)
        self.mailboxes.wait_all(empty, t0, self.args.timeout, f"reset {label}")
        log(f"reset ({label}) in {time.monotonic() - t0:.1f}s")

    def quiet_server(self, quiet: float, timeout: float) -> dict[tuple[str, str], int]:
        """kcp's request counts once its write counts have not changed for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = self.kcp_requests()
        since = time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.kcp_requests()
            if server_writes(now, last):
                last, since = now, time.monotonic()
        return last

    def translate(self, side: str, concurrency: int, run: int) -> dict[str, Any]:
        procs: list[Proc] = []
        name = f"{side}-translator-c{concurrency}-{run}"

        def begin() -> float:
            if side == "upstream":
                procs.append(
                    self.upstream(
                        name,
                        "placement-translator",
                        concurrency,
                        "--allclusters-context",
                        kcp.ALLCLUSTERS_CONTEXT,
                        "--server-bind-address",
                        "127.0.0.1:0",
                    )
                )
            else:
                saved = self.args.concurrency
                self.args.concurrency = concurrency
                procs.append(self.translator(name))
                self.args.concurrency = saved
            return procs[0].t0

        req0 = self.kcp_requests()
        done = self.mailboxes.wait_converged(begin, self.args.timeout, name, alive=lambda: procs[0].alive())
        p = procs[0]
        seconds = max(done.values())
        req1 = self.kcp_requests()
        req2 = self.quiet_server(self.args.quiet, self.args.timeout)
        stats = proc_stats(p.pid)
        p.stop()
        writes = server_writes(req2, req0)
        creates = sum(n for k, n in server_writes(req1, req0).items() if k.startswith("create "))
        copies = sum(len(self.model.copies(loc)) for loc in self.model.locs)
        rec = {
            "side": side,
            "concurrency": concurrency,
            "seconds": seconds,
            "creates_per_second": creates / seconds,
            "writes": writes,
            "writes_total": sum(writes.values()),
            "writes_per_copy": sum(writes.values()) / copies,
            "the_one_writes": sum(n for k, n in writes.items() if k.endswith("syncerconfigs")),
            "kcp_reads": server_reads(req1, req0),
            "peak_rss_bytes": stats["peak_rss_bytes"],
            "cpu_seconds": stats["cpu_seconds"],
            "loadavg": os.getloadavg(),
        }
        log(
            f"{name}: {seconds:.1f}s, {rec['creates_per_second']:.1f} creates/s, "
            f"{rec['writes_per_copy']:.3f} writes/copy, peak RSS {stats['peak_rss_bytes'] / 2**20:.0f} MiB, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        return rec

    def run_upstream(self) -> dict[str, Any]:
        m = self.model
        self.result["workload"] = {
            "sync_targets": m.size.sync_targets,
            "wmws": m.size.wmws,
            "objects": m.size.objects,
            "placements": m.size.placements,
            "copies": sum(len(m.copies(loc)) for loc in m.locs),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
        }
        self.setup_server()
        self.setup_wmws()
        self.setup_workload()
        self.cold_start()
        self.mailboxes.resolve_clusters()
        self.mailboxes.canon = canonical
        runs: list[dict[str, Any]] = []
        for concurrency in self.args.concurrency_values:
            for run in range(self.args.repeat):
                for side in ("upstream", "ours"):  # interleaved
                    self.reset_all(f"{side} c{concurrency} run {run}")
                    runs.append(self.translate(side, concurrency, run))
        table: dict[str, Any] = {}
        for concurrency in self.args.concurrency_values:
            row: dict[str, Any] = {}
            for side in ("upstream", "ours"):
                mine = [r for r in runs if r["side"] == side and r["concurrency"] == concurrency]
                row[side] = {
                    k: statistics.median(r[k] for r in mine)
                    for k in (
                        "seconds",
                        "creates_per_second",
                        "writes_per_copy",
                        "peak_rss_bytes",
                        "cpu_seconds",
                    )
                }
                row[side]["seconds_runs"] = [r["seconds"] for r in mine]
            up, ours = row["upstream"], row["ours"]
            row["ratio_seconds_upstream_over_ours"] = up["seconds"] / ours["seconds"]
            row["ratio_creates_per_second_ours_over_upstream"] = (
                ours["creates_per_second"] / up["creates_per_second"]
            )
            row["ratio_writes_per_copy_upstream_over_ours"] = up["writes_per_copy"] / ours["writes_per_copy"]
            row["ratio_peak_rss_upstream_over_ours"] = up["peak_rss_bytes"] / ours["peak_rss_bytes"]
            table[str(concurrency)] = row
        self.result["runs"] = runs
        self.result["table"] = table
        self.result["workload"]["loadavg_end"] = os.getloadavg()
        self.result["notes"] = [
            "translator alone, mailboxes and SinglePlacementSlices in place (made once by our "
            "kubestellar start)",
            "each run: reset (the-one and the workload's Namespaces deleted), then the translator from "
            "process start until every mailbox is verified; writes counted by kcp (apiserver_request_total)",
            "upstream's the-one compared on namespacedObjects, order-free; copies compared as ours",
            "interleaved upstream, ours, upstream, ours at each concurrency",
        ]
        return self.result


def report(r: dict[str, Any]) -> str:
    w = r["workload"]
    lines = [
        f"workload: N={w['sync_targets']} mailboxes, M={w['objects']} objects, P={w['placements']} placements"
        f" -> {w['copies']} copies; {w['cpus']} CPUs,"
        f" load {w['loadavg_start'][0]:.1f} -> {w['loadavg_end'][0]:.1f}",
        "",
        f"{'concurrency':<12}{'side':<10}{'converge s':>11}{'creates/s':>11}{'writes/copy':>13}"
        f"{'peak RSS':>11}{'CPU s':>8}  runs (s)",
    ]
    for conc, row in r["table"].items():
        for side in ("upstream", "ours"):
            s = row[side]
            runs = " ".join(f"{x:.1f}" for x in s["seconds_runs"])
            lines.append(
                f"{conc:<12}{side:<10}{s['seconds']:>11.1f}{s['creates_per_second']:>11.1f}"
                f"{s['writes_per_copy']:>13.3f}{s['peak_rss_bytes'] / 2**20:>8.0f} MiB"
                f"{s['cpu_seconds']:>8.1f}  {runs}"
            )
        lines.append(
            f"{conc:<12}{'ratio':<10}{row['ratio_seconds_upstream_over_ours']:>10.1f}x"
            f"{row['ratio_creates_per_second_ours_over_upstream']:>10.1f}x"
            f"{row['ratio_writes_per_copy_upstream_over_ours']:>12.2f}x"
            f"{row['ratio_peak_rss_upstream_over_ours']:>10.2f}x   (upstream/ours; creates/s ours/upstream)"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.upstream", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--upstream-bin", type=Path, help="directory of upstream v0.14.0's binaries: " + ", ".join(BINARIES)
    )
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument(
        "--concurrency",
        dest="concurrency_values",
        type=int,
        nargs="+",
        default=[UPSTREAM_DEFAULT_CONCURRENCY, 16],
        help="translator workers, both sides (default: upstream's default 4, and 16)",
    )
    p.add_argument("--repeat", type=int, default=2, help="interleaved runs per side and concurrency")
    p.add_argument("--quiet", type=float, default=3.0, help="seconds without writes that end a run")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to each phase")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    p.add_argument("--keep", action="store_true", help="keep the work directory (kcp data, logs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.upstream_bin is None:
        print(
            "bench.upstream: nothing to compare: give --upstream-bin DIR (UPSTREAM_BIN=DIR for make bench), "
            f"a directory with upstream KubeStellar v0.14.0's {', '.join(BINARIES)} built from its source "
            "(see ../shared/spec/edge-syncer.md); skipped."
        )
        return 0
    missing = [b for b in BINARIES if not os.access(args.upstream_bin / b, os.X_OK)]
    if missing:
        print(f"bench.upstream: {args.upstream_bin} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    args.concurrency = UPSTREAM_DEFAULT_CONCURRENCY  # for the cold start (Bench.proc reads it)
    base = SIZES[args.size]
    size = Size(base.sync_targets, base.wmws, base.objects, base.placements)
    work = Path(tempfile.mkdtemp(prefix="ks-bench-upstream-"))
    model = Model.build(size, os.urandom(3).hex())
    # Without bench/scale.py's toggle ConfigMaps (only its placement-edit trials use them): upstream
    # projects both toggles where the placement's objectNames names one (its own selection rule).
    model.toggles = []
    for pm in model.placements:
        pm.toggle = None
    bench = UpstreamBench(args, model, work)
    log(f"bench.upstream {args.size} {size}; work directory {work}")
    result = run_guarded(bench, bench.run_upstream, work, keep=args.keep)
    if result is None:
        return 1
    print(report(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
