"""Decoding list pages and watch events straight into a generated model, once, at ingest.

A typed informer (``Informer(..., model=EdgePlacement)``) reads the raw bytes of each list page
and each watch-event line and hands them to a :class:`ModelDecoder`, which validates them with
pydantic-core's JSON parser in one pass (no intermediate dicts).  Each object position is typed
``Model | dict`` (left to right), so an object the model rejects does not fail its page or event:
it arrives as a plain dict, and only then is it validated again to get the error (the rare
path).  The results:

* :meth:`ModelDecoder.decode_page` -> :class:`Page` (the accepted models, the rejected objects
  with their errors, the list's ``metadata``);
* :meth:`ModelDecoder.decode_event` -> :class:`Event` (the event type and either the model or the
  raw object plus the error).  Bookmarks and ``ERROR`` events, which are no objects of the kind,
  come back as raw dicts without an error.

The validator is built from a rewritten copy of the model's own core schema
(:mod:`apis.machinery.ingest`), which makes the same instances of the same classes with the same
checks, and two savings that used to be steps after the decode:

* with :func:`drop_managed_fields` as the postprocess, ``metadata.managedFields`` is never decoded
  (the parser skips it; about a fifth of the work on a typical edge object);
* with ``share_fields_sets``, the models' fields sets (pydantic's per-instance
  ``__pydantic_fields_set__``, the largest part of a model's memory) are swapped for shared,
  read-only ones as each instance is validated (:mod:`apis.machinery.shared`); assigning to a
  field of a decoded model then raises ``TypeError`` (change a ``model_copy(deep=True)``).

Invariant: every model returned passed the model's validation (``model_validate_json`` of the
object as sent, less ``managedFields`` when they are dropped, or ``model_validate`` of it); no
object is decoded twice on the accepting path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from apis.machinery import ingest
from apis.machinery.shared import share_tree

M = TypeVar("M", bound=BaseModel)

_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})


@dataclass
class Rejected:
    """An object the server sent that the model does not accept."""

    obj: dict[str, Any]
    error: Exception


@dataclass
class Page(Generic[M]):
    """One decoded list page."""

    items: list[M] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Event(Generic[M]):
    """One decoded watch event: ``obj`` is the model, or ``None`` with ``raw`` the object as sent
    (then ``error`` says why the model rejected it, or is ``None`` for bookmarks and errors)."""

    type: str
    obj: M | None
    raw: dict[str, Any] | None = None
    error: Exception | None = None


def _ingest_validators(
    model: type[BaseModel], drop_managed_fields: bool, share_fields_sets: bool
) -> tuple[SchemaValidator, SchemaValidator, SchemaValidator]:
    """Validators of a list page, of a watch event and of one object (``model | dict``) of
    ``model`` (see the module docstring)."""
    classes: set[type[BaseModel]] = set()
    main, definitions = ingest.split_definitions(
        ingest.rewrite(
            model.__pydantic_core_schema__,
            drop_managed_fields=drop_managed_fields,
            share_fields_sets=share_fields_sets,
            classes=classes,
        )
    )
    slot = cs.union_schema([main, cs.dict_schema()], mode="left_to_right")
    event = cs.typed_dict_schema(
        {
            "type": cs.typed_dict_field(cs.str_schema(), required=False),
            "object": cs.typed_dict_field(cs.nullable_schema(slot), required=False),
        },
        extra_behavior="ignore",
    )
    page = cs.typed_dict_schema(
        {
            "metadata": cs.typed_dict_field(cs.dict_schema(), required=False),
            "items": cs.typed_dict_field(cs.nullable_schema(cs.list_schema(slot)), required=False),
        },
        extra_behavior="ignore",
    )
    built = []
    for schema in (page, event, slot):
        whole = cs.definitions_schema(schema, definitions) if definitions else schema
        built.append(ingest.compile_schema(whole, classes))
    return built[0], built[1], built[2]


_VALIDATORS: dict[
    tuple[type[BaseModel], bool, bool], tuple[SchemaValidator, SchemaValidator, SchemaValidator]
] = {}


class ModelDecoder(Generic[M]):
    """Decodes the JSON of lists and watch events of one resource into ``model``.

    ``postprocess`` runs on each accepted model before it is returned; it may change the model in
    place and must return it.  :func:`drop_managed_fields` as ``postprocess`` is done while
    validating instead (``managedFields`` is never decoded).  With ``share_fields_sets`` the
    models' fields sets are shared and read-only (set as they are validated; after a
    ``postprocess`` other than :func:`drop_managed_fields`, by a walk once it has run).
    """

    def __init__(
        self, model: type[M], postprocess: Callable[[M], M] | None = None, share_fields_sets: bool = False
    ) -> None:
        self.model = model
        self.share_fields_sets = share_fields_sets
        self.drops_managed_fields = postprocess is drop_managed_fields
        self._postprocess = postprocess  # for the rare path: an object decoded by model_validate
        self.postprocess = None if self.drops_managed_fields else postprocess
        # Share while validating unless a postprocess must see (and may change) ordinary models.
        self._share_after = share_fields_sets and self.postprocess is not None
        key = (model, self.drops_managed_fields, share_fields_sets and not self._share_after)
        validators = _VALIDATORS.get(key)
        if validators is None:
            validators = _VALIDATORS.setdefault(key, _ingest_validators(*key))
        self._page_validator, self._event_validator, self._object_validator = validators
        kind = str(model.model_fields["kind"].default) if "kind" in model.model_fields else ""
        api_version = model.model_fields["api_version"].default if "api_version" in model.model_fields else ""
        # How kcp writes a list of custom resources: compact JSON, keys sorted, so every item
        # starts with apiVersion, kind and metadata (see _split_page).
        self._item_start = f'{{"apiVersion":"{api_version}","kind":"{kind}","metadata":{{'.encode()
        self._items_end = f'],"kind":"{kind}List",'.encode()

    def _accept(self, obj: M) -> M:
        if self.postprocess is not None:
            obj = self.postprocess(obj)
        if self._share_after:
            share_tree(obj)
        return obj

    def _reject(self, raw: dict[str, Any]) -> tuple[M | None, Exception | None]:
        """Validate ``raw`` again to learn why it was rejected (if it now passes, accept it)."""
        try:
            obj = self.model.model_validate(raw)
        except ValidationError as err:
            return None, err
        if self._postprocess is not None:
            obj = self._postprocess(obj)
        if self.share_fields_sets:
            share_tree(obj)
        return obj, None

    def _split_page(self, data: bytes) -> tuple[bytes, list[bytes]] | None:
        """The page without its items, and each item's bytes; ``None`` if the page is not laid out
        as kcp writes lists (then it is decoded whole).

        Validating a large page in one call is about twice as slow per object as validating its
        items one by one (pydantic-core first parses the whole page into a tree that no longer
        fits the CPU's caches), so the items are cut apart at the bytes that start each item.
        Those bytes cannot occur inside a JSON string (its quotes would be escaped), and a cut
        inside an item would leave both parts unbalanced: a wrong cut fails to parse, and
        :meth:`decode_page` then decodes the page whole.
        """
        head = data.find(b'"items":[')
        tail = data.rfind(self._items_end)
        if head < 0 or tail < head:
            return None
        body = data[head + 9 : tail]
        envelope = data[: head + 9] + data[tail:]
        if not body:
            return envelope, []
        marker = self._item_start
        if not body.startswith(marker):
            return None
        pieces = body.split(b"}," + marker)
        if len(pieces) > 1:
            pieces = [pieces[0] + b"}"] + [marker + p + b"}" for p in pieces[1:-1]] + [marker + pieces[-1]]
        return envelope, pieces

    def decode_page(self, data: bytes | str) -> Page[M]:
        """Decode one list page; raise ``ValueError`` if it is no JSON object at all."""
        split = self._split_page(data) if isinstance(data, bytes) and len(data) > 65536 else None
        items: list[Any] | None = None
        if split is not None:
            envelope, pieces = split
            try:
                page: dict[str, Any] = self._page_validator.validate_json(envelope)
                validate = self._object_validator.validate_json
                items = [validate(piece) for piece in pieces]
            except ValidationError:
                items = None  # not cut as kcp writes lists: decode it whole
        if items is None:
            page = self._page_validator.validate_json(data)
            items = page.get("items") or []
        out: Page[M] = Page(metadata=page.get("metadata") or {})
        model = self.model
        accepted = out.items
        for item in items:
            if isinstance(item, model):
                accepted.append(self._accept(item) if self.postprocess or self._share_after else item)
                continue
            obj, err = self._reject(item)
            if obj is not None:
                accepted.append(obj)
            else:
                out.rejected.append(Rejected(item, err or ValueError("not an object")))
        return out

    def decode_event(self, line: bytes | str) -> Event[M]:
        """Decode one watch-event line; raise ``ValueError`` if it is no JSON object at all."""
        try:
            event: dict[str, Any] = self._event_validator.validate_json(line)
        except ValidationError:
            # E.g. "object" is no JSON object: hand over what was sent, as the dict path would.
            decoded = json.loads(line)
            if not isinstance(decoded, dict):
                raise ValueError(f"watch event is not a JSON object: {str(line)[:200]}") from None
            raw = decoded.get("object")
            return Event(str(decoded.get("type") or ""), None, raw if isinstance(raw, dict) else {})
        event_type = event.get("type", "")
        obj = event.get("object")
        if event_type not in _OBJECT_EVENTS:
            # A bookmark (whose object may even pass the model) or an error: no object of the kind.
            if isinstance(obj, BaseModel):
                obj = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
            return Event(event_type, None, obj if isinstance(obj, dict) else {})
        if isinstance(obj, self.model):
            return Event(event_type, self._accept(obj))
        raw = obj if isinstance(obj, dict) else {}
        accepted, err = self._reject(raw)
        if accepted is not None:
            return Event(event_type, accepted)
        return Event(event_type, None, raw, err)


def drop_managed_fields(obj: M) -> M:
    """A postprocess step: forget ``metadata.managedFields`` (no controller reads it, and it is often
    the largest part of an object); the model then dumps as if it had never had them."""
    meta = getattr(obj, "metadata", None)
    if meta is not None and getattr(meta, "managed_fields", None) is not None:
        meta.__dict__["managed_fields"] = None
        object.__setattr__(meta, "__pydantic_fields_set__", meta.__pydantic_fields_set__ - {"managed_fields"})
    return obj


def summarize(error: Exception, limit: int = 3) -> str:
    """A one-line summary of a validation error: its first ``limit`` problems with their paths."""
    if isinstance(error, ValidationError):
        parts = []
        for detail in error.errors()[:limit]:
            where = ".".join(str(p) for p in detail.get("loc", ()))
            parts.append(f"{where}: {detail.get('msg', '')}" if where else str(detail.get("msg", "")))
        more = error.error_count() - limit
        if more > 0:
            parts.append(f"and {more} more")
        return "; ".join(parts)
    return str(error)
