"""Shared, read-only fields sets for models decoded into an informer's cache.

pydantic gives every model instance its own ``set`` of the names of the fields that were set
(``__pydantic_fields_set__``, which ``model_dump(exclude_unset=True)`` reads).  For a typical
edge object, with a dozen nested instances, those sets are the largest part of its memory.
:func:`share_tree` (which the typed informers' decoder applies to what it decodes) replaces the
set of a model and of every model nested in it by the one :class:`SharedFieldsSet` holding the
same names: equal sets are one object.

A shared set refuses every change with ``TypeError``, so assigning to a field of a cached model
fails loudly instead of silently changing what every reader of the cache sees (pydantic has
already stored the value when the set refuses: never assign to a cached model; change a
``model_copy(deep=True)``, whose sets are ordinary ones, since copying a shared set gives a
plain ``set``).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any, NoReturn

from pydantic import BaseModel


class SharedFieldsSet(set[str]):
    """A fields set shared by equal models: read-only; a copy is an ordinary ``set``."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a model decoded by an informer is shared and read-only; change a deep model_copy")

    add = update = discard = remove = pop = clear = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: Any) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (set, (list(self),))


_SHARED_SETS: dict[frozenset[str], SharedFieldsSet] = {}
"""Every shared fields set, by its names (few: one per combination of set fields of a model)."""


def shared_set(names: Iterable[str]) -> SharedFieldsSet:
    """The one shared fields set holding ``names``."""
    key = frozenset(names)
    shared = _SHARED_SETS.get(key)
    if shared is None:
        shared = _SHARED_SETS.setdefault(key, SharedFieldsSet(key))
    return shared


def share(model: Any) -> None:
    """Give ``model`` the shared fields set with the names its own set has (idempotent)."""
    fields_set = model.__pydantic_fields_set__
    if type(fields_set) is not SharedFieldsSet:
        object.__setattr__(model, "__pydantic_fields_set__", shared_set(fields_set))


_PLANS: dict[type[Any], tuple[str, ...]] = {}


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel)
    return any(_holds_models(arg) for arg in typing.get_args(annotation))


def _plan(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls`` that may hold models (directly, in lists or in dict values)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = tuple(name for name, info in cls.model_fields.items() if _holds_models(info.annotation))
        _PLANS[cls] = plan
    return plan


def share_tree(model: BaseModel) -> None:
    """:func:`share` for ``model`` and every model nested in it."""
    share(model)
    values = model.__dict__
    for name in _plan(type(model)):
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            share_tree(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    share_tree(item)
        elif isinstance(value, dict):
            for item in value.values():
                if isinstance(item, BaseModel):
                    share_tree(item)
