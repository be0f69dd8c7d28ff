"""An idle system after a kcp outage: how soon after kcp answers again does a change converge?

    python -m bench.reconnect [--down 30] [--repeat 1] [--json PATH]

One private kcp with bench/scale.py's small workload, converged by ``kubestellar start`` (all four
controllers).  Then, per round and per mode, interleaved (plain, reset, plain, reset, ...): the
controllers are started in that mode and become ready; kcp is stopped for ``--down`` seconds (so
the informers' refused requests back off toward 30 s) and started again; the clock starts when kcp
first answers ``/readyz`` with 200 (polled every 50 ms), one customized ConfigMap is edited as soon
as kcp accepts it, and the clock runs until every mailbox it reaches shows the edit.

In the same outage, ``--informers`` informers of this process (on ConfigMaps of fresh namespaces of
``root``, in the same mode) are timed until each holds a ConfigMap created once kcp answers.

Modes: *reset*, the informers' backoff ends soon after kcp answers (pkg/runtime/reachability.py);
*plain*, ``KUBESTELLAR_NO_REACHABILITY=1``, each informer waits out its own backoff (the behaviour
before).  Printed: seconds from kcp answering to converged, per mode (median, runs), the ratio
plain / reset, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import urllib3

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import SIZES, Bench, BenchError, Model, log, run_guarded, write_json
from pkg.runtime import kcp, reachability
from pkg.runtime.informer import Informer
from pkg.runtime.rest import ApiError


def _has(inf: Informer, name: str) -> bool:
    return any(o["metadata"]["name"] == name for o in inf.list())


MODES = {"plain": {"KUBESTELLAR_NO_REACHABILITY": "1"}, "reset": {}}


class ReconnectBench(Bench):
    def outage(self, mode: str, run: int) -> dict[str, Any]:
        m = self.model
        p = self.proc(f"kubestellar-{mode}-{run}", "cmd.kubestellar", "start", env=MODES[mode])
        p.wait_ready(self.args.timeout)
        p.wait_quiet(self.args.quiet, self.args.timeout)
        target = next(o for o in m.objs if o.kind == "ConfigMap" and o.customized)
        affected = [loc for loc in m.locs if any(q.wmw == target.wmw for q in m.reaching(loc))]
        informers, namespaces = self.start_informers(mode, run)
        down = time.monotonic()
        self.server.stop()
        time.sleep(self.args.down)
        seen: dict[str, float] = {}
        watcher = threading.Thread(target=self._watch_up, args=(seen,), daemon=True)
        watcher.start()
        self.server.start()
        started = time.monotonic()
        watcher.join(self.args.timeout)
        up = seen.get("ready", started)  # the first 200 from /readyz
        wc = kcp.cluster(self.server.client(), m.wmw_path(target.wmw))
        target.rev += 1
        while True:  # kcp may answer before it serves the workspace: retry the edit
            try:
                wc.patch(f"{target.collection()}/{target.name}", {"data": {"rev": str(target.rev)}})
                break
            except ApiError as e:
                if time.monotonic() - up > self.args.timeout:
                    raise BenchError(f"edit after the restart refused: {e}") from e
                time.sleep(0.1)
        edited = time.monotonic()
        boxes = kcp.cluster(self.server.client(), kcp.ROOT)
        pending = {loc.name: loc for loc in affected}
        while pending:
            p.alive()
            for loc in list(pending.values()):
                try:
                    cm = kcp.cluster(boxes, loc.cluster or f"root:{loc.mailbox}").get_or_none(
                        f"{target.collection()}/{target.name}",
                    )
                except ApiError:
                    cm = None
                if cm and cm.get("data", {}).get("rev") == str(target.rev):
                    del pending[loc.name]
            if pending:
                if time.monotonic() - up > self.args.timeout:
                    raise BenchError(f"{mode}: {len(pending)} mailboxes never showed the edit")
                time.sleep(0.05)
        seconds = time.monotonic() - up
        informers_s = self.informers_resumed(informers, namespaces, up)
        p.stop()
        rec = {
            "mode": mode,
            "converged_after_up_s": seconds,
            "informers_after_up_s": informers_s,
            "informers": len(informers),
            "edit_accepted_after_up_s": edited - up,
            "first_answer_before_ready_s": up - seen.get("answer", up),
            "kcp_start_returned_after_ready_s": started - up,
            "down_s": up - down,
            "fan_out": len(affected),
            "loadavg": os.getloadavg(),
        }
        log(
            f"{mode} run {run}: converged {seconds:.1f}s after kcp answered (edit accepted at "
            f"{edited - up:.1f}s; down {up - down:.0f}s); {len(informers)} informers here resumed "
            f"{informers_s:.1f}s after it; load {os.getloadavg()[0]:.1f}"
        )
        return rec

    def start_informers(self, mode: str, run: int) -> tuple[list[Informer], list[str]]:
        """``--informers`` informers in this process, on ConfigMaps of as many fresh namespaces
        of ``root``, in ``mode`` (the plain mode turns the reachability off for them)."""
        reachability.DISABLED = mode == "plain"
        reachability._registry.clear()
        c = kcp.cluster(self.server.client(), kcp.ROOT)
        namespaces = [f"rc-{mode}-{run}-{i}" for i in range(self.args.informers)]
        informers = []
        for ns in namespaces:
            c.create("/api/v1/namespaces", {"metadata": {"name": ns}})
            inf: Informer = Informer(c, f"/api/v1/namespaces/{ns}/configmaps", read_timeout=10)
            inf.start()
            informers.append(inf)
        for inf in informers:
            if not inf.wait_for_cache_sync(60):
                raise BenchError(f"informer {inf.name} never synced")
        return informers, namespaces

    def informers_resumed(self, informers: list[Informer], namespaces: list[str], up: float) -> float:
        """Seconds from ``up`` until every informer holds a ConfigMap created after kcp came back."""
        c = kcp.cluster(self.server.client(), kcp.ROOT)
        for ns in namespaces:
            c.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "after"}})
        try:
            while not all(_has(inf, "after") for inf in informers):
                if time.monotonic() - up > self.args.timeout:
                    raise BenchError("informers never resumed")
                time.sleep(0.05)
            return time.monotonic() - up
        finally:
            for inf in informers:
                inf.stop()

    def _watch_up(self, seen: dict[str, float]) -> None:
        """Record when kcp first answers at all ("answer") and first answers /readyz with 200
        ("ready"), polling every 50 ms (hack/kcp.sh's start returns some time after that)."""
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            try:
                self.admin.request("GET", "/readyz", timeout=urllib3.Timeout(connect=0.5, read=2.0), raw=True)
                seen.setdefault("answer", time.monotonic())
                seen["ready"] = time.monotonic()
                return
            except ApiError:
                seen.setdefault("answer", time.monotonic())
            except Exception:
                pass
            time.sleep(0.05)

    def run_reconnect(self) -> dict[str, Any]:
        self.setup_server()
        self.setup_wmws()
        self.setup_workload()
        self.cold_start()
        self.mailboxes.resolve_clusters()
        runs = [self.outage(mode, run) for run in range(self.args.repeat) for mode in MODES]
        for mode in MODES:
            vals = [r["converged_after_up_s"] for r in runs if r["mode"] == mode]
            inf = [r["informers_after_up_s"] for r in runs if r["mode"] == mode]
            self.result[mode] = {
                "converged_after_up_s": statistics.median(vals),
                "runs": vals,
                "informers_after_up_s": statistics.median(inf),
                "informers_runs": inf,
            }
        self.result["runs"] = runs
        self.result["ratio_plain_over_reset"] = (
            self.result["plain"]["converged_after_up_s"] / self.result["reset"]["converged_after_up_s"]
        )
        self.result["down_s"] = self.args.down
        return self.result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.reconnect", description=__doc__.split("\n\n")[0])
    p.add_argument("--down", type=float, default=30.0, help="seconds kcp stays stopped")
    p.add_argument("--repeat", type=int, default=1, help="rounds (each: plain, then reset)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--informers", type=int, default=12, help="informers in this process, measured too")
    p.add_argument("--quiet", type=float, default=3.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ks-bench-reconnect-"))
    bench = ReconnectBench(args, Model.build(SIZES["small"], os.urandom(3).hex()), work)
    r = run_guarded(bench, bench.run_reconnect, work, keep=args.keep)
    if r is None:
        return 1
    print(
        f"kcp down {args.down:.0f}s, then one object edit (fan-out {r['runs'][0]['fan_out']})"
        " as soon as it answers:"
    )
    for mode in MODES:
        runs = " ".join(f"{x:.1f}" for x in r[mode]["runs"])
        print(
            f"  {mode:<6} converged {r[mode]['converged_after_up_s']:6.1f}s after kcp answered (runs: {runs})"
        )
    print(f"  ratio plain / reset: {r['ratio_plain_over_reset']:.1f}x   (target: reset within 5 s)")
    for mode in MODES:
        runs = " ".join(f"{x:.1f}" for x in r[mode]["informers_runs"])
        print(
            f"  {mode:<6} {args.informers} informers of this process resumed"
            f" {r[mode]['informers_after_up_s']:6.1f}s after kcp answered (runs: {runs})"
        )
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}")
    write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
