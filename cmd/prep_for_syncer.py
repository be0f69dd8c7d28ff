"""The ``prep-for-syncer`` verb of ``python -m cmd.kubestellar`` (logic in :mod:`pkg.syncerprep`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pkg import bootstrap, syncerprep
from pkg.runtime.connections import server_client
from pkg.runtime.kubeconfig import KubeconfigSource


def register(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "prep-for-syncer",
        help="prepare a SyncTarget's mailbox for its syncer and write the edge cluster's manifest",
    )
    common(p)
    p.add_argument("sync_target", metavar="SYNCTARGET")
    p.add_argument(
        "--imw",
        default=bootstrap.DEFAULT_IMW,
        help="inventory workspace: a name under root, or a path root:NAME (default %(default)s)",
    )
    p.add_argument(
        "--espw", default=bootstrap.ESPW, help="edge service provider workspace (default %(default)s)"
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="manifest file, '-' for stdout (default SYNCTARGET-syncer.yaml)",
    )
    p.add_argument(
        "--syncer-image", default=syncerprep.DEFAULT_SYNCER_IMAGE, help="syncer image (default %(default)s)"
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the mailbox (default %(default)s)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    client = server_client(KubeconfigSource(kubeconfig=args.kubeconfig, context=args.context))
    prepared = syncerprep.prep_for_syncer(
        client,
        args.sync_target,
        imw=args.imw,
        espw=args.espw,
        image=args.syncer_image,
        timeout=args.timeout,
        progress=lambda msg: print(f"prep-for-syncer: {msg}", file=sys.stderr, flush=True),
    )
    output = args.output or f"{args.sync_target}-syncer.yaml"
    text = prepared.manifest_yaml()
    written = "up to date" if prepared.writes == 0 else f"{prepared.writes} object(s) written"
    print(f"mailbox {prepared.mailbox} for SyncTarget {args.sync_target}: {written}", file=sys.stderr)
    if output == "-":
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text)
    except OSError as e:
        raise syncerprep.PrepError(f"cannot write {output}: {e.strerror}") from e
    print(
        f"wrote the edge cluster's manifest to {output} (namespace {prepared.syncer_id}); apply it with\n"
        f"  KUBECONFIG=<edge cluster kubeconfig> kubectl apply -f {output}"
    )
