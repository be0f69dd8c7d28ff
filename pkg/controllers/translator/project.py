"""Field rules for mailbox copies: what a copy looks like, and which parts of it the translator owns.

A copy is the (customized) source object with server-set metadata removed, ``status`` dropped (it
belongs to the edge) and the label ``edge.kubestellar.io/projected: "yes"`` added.  In an existing
copy the translator owns (spec decision 5): every top-level section other than ``metadata`` and
``status``; the labels and annotations that come from the source; and the projected label.  Labels
and annotations added in the mailbox only are kept.  Top-level sections removed from the source are
removed from the copy.

The translator caches copies in their :func:`compact` form: everything but the owned top-level
sections, which are kept as one digest (:func:`owned_digest`).  :func:`needs_update` and
:func:`update_form` take either form of an existing copy and give the same answers for both: the
digest of a canonical JSON encoding is equal exactly when the sections are (up to a 128-bit hash
collision), and a PUT carries the desired sections, never the existing ones.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from apis.edge.v2alpha1 import constants as api

# metadata fields a copy carries over from its source; everything else is the server's.
_KEPT_METADATA = ("name", "namespace", "labels", "annotations", "finalizers")
_NOT_OWNED_TOP = ("apiVersion", "kind", "metadata", "status")
OWNED_DIGEST = "#owned"
"""The key of a compact copy that holds the digest of its owned sections.  Not a field name the
server can send: the translator writes only what it read from a source in a WMW, and there a
top-level field needs a CRD property named so."""


def _system_key(key: str) -> bool:
    """kcp's own labels and annotations (``kcp.io/...``, ``*.kcp.io/...``) never propagate."""
    return key.startswith("kcp.io/") or ".kcp.io/" in key


def create_form(source: Mapping[str, Any], api_version: str) -> dict[str, Any]:
    """The body to create a copy of ``source`` (already customized) with ``api_version``."""
    md = source.get("metadata") or {}
    metadata: dict[str, Any] = {
        k: copy.deepcopy(md[k]) for k in _KEPT_METADATA if md.get(k) not in (None, {}, [])
    }
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if not _system_key(k)}
    labels[api.PROJECTED_LABEL] = api.PROJECTED
    metadata["labels"] = labels
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if not _system_key(k) and k != api.EXECUTING_COUNT_ANNOTATION
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    body: dict[str, Any] = {"apiVersion": api_version, "kind": source.get("kind"), "metadata": metadata}
    for key, value in source.items():
        if key not in _NOT_OWNED_TOP:
            body[key] = copy.deepcopy(value)
    return body


