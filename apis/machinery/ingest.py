"""Ingest schemas: a generated model's own pydantic-core schema, rewritten for an informer's cache.

A typed informer validates every listed object and every watch event into its model.  The
model's schema (``Model.__pydantic_core_schema__``) is a plain data structure; :func:`rewrite`
copies it with two changes, and :func:`compile_schema` builds a validator from the copy that
creates instances of the very same classes (so ``isinstance``, attribute access, ``model_copy``
and ``model_dump`` are unchanged for readers of the cache):

* ``drop_managed_fields``: ``metadata.managedFields`` is not validated at all (the JSON parser
  skips it, no Python objects are built for it), and the model reads as if the object never had
  it (``managed_fields`` is ``None`` and unset).  It is often the largest part of an object and
  no controller reads it.  Because pydantic-core can only skip a key that its model does not
  keep as an extra, the metadata model in the copy ignores unknown members instead of keeping
  them (every member of Kubernetes' ObjectMeta that kcp v0.11 serves but ``managedFields`` has
  its own field, so nothing else is lost);
* ``share_fields_sets``: each model instance's set of the names of its set fields
  (``__pydantic_fields_set__``, which ``model_dump(exclude_unset=True)`` reads) is replaced, as
  the instance is validated, by the one shared, read-only set holding the same names
  (:mod:`apis.machinery.shared`): about 200 to 700 bytes less per nested instance, most of the
  difference between a cache of models and a cache of dicts.

Everything else (types, constraints, patterns, literals, defaults) is validated exactly as the
model does.  pydantic-core reuses an existing model's own validator for a nested model schema it
recognises as that model's (its "prebuilt" shortcut, which would ignore the rewritten parts), so
:func:`compile_schema` marks the classes as not complete while it builds, and restores the flag.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel
from pydantic_core import CoreSchema, SchemaValidator, core_schema

from apis.machinery.shared import _SHARED_SETS, shared_set

MANAGED_FIELDS = "managed_fields"
"""The attribute name of ``metadata.managedFields`` in the generated ObjectMeta."""

# Keys of a core schema whose values are never schemas to rewrite ("metadata" is a schema's
# annotations there; a model field called metadata lives under "fields" and is rewritten).
_OPAQUE = frozenset({"cls", "config", "metadata", "serialization", "default", "function", "expected", "ref"})


_NO_INDEX = 1 << 40
"""An index beyond any list: ``managedFields[_NO_INDEX]`` is missing in every object."""


SHARE_MIN_FIELDS = 5
"""Only models with at least this many fields get shared sets while validating: a set of up to
four names takes a set's smallest size (216 bytes), one of five or more 728 bytes and up, so
these are most of the saving, for a fraction of the calls."""


def _share_validated(
    model: Any, _get: Any = _SHARED_SETS.get, _frozen: Any = frozenset, _set: Any = object.__setattr__
) -> Any:
    """:func:`apis.machinery.shared.share`, inlined: it runs once per validated instance."""
    fields_set = model.__pydantic_fields_set__
    shared = _get(_frozen(fields_set))
    if shared is None:
        shared = shared_set(fields_set)
    _set(model, "__pydantic_fields_set__", shared)
    return model


def _without_managed_fields(node: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` schema of ObjectMeta that never reads ``managedFields`` and ignores extras."""
    fields_schema = dict(node["schema"])
    field = dict(fields_schema["fields"][MANAGED_FIELDS])
    # The field stays (None, unset) but reads a path that no object has; the key is then an
    # extra, which the parser skips.
    field["validation_alias"] = [["managedFields", _NO_INDEX]]
    fields_schema["fields"] = {**fields_schema["fields"], MANAGED_FIELDS: field}
    fields_schema["extra_behavior"] = "ignore"
    out = dict(node)
    out["schema"] = fields_schema
    out["config"] = {**(node.get("config") or {}), "extra_fields_behavior": "ignore"}
    return out


def _has_managed_fields(node: dict[str, Any]) -> bool:
    fields_schema = node.get("schema")
    if not isinstance(fields_schema, dict) or fields_schema.get("type") != "model-fields":
        return False
    field = fields_schema["fields"].get(MANAGED_FIELDS)
    return isinstance(field, dict) and field.get("validation_alias") == "managedFields"


def rewrite(
    schema: Any, *, drop_managed_fields: bool, share_fields_sets: bool, classes: set[type[BaseModel]]
) -> Any:
    """A copy of the core schema ``schema`` with the changes the module docstring describes; the
    model classes it validates are added to ``classes``.  The original is not changed."""
    if isinstance(schema, list):
        return [
            rewrite(
                s,
                drop_managed_fields=drop_managed_fields,
                share_fields_sets=share_fields_sets,
                classes=classes,
            )
            for s in schema
        ]
    if not isinstance(schema, dict):
        return schema

    def again(value: Any) -> Any:
        return rewrite(
            value,
            drop_managed_fields=drop_managed_fields,
            share_fields_sets=share_fields_sets,
            classes=classes,
        )

    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _OPAQUE:
            out[key] = value
        elif key == "fields" and isinstance(value, dict):
            out[key] = {name: again(field) for name, field in value.items()}
        else:
            out[key] = again(value)
    if out.get("type") != "model":
        return out
    classes.add(out["cls"])
    if drop_managed_fields and _has_managed_fields(out):
        out = _without_managed_fields(out)
    if not share_fields_sets or len(out["cls"].model_fields) < SHARE_MIN_FIELDS:
        return out
    ref = out.pop("ref", None)
    wrapped: dict[str, Any] = dict(core_schema.no_info_after_validator_function(_share_validated, out))
    if ref is not None:
        wrapped["ref"] = ref
    return wrapped


def split_definitions(schema: Any) -> tuple[Any, list[Any]]:
    """A core schema's main schema and its definitions (``[]`` when it has none)."""
    if isinstance(schema, dict) and schema.get("type") == "definitions":
        return schema["schema"], list(schema["definitions"])
    return schema, []


_BUILD_LOCK = threading.Lock()


@contextmanager
def _not_prebuilt(classes: set[type[BaseModel]]) -> Iterator[None]:
    """While building, make pydantic-core build ``classes``' schemas instead of reusing their own
    validators (it reuses a class's validator only when the class's ``__pydantic_complete__``)."""
    flagged = [cls for cls in classes if cls.__dict__.get("__pydantic_complete__")]
    with _BUILD_LOCK:
        for cls in flagged:
            cls.__pydantic_complete__ = False
        try:
            yield
        finally:
            for cls in flagged:
                cls.__pydantic_complete__ = True


def compile_schema(schema: CoreSchema, classes: set[type[BaseModel]]) -> SchemaValidator:
    """A validator of ``schema`` (built with :func:`rewrite`, which collected ``classes``)."""
    with _not_prebuilt(classes):
        return SchemaValidator(schema)
