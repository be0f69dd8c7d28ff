"""The placement translator's pure core: from cached state to every mailbox's desired content.

:func:`compute` joins each EdgePlacement's *what* (the objects of its WMW that it selects) with its
*where* (the destinations of its SinglePlacementSlice) and returns, for every mailbox, the spec of
SyncerConfig ``the-one`` and the copies it must hold, customized for that destination.  It reads
nothing but its arguments and writes nothing; the controller turns the difference between this and
a mailbox's actual content into writes.

Rules (spec decision 5):

* an object sent to one mailbox from two WMWs is a conflict: the WMW with the smallest workspace
  path wins, the others are reported;
* per (resource, mailbox) the API version is the highest one served by every WMW that sends
  objects of that resource there; with none in common those copies are held back and reported;
* the parameters of a copy are the union of the labels (then annotations) of the Locations through
  which it reaches the mailbox; a key with different values is a conflict for the copies using it;
* a copy that cannot be customized is *held back*: not created or updated (an existing one is left
  as it is) and reported; it stays listed in ``the-one`` when its version is known, so the edge
  keeps what it has;
* an EdgePlacement contributes its upsync to every mailbox it reaches, even if it selects nothing;
  the CRDs its WMW defines for the resources of its upsync clauses are projected there too (not
  listed in ``the-one`` unless a downsync clause selects them), so that upsync is served
  (:mod:`pkg.controllers.translator.upsync`).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from apis.edge.v2alpha1 import (
    Customizer,
    EdgePlacementSpec,
    Location,
    NamespaceScopeDownsyncs,
    SinglePlacement,
    SyncerConfigSpec,
    UpsyncSet,
)
from apis.edge.v2alpha1.naming import SEPARATOR as MAILBOX_SEPARATOR
from pkg.controllers.translator.project import create_form, owned_digest
from pkg.controllers.translator.upsync import Unserved, UpsyncSource, upsync_crds
from pkg.controllers.what.resolve import CRDS, CopyKey, Resolved, ServedResource, resolve
from pkg.controllers.what.select import (
    CompiledPlacement,
    GroupResource,
    canonical_upsync,
    create_only,
    pick_version,
)
from pkg.controllers.where.resolve import destination_key
from pkg.customize import CustomizeError, customize, customizer_ref, needs_parameters
from pkg.runtime.meta import Meta


def mailbox_of(d: SinglePlacement) -> str:
    """The mailbox workspace of a destination: ``<IMW logical cluster>-mb-<SyncTarget UID>`` (the
    rule of :mod:`apis.edge.v2alpha1.naming`; the mailbox controller refuses a name that breaks it)."""
    return f"{d.cluster}{MAILBOX_SEPARATOR}{d.sync_target_uid}"


def destinations(found: Iterable[SinglePlacement]) -> list[SinglePlacement]:
    """Destinations without duplicates, sorted by (cluster, location, SyncTarget name, UID)."""
    return sorted({destination_key(d): d for d in found}.values(), key=destination_key)


@dataclass
class Placement:
    """One EdgePlacement of a WMW: its spec and the destinations of its SinglePlacementSlice
    (as :func:`destinations` orders them)."""

    name: str
    spec: EdgePlacementSpec | None
    destinations: Sequence[SinglePlacement]
    # Its what, as the what resolver keeps it; None: resolve it here from the workspace's objects.
    what: Resolved | None = None


@dataclass
class Workspace:
    """What the translator has cached of one WMW."""

    cluster: str
    path: str
    placements: Sequence[Placement]
    resources: Mapping[GroupResource, ServedResource]
    objects: Mapping[GroupResource, Sequence[Mapping[str, Any]]]
    namespaces: Mapping[str, Mapping[str, str]]  # namespace name -> its labels
    customizers: Mapping[tuple[str, str], Customizer]  # (namespace, name) -> Customizer


@dataclass(slots=True)
class Copy:
    key: CopyKey
    api_version: str  # group/version (or version for the core group)
    body: dict[str, Any]  # the create form
    create_only: bool
    source_cluster: str
    namespaced: bool
    digest: bytes  # owned_digest(body), computed once per shared body


@dataclass(frozen=True)
class Problem:
    """Something to report: on ``obj`` (a source object) and/or on the placements named."""

    cluster: str
    reason: str
    message: str
    obj: Mapping[str, Any] | None = None
    placements: tuple[str, ...] = ()


_EMPTY_SPEC = SyncerConfigSpec(namespace_scope=NamespaceScopeDownsyncs())


@dataclass
class MailboxDesired:
    mailbox: str
    syncer_config: SyncerConfigSpec = field(default_factory=lambda: _EMPTY_SPEC)  # shared: read-only
    copies: dict[CopyKey, Copy] = field(default_factory=dict)
    held: dict[CopyKey, str] = field(default_factory=dict)  # key -> reason


@dataclass
class Desired:
    mailboxes: dict[str, MailboxDesired]
    problems: list[Problem]
    # (WMW cluster, key) -> number of SyncTargets, for objects some placement wants singleton state of
    executing_counts: dict[tuple[str, CopyKey], int]
    # (WMW cluster, key) -> the one mailbox whose copy's status returns to the source
    singleton_sources: dict[tuple[str, CopyKey], str]
    # (WMW cluster, placement name) -> problems to show in its Projected condition
    placement_problems: dict[tuple[str, str], list[str]]
    # (WMW cluster, placement name) -> its resolved what (selected objects, upsync) and where
    whats: dict[tuple[str, str], tuple[tuple[CopyKey, ...], tuple[str, ...]]] = field(default_factory=dict)
    wheres: dict[tuple[str, str], tuple[SinglePlacement, ...]] = field(default_factory=dict)
    # (WMW cluster, placement name) -> upsync resources that no WMW sending to its mailboxes serves
    upsync_unserved: dict[tuple[str, str], list[str]] = field(default_factory=dict)


@dataclass
class _Contribution:
    obj: Mapping[str, Any]
    info: ServedResource
    create_only: bool = False
    locations: set[tuple[str, str]] = field(default_factory=set)
    placements: set[str] = field(default_factory=set)


def _merged_params(
    locations: set[tuple[str, str]], catalog: Mapping[tuple[str, str], Location]
) -> dict[str, str]:
    return _params(locations, catalog)[0]


def _params(
    locations: set[tuple[str, str]], catalog: Mapping[tuple[str, str], Location]
) -> tuple[dict[str, str], set[str]]:
    """Union of the Locations' labels over annotations; keys with differing values are conflicts."""
    merged: dict[str, str] = {}
    conflicts: set[str] = set()
    for loc in sorted(locations):
        found = catalog.get(loc)
        if found is None:
            continue
        values = {**(found.metadata.annotations or {}), **(found.metadata.labels or {})}
        for k, v in values.items():
            if k in merged and merged[k] != v:
                conflicts.add(k)
            merged.setdefault(k, str(v))
    for k in conflicts:
        merged.pop(k, None)
    return merged, conflicts