def owned_digest(obj: Mapping[str, Any]) -> bytes:
    """A digest of ``obj``'s owned top-level sections (all but apiVersion, kind, metadata and
    status): equal for two objects exactly when those sections are equal as JSON values."""
    if OWNED_DIGEST in obj:
        digest: bytes = obj[OWNED_DIGEST]
        return digest
    sections = {k: v for k, v in obj.items() if k not in _NOT_OWNED_TOP}
    text = json.dumps(sections, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


_UNREAD_METADATA = frozenset({"managedFields", "uid", "creationTimestamp", "generation", "selfLink"})
"""Metadata of an existing copy that no reconcile reads and that a PUT without it keeps: the
server takes generation, creationTimestamp and (when the body has none) uid from the stored
object on every update."""


class _SharedMap(dict[str, Any]):
    """A label or annotation map shared, read-only, by every cached copy that has an equal one:
    the copies of one source in many mailboxes have the same labels, and the copies in one
    mailbox the same ``kcp.io/cluster`` annotation."""

    __slots__ = ("__weakref__",)


_SHARED_MAPS: weakref.WeakValueDictionary[tuple[tuple[str, Any], ...], _SharedMap] = (
    weakref.WeakValueDictionary()
)
_SHARED_LOCK = threading.Lock()


def _shared(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        return value
    key = tuple(sorted(value.items()))
    with _SHARED_LOCK:
        found = _SHARED_MAPS.get(key)
        if found is None:
            found = _SharedMap(value)
            _SHARED_MAPS[key] = found
    return found


def compact(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The form in which the translator caches an existing copy: apiVersion, kind and status as
    they are; metadata less what no reconcile reads (managedFields, uid, timestamps), with names
    interned and label and annotation maps shared between equal ones; the owned sections as their
    digest.  Treat it as read-only, as every cached object."""
    out: dict[str, Any] = {}
    for key in _NOT_OWNED_TOP:
        if key in obj:
            value = obj[key]
            out[key] = sys.intern(value) if isinstance(value, str) else value
    md = out.get("metadata")
    if isinstance(md, dict):
        small: dict[str, Any] = {}
        for key, value in md.items():
            if key in _UNREAD_METADATA:
                continue
            if key in ("labels", "annotations"):
                value = _shared(value)
            elif key in ("name", "namespace") and isinstance(value, str):
                value = sys.intern(value)
            small[key] = value
        out["metadata"] = small
    out[OWNED_DIGEST] = owned_digest(obj)
    return out


def owned_view(obj: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of an existing copy ``obj`` that the translator owns, given the ``desired`` form.

    Two objects whose owned views are equal need no write.  The top-level sections are compared
    by digest (``obj`` may be :func:`compact`).
    """
    md = obj.get("metadata") or {}
    want_md = desired.get("metadata") or {}
    view: dict[str, Any] = {OWNED_DIGEST: owned_digest(obj)}
    labels = md.get("labels") or {}
    annotations = md.get("annotations") or {}
    view["metadata.labels"] = {k: labels.get(k) for k in (want_md.get("labels") or {})}
    view["metadata.annotations"] = {k: annotations.get(k) for k in (want_md.get("annotations") or {})}
    view["metadata.finalizers"] = md.get("finalizers") if "finalizers" in want_md else None
    return view


def desired_view(desired: Mapping[str, Any], digest: bytes | None = None) -> dict[str, Any]:
    want_md = desired.get("metadata") or {}
    view: dict[str, Any] = {OWNED_DIGEST: digest if digest is not None else owned_digest(desired)}
    view["metadata.labels"] = dict(want_md.get("labels") or {})
    view["metadata.annotations"] = dict(want_md.get("annotations") or {})
    view["metadata.finalizers"] = want_md.get("finalizers")
    return view


def needs_update(
    existing: Mapping[str, Any], desired: Mapping[str, Any], digest: bytes | None = None
) -> bool:
    """Whether ``existing`` (either form) differs from ``desired`` in what the translator owns;
    ``digest`` is ``owned_digest(desired)`` when the caller has it already."""
    return owned_view(existing, desired) != desired_view(desired, digest)


def update_form(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The body to PUT: the existing copy with the owned parts replaced by ``desired``'s."""
    body: dict[str, Any] = {k: copy.deepcopy(v) for k, v in existing.items() if k in _NOT_OWNED_TOP}
    # (the owned sections, or their digest, are not taken: the desired ones replace them)
    body["apiVersion"] = desired.get("apiVersion", existing.get("apiVersion"))
    for key, value in desired.items():
        if key not in _NOT_OWNED_TOP:
            body[key] = copy.deepcopy(value)
    # ``status`` stays as the edge reported it: a PUT to a resource without a status subresource
    # would otherwise wipe it.
    md = body.setdefault("metadata", {})
    want_md = desired.get("metadata") or {}
    md["labels"] = {**(md.get("labels") or {}), **(want_md.get("labels") or {})}
    annotations = {**(md.get("annotations") or {}), **(want_md.get("annotations") or {})}
    if annotations:
        md["annotations"] = annotations
    if "finalizers" in want_md:
        md["finalizers"] = copy.deepcopy(want_md["finalizers"])
    md.pop("managedFields", None)
    return body
