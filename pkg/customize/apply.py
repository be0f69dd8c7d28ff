"""Producing the customized copy of a workload object for one destination.

:func:`customize` is the whole of it: the object's own string values are expanded when the object
has ``edge.kubestellar.io/expand-parameters: "true"``; then the replacements of its Customizer
(named by the annotation ``edge.kubestellar.io/customizer``) are applied in order, with their
``path`` and ``value`` strings expanded first when the Customizer has that annotation.  Every
problem (a malformed reference, a missing Customizer, an undefined parameter, a bad path or
value, a replacement that would change the object's identity) raises :class:`CustomizeError`:
the caller then holds that copy back and reports the message.  Nothing given is modified.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from apis.edge.v2alpha1 import Customizer
from apis.edge.v2alpha1 import constants as api
from pkg.customize.errors import CustomizeError
from pkg.customize.expand import IDENTITY_FIELDS, expand_object, expand_string
from pkg.customize.jsonpath import parse_path, write_in_place
from pkg.runtime.meta import Meta

__all__ = [
    "customize",
    "customizer_ref",
    "needs_parameters",
    "parse_value",
    "wants_expansion",
]


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL = re.compile(_LABEL)
_DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")


def _annotations(obj: Mapping[str, Any] | Customizer) -> Mapping[str, str]:
    if isinstance(obj, dict):  # a workload object: checked first, the common case
        return Meta(obj).annotations
    if isinstance(obj, Customizer):
        return obj.metadata.annotations or {}
    return Meta(obj).annotations


def wants_expansion(obj: Mapping[str, Any] | Customizer) -> bool:
    """Whether ``obj`` (a workload object or a Customizer) asks for parameter expansion."""
    return _annotations(obj).get(api.EXPAND_PARAMETERS_ANNOTATION) == "true"


def needs_parameters(obj: Mapping[str, Any], customizer: Customizer | None) -> bool:
    """Whether :func:`customize` will expand anything, so the caller must find the parameters."""
    return wants_expansion(obj) or (customizer is not None and wants_expansion(customizer))


def customizer_ref(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) of the Customizer that ``obj`` refers to, or None when it has no
    ``edge.kubestellar.io/customizer`` annotation.  A bare name is in ``obj``'s namespace."""
    ref = _annotations(obj).get(api.CUSTOMIZER_ANNOTATION)
    if ref is None:
        return None

    def bad(problem: str) -> NoReturn:
        raise CustomizeError(f"annotation {api.CUSTOMIZER_ANNOTATION}: {ref!r} {problem}")

    if not isinstance(ref, str):
        bad("is not a string")
    namespace, slash, name = ref.partition("/")  # the first "/" separates the namespace
    if not slash:
        name = ref
        namespace = Meta(obj).namespace
        if not namespace:
            bad("needs the form namespace/name on a cluster-scoped object")
    elif not _DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
        bad("does not name a valid namespace (the form is name or namespace/name)")
    if not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        bad("does not name a valid Customizer (the form is name or namespace/name)")
    return namespace, name


def parse_value(text: str) -> Any:
    """A replacement's value: JSON text (no NaN or Infinity).  A number written with a fraction or
    exponent but of integral value under 1e21 (``5.0``, ``1e3``) is read as an int: the API server
    stores it as a float64 and writes it back in that form (``5``, ``1000``), so a copy carrying it
    reads back equal to what was sent."""

    def reject(constant: str) -> NoReturn:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(text, parse_constant=reject, parse_float=_number)
    except (ValueError, RecursionError) as err:
        raise CustomizeError(f"value {text!r} is not JSON: {err}") from None


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def _identity(obj: Mapping[str, Any]) -> list[Any]:
    out = []
    for field in IDENTITY_FIELDS:
        node: Any = obj
        for key in field:
            node = node.get(key) if isinstance(node, Mapping) else None
        out.append(node)
    return out


def _customizer_name(customizer: Customizer) -> str:
    return f"Customizer {customizer.metadata.namespace or ''}/{customizer.metadata.name or ''}"


def customize(
    obj: Mapping[str, Any],
    customizer: Customizer | None,
    params: Mapping[str, str],
) -> dict[str, Any]:
    """The customized copy of ``obj`` for a destination whose parameters are ``params``.

    ``customizer`` is the Customizer that ``obj``'s annotation names (None when it has none or
    when it was not found: the latter is an error).  Raises :class:`CustomizeError`.
    """
    ref = customizer_ref(obj)
    if ref is not None and customizer is None:
        raise CustomizeError(f"Customizer {ref[0]}/{ref[1]} not found")
    result = expand_object(obj, params) if wants_expansion(obj) else copy.deepcopy(dict(obj))
    if customizer is None:
        return result
    who = _customizer_name(customizer)
    expand = wants_expansion(customizer)
    identity = _identity(obj)
    for i, rep in enumerate(customizer.replacements or ()):
        where = f"{who}, replacement {i}"
        path_text, value_text = rep.path, rep.value
        try:
            if expand:
                path_text = expand_string(path_text, params, "in path")
                value_text = expand_string(value_text, params, "in value")
            path = parse_path(path_text)
            if not path.segments:
                raise CustomizeError("the path '$' would replace the whole object")
            write_in_place(result, path, parse_value(value_text))
        except CustomizeError as err:
            raise CustomizeError(f"{where}: {err}") from err
        if _identity(result) != identity:
            raise CustomizeError(f"{where}: path {path_text!r} changes the object's identity")
    return result
