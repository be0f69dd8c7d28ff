"""``python -m cmd.mailbox_controller``: one mailbox workspace per SyncTarget (behaviour 3, 7.3).

Flags (upstream v0.14 plus spec decision 3):

--kubeconfig F                     kcp admin kubeconfig from which every connection defaults
--espw-{kubeconfig,context,cluster,user}         the ESPW (default: root:espw on that server)
--root-{kubeconfig,context,cluster,user}         the root workspace (default context ``root``)
--allclusters-{...} / --mbws-{...}               all logical clusters (default ``system:admin``)
--espw-path PATH                   the ESPW's workspace path in ``bind-edge`` (default root:espw)
--concurrency N                    worker threads (default 4)
--server-bind-address ADDR         /metrics, /healthz, /readyz (default :10203)
--leader-elect[=BOOL]              default true; ``--leader-elect=false`` turns it off
--leader-elect-workspace PATH      where the Lease lives (default root:espw; namespace default)
-v N                               log verbosity

:func:`add_alias_flags` and :func:`parse_controller_args` are shared with ``cmd.where_resolver``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pkg import bootstrap
from pkg.controllers import mailbox
from pkg.runtime import kcp, klog
from pkg.runtime.app import add_manager_flags, main_of, run_manager
from pkg.runtime.connections import Connections, add_connection_flags
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.klog import V, kv
from pkg.runtime.manager import Manager, parse_bind_address

PROG = "mailbox-controller"


def add_alias_flags(parser: argparse.ArgumentParser, alias: str, name: str) -> None:
    """``--<alias>-kubeconfig`` etc. as other spellings of ``--<name>-...`` (upstream's names)."""
    for part in ("kubeconfig", "context", "cluster", "user"):
        parser.add_argument(
            f"--{alias}-{part}",
            dest=f"{name.replace('-', '_')}_{part}",
            default=argparse.SUPPRESS,
            help=f"the same as --{name}-{part}",
        )


def parse_controller_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, check what argparse cannot, set up logging and log each flag (V1, as upstream)."""
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error(f"argument --concurrency: must be at least 1, not {args.concurrency}")
    try:
        parse_bind_address(args.server_bind_address)
    except ValueError as e:
        parser.error(f"argument --server-bind-address: {e}")
    klog.setup(args.verbosity)
    log = logging.getLogger(parser.prog)
    for flag, value in sorted(vars(args).items()):
        if not flag.startswith("_"):
            log.log(V(1), "Command line flag %s", kv(flag=flag, value=value))
    return args


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Maintain one mailbox workspace per SyncTarget, with its APIBindings."
    )
    add_connection_flags(p, "espw", "the edge service provider workspace (default: root:espw)", None)
    add_connection_flags(p, "root", "the root workspace, which holds the mailboxes", kcp.ROOT_CONTEXT)
    add_connection_flags(
        p, "allclusters", "all logical clusters: APIBindings in mailboxes", kcp.ALLCLUSTERS_CONTEXT
    )
    add_alias_flags(p, "mbws", "allclusters")
    add_manager_flags(p, ":10203")
    p.set_defaults(concurrency=mailbox.controller.DEFAULT_WORKERS)
    p.add_argument(
        "--espw-path",
        default=bootstrap.ESPW,
        help=f"workspace path of the edge APIExport, as mailboxes bind it (default {bootstrap.ESPW})",
    )
    return p


def kube_exports() -> list[str]:
    """The kube exports that ``init`` makes in root:compute (TMC's ``kubernetes`` and ours)."""
    return [kcp.KUBERNETES_EXPORT, *bootstrap.kube_export_names()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_controller_args(parser(), argv)

    def setup(
        manager: Manager,
        factory: SharedInformerFactory,
        connections: Connections,
        recorder: EventRecorder,
        concurrency: int,
    ) -> object:
        return mailbox.setup(
            manager,
            factory,
            connections,
            recorder,
            concurrency,
            espw_path=args.espw_path,
            exports=kube_exports(),
        )

    return main_of(PROG, lambda: run_manager(PROG, args, [setup]))


if __name__ == "__main__":
    sys.exit(main())
