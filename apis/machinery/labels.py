"""Kubernetes label selectors without a server: ``metav1.LabelSelector`` parsing and matching.

:func:`parse_selector` follows ``metav1.LabelSelectorAsSelector``: ``matchLabels`` and
``matchExpressions`` are ANDed; the operators are ``In``, ``NotIn``, ``Exists`` and
``DoesNotExist``; keys and values are checked by the Kubernetes label syntax rules.  ``None`` and
``{}`` match every label set.  Anything malformed raises :class:`SelectorError` whose message names
the problem; callers treat such a selector as matching nothing.

:func:`parse_selector_string` reads the string form of ``labels.Parse`` (``a=b,c in (d,e),!f``),
as ``kubectl -l`` and the ``labelSelector`` query parameter take it; :func:`selector_of` accepts any
of the forms (string, dict, ``LabelSelector`` model, parsed :class:`Selector`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Requirement",
    "Selector",
    "SelectorError",
    "matches_any",
    "parse_selector",
    "parse_selector_string",
    "selector_of",
    "validate_label_key",
    "validate_label_value",
]

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
_OPERATORS: frozenset[str] = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})

_NAME_MAX = 63
_PREFIX_MAX = 253
_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class SelectorError(ValueError):
    """A label selector that cannot be used; ``str(err)`` names the problem."""


def validate_label_key(key: object) -> str | None:
    """The problem with label key ``key`` (Kubernetes qualified-name rules), or ``None`` if valid."""
    if not isinstance(key, str):
        return f"label key {key!r} must be a string"
    if key == "":
        return "label key must not be empty"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if prefix == "":
            return f"invalid label key {key!r}: prefix part must not be empty"
        if len(prefix) > _PREFIX_MAX:
            return f"invalid label key {key!r}: prefix part must be no more than {_PREFIX_MAX} characters"
        if "/" in prefix or not all(_DNS_LABEL_RE.fullmatch(part) for part in prefix.split(".")):
            return (
                f"invalid label key {key!r}: prefix part must be a lowercase RFC 1123 subdomain "
                "(e.g. 'example.com')"
            )
    if name == "":
        return f"invalid label key {key!r}: name part must not be empty"
    if len(name) > _NAME_MAX:
        return f"invalid label key {key!r}: name part must be no more than {_NAME_MAX} characters"
    if not _NAME_RE.fullmatch(name):
        return (
            f"invalid label key {key!r}: name part must consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character"
        )
    return None


def validate_label_value(value: object) -> str | None:
    """The problem with label value ``value``, or ``None`` if valid (the empty string is valid)."""
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if value == "":
        return None
    if len(value) > _NAME_MAX:
        return f"invalid label value {value!r}: must be no more than {_NAME_MAX} characters"
    if not _NAME_RE.fullmatch(value):
        return (
            f"invalid label value {value!r}: must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True)
class Requirement:
    """One ANDed condition: ``key`` ``operator`` ``values``."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        # NotIn: an absent key satisfies it, as in Kubernetes.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    """A parsed label selector: the AND of its requirements.  No requirement = matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when this selector matches every label set."""
        return not self.requirements


def _check(problem: str | None, where: str) -> None:
    if problem is not None:
        raise SelectorError(f"{where}: {problem}")


def parse_selector(sel: Mapping[str, Any] | None) -> Selector:
    """Parse a ``metav1.LabelSelector`` given as a dict (or as a pydantic model of one); raise
    :class:`SelectorError` if invalid."""
    if sel is None:
        return Selector()
    dump = getattr(sel, "model_dump", None)
    if dump is not None and not isinstance(sel, Mapping):
        sel = dump(by_alias=True, exclude_none=True)
    if not isinstance(sel, Mapping):
        raise SelectorError(f"label selector must be an object, not {type(sel).__name__}")
    reqs: list[Requirement] = []
    match_labels = sel.get("matchLabels")
    if match_labels is not None:
        if not isinstance(match_labels, Mapping):
            raise SelectorError("matchLabels must be an object mapping keys to values")
        for key, value in match_labels.items():
            _check(validate_label_key(key), "matchLabels")
            _check(validate_label_value(value), f"matchLabels[{key!r}]")
            reqs.append(Requirement(key, "In", frozenset({value})))
    exprs = sel.get("matchExpressions")
    if exprs is not None:
        if isinstance(exprs, str | bytes) or not isinstance(exprs, Sequence):
            raise SelectorError("matchExpressions must be a list")
        for i, expr in enumerate(exprs):
            reqs.append(_parse_expression(expr, f"matchExpressions[{i}]"))
    return Selector(tuple(reqs))


def _parse_expression(expr: object, where: str) -> Requirement:
    if not isinstance(expr, Mapping):
        raise SelectorError(f"{where} must be an object")
    key = expr.get("key")
    _check(validate_label_key(key), where)
    assert isinstance(key, str)
    op = expr.get("operator")
    if not isinstance(op, str) or op not in _OPERATORS:
        shown = f'"{op}"' if isinstance(op, str) else repr(op)
        raise SelectorError(f"unknown operator {shown} in {where}")
    raw_values = expr.get("values")
    if raw_values is None:
        raw_values = []
    if isinstance(raw_values, str | bytes) or not isinstance(raw_values, Sequence):
        raise SelectorError(f"{where}: values must be a list")
    values: list[str] = []
    for j, v in enumerate(raw_values):
        _check(validate_label_value(v), f"{where}.values[{j}]")
        values.append(v)
    if op in ("In", "NotIn"):
        if not values:
            raise SelectorError(f"{where}: values must be non-empty for operator {op}")
        operator: Operator = "In" if op == "In" else "NotIn"
    else:
        if values:
            raise SelectorError(f"{where}: values must be empty for operator {op}")
        operator = "Exists" if op == "Exists" else "DoesNotExist"
    return Requirement(key, operator, frozenset(values))


def matches_any(selectors: Sequence[Selector], labels: Mapping[str, str]) -> bool:
    """True iff some selector matches ``labels``; False for an empty list."""
    return any(s.matches(labels) for s in selectors)


_TOKEN_RE = re.compile(r"\s*(==|!=|=|,|\(|\)|!|[^\s=!,()]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space character
            raise SelectorError(f"label selector {text!r}: cannot read at position {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_selector_string(text: str) -> Selector:
    """Parse the string form of a label selector (client-go's ``labels.Parse``).

    Requirements are separated by commas and ANDed: ``k=v`` and ``k==v`` (In), ``k!=v`` (NotIn),
    ``k in (v1,v2)``, ``k notin (v1,v2)``, ``k`` (Exists) and ``!k`` (DoesNotExist).  The empty
    string matches everything.  ``>`` and ``<`` (Gt, Lt) are not supported; anything malformed
    raises :class:`SelectorError`.
    """
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise SelectorError(f"label selector {text!r} ends early")
        i += 1
        return toks[i - 1]

    while i < len(toks):
        tok = take()
        if tok == "!":
            key = take()
            _check(validate_label_key(key), f"label selector {text!r}")
            reqs.append(Requirement(key, "DoesNotExist"))
        else:
            key = tok
            _check(validate_label_key(key), f"label selector {text!r}")
            op = toks[i] if i < len(toks) else ","
            if op == ",":
                reqs.append(Requirement(key, "Exists"))
            elif op in ("=", "==", "!="):
                i += 1
                value = toks[i] if i < len(toks) and toks[i] != "," else ""
                if value:
                    i += 1
                _check(validate_label_value(value), f"label selector {text!r}")
                reqs.append(Requirement(key, "NotIn" if op == "!=" else "In", frozenset({value})))
            elif op in ("in", "notin"):
                i += 1
                if take() != "(":
                    raise SelectorError(f"label selector {text!r}: expected '(' after {op!r}")
                values: list[str] = []
                while True:
                    value = take()
                    if value == ")" and not values:
                        break
                    if value in (",", ")"):
                        value, i = "", i - 1
                    _check(validate_label_value(value), f"label selector {text!r}")
                    values.append(value)
                    sep = take()
                    if sep == ")":
                        break
                    if sep != ",":
                        raise SelectorError(f"label selector {text!r}: expected ',' or ')', not {sep!r}")
                if not values:
                    raise SelectorError(f"label selector {text!r}: {op} needs at least one value")
                reqs.append(Requirement(key, "In" if op == "in" else "NotIn", frozenset(values)))
            else:
                raise SelectorError(f"label selector {text!r}: unexpected {op!r} after key {key!r}")
        if i < len(toks):
            if toks[i] != ",":
                raise SelectorError(f"label selector {text!r}: expected ',', not {toks[i]!r}")
            i += 1
            if i == len(toks):
                raise SelectorError(f"label selector {text!r} ends with ','")
    return Selector(tuple(reqs))


def selector_of(sel: Selector | str | Mapping[str, Any] | Any | None) -> Selector:
    """A parsed :class:`Selector` from any accepted form: ``None`` (everything), a :class:`Selector`,
    the string form, or a ``metav1.LabelSelector`` as a dict or pydantic model."""
    if sel is None:
        return Selector()
    if isinstance(sel, Selector):
        return sel
    if isinstance(sel, str):
        return parse_selector_string(sel)
    return parse_selector(sel)
