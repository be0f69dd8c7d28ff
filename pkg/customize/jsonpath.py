"""The path language of Customizer replacements: parse, print, read and write.

A path names places in a JSON document.  Its grammar (whitespace is allowed only inside
brackets, around items and commas)::

    path      = "$" segment*
    segment   = "." member                 child of the current nodes
              | ".." (member | bracket)    the same, applied to every node at any depth
              | bracket
    member    = identifier | integer | "*"
    bracket   = "[" item ("," item)* "]"   a list of items selects each of them, in order
    item      = quoted | integer | slice | "*"
    slice     = [integer] ":" [integer] [":" [integer]]      start:end:stride
    identifier= [A-Za-z_$] [A-Za-z0-9_$]*
    integer   = ["-"] digit+               base 10; negative counts from the end
    quoted    = a JavaScript string literal in single or double quotes

Meaning: a name selects that member of an object; an integer selects that element of an array;
``*`` selects every member or element; a slice selects array elements as a Python slice does
(start defaults to 0, end to the length, stride to 1; a stride of 0 is a syntax error).  A
selector applied to a value of the wrong type selects nothing.  ``..`` visits the current node
first and then every node below it, in document order.

Writing (:func:`set_path`) places a deep copy of the value at every selected place, and never
extends an array.  In *definite* mode a missing object member is created while only definite
segments (one name, one index, or a one-element slice with stride 1) have been passed; a missing
member in the middle of the path is created as an empty object, and removed again if nothing
was written below it, so a write never leaves ``null`` or an empty object behind.  Recursive
descent visits a node before its children and then descends into the children as they are after
the write, except into values that the write itself placed (that would never end).  The path
``$`` alone cannot be written.

:func:`format_path` prints the canonical text of a :class:`Path`; ``parse_path(format_path(p))
== p`` for every path.  Syntax errors are :class:`PathSyntaxError`, carrying the column.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pkg.customize.errors import CustomizeError, PathSyntaxError

__all__ = [
    "Index",
    "Name",
    "Path",
    "Segment",
    "Selector",
    "Slice",
    "Wildcard",
    "format_path",
    "parse_path",
    "select",
    "set_path",
    "write_in_place",
]


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    index: int


@dataclass(frozen=True, slots=True)
class Slice:
    start: int | None = None
    end: int | None = None
    step: int | None = None

    def __post_init__(self) -> None:
        if self.step == 0:
            raise ValueError("a slice's stride must not be 0")


@dataclass(frozen=True, slots=True)
class Wildcard:
    pass


Selector: TypeAlias = Name | Index | Slice | Wildcard


@dataclass(frozen=True, slots=True)
class Segment:
    selectors: tuple[Selector, ...]  # at least one
    descendant: bool = False


@dataclass(frozen=True, slots=True)
class Path:
    segments: tuple[Segment, ...] = ()

    def __str__(self) -> str:
        return format_path(self)


# ---------------------------------------------------------------------------------------------
# Printing

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {"\\": "\\\\", "'": "\\'"} | {c: "\\" + e for e, c in zip("bfnrtv", "\b\f\n\r\t\v", strict=True)}


def _quote(name: str) -> str:
    out = []
    for ch in name:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch in "\x7f\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _format_item(sel: Selector) -> str:
    match sel:
        case Name(name):
            return _quote(name)
        case Index(index):
            return str(index)
        case Slice(start, end, step):
            text = ("" if start is None else str(start)) + ":" + ("" if end is None else str(end))
            return text if step is None else f"{text}:{step}"
        case Wildcard():
            return "*"


def _format_segment(seg: Segment) -> str:
    dots = ".." if seg.descendant else "."
    if len(seg.selectors) == 1:
        sel = seg.selectors[0]
        if isinstance(sel, Wildcard):
            return dots + "*"
        if isinstance(sel, Name) and _IDENTIFIER.fullmatch(sel.name):
            return dots + sel.name
    return ("..[" if seg.descendant else "[") + ",".join(map(_format_item, seg.selectors)) + "]"


def format_path(path: Path) -> str:
    """The canonical text of ``path``."""
    return "$" + "".join(map(_format_segment, path.segments))


# ---------------------------------------------------------------------------------------------
# Parsing

_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0"}
_LINE_TERMINATORS = "\n\r\u2028\u2029"
_SPACE = " \t\n\r"
_MAX_DIGITS = 100


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.pos = 0

    def fail(self, problem: str, pos: int | None = None) -> PathSyntaxError:
        return PathSyntaxError(self.src, (self.pos if pos is None else pos) + 1, problem)

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.src[i] if i < len(self.src) else ""

    def path(self) -> Path:
        if self.peek() != "$":
            raise self.fail("a path starts with '$'")
        self.pos = 1
        segments: list[Segment] = []
        while self.pos < len(self.src):
            ch = self.peek()
            if ch == "[":
                segments.append(Segment(self.bracket()))
            elif ch == "." and self.peek(1) == ".":
                self.pos += 2
                sels = self.bracket() if self.peek() == "[" else (self.member("'..'"),)
                segments.append(Segment(sels, descendant=True))
            elif ch == ".":
                self.pos += 1
                segments.append(Segment((self.member("'.'"),)))
            else:
                raise self.fail(f"expected '.' or '[', found {ch!r}")
        return Path(tuple(segments))

    def member(self, after: str) -> Selector:
        ch = self.peek()
        if ch == "*":
            self.pos += 1
            return Wildcard()
        m = _IDENTIFIER.match(self.src, self.pos)
        if m:
            self.pos = m.end()
            return Name(m.group())
        if ch == "-" or "0" <= ch <= "9":
            return Index(self.integer())
        found = f"found {ch!r}" if ch else "the path ends"
        raise self.fail(f"expected a name, an integer or '*' after {after}, {found}")

    def integer(self) -> int:
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        digits = self.pos
        while "0" <= self.peek() <= "9":
            self.pos += 1
        if self.pos == digits:
            raise self.fail("expected a digit")
        if self.pos - digits > _MAX_DIGITS:
            raise self.fail("integer too long", digits)
        return int(self.src[start : self.pos])

    def optional_integer(self) -> int | None:
        ch = self.peek()
        return self.integer() if ch == "-" or "0" <= ch <= "9" else None

    def skip_space(self) -> None:
        while self.peek() and self.peek() in _SPACE:
            self.pos += 1

    def bracket(self) -> tuple[Selector, ...]:
        self.pos += 1  # '['
        items: list[Selector] = []
        while True:
            self.skip_space()
            items.append(self.item())
            self.skip_space()
            ch = self.peek()
            self.pos += 1
            if ch == "]":
                return tuple(items)
            if ch != ",":
                self.pos -= 1
                found = f"found {ch!r}" if ch else "the path ends"
                raise self.fail(f"expected ',' or ']', {found}")

    def item(self) -> Selector:
        ch = self.peek()
        if ch == "*":
            self.pos += 1
            return Wildcard()
        if ch in ("'", '"'):
            return Name(self.string())
        if ch in ("-", ":") or "0" <= ch <= "9":
            start = self.optional_integer()
            self.skip_space()
            if self.peek() != ":":
                assert start is not None  # ':' was not the first character
                return Index(start)
            self.pos += 1
            self.skip_space()
            end = self.optional_integer()
            self.skip_space()
            step = None
            if self.peek() == ":":
                self.pos += 1
                self.skip_space()
                at = self.pos
                step = self.optional_integer()
                if step == 0:
                    raise self.fail("a slice's stride must not be 0", at)
            return Slice(start, end, step)
        found = f"found {ch!r}" if ch else "the path ends"
        raise self.fail(f"expected a quoted name, an integer, a slice or '*', {found}")

    def string(self) -> str:
        opening = self.pos
        quote = self.src[opening]
        self.pos += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise self.fail("unterminated string", opening)
            if ch in "\n\r":
                raise self.fail("line break in a quoted name (write \\n)")
            self.pos += 1
            if ch == quote:
                return "".join(out)
            if ch != "\\":
                out.append(ch)
                continue
            esc_at = self.pos - 1
            ch = self.peek()
            if not ch:
                raise self.fail("unterminated string", opening)
            self.pos += 1
            if ch in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[ch])
            elif ch == "x":
                out.append(chr(self.hex_digits(2, esc_at)))
            elif ch == "u":
                out.append(self.unicode_escape(esc_at))
            elif ch == "\r" and self.peek() == "\n":
                self.pos += 1  # line continuation
            elif ch not in _LINE_TERMINATORS:
                out.append(ch)

    def hex_digits(self, count: int, esc_at: int) -> int:
        text = self.src[self.pos : self.pos + count]
        if len(text) != count or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise self.fail(f"expected {count} hexadecimal digits in escape", esc_at)
        self.pos += count
        return int(text, 16)

    def unicode_escape(self, esc_at: int) -> str:
        if self.peek() == "{":
            end = self.src.find("}", self.pos)
            text = self.src[self.pos + 1 : end] if end > 0 else ""
            if not text or len(text) > 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise self.fail("bad \\u{...} escape", esc_at)
            code = int(text, 16)
            if code > 0x10FFFF:
                raise self.fail("code point beyond U+10FFFF", esc_at)
            self.pos = end + 1
        else:
            code = self.hex_digits(4, esc_at)
        if 0xD800 <= code <= 0xDBFF and self.src.startswith("\\u", self.pos):
            save = self.pos
            self.pos += 2
            low = self.hex_digits(4, save) if self.peek() != "{" else -1
            if 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            self.pos = save
        if 0xD800 <= code <= 0xDFFF:
            raise self.fail("lone surrogate in escape", esc_at)
        return chr(code)


def parse_path(text: str) -> Path:
    """Parse ``text``; raises :class:`PathSyntaxError` (and nothing else) when it is not a path."""
    return _Parser(text).path()


# ---------------------------------------------------------------------------------------------
# Evaluation

_Key: TypeAlias = str | int


def _keys(node: Any, selectors: Sequence[Selector], missing_names: bool = False) -> Iterator[_Key]:
    """The members of ``node`` that ``selectors`` select, in order: the existing ones, plus the
    missing named members of an object when ``missing_names``."""
    for sel in selectors:
        if isinstance(node, dict):
            if isinstance(sel, Wildcard):
                yield from list(node)
            elif isinstance(sel, Name) and (missing_names or sel.name in node):
                yield sel.name
        elif isinstance(node, list):
            n = len(node)
            if isinstance(sel, Wildcard):
                yield from range(n)
            elif isinstance(sel, Index) and -n <= sel.index < n:
                yield sel.index % n
            elif isinstance(sel, Slice):
                yield from range(*slice(sel.start, sel.end, sel.step).indices(n))


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    return list(node) if isinstance(node, list) else []


def _self_and_descendants(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(_children(current)))


def select(doc: Any, path: Path) -> list[Any]:
    """The values at the places ``path`` selects in ``doc``, in document order (not copies)."""
    nodes = [doc]
    for seg in path.segments:
        found: list[Any] = []
        for node in nodes:
            for target in _self_and_descendants(node) if seg.descendant else (node,):
                found.extend(target[key] for key in _keys(target, seg.selectors))
        nodes = found
    return nodes


def _definite(seg: Segment) -> bool:
    if seg.descendant or len(seg.selectors) != 1:
        return False
    sel = seg.selectors[0]
    if isinstance(sel, Slice):
        start, end = sel.start, sel.end
        one = start is not None and end is not None and end == start + 1 and start != -1
        return one and sel.step in (None, 1)
    return isinstance(sel, Name | Index)


class _Writer:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.placed: list[Any] = []  # containers this write placed (kept alive for their ids)
        self.placed_ids: set[int] = set()

    def write(self, node: Any, segs: tuple[Segment, ...], creating: bool) -> int:
        """Write below ``node``; returns how many places were written."""
        seg, rest = segs[0], segs[1:]
        if seg.descendant:
            count = self.write(node, (Segment(seg.selectors), *rest), False)
            for child in _children(node):
                if isinstance(child, dict | list) and id(child) not in self.placed_ids:
                    count += self.write(child, segs, False)
            return count
        count = 0
        for key in list(_keys(node, seg.selectors, missing_names=creating)):
            if not rest:
                node[key] = placed = copy.deepcopy(self.value)
                if isinstance(placed, dict | list):
                    self.placed.append(placed)
                    self.placed_ids.add(id(placed))
                count += 1
            elif isinstance(node, dict) and key not in node:  # a missing intermediate member
                node[key] = {}
                written = self.write(node[key], rest, creating and _definite(seg))
                if not written:
                    del node[key]
                count += written
            elif isinstance(node[key], dict | list):
                count += self.write(node[key], rest, creating and _definite(seg))
        return count


def set_path(doc: Any, path: Path, value: Any, *, definite: bool = True) -> Any:
    """A deep copy of ``doc`` with a deep copy of ``value`` written at every place ``path``
    selects (see the module documentation).  ``doc`` is not changed."""
    result = copy.deepcopy(doc)
    write_in_place(result, path, value, definite=definite)
    return result


def write_in_place(doc: Any, path: Path, value: Any, *, definite: bool = True) -> int:
    """:func:`set_path` on ``doc`` itself; returns how many places were written."""
    if not path.segments:
        raise CustomizeError("the path '$' selects the whole document, which cannot be replaced")
    try:
        return _Writer(value).write(doc, path.segments, definite)
    except RecursionError:
        raise CustomizeError("the document is nested too deeply") from None
