"""The one exception type of :mod:`pkg.customize` and its syntax-error subclass."""

from __future__ import annotations


class CustomizeError(ValueError):
    """A copy cannot be customized: the caller holds that copy back and reports ``str(err)``."""


class PathSyntaxError(CustomizeError):
    """A path that does not parse.  ``column`` is the 1-based position of the offending character
    (one past the end for a path that ends too early)."""

    def __init__(self, source: str, column: int, problem: str) -> None:
        self.source = source
        self.column = column
        self.problem = problem
        super().__init__(f"bad path {source!r}: column {column}: {problem}")
