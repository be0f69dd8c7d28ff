"""What every entry point shares: common flags, and running controllers on a Manager."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from pkg.runtime import decode, kcp
from pkg.runtime.connections import Connections, add_common_flags
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.leaderelection import LeaderElectionConfig
from pkg.runtime.manager import Manager

log = logging.getLogger(__name__)


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_manager_flags(parser: argparse.ArgumentParser, bind_address: str) -> None:
    add_common_flags(parser)
    parser.add_argument(
        "--server-bind-address", default=bind_address, help="HOST:PORT serving /metrics, /healthz, /readyz"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="workers per controller queue")
    parser.add_argument(
        "--leader-elect",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="elect a leader (default true)",
    )
    parser.add_argument("--leader-elect-workspace", default="root:espw", help="workspace holding the Lease")


Setup = Callable[[Manager, SharedInformerFactory, Connections, EventRecorder, int], object]


def drop_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Informer transform: no controller reads ``managedFields``, often the largest part of an object."""
    md = obj.get("metadata")
    if isinstance(md, dict) and "managedFields" in md:
        obj = {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}
    return obj


def build_manager(name: str, args: argparse.Namespace, setups: list[Setup]) -> tuple[Manager, EventRecorder]:
    """Build the connections, factory, recorder and Manager, and let each setup add its controllers."""
    conns = Connections.from_args(args)
    recorder = EventRecorder(conns.allclusters, name)
    # Typed informers report objects their model rejects as Events through the same recorder.
    factory = SharedInformerFactory(
        transform=drop_managed_fields,
        model_transform=decode.drop_managed_fields,
        event_recorder=recorder,
    )
    election = LeaderElectionConfig(lease_name=name) if args.leader_elect else None
    manager = Manager(
        name,
        factory,
        bind_address=args.server_bind_address,
        leader_election=election,
        lease_client=kcp.cluster(conns.allclusters, args.leader_elect_workspace) if election else None,
    )
    for setup in setups:
        setup(manager, factory, conns, recorder, args.concurrency)
    return manager, recorder


def run_manager(name: str, args: argparse.Namespace, setups: list[Setup]) -> int:
    """Build the Manager and run it until SIGTERM/SIGINT (or a lost lease)."""
    manager, recorder = build_manager(name, args, setups)
    manager.install_signal_handlers()
    recorder.start()
    try:
        return manager.run()
    finally:
        recorder.stop()


def main_of(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` reporting user errors in one line (see cmd.kubestellar.run_reporting_errors)."""
    from cmd.kubestellar import run_reporting_errors

    code: list[int] = []
    rc = run_reporting_errors(prog, lambda: code.append(body()))
    return rc or (code[0] if code else 0)
