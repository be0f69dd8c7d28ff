"""What every entry point shares: common flags, and running controllers on a Manager."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

import urllib3

from pkg.runtime import decode, kcp
from pkg.runtime.connections import Connections, add_common_flags
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.kubeconfig import KubeconfigError
from pkg.runtime.leaderelection import LeaderElectionConfig
from pkg.runtime.manager import BindError, Manager
from pkg.runtime.rest import ApiError

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


def report_errors(
    prog: str, body: Callable[[], None], user_errors: tuple[type[BaseException], ...] = ()
) -> int:
    """Run ``body``; a user error becomes one line on stderr and exit code 1, never a traceback.

    Each line names what failed: a kubeconfig, a kcp wait, the server's refusal, the local address
    the metrics server cannot listen on (and the flag that sets it), a local file, or the server it
    cannot reach (its URL).
    ``user_errors`` are more exception types whose message is the whole story (the caller's own).
    """
    own: tuple[type[BaseException], ...] = (*user_errors, KubeconfigError, kcp.KcpError)
    try:
        body()
    except own as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"{prog}: error: the server refused: {e}", file=sys.stderr)
        return 1
    except BindError as e:
        print(
            f"{prog}: error: cannot serve /metrics, /healthz and /readyz on {e.address}: {e.reason}"
            " (choose another address with --server-bind-address)",
            file=sys.stderr,
        )
        return 1
    except (urllib3.exceptions.HTTPError, OSError) as e:
        if isinstance(e, OSError) and e.filename:  # a local file, not the server
            print(f"{prog}: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
            return 1
        where, message = _unreachable(e)
        print(f"{prog}: error: cannot reach the server{where}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


def _unreachable(e: BaseException) -> tuple[str, str]:
    """(`` https://HOST:PORT`` or ``""``, what went wrong) for a failed connection (urllib3's, a socket's)."""
    reason: object = getattr(e, "reason", None) or e
    message = str(getattr(reason, "_message", None) or reason)
    # Plain attributes only: NewConnectionError.pool is a deprecated property.
    attrs = [getattr(reason, "__dict__", {}), getattr(e, "__dict__", {})]
    for end in (attrs[0].get("conn"), attrs[1].get("conn"), attrs[1].get("pool")):
        host, port = getattr(end, "host", None), getattr(end, "port", None)
        if host:
            scheme = "https" if "HTTPS" in type(end).__name__ else "http"
            return (f" {scheme}://{host}:{port}" if port else f" {scheme}://{host}"), message
    url = getattr(e, "url", None)
    return (f" ({url})" if url else ""), message


def main_of(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` (an entry point's work) through :func:`report_errors`; its exit code."""
    code: list[int] = []
    rc = report_errors(prog, lambda: code.append(body()))
    return rc or (code[0] if code else 0)
