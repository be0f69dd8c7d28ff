"""``python -m cmd.kubestellar``: set up KubeStellar on a kcp server, and run its controllers.

init                                  root:espw with the edge export, kube exports, root:imw1
ensure location NAME [key=value ...]  a SyncTarget and a Location in the IMW
ensure wmw NAME                       a workload management workspace with its bindings
remove wmw NAME                       delete a workload management workspace
prep-for-syncer SYNCTARGET            prepare a mailbox for its syncer, write the edge manifest
start                                 run the controllers on one Manager

The same verbs run as ``kubectl kubestellar VERB`` (``cmd.kubectl_kubestellar``, which builds
this parser under another program name), and as the console script ``kubestellar``.  Each verb is
registered by one ``add_<verb>`` function.  Waits (a workspace becoming Ready, bindings becoming
Bound) show progress when stderr is a terminal (``cmd.progress``); otherwise the output is only
the one result line per verb.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence

from apis.machinery.labels import validate_label_key, validate_label_value
from pkg import bootstrap
from pkg.runtime import kcp, klog
from pkg.runtime.app import add_manager_flags, report_errors, run_manager
from pkg.runtime.connections import add_connection_flags, server_client
from pkg.runtime.kubeconfig import KubeconfigSource
from pkg.runtime.rest import RestClient

from . import prep_for_syncer
from .progress import terminal_progress

PROG = "kubestellar"
log = logging.getLogger(PROG)


def _labels(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` words as labels, each checked as the API server would (before any write)."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise bootstrap.BootstrapError(f"label {pair!r} is not of the form key=value")
        problem = validate_label_key(key) or validate_label_value(value)
        if problem:
            raise bootstrap.BootstrapError(problem)
        labels[key] = value
    return labels


def _imw(value: str) -> str:
    """``--imw``: a workspace name under root; ``root:NAME`` (upstream's spelling) means the same."""
    name = value.removeprefix(f"{kcp.ROOT}:")
    if ":" in name:
        raise bootstrap.BootstrapError(f"invalid IMW {value!r}: name a workspace directly under root")
    bootstrap.check_workspace_name(name)
    return name


def _client(args: argparse.Namespace) -> RestClient:
    return server_client(KubeconfigSource(kubeconfig=args.kubeconfig, context=args.context))


def _report(writes: int, what: str) -> None:
    print(f"{what}: {'up to date' if writes == 0 else f'{writes} object(s) written'}")


def cmd_init(args: argparse.Namespace) -> None:
    imw = _imw(args.imw)
    with terminal_progress("init"):
        writes = bootstrap.init(_client(args), imw=imw)
    _report(writes, "init")


def cmd_ensure_location(args: argparse.Namespace) -> None:
    bootstrap.check_object_name(args.name)
    labels = _labels(args.labels)
    imw = _imw(args.imw)
    with terminal_progress(f"location {args.name}"):
        writes = bootstrap.ensure_location(_client(args), args.name, labels, imw=imw)
    _report(writes, f"location {args.name}")


def cmd_ensure_wmw(args: argparse.Namespace) -> None:
    bootstrap.check_workspace_name(args.name)
    with terminal_progress(f"wmw root:{args.name}"):
        writes = bootstrap.ensure_wmw(_client(args), args.name)
    _report(writes, f"wmw root:{args.name}")


def cmd_start(args: argparse.Namespace) -> None:
    from pkg.controllers import mailbox, translator, where

    from .mailbox_controller import kube_exports

    mailboxes = functools.partial(mailbox.setup, exports=kube_exports())
    code = run_manager(PROG, args, [mailboxes, where.setup, translator.setup])
    if code:
        raise SystemExit(code)


def cmd_remove_wmw(args: argparse.Namespace) -> None:
    bootstrap.check_workspace_name(args.name)
    removed = bootstrap.remove_wmw(_client(args), args.name)
    print(f"wmw root:{args.name}: {'removed' if removed else 'not found'}")


def common(sp: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """--kubeconfig, --context and -v, accepted before and after the verb (the verb's copy wins)."""
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


def add_init(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser("init", help="create root:espw, the kube-type exports and the IMW")
    common(init)
    init.add_argument("--imw", default=bootstrap.DEFAULT_IMW, help="inventory workspace under root")
    init.set_defaults(func=cmd_init)


def add_ensure(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def add_remove(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remove = sub.add_parser("remove", help="remove a WMW")
    remove_sub = remove.add_subparsers(dest="what", required=True, metavar="WHAT")
    rwmw = remove_sub.add_parser("wmw", help="delete workspace root:NAME")
    common(rwmw)
    rwmw.add_argument("name")
    rwmw.set_defaults(func=cmd_remove_wmw)


def add_start(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    start = sub.add_parser(
        "start", help="run the mailbox controller, where resolver and placement translator"
    )
    add_connection_flags(start, "espw", "the edge service provider workspace", None)
    add_connection_flags(start, "root", "the root workspace, where mailboxes live", "root")
    add_connection_flags(start, "allclusters", "all logical clusters", "system:admin")
    add_manager_flags(start, ":10204")
    start.set_defaults(func=cmd_start)


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Set up and run KubeStellar on kcp.")
    common(p, default=None)
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    add_init(sub)
    add_ensure(sub)
    add_remove(sub)
    prep_for_syncer.register(sub, common)
    add_start(sub)
    return p


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = parser(prog).parse_args(argv)
    klog.setup(args.verbosity)
    func: Callable[[argparse.Namespace], None] = args.func
    return run_reporting_errors(prog, lambda: func(args))


def run_reporting_errors(prog: str, body: Callable[[], None]) -> int:
    """Run ``body``; a user error becomes one line on stderr and exit code 1, never a traceback."""
    return report_errors(prog, body, user_errors=(bootstrap.BootstrapError,))


if __name__ == "__main__":
    sys.exit(main())