_Params = tuple[Mapping[str, str], tuple[tuple[str, str], ...]]
_NO_PARAMS: _Params = ({}, ())
_BODIES: LRUCache[tuple[Any, ...], tuple[dict[str, Any], bytes]] = LRUCache(maxsize=65536)
_BODIES_LOCK = threading.Lock()


class _Bodies:
    """The copies' bodies of one :func:`compute` call.

    A body is the customized create form of a source with its owned digest, memoized across calls
    (``_BODIES``): the same source, Customizer, parameters and version give the same (shared,
    read-only) body, so most recomputations build nothing.  Sources and Customizers are the
    informers' cached dicts, which are replaced, never mutated, so ``id(obj)`` with uid and
    resourceVersion identifies a content.  Within a call, one source reaching many mailboxes has
    what the key needs of it (its Customizer, whether it expands parameters) read once, and a body
    once looked up is reused by the other mailboxes (the call holds every source it sees, so no id
    is reused while it runs)."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, int], tuple[tuple[Any, ...], Customizer | None, bool, bool]] = {}
        self._made: dict[tuple[Any, ...], tuple[dict[str, Any], bytes]] = {}
        self._params: dict[frozenset[tuple[str, str]], _Params] = {}

    def params(self, locations: set[tuple[str, str]], catalog: Mapping[tuple[str, str], Location]) -> _Params:
        """The parameters of a copy reaching its mailbox through ``locations``, with their sorted
        items (part of a body's key): merged once per set of Locations per call (the catalog is
        one call's; every copy sent through the same Locations has the same ones)."""
        key = frozenset(locations)
        found = self._params.get(key)
        if found is None:
            merged = _merged_params(locations, catalog)
            found = self._params[key] = (merged, tuple(sorted(merged.items())))
        return found

    def body(
        self,
        obj: Mapping[str, Any],
        ws: Workspace,
        locations: set[tuple[str, str]],
        catalog: Mapping[tuple[str, str], Location],
        api_version: str,
    ) -> tuple[dict[str, Any], bytes]:
        """The body of ``obj`` at ``api_version`` for a destination reached through ``locations``
        (of ``catalog``), whose parameters are merged only when ``obj`` or its Customizer expands
        them."""
        facts = self._sources.get((ws.cluster, id(obj)))
        if facts is None:
            ref = customizer_ref(obj)
            customizer = ws.customizers.get(ref) if ref else None
            meta = Meta(obj)
            cmd = customizer.metadata if customizer is not None else None
            base = (
                ws.cluster,
                id(obj),  # cached objects are never mutated: the same dict is the same content
                id(customizer),
                meta.uid,
                meta.resource_version,
                ref,
                cmd.uid if cmd else None,
                cmd.resource_version if cmd else None,
            )
            cacheable = bool(meta.uid and meta.resource_version)
            facts = (base, customizer, needs_parameters(obj, customizer), cacheable)
            self._sources[(ws.cluster, id(obj))] = facts
        base, customizer, needs, cacheable = facts
        used_params, params_key = self.params(locations, catalog) if needs else _NO_PARAMS
        key = (*base, params_key, api_version)
        made = self._made.get(key)
        if made is not None:
            return made
        if cacheable:
            with _BODIES_LOCK:
                made = _BODIES.get(key)
        if made is None:
            body = create_form(customize(obj, customizer, used_params), api_version)
            made = (body, owned_digest(body))
            if cacheable:
                with _BODIES_LOCK:
                    _BODIES[key] = made
        self._made[key] = made
        return made


def _api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


class Memo:
    """What one :func:`compute` keeps for the next, so that only mailboxes whose inputs changed are
    built again: ``compute(..., memo=m)`` returns what ``compute(...)`` returns (property-tested in
    ``test/unit/test_translator_incremental.py``), and the same :class:`MailboxDesired` object for
    a mailbox whose inputs are unchanged.

    A mailbox's inputs are the (placement, Location) pairs that reach it, each placement taken
    with its spec, the objects it selects, its WMW's path, resources and Customizers, and each
    Location with its labels and annotations.  Selected objects and Customizers are recognised by
    identity: informers replace a cached object when it changes and never mutate it, and the memo
    holds the previous run's workspaces, so while both runs' objects are alive an id seen again is
    the same object.  Only the last run's entries are kept.

    A mailbox whose inputs changed only in the objects selected (an object replaced by its
    informer, the same keys of the same resources selected) keeps its *shape*, and is patched
    (:func:`_patch`): only the copies of the replaced objects are built again.  That is what an
    edit of one object costs: one copy per mailbox it reaches, not every copy of those mailboxes.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[Any, ...], int] = {}  # placement inputs -> a small int naming them
        self._next_token = 0
        self._mailboxes: dict[tuple[Any, ...], _MailboxResult] = {}
        self._shapes: dict[tuple[Any, ...], _MailboxResult] = {}  # by shape (see compute)
        self._alive: tuple[object, ...] = ()
        self.built = 0  # mailboxes built by the last run, in full or patched (the others were reused)
        self.patched = 0  # of those, mailboxes patched: only the copies of changed objects built

    def _token(self, content: tuple[Any, ...], tokens: dict[tuple[Any, ...], int]) -> int:
        token = tokens.get(content)
        if token is None:
            token = self._tokens.get(content)
            if token is None:
                token = self._next_token = self._next_token + 1
            tokens[content] = token
        return token


@dataclass(slots=True)
class _Placed:
    """What one key gives its mailbox: the conflicts it loses elsewhere, and its copy, or why it
    is held back and the report of it."""

    conflicts: tuple[Problem, ...]
    copy: Copy | None = None
    held: str | None = None
    hold: Problem | None = None


@dataclass
class _MailboxResult:
    desired: MailboxDesired
    problems: list[Problem]
    winners: list[tuple[str, CopyKey]]  # (WMW cluster, key) of each copy that goes there
    unserved: list[Unserved] = field(default_factory=list)
    # What :func:`_patch` needs to build again only the keys whose objects changed:
    troubles: dict[CopyKey, _Placed] = field(default_factory=dict)  # keys with problems, in order
    versions: dict[GroupResource, str | None] = field(default_factory=dict)
    parts: list[tuple[str, Mapping[CopyKey, Any]]] = field(default_factory=list)  # per reach, in order
    upsync: bool = False  # whether an upsync reaches the mailbox (its CRDs are then not patched)


@dataclass
class _Reach:
    """One placement reaching one mailbox through one Location."""

    ws: Workspace
    placement: Placement
    compiled: CompiledPlacement
    parts: Mapping[CopyKey, tuple[Mapping[str, Any], ServedResource]]
    destination: SinglePlacement


def compute(
    workspaces: Sequence[Workspace],
    locations: Mapping[tuple[str, str], Location],
    mailboxes: Sequence[str] = (),
    memo: Memo | None = None,
) -> Desired:
    """The desired content of every mailbox (those in ``mailboxes`` and every destination).

    With a ``memo`` from the previous call, a mailbox whose inputs are unchanged is not built again.
    """
    problems: list[Problem] = []
    placement_problems: dict[tuple[str, str], list[str]] = {}
    whats: dict[tuple[str, str], tuple[tuple[CopyKey, ...], tuple[str, ...]]] = {}
    wheres: dict[tuple[str, str], tuple[SinglePlacement, ...]] = {}
    reaching: dict[str, list[_Reach]] = defaultdict(list)  # mailbox -> what reaches it
    fingerprints: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    shapes: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    tokens: dict[tuple[Any, ...], int] = {}
    reach: dict[tuple[str, CopyKey], set[str]] = defaultdict(set)  # (wmw, key) -> mailboxes
    singleton: set[tuple[str, CopyKey]] = set()

    for ws in workspaces:
        ws_inputs = (ws.cluster, ws.path, frozenset(ws.resources.items()), _ids(ws.customizers))
        for p in ws.placements:
            what = p.what
            if what is None:
                what = resolve(p.spec, ws.path, ws.resources, ws.objects, ws.namespaces)
            compiled, parts, implicit, issues = what.compiled, what.parts, what.implicit, list(what.problems)
            placement_problems[(ws.cluster, p.name)] = issues
            upsync_json = tuple(_json(u) for u in compiled.upsync)
            whats[(ws.cluster, p.name)] = (tuple(sorted(parts)), upsync_json)
            wheres[(ws.cluster, p.name)] = tuple(p.destinations)
            for issue in issues:
                problems.append(Problem(ws.cluster, "InvalidPlacement", issue, placements=(p.name,)))
            token = shape = 0
            if memo is not None:
                spec = p.spec.model_dump_json(exclude_unset=True) if p.spec is not None else ""
                upsync_crd_ids = (
                    frozenset(id(o) for o in ws.objects.get(CRDS, ())) if compiled.upsync else None
                )
                # The what, when the what resolver gives it, by identity: the spec comes from the
                # placement's informer and may be newer than the what resolved from it (a join can
                # run between the two), and the mailbox is built from the what.
                content = (
                    ws_inputs,
                    p.name,
                    spec,
                    frozenset(id(obj) for obj, _ in parts.values()),
                    upsync_crd_ids,
                    id(p.what) if p.what is not None else None,
                )
                token = memo._token(content, tokens)
                # The same without the objects' identities, with what the mailbox takes from the
                # what instead: a mailbox whose shape is unchanged is patched (see _patch).
                shape_content = (
                    "shape",
                    ws_inputs,
                    p.name,
                    spec,
                    frozenset((key, info) for key, (_, info) in parts.items()),
                    upsync_crd_ids,
                    upsync_json,
                )
                shape = memo._token(shape_content, tokens)
            for d in p.destinations:
                mailbox = mailbox_of(d)
                reaching[mailbox].append(_Reach(ws, p, compiled, parts, d))
                fingerprints[mailbox].append((token, d.cluster, d.location_name))
                shapes[mailbox].append((shape, d.cluster, d.location_name))
            if compiled.want_singleton:
                singleton.update((ws.cluster, key) for key in parts if key not in implicit)

    path_of = {ws.cluster: ws.path for ws in workspaces}
    out: dict[str, MailboxDesired] = {m: MailboxDesired(m) for m in mailboxes}
    results: dict[tuple[Any, ...], _MailboxResult] = {}
    by_shape: dict[tuple[Any, ...], _MailboxResult] = {}
    bodies = _Bodies()
    built = patched = 0
    location_values: dict[tuple[str, str], tuple[tuple[tuple[str, Any], ...], ...]] = {}

    def _values(place: tuple[str, str]) -> tuple[tuple[tuple[str, Any], ...], ...]:
        found = location_values.get(place)
        if found is None:
            found = location_values[place] = _location_values(locations.get(place))
        return found

    unserved: dict[tuple[str, str], set[str]] = defaultdict(set)
    for mailbox in sorted(reaching):
        result = None
        fingerprint: tuple[Any, ...] = ()
        shape_print: tuple[Any, ...] = ()
        if memo is not None:
            through = sorted(fingerprints[mailbox])
            places = tuple(sorted({(c, loc) for _, c, loc in through}))
            labels = tuple(_values(place) for place in places)
            fingerprint = (mailbox, tuple(through), places, labels)
            result = results.get(fingerprint) or memo._mailboxes.get(fingerprint)
            shape_print = (mailbox, tuple(sorted(shapes[mailbox])), places, labels)
            before = memo._shapes.get(shape_print) if result is None else None
            if before is not None:
                result = _patch(before, mailbox, reaching[mailbox], locations, path_of, bodies)
                if result is not None:
                    built += 1
                    patched += 1
        if result is None:
            result = _mailbox(mailbox, reaching[mailbox], locations, path_of, bodies)
            built += 1
        if memo is not None:
            results[fingerprint] = result
            by_shape[shape_print] = result
        out[mailbox] = result.desired
        problems.extend(result.problems)
        if singleton:  # only singletons' reach is counted
            for winner in result.winners:
                if winner in singleton:
                    reach[winner].add(mailbox)
        for u in result.unserved:
            unserved[(u.cluster, u.placement)].add(u.message)

    if memo is not None:
        memo._tokens = tokens
        memo._mailboxes = results
        memo._shapes = by_shape
        memo._alive = tuple(workspaces)
        memo.built = built
        memo.patched = patched
    executing_counts = {k: len(reach.get(k, set())) for k in singleton}
    singleton_sources = {k: next(iter(reach[k])) for k in singleton if len(reach.get(k, set())) == 1}
    upsync_unserved = {k: sorted(v) for k, v in sorted(unserved.items())}
    for (cluster, placement), messages in upsync_unserved.items():
        problems.extend(Problem(cluster, "UpsyncNotServed", m, placements=(placement,)) for m in messages)
    return Desired(
        out, problems, executing_counts, singleton_sources, placement_problems, whats, wheres, upsync_unserved
    )


def _ids(customizers: Mapping[tuple[str, str], Customizer]) -> frozenset[tuple[tuple[str, str], int]]:
    return frozenset((ref, id(c)) for ref, c in customizers.items())


def _json(u: UpsyncSet) -> str:
    return json.dumps(u.model_dump(mode="json", exclude_unset=True), sort_keys=True)


def _location_values(loc: Location | None) -> tuple[tuple[tuple[str, Any], ...], ...]:
    """What :func:`_params` reads of a Location."""
    if loc is None:
        return ((), ())
    return (
        tuple(sorted((loc.metadata.labels or {}).items())),
        tuple(sorted((loc.metadata.annotations or {}).items())),
    )


def _contributions(
    reaching: Sequence[_Reach], keys: Iterable[CopyKey] | None = None
) -> dict[CopyKey, dict[str, _Contribution]]:
    """Per key (of ``keys``, or all), what each WMW sending it contributes: the object of the first
    placement of that WMW that reaches the mailbox, and what all of them say of it."""
    entries: dict[CopyKey, dict[str, _Contribution]] = defaultdict(dict)  # key -> WMW cluster -> ...
    wanted = None if keys is None else set(keys)
    for r in reaching:
        if wanted is None:
            items: Iterable[tuple[CopyKey, tuple[Mapping[str, Any], ServedResource]]] = r.parts.items()
        else:
            items = [(key, r.parts[key]) for key in wanted if key in r.parts]
        for key, (obj, info) in items:
            c = entries[key].get(r.ws.cluster)
            if c is None:
                c = entries[key][r.ws.cluster] = _Contribution(obj, info)
            c.create_only = c.create_only or create_only(obj)
            c.locations.add((r.destination.cluster, r.destination.location_name))
            c.placements.add(r.placement.name)
    return entries


def _object_ids(parts: Iterable[tuple[str, Mapping[CopyKey, Any]]]) -> dict[tuple[str, CopyKey], list[int]]:
    """The identities of the objects that each (WMW cluster, key) is given by, one per reach in
    order, from the reaches' (WMW cluster, parts).  All of them, not only the first reach's (the
    one :func:`_contributions` takes): two placements of one WMW may hold different versions of
    an object for a while (their whats are resolved one after the other), and the later ones
    still count in whether the copy is create-only."""
    ids: dict[tuple[str, CopyKey], list[int]] = {}
    for cluster, found in parts:
        for key, (obj, _) in found.items():
            ids.setdefault((cluster, key), []).append(id(obj))
    return ids


def _ranked(by_ws: Mapping[str, _Contribution], path_of: Mapping[str, str]) -> list[str]:
    """The WMWs sending one key, the winner first: the smallest workspace path wins."""
    if len(by_ws) == 1:
        return list(by_ws)
    return sorted(by_ws, key=lambda c: (path_of[c], c))


def _mailbox(
    mailbox: str,
    reaching: Sequence[_Reach],
    locations: Mapping[tuple[str, str], Location],
    path_of: Mapping[str, str],
    bodies: _Bodies,
) -> _MailboxResult:
    """One mailbox's desired content, from the placements (and Locations) that reach it."""
    entries = _contributions(reaching)
    upsync: list[UpsyncSet] = []
    by_cluster: dict[str, Workspace] = {}
    for r in reaching:
        by_cluster[r.ws.cluster] = r.ws
        upsync.extend(r.compiled.upsync)
    upsync_only, unserved = _add_upsync_crds(reaching, entries)

    ranked = {key: _ranked(entries[key], path_of) for key in sorted(entries)}
    # One API version per resource in this mailbox, served by every contributing WMW.
    senders: dict[GroupResource, dict[str, tuple[str, ...]]] = defaultdict(dict)
    for key, order in ranked.items():
        senders[key.gr][order[0]] = entries[key][order[0]].info.versions
    versions = {gr: pick_version(list(v.values())) for gr, v in senders.items()}

    listed: list[tuple[CopyKey, str, bool]] = []
    md = MailboxDesired(mailbox)
    troubles: dict[CopyKey, _Placed] = {}
    for key, order in ranked.items():
        version = versions[key.gr]
        if version is not None and key not in upsync_only:
            listed.append((key, version, entries[key][order[0]].info.namespaced))
        placed = _place(mailbox, key, entries[key], order, version, locations, path_of, by_cluster, bodies)
        _put(md, troubles, key, placed)
    md.syncer_config = syncer_config_spec(listed, upsync)
    winner_keys = [(order[0], key) for key, order in ranked.items()]
    return _MailboxResult(
        md,
        _problems(troubles),
        winner_keys,
        unserved,
        troubles,
        versions,
        [(r.ws.cluster, r.parts) for r in reaching],  # they hold the objects: no id is reused
        bool(upsync),
    )


def _patch(
    before: _MailboxResult,
    mailbox: str,
    reaching: Sequence[_Reach],
    locations: Mapping[tuple[str, str], Location],
    path_of: Mapping[str, str],
    bodies: _Bodies,
) -> _MailboxResult | None:
    """The mailbox built from ``before``, a result for the same shape (the same placements through
    the same Locations, selecting the same keys of the same resources from the same workspaces),
    by placing again only the keys whose objects were replaced; None when that cannot be done
    (an upsync's CRD changed).  Equal to :func:`_mailbox` of the same arguments: the listing,
    versions, winners and upsync depend on the shape alone."""
    parts = [(r.ws.cluster, r.parts) for r in reaching]
    was = _object_ids(before.parts)
    changed = {ref[1] for ref, oid in _object_ids(parts).items() if was.get(ref) != oid}
    if before.upsync and any(key.gr == CRDS for key in changed):
        return None  # _add_upsync_crds decides these from the CRDs themselves
    entries = _contributions(reaching, changed)
    by_cluster = {r.ws.cluster: r.ws for r in reaching}
    before_md = before.desired
    md = MailboxDesired(mailbox, before_md.syncer_config, dict(before_md.copies), dict(before_md.held))
    troubles = dict(before.troubles)
    reorder = False
    for key in changed:
        by_ws = entries[key]
        order = _ranked(by_ws, path_of)
        version = before.versions[key.gr]
        md.copies.pop(key, None)
        md.held.pop(key, None)
        reorder = troubles.pop(key, None) is not None or reorder
        placed = _place(mailbox, key, by_ws, order, version, locations, path_of, by_cluster, bodies)
        reorder = _put(md, troubles, key, placed) or reorder
    if reorder:
        troubles = dict(sorted(troubles.items()))
    return _MailboxResult(
        md,
        _problems(troubles),
        before.winners,
        before.unserved,
        troubles,
        before.versions,
        parts,
        before.upsync,
    )


def _place(
    mailbox: str,
    key: CopyKey,
    by_ws: Mapping[str, _Contribution],
    ranked: Sequence[str],
    version: str | None,
    locations: Mapping[tuple[str, str], Location],
    path_of: Mapping[str, str],
    by_cluster: Mapping[str, Workspace],
    bodies: _Bodies,
) -> _Placed:
    """One key in one mailbox: the winner's copy at ``version`` (or why it is held back), and the
    conflicts of the WMWs that lose it."""
    cluster = ranked[0]
    c = by_ws[cluster]
    conflicts = (
        ()
        if len(ranked) == 1
        else tuple(
            Problem(
                loser,
                "Conflict",
                f"{key} is also sent to mailbox {mailbox} from {path_of[cluster]}, which wins",
                obj=by_ws[loser].obj,
                placements=tuple(sorted(by_ws[loser].placements)),
            )
            for loser in ranked[1:]
        )
    )

    if version is None:
        return _held(
            conflicts,
            cluster,
            c,
            "NoCommonVersion",
            f"no version of {key.gr} is served by every workspace sending it to {mailbox}",
        )
    api_version = _api_version(key.gr.group, version)
    try:
        body, digest = bodies.body(c.obj, by_cluster[cluster], c.locations, locations, api_version)
    except CustomizeError as e:
        message = str(e)
        conflicting = _params(c.locations, locations)[1]
        if conflicting:
            message += f" (Locations disagree on {', '.join(sorted(conflicting))})"
        message = f"copy of {key} for mailbox {mailbox} held back: {message}"
        return _held(conflicts, cluster, c, "CustomizationFailed", message)
    copy = Copy(
        key=key,
        api_version=api_version,
        body=body,
        create_only=c.create_only,
        source_cluster=cluster,
        namespaced=c.info.namespaced,
        digest=digest,
    )
    return _Placed(conflicts, copy=copy)


def _held(
    conflicts: tuple[Problem, ...], cluster: str, c: _Contribution, reason: str, message: str
) -> _Placed:
    """Held back; reported on its source and the placements sending it."""
    problem = Problem(cluster, reason, message, obj=c.obj, placements=tuple(sorted(c.placements)))
    return _Placed(conflicts, held=reason, hold=problem)


def _put(md: MailboxDesired, troubles: dict[CopyKey, _Placed], key: CopyKey, placed: _Placed) -> bool:
    """Enter one key's placement in its mailbox; whether it has problems."""
    if placed.copy is not None:
        md.copies[key] = placed.copy
    elif placed.held is not None:
        md.held[key] = placed.held
    if placed.conflicts or placed.hold is not None:
        troubles[key] = placed
        return True
    return False


def _problems(troubles: Mapping[CopyKey, _Placed]) -> list[Problem]:
    """Every conflict, then every hold, each in key order (``troubles`` is in key order)."""
    problems = [problem for p in troubles.values() for problem in p.conflicts]
    problems += [p.hold for p in troubles.values() if p.hold is not None]
    return problems


def _add_upsync_crds(
    reaching: Sequence[_Reach], entries: dict[CopyKey, dict[str, _Contribution]]
) -> tuple[set[CopyKey], list[Unserved]]:
    """Add to ``entries`` the CRDs that upsync needs in this mailbox (see :mod:`.upsync`).

    Returns the keys that only upsync brings (projected, not listed in ``the-one``: the edge owns
    its own CRD) and the upsync resources that no contributing WMW serves.
    """
    sources = []
    for r in reaching:
        if not r.compiled.upsync:
            continue
        served = {(gr.group, gr.resource): info.crd for gr, info in r.ws.resources.items()}
        crds = {Meta(o).name: o for o in r.ws.objects.get(CRDS, ())}
        sources.append(
            UpsyncSource(r.ws.cluster, r.ws.path, r.placement.name, r.compiled.upsync, served, crds)
        )
    if not sources:
        return set(), []
    wanted, unserved = upsync_crds(sources)
    upsync_only: set[CopyKey] = set()
    for name, by_cluster in wanted.items():
        key = CopyKey(CRDS, "", name)
        if key not in entries:
            upsync_only.add(key)
        for r in reaching:
            obj = by_cluster.get(r.ws.cluster) if r.compiled.upsync else None
            crd_info = r.ws.resources.get(CRDS)
            if obj is None or crd_info is None:
                continue
            c = entries[key].get(r.ws.cluster)
            if c is None:
                c = entries[key][r.ws.cluster] = _Contribution(obj, crd_info)
            c.locations.add((r.destination.cluster, r.destination.location_name))
            c.placements.add(r.placement.name)
    return upsync_only, unserved


_SPECS: LRUCache[tuple[Any, ...], SyncerConfigSpec] = LRUCache(maxsize=4096)
_SPECS_LOCK = threading.Lock()


def syncer_config_spec(
    listed: Sequence[tuple[CopyKey, str, bool]], upsync: Sequence[UpsyncSet]
) -> SyncerConfigSpec:
    """The spec of ``the-one``: per-object lists, sorted, so equal content is byte-equal
    (``namespacedObjects`` by resource, ``objectsByNamespace``, ``names``, ``clusterScope``,
    ``objects``, and the UpsyncSets by canonical JSON; ``namespaceScope`` empty).

    Memoized by content: a mailbox built again with the same listing gets the same (shared,
    read-only) model, so only a changed listing is validated."""
    key = (tuple(listed), tuple(_json(u) for u in upsync))
    with _SPECS_LOCK:
        cached = _SPECS.get(key)
    if cached is None:
        cached = _build_spec(listed, upsync)
        with _SPECS_LOCK:
            _SPECS[key] = cached
    return cached


def _build_spec(listed: Sequence[tuple[CopyKey, str, bool]], upsync: Sequence[UpsyncSet]) -> SyncerConfigSpec:
    namespaced: dict[tuple[GroupResource, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    cluster: dict[tuple[GroupResource, str], set[str]] = defaultdict(set)
    for key, version, is_namespaced in listed:
        if is_namespaced:
            namespaced[(key.gr, version)][key.namespace].add(key.name)
        else:
            cluster[(key.gr, version)].add(key.name)
    # Built as the API writes it and validated once: pydantic-core's validation of the whole is
    # several times faster than constructing the nested models one by one.
    spec: dict[str, Any] = {"namespaceScope": {}}
    if namespaced:
        spec["namespacedObjects"] = [
            {
                "group": gr.group,
                "resource": gr.resource,
                "apiVersion": version,
                "objectsByNamespace": [
                    {"namespace": ns, "names": sorted(names)} for ns, names in sorted(by_ns.items())
                ],
            }
            for (gr, version), by_ns in sorted(namespaced.items())
        ]
    if cluster:
        spec["clusterScope"] = [
            {"group": gr.group, "resource": gr.resource, "apiVersion": version, "objects": sorted(names)}
            for (gr, version), names in sorted(cluster.items())
        ]
    model = SyncerConfigSpec.model_validate(spec)
    canonical = canonical_upsync(upsync)
    if canonical:
        model.upsync = canonical
    return model


def syncer_config_json(spec: SyncerConfigSpec) -> dict[str, Any]:
    """The spec as the API writes it (what :func:`syncer_config_spec` set, camelCase)."""
    body: dict[str, Any] = spec.model_dump(mode="json", exclude_unset=True)
    return body
