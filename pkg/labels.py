"""Label selectors: kept as an alias of :mod:`apis.machinery.labels`, where the code now lives (the
generated listers, below ``pkg`` in the layering, match with it too)."""

from apis.machinery.labels import (
    Requirement,
    Selector,
    SelectorError,
    matches_any,
    parse_selector,
    parse_selector_string,
    selector_of,
    validate_label_key,
    validate_label_value,
)

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
