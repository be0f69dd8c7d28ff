"""What the translator's parts share: names, and the state that the controller owns.

:class:`State` only declares the attributes that :class:`~.controller.Translator` sets up, so that
the parts written in :mod:`.mailbox` and :mod:`.status` can be read (and type-checked) on their own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apis.edge.v2alpha1 import EdgePlacement, SyncerConfig
from apis.edge.v2alpha1 import constants as api
from apis.edge.v2alpha1.listers import EdgePlacementLister, SyncerConfigLister
from pkg.controllers.translator.desired import Desired
from pkg.controllers.translator.written import Written
from pkg.controllers.what.controller import WmwCaches
from pkg.controllers.what.resolve import CopyKey
from pkg.controllers.what.select import EDGE_GROUP, PROJECTED_LABEL, GroupResource
from pkg.runtime import kcp
from pkg.runtime.controller import Controller, Result
from pkg.runtime.discovery import APIResource, Discovery
from pkg.runtime.events import EventRecorder
from pkg.runtime.informer import Informer, SharedInformerFactory
from pkg.runtime.meta import Meta
from pkg.runtime.rest import RestClient

NAME = "placement-translator"
THE_ONE = api.THE_ONE
EDGE = f"/apis/{EDGE_GROUP}/v2alpha1"
WORKSPACES = f"{kcp.TENANCY}/workspaces"
PROJECTED_SELECTOR = f"{PROJECTED_LABEL}=yes"
RETRY_SOON = Result(requeue_after=1.0)
WAIT_REPORTED_AFTER = 10.0  # seconds a copy may wait for its resource before placements say so


@dataclass
class Mailbox:
    cluster: str
    client: RestClient
    namespaces: Informer | None = None
    copies: dict[tuple[GroupResource, str], Informer] = field(default_factory=dict)  # (gr, version)


class State:
    """The translator's caches, clients and bookkeeping (set by ``Translator.__init__``/``setup``)."""

    all: RestClient
    espw_path: str
    factory: SharedInformerFactory
    recorder: EventRecorder
    discovery: Discovery
    _lock: threading.Lock
    caches: WmwCaches
    _mailboxes: dict[str, Mailbox]
    _desired: Desired | None
    _annotated: set[tuple[str, CopyKey]]
    _written: Written
    _clean: set[tuple[str, str]]
    _mailbox_by_cluster: dict[str, str]
    _waiting: dict[str, tuple[list[str], float]]
    _refused: dict[str, dict[CopyKey, str]]
    _shared: dict[tuple[GroupResource, str], Informer]
    _bound: dict[GroupResource, tuple[str, tuple[str, ...], str]]
    _natives: dict[GroupResource, APIResource]
    eps: Informer[EdgePlacement]
    placement_lister: EdgePlacementLister
    workspaces: Informer
    syncer_configs: Informer[SyncerConfig]
    syncer_config_lister: SyncerConfigLister
    compute_ctl: Controller[str]
    mailbox_ctl: Controller[str]
    source_ctl: Controller[tuple[str, CopyKey]]
    status_ctl: Controller[tuple[str, str]]

    def _mailbox_workspaces(self) -> dict[str, Mapping[str, Any]]:
        """Workspaces under root that are mailboxes, by name."""
        return {Meta(ws).name: ws for ws in self.workspaces.list() if "-mb-" in Meta(ws).name}
