"""``python -m cmd.kubestellar``: set up KubeStellar on a kcp server, and run its controllers.

init                                  root:espw with the edge export, kube exports, root:imw1
ensure location NAME [key=value ...]  a SyncTarget and a Location in the IMW
ensure wmw NAME                       a workload management workspace with its bindings
remove wmw NAME                       delete a workload management workspace
prep-for-syncer SYNCTARGET            prepare a mailbox for its syncer, write the edge manifest
"""

from __future__ import annotations

import argparse
import logging
import sys
from cmd import prep_for_syncer
from collections.abc import Callable, Sequence

import urllib3

from pkg import bootstrap
from pkg.runtime import kcp, klog
from pkg.runtime.app import add_manager_flags, run_manager
from pkg.runtime.connections import add_connection_flags, server_client
from pkg.runtime.kubeconfig import KubeconfigError, KubeconfigSource
from pkg.runtime.rest import ApiError, RestClient

PROG = "kubestellar"
log = logging.getLogger(PROG)


def _labels(pairs: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise bootstrap.BootstrapError(f"label {pair!r} is not of the form key=value")
        labels[key] = value
    return labels


def _client(args: argparse.Namespace) -> RestClient:
    return server_client(KubeconfigSource(kubeconfig=args.kubeconfig, context=args.context))


def _report(writes: int, what: str) -> None:
    print(f"{what}: {'up to date' if writes == 0 else f'{writes} object(s) written'}")


def cmd_init(args: argparse.Namespace) -> None:
    _report(bootstrap.init(_client(args), imw=args.imw), "init")


def cmd_ensure_location(args: argparse.Namespace) -> None:
    labels = _labels(args.labels)
    writes = bootstrap.ensure_location(_client(args), args.name, labels, imw=args.imw)
    _report(writes, f"location {args.name}")


def cmd_ensure_wmw(args: argparse.Namespace) -> None:
    _report(bootstrap.ensure_wmw(_client(args), args.name), f"wmw root:{args.name}")


def cmd_start(args: argparse.Namespace) -> None:
    from pkg.controllers import mailbox, translator, where

    code = run_manager(PROG, args, [mailbox.setup, where.setup, translator.setup])
    if code:
        raise SystemExit(code)


def cmd_remove_wmw(args: argparse.Namespace) -> None:
    removed = bootstrap.remove_wmw(_client(args), args.name)
    print(f"wmw root:{args.name}: {'removed' if removed else 'not found'}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Set up and run KubeStellar on kcp.")

    def common(sp: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
        # Accepted before and after the verb; the verb's copy only overrides when given.
        kubeconfig_help = "kcp admin kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
        sp.add_argument("--kubeconfig", default=default, help=kubeconfig_help)
        sp.add_argument("--context", default=default, help="kubeconfig context (default: the current one)")
        sp.add_argument(
            "-v",
            "--v",
            dest="verbosity",
            type=int,
            default=0 if default is None else default,
            help="log verbosity",
        )

    common(p, default=None)

    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    init = sub.add_parser("init", help="create root:espw, the kube-type exports and the IMW")
    common(init)
    init.add_argument("--imw", default=bootstrap.DEFAULT_IMW, help="inventory workspace under root")
    init.set_defaults(func=cmd_init)

    ensure = sub.add_parser("ensure", help="create or update a location or a WMW")
    ensure_sub = ensure.add_subparsers(dest="what", required=True, metavar="WHAT")
    loc = ensure_sub.add_parser("location", help="a SyncTarget and a Location in the IMW")
    common(loc)
    loc.add_argument("name")
    loc.add_argument("labels", nargs="*", metavar="key=value")
    loc.add_argument("--imw", default=bootstrap.DEFAULT_IMW, help="inventory workspace under root")
    loc.set_defaults(func=cmd_ensure_location)
    wmw = ensure_sub.add_parser("wmw", help="a workload management workspace root:NAME")
    common(wmw)
    wmw.add_argument("name")
    wmw.set_defaults(func=cmd_ensure_wmw)

    remove = sub.add_parser("remove", help="remove a WMW")
    remove_sub = remove.add_subparsers(dest="what", required=True, metavar="WHAT")
    rwmw = remove_sub.add_parser("wmw", help="delete workspace root:NAME")
    common(rwmw)
    rwmw.add_argument("name")
    rwmw.set_defaults(func=cmd_remove_wmw)

    prep_for_syncer.register(sub, common)

    start = sub.add_parser(
        "start", help="run the mailbox controller, where resolver and placement translator"
    )
    add_connection_flags(start, "espw", "the edge service provider workspace", None)
    add_connection_flags(start, "root", "the root workspace, where mailboxes live", "root")
    add_connection_flags(start, "allclusters", "all logical clusters", "system:admin")
    add_manager_flags(start, ":10204")
    start.set_defaults(func=cmd_start)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    klog.setup(args.verbosity)
    func: Callable[[argparse.Namespace], None] = args.func
    return run_reporting_errors(PROG, lambda: func(args))


def run_reporting_errors(prog: str, body: Callable[[], None]) -> int:
    """Run ``body``; a user error becomes one line on stderr and exit code 1, never a traceback."""
    try:
        body()
    except (bootstrap.BootstrapError, KubeconfigError, kcp.KcpError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"{prog}: error: the server refused: {e}", file=sys.stderr)
        return 1
    except (urllib3.exceptions.HTTPError, OSError) as e:
        print(f"{prog}: error: cannot reach the server: {_short(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


def _short(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    return f"{getattr(e, 'url', '') or ''} {reason or e}".strip()


if __name__ == "__main__":
    sys.exit(main())
