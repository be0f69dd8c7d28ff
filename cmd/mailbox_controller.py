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

The helpers here (:func:`add_controller_flags`, :func:`run_controller`) are shared with
``cmd.where_resolver``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from cmd.kubestellar import run_reporting_errors
from collections.abc import Callable, Sequence

from pkg import bootstrap
from pkg.controllers import mailbox
from pkg.runtime import kcp, klog
from pkg.runtime.connections import Connections, add_common_flags, add_connection_flags
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.klog import V, kv
from pkg.runtime.leaderelection import LeaderElectionConfig
from pkg.runtime.manager import Manager, parse_bind_address

PROG = "mailbox-controller"

Setup = Callable[[Manager, SharedInformerFactory, Connections, EventRecorder, int], object]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "t", "1", "yes"):
        return True
    if value in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true or false)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _bind_address(text: str) -> str:
    try:
        parse_bind_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_alias_flags(parser: argparse.ArgumentParser, alias: str, name: str) -> None:
    """``--<alias>-kubeconfig`` etc. as other spellings of ``--<name>-...`` (upstream's names)."""
    for part in ("kubeconfig", "context", "cluster", "user"):
        parser.add_argument(
            f"--{alias}-{part}",
            dest=f"{name.replace('-', '_')}_{part}",
            default=argparse.SUPPRESS,
            help=f"the same as --{name}-{part}",
        )


def add_controller_flags(
    parser: argparse.ArgumentParser, *, bind_address: str, concurrency: int, lease_workspace: str
) -> None:
    """The flags every controller entry point has, besides its connections."""
    add_common_flags(parser)
    parser.add_argument(
        "--concurrency", type=_positive, default=concurrency, help=f"worker threads (default {concurrency})"
    )
    parser.add_argument(
        "--server-bind-address",
        type=_bind_address,
        default=bind_address,
        help=f"HOST:PORT serving /metrics, /healthz and /readyz (default {bind_address})",
    )
    parser.add_argument(
        "--leader-elect",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="elect a leader with a Lease before running (default true; --leader-elect=false to run alone)",
    )
    parser.add_argument(
        "--leader-elect-workspace",
        default=lease_workspace,
        help=f"workspace path of the Lease, in namespace default (default {lease_workspace})",
    )


def run_controller(prog: str, args: argparse.Namespace, setup: Setup) -> int:
    """Build the connections, the Manager and the controller(s) that ``setup`` adds; run until
    SIGTERM/SIGINT.  Exit code: 0 after a requested stop, 1 on a lost lease or an error."""
    klog.setup(args.verbosity)
    log = logging.getLogger(prog)
    for flag, value in sorted(vars(args).items()):
        if not flag.startswith("_"):
            log.log(V(1), "Command line flag %s", kv(flag=flag, value=value))
    exit_code = 0

    def body() -> None:
        nonlocal exit_code
        connections = Connections.from_args(args)
        factory = SharedInformerFactory()
        recorder = EventRecorder(connections.allclusters, prog)
        manager = Manager(
            prog,
            factory,
            bind_address=args.server_bind_address,
            leader_election=LeaderElectionConfig(prog) if args.leader_elect else None,
            lease_client=kcp.cluster(connections.espw, args.leader_elect_workspace)
            if args.leader_elect
            else None,
        )
        setup(manager, factory, connections, recorder, args.concurrency)
        manager.install_signal_handlers()
        try:
            exit_code = manager.run()
        finally:
            recorder.stop()

    return run_reporting_errors(prog, body) or exit_code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Maintain one mailbox workspace per SyncTarget, with its APIBindings."
    )
    add_controller_flags(
        p,
        bind_address=":10203",
        concurrency=mailbox.controller.DEFAULT_WORKERS,
        lease_workspace=bootstrap.ESPW,
    )
    add_connection_flags(p, "espw", "the edge service provider workspace (default: root:espw)", None)
    add_connection_flags(p, "root", "the root workspace, which holds the mailboxes", kcp.ROOT_CONTEXT)
    add_connection_flags(
        p, "allclusters", "all logical clusters: APIBindings in mailboxes", kcp.ALLCLUSTERS_CONTEXT
    )
    add_alias_flags(p, "mbws", "allclusters")
    p.add_argument(
        "--espw-path",
        default=bootstrap.ESPW,
        help=f"workspace path of the edge APIExport, as mailboxes bind it (default {bootstrap.ESPW})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def setup(
        manager: Manager,
        factory: SharedInformerFactory,
        connections: Connections,
        recorder: EventRecorder,
        concurrency: int,
    ) -> object:
        return mailbox.setup(manager, factory, connections, recorder, concurrency, espw_path=args.espw_path)

    return run_controller(PROG, args, setup)


if __name__ == "__main__":
    sys.exit(main())
