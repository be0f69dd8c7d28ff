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
from collections.abc import Sequence

from pkg.controllers import where
from pkg.runtime import kcp
from pkg.runtime.app import add_manager_flags, main_of, run_manager
from pkg.runtime.connections import add_connection_flags

from .mailbox_controller import add_alias_flags, parse_controller_args

PROG = "where-resolver"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Maintain the SinglePlacementSlice and the location status of every EdgePlacement.",
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
    add_manager_flags(p, ":10205")
    p.set_defaults(concurrency=where.controller.DEFAULT_WORKERS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_controller_args(parser(), argv)
    return main_of(PROG, lambda: run_manager(PROG, args, [where.setup]))


if __name__ == "__main__":
    sys.exit(main())
