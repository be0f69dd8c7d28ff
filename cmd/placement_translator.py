"""``python -m cmd.placement_translator``: the placement translator on its own Manager."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pkg.controllers import translator
from pkg.runtime import klog
from pkg.runtime.app import add_manager_flags, main_of, run_manager
from pkg.runtime.connections import add_connection_flags

NAME = "placement-translator"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=NAME, description="Keep every mailbox's SyncerConfig and copies up to date."
    )
    add_connection_flags(p, "espw", "the edge service provider workspace", None)
    add_connection_flags(p, "root", "the root workspace, where mailboxes live", "root")
    add_connection_flags(p, "allclusters", "all logical clusters", "system:admin")
    add_manager_flags(p, ":10204")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    klog.setup(args.verbosity)
    return main_of(NAME, lambda: run_manager(NAME, args, [translator.setup]))


if __name__ == "__main__":
    sys.exit(main())
