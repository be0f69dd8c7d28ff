"""Command-line connection flags (spec decision 3) and the clients they resolve to.

Each connection is a kubeconfig flag triplet ``--<name>-kubeconfig/-context/-cluster/-user``.  The
one flag ``--kubeconfig F`` names a kcp admin kubeconfig from which every connection defaults:
root from context ``root``, all-clusters from ``system:admin``, the ESPW as ``root:espw`` on the
same server.  An explicit per-connection flag wins.  A file flag unset everywhere falls back to
``$KUBECONFIG``, then ``~/.kube/config``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from pkg.runtime import kcp
from pkg.runtime.kubeconfig import KubeconfigSource
from pkg.runtime.rest import RestClient

ESPW_PATH = "root:espw"


def add_connection_flags(parser: argparse.ArgumentParser, name: str, what: str, context: str | None) -> None:
    group = parser.add_argument_group(f"{name} connection ({what})")
    group.add_argument(f"--{name}-kubeconfig", help="kubeconfig file (default: --kubeconfig, $KUBECONFIG)")
    group.add_argument(
        f"--{name}-context", default=None, help=f"kubeconfig context (default: {context or 'current'})"
    )
    group.add_argument(f"--{name}-cluster", default=None, help="kubeconfig cluster, overriding the context's")
    group.add_argument(f"--{name}-user", default=None, help="kubeconfig user, overriding the context's")
    parser.set_defaults(**{f"_{name.replace('-', '_')}_default_context": context})


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        default=argparse.SUPPRESS,  # so that a value given before a subcommand is not reset
        help="a kcp admin kubeconfig from which every connection defaults",
    )
    parser.add_argument("-v", "--v", dest="verbosity", type=int, default=0, help="log verbosity (klog style)")


def source_from_args(args: argparse.Namespace, name: str) -> KubeconfigSource:
    key = name.replace("-", "_")
    explicit = KubeconfigSource(
        kubeconfig=getattr(args, f"{key}_kubeconfig", None),
        context=getattr(args, f"{key}_context", None),
        cluster=getattr(args, f"{key}_cluster", None),
        user=getattr(args, f"{key}_user", None),
    )
    default = KubeconfigSource(
        kubeconfig=getattr(args, "kubeconfig", None),
        context=getattr(args, f"_{key}_default_context", None),
    )
    return explicit.with_defaults(default)


def server_client(source: KubeconfigSource) -> RestClient:
    """A client at the server root (no logical-cluster prefix) with ``source``'s credentials."""
    endpoint = source.load()
    return RestClient(endpoint, kcp.server_origin(endpoint.server))


@dataclass
class Connections:
    """The clients a KubeStellar controller uses."""

    root: RestClient  # root workspace (mailbox workspaces live there)
    allclusters: RestClient  # server root, as a shard admin: /clusters/<any> and /clusters/*
    espw: RestClient  # the edge service provider workspace

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Connections:
        root = server_client(source_from_args(args, "root"))
        allclusters = server_client(source_from_args(args, "allclusters"))
        espw_source = source_from_args(args, "espw")
        espw_endpoint = espw_source.load()
        if getattr(args, "espw_context", None) is None and getattr(args, "espw_kubeconfig", None) is None:
            # Defaulted from --kubeconfig: the ESPW is root:espw on the same server.
            espw = kcp.cluster(RestClient(espw_endpoint, kcp.server_origin(espw_endpoint.server)), ESPW_PATH)
        else:
            espw = RestClient(espw_endpoint)
        return cls(root=root, allclusters=allclusters, espw=espw)
