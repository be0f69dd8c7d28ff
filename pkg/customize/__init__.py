"""Customization of workload copies, without any server: parameter expansion, the path language
of Customizer replacements, and applying a Customizer.  Every failure is a :class:`CustomizeError`.

* :mod:`pkg.customize.expand`: ``%(name)`` expansion of strings and objects.
* :mod:`pkg.customize.jsonpath`: the path language (grammar in its docstring): parse, print,
  read, write.
* :mod:`pkg.customize.apply`: :func:`customize`, :func:`customizer_ref` and helpers.
"""

from pkg.customize.apply import (
    customize,
    customizer_ref,
    needs_parameters,
    parse_value,
    wants_expansion,
)
from pkg.customize.errors import CustomizeError, PathSyntaxError
from pkg.customize.expand import IDENTITY_FIELDS, expand_object, expand_string
from pkg.customize.jsonpath import (
    Index,
    Name,
    Path,
    Segment,
    Selector,
    Slice,
    Wildcard,
    format_path,
    parse_path,
    select,
    set_path,
    write_in_place,
)

__all__ = [
    "IDENTITY_FIELDS",
    "CustomizeError",
    "Index",
    "Name",
    "Path",
    "PathSyntaxError",
    "Segment",
    "Selector",
    "Slice",
    "Wildcard",
    "customize",
    "customizer_ref",
    "expand_object",
    "expand_string",
    "format_path",
    "needs_parameters",
    "parse_path",
    "parse_value",
    "select",
    "set_path",
    "wants_expansion",
    "write_in_place",
]
