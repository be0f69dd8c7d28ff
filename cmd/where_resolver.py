"""``python -m cmd.where_resolver``: a SinglePlacementSlice per EdgePlacement (behaviour 2, 7.2).

Flags (upstream v0.14 plus spec decision 3):

--kubeconfig F                     kcp admin kubeconfig from which every connection defaults
--espw-{kubeconfig,context,cluster,user}         the ESPW (default: root:espw on that server)
--allclusters-{...} / --base-{...}               all logical clusters, where the resolver writes
                                                 (default context ``system:admin``)
--root-{kubeconfig,context,cluster,user}         the root workspace (default context ``root``)
--concurrency N                    worker threads (default 2)
--server-bind-address ADDR         /metrics, /healthz, /readyz (default :10205)
--leader-elect[=BOOL]              default true; ``--leader-elect=false`` turns it off
--leader-elect-workspace PATH      where the Lease lives (default root:espw; namespace default)
-v N                               log verbosity
"""

from __future__ import annotations

import argparse
import sys
from cmd.mailbox_controller import add_alias_flags, add_controller_flags, run_controller
from collections.abc import Sequence

from pkg import bootstrap
from pkg.controllers import where
from pkg.runtime import kcp
from pkg.runtime.connections import Connections, add_connection_flags
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.manager import Manager

PROG = "where-resolver"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Maintain the SinglePlacementSlice and the location status of every EdgePlacement.",
    )
    add_controller_flags(
        p,
        bind_address=":10205",
        concurrency=where.controller.DEFAULT_WORKERS,
        lease_workspace=bootstrap.ESPW,
    )
    add_connection_flags(p, "espw", "the edge service provider workspace (default: root:espw)", None)
    add_connection_flags(
        p,
        "allclusters",
        "all logical clusters: SinglePlacementSlice and status writes",
        kcp.ALLCLUSTERS_CONTEXT,
    )
    add_alias_flags(p, "base", "allclusters")
    add_connection_flags(p, "root", "the root workspace", kcp.ROOT_CONTEXT)
    return p


def _setup(
    manager: Manager,
    factory: SharedInformerFactory,
    connections: Connections,
    recorder: EventRecorder,
    concurrency: int,
) -> object:
    return where.setup(manager, factory, connections, recorder, concurrency)


def main(argv: Sequence[str] | None = None) -> int:
    return run_controller(PROG, parser().parse_args(argv), _setup)


if __name__ == "__main__":
    sys.exit(main())
