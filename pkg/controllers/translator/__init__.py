"""The placement translator: what x where -> SyncerConfig ``the-one`` and copies in every mailbox."""

from __future__ import annotations

from pkg.runtime.connections import Connections
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import SharedInformerFactory
from pkg.runtime.manager import Manager


def setup(
    manager: Manager,
    factory: SharedInformerFactory,
    connections: Connections,
    recorder: EventRecorder,
    concurrency: int,
    espw_path: str = "root:espw",
) -> None:
    from pkg.controllers.translator.controller import Translator

    Translator(connections.allclusters, espw_path, factory, recorder, concurrency=concurrency).setup(manager)
