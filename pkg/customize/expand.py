"""Parameter expansion: ``%(name)`` in string values becomes the value of parameter ``name``.

Scanning a string left to right:

* ``%(name)`` is replaced by the parameter's value (inserted as is, never expanded again); the
  name runs to the next ``)``.  An undefined name, or a ``%(`` without a closing ``)``, is a
  :class:`CustomizeError`.
* ``%%`` gives one ``%``.
* ``%`` followed by any other character, or at the very end, is kept as it is.

:func:`expand_object` expands every string value of a JSON object, at any depth, but not map
keys, numbers, booleans or null, and never the identity fields ``apiVersion``, ``kind``,
``metadata.name`` and ``metadata.namespace`` of the object itself.  The parameters are a plain
mapping; the caller builds it (from the Location's labels and annotations).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pkg.customize.errors import CustomizeError
from pkg.customize.jsonpath import Index, Name, Path, Segment, format_path

__all__ = ["IDENTITY_FIELDS", "expand_object", "expand_string"]

IDENTITY_FIELDS: tuple[tuple[str, ...], ...] = (
    ("apiVersion",),
    ("kind",),
    ("metadata", "name"),
    ("metadata", "namespace"),
)


def expand_string(text: str, params: Mapping[str, str], where: str = "") -> str:
    """``text`` with its parameter references expanded.  ``where`` (for example ``"in $.data.x"``)
    is added to error messages."""
    suffix = f" {where}" if where else ""
    out: list[str] = []
    pos = 0
    while (pct := text.find("%", pos)) >= 0:
        out.append(text[pos:pct])
        follower = text[pct + 1 : pct + 2]
        pos = pct + 2
        if follower == "%":
            out.append("%")
        elif follower == "(":
            close = text.find(")", pos)
            if close < 0:
                raise CustomizeError(f"unterminated parameter reference {text[pct:]!r}{suffix}")
            name = text[pos:close]
            if name not in params:
                raise CustomizeError(f"undefined parameter {name!r}{suffix}")
            out.append(params[name])
            pos = close + 1
        else:
            out.append("%" + follower)
    out.append(text[pos:])
    return "".join(out)


def _expand(value: Any, params: Mapping[str, str], at: list[str | int], skip: frozenset[str]) -> Any:
    if isinstance(value, str):
        if "%" not in value:
            return value
        where = "in " + format_path(Path(tuple(Segment((_selector(k),)) for k in at)))
        return expand_string(value, params, where)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            at.append(key)
            if key in skip:
                out[key] = copy.deepcopy(child)
            elif len(at) == 1 and key == "metadata" and isinstance(child, dict):
                out[key] = _expand(child, params, at, frozenset({"name", "namespace"}))
            else:
                out[key] = _expand(child, params, at, frozenset())
            at.pop()
        return out
    if isinstance(value, list):
        items = []
        for i, child in enumerate(value):
            at.append(i)
            items.append(_expand(child, params, at, frozenset()))
            at.pop()
        return items
    return copy.deepcopy(value)


def _selector(key: str | int) -> Name | Index:
    return Index(key) if isinstance(key, int) else Name(key)


def expand_object(obj: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """A new object: ``obj`` with every string value expanded (see the module documentation)."""
    try:
        result: dict[str, Any] = _expand(dict(obj), params, [], frozenset({"apiVersion", "kind"}))
    except RecursionError:
        raise CustomizeError("the object is nested too deeply") from None
    return result
