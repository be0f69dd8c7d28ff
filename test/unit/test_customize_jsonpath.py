"""The Customizer path language: parser, printer, read and write (scenarios.md B.7, C13)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkg.customize import (
    CustomizeError,
    Index,
    Name,
    Path,
    PathSyntaxError,
    Segment,
    Slice,
    Wildcard,
    format_path,
    parse_path,
    select,
    set_path,
)


def child(*selectors: Any) -> Segment:
    return Segment(tuple(selectors))


def desc(*selectors: Any) -> Segment:
    return Segment(tuple(selectors), descendant=True)


def path(*segments: Segment) -> Path:
    return Path(tuple(segments))


# --- parser -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$", path()),
        ("$.a[1]", path(child(Name("a")), child(Index(1)))),
        ("$.a[1:4]", path(child(Name("a")), child(Slice(1, 4)))),
        ("$.a[:4]", path(child(Name("a")), child(Slice(None, 4)))),
        ("$[1:4:9]", path(child(Slice(1, 4, 9)))),
        ("$[1::9]", path(child(Slice(1, None, 9)))),
        ("$[:4:9]", path(child(Slice(None, 4, 9)))),
        ("$[::9]", path(child(Slice(None, None, 9)))),
        ("$[::]", path(child(Slice()))),
        ("$[-3:-1:-1]", path(child(Slice(-3, -1, -1)))),
        ("$.1", path(child(Index(1)))),
        ("$.-1", path(child(Index(-1)))),
        ("$[-2]", path(child(Index(-2)))),
        ("$.*", path(child(Wildcard()))),
        ("$[*]", path(child(Wildcard()))),
        ("$..*", path(desc(Wildcard()))),
        ("$..def", path(desc(Name("def")))),
        ("$..[0, 'x']", path(desc(Index(0), Name("x")))),
        ("$.$ref._a1", path(child(Name("$ref")), child(Name("_a1")))),
        ("$['a','b']", path(child(Name("a"), Name("b")))),
        ('$["a-b"]', path(child(Name("a-b")))),
        ("$[ 1 , 2,3 ]", path(child(Index(1), Index(2), Index(3)))),
        ("$[1, 2:, *]", path(child(Index(1), Slice(2), Wildcard()))),
        ("$['foo\\'bar']", path(child(Name("foo'bar")))),
        ("$['\\n\\t\\x41\\u0042\\u{1F600}\\ud83d\\ude00\\q']", path(child(Name("\n\tAB😀😀q")))),
        (
            "$.spec.template.spec.containers.0.env.0.value",
            path(
                *(child(Name(n)) for n in ("spec", "template", "spec", "containers")),
                child(Index(0)),
                child(Name("env")),
                child(Index(0)),
                child(Name("value")),
            ),
        ),
    ],
)
def test_parse(text: str, expected: Path) -> None:
    assert parse_path(text) == expected
    assert parse_path(format_path(expected)) == expected


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "starts with '$'"),
        ("'xyz", 1, "starts with '$'"),
        ("spec.template", 1, "starts with '$'"),
        ("$['xyz", 3, "unterminated string"),
        ("$.a-b", 4, "expected '.' or '['"),
        ("$.spec.", 8, "after '.'"),
        ("$.spec[", 8, "the path ends"),
        ("$..", 4, "after '..'"),
        ("$[]", 3, "expected a quoted name"),
        ("$[1 2]", 5, "expected ',' or ']'"),
        ("$[1::0]", 6, "stride"),
        ("$.-", 4, "expected a digit"),
        ("$$", 2, "expected '.' or '['"),
        ("$ .a", 2, "expected '.' or '['"),
        ("$['\\x4']", 4, "hexadecimal"),
        ("$['\\ud800']", 4, "lone surrogate"),
        ("$['\\u{110000}']", 4, "U+10FFFF"),
        ("$['a\nb']", 5, "line break"),
        ("$[" + "9" * 101 + "]", 3, "too long"),
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(PathSyntaxError) as info:
        parse_path(text)
    assert info.value.column == column
    assert words in str(info.value)
    assert f"column {column}" in str(info.value)
    assert isinstance(info.value, CustomizeError)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("$.spec.containers.0", "$.spec.containers[0]"),
        ("$['a']['a-b'][*]", "$.a['a-b'].*"),
        ('$["it\'s"]', "$['it\\'s']"),
        ("$[::]", "$[:]"),
        ("$..[*]", "$..*"),
        ("$['\\u0001']", "$['\\u0001']"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert format_path(parse_path(text)) == canonical
    assert str(parse_path(text)) == canonical


# --- read -------------------------------------------------------------------------------------

DOC: dict[str, Any] = {"abc": {"abc": {"def": 3, "ghi": 4}}, "def": ["a", "b", "c", "d", "e"]}


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("$", [DOC]),
        ("$.def[1]", ["b"]),
        ("$.def[-1]", ["e"]),
        ("$.def[5]", []),
        ("$.def[-6]", []),
        ("$.def[2::2]", ["c", "e"]),
        ("$.def[::-2]", ["e", "c", "a"]),
        ("$.def[1,0,1]", ["b", "a", "b"]),
        ("$.abc.abc.*", [3, 4]),
        ("$..def", [DOC["def"], 3]),
        ("$..abc", [DOC["abc"], DOC["abc"]["abc"]]),
        ("$.abc[0]", []),
        ("$.def.x", []),
        ("$..ghi", [4]),
    ],
)
def test_select(text: str, values: list[Any]) -> None:
    assert select(DOC, parse_path(text)) == values


# --- write (B.7 eval table, replacement = 47) ---------------------------------------------------


def write(doc: Any, text: str, definite: bool = True) -> Any:
    before = copy.deepcopy(doc)
    out = set_path(doc, parse_path(text), 47, definite=definite)
    assert doc == before, "the input must not change"
    return out


def test_recursive_descent_sets_every_def() -> None:
    assert write(DOC, "$..def") == {"abc": {"abc": {"def": 47, "ghi": 4}}, "def": 47}


def test_recursive_descent_visits_parent_first_and_descends_into_the_new_value() -> None:
    assert write(DOC, "$..abc") == {"abc": 47, "def": DOC["def"]}


def test_recursive_descent_does_not_descend_into_placed_values() -> None:
    out = set_path({"a": {}}, parse_path("$..a"), {"a": 1})
    assert out == {"a": {"a": 1}}


def test_index_and_stride() -> None:
    assert write(DOC, "$.def[1]")["def"] == ["a", 47, "c", "d", "e"]
    assert write(DOC, "$.def[2::2]")["def"] == ["a", "b", 47, "d", 47]
    assert write(DOC, "$.def[-1]")["def"] == ["a", "b", "c", "d", 47]


def ab(*values: int) -> list[dict[str, int]]:
    return [{"ab": v} for v in values]


def test_stride_then_name() -> None:
    assert write(ab(1, 2, 3, 4, 5), "$[2::2].ab") == ab(1, 2, 47, 4, 47)


def test_no_member_is_created_after_an_indefinite_selector() -> None:
    doc = [{"ab": 1}, {"ab": 2}, {"xy": 3}, {"ab": 4}, {"ab": 5}]
    assert write(doc, "$[2::2].xy") == [{"ab": 1}, {"ab": 2}, {"xy": 47}, {"ab": 4}, {"ab": 5}]
    assert write(doc, "$[*].xy") == [{"ab": 1}, {"ab": 2}, {"xy": 47}, {"ab": 4}, {"ab": 5}]
    assert write({"a": {}, "b": {}}, "$['a','b'].c") == {"a": {}, "b": {}}
    assert write({"a": {}}, "$..c") == {"a": {}}


def test_definite_mode_creates_the_missing_last_member() -> None:
    assert write(ab(1, 2, 3, 4, 5), "$[2].xy") == [*ab(1, 2), {"ab": 3, "xy": 47}, *ab(4, 5)]
    assert write(ab(1, 2, 3, 4, 5), "$[2:3].xy")[2] == {"ab": 3, "xy": 47}
    assert write({}, "$['a','b']") == {"a": 47, "b": 47}


def test_indefinite_mode_creates_nothing() -> None:
    assert write(ab(1, 2, 3, 4, 5), "$[2].xy", definite=False) == ab(1, 2, 3, 4, 5)
    assert write(ab(1, 2, 3, 4, 5), "$[2].ab", definite=False) == ab(1, 2, 47, 4, 5)


def test_missing_intermediates_become_objects_never_null() -> None:
    assert write({"spec": {}}, "$.spec.foo.bar") == {"spec": {"foo": {"bar": 47}}}
    assert write({}, "$.a.b.c") == {"a": {"b": {"c": 47}}}


def test_a_created_intermediate_that_receives_nothing_is_removed() -> None:
    assert write({"spec": {}}, "$.spec.foo[0]") == {"spec": {}}
    assert write({"spec": {}}, "$.spec.foo.*") == {"spec": {}}


def test_wrong_types_and_out_of_range_do_nothing() -> None:
    doc = {"spec": {"n": None, "s": "x", "l": [1]}}
    for text in ("$.spec.n.a", "$.spec.s.a", "$.spec.l.a", "$.spec[0]", "$.spec.l[5]", "$.spec.l[-2]"):
        assert write(doc, text) == doc, text


def test_every_place_gets_its_own_copy() -> None:
    out = set_path({"a": {"x": 0}, "b": {"x": 0}}, parse_path("$.*.x"), {"deep": [1]})
    out["a"]["x"]["deep"].append(2)
    assert out["b"]["x"] == {"deep": [1]}


def test_the_root_cannot_be_written() -> None:
    with pytest.raises(CustomizeError, match="whole document"):
        set_path({"a": 1}, parse_path("$"), {"b": 2})


# --- properties -------------------------------------------------------------------------------

ints = st.integers(min_value=-(10**30), max_value=10**30)
maybe_int = st.none() | ints
names = st.text(max_size=8) | st.from_regex(r"[A-Za-z_$][A-Za-z0-9_$]{0,6}", fullmatch=True)
selectors = st.one_of(
    st.builds(Name, names),
    st.builds(Index, ints),
    st.builds(Slice, maybe_int, maybe_int, maybe_int.filter(lambda s: s != 0)),
    st.just(Wildcard()),
)
segments = st.builds(Segment, st.lists(selectors, min_size=1, max_size=3).map(tuple), st.booleans())
paths = st.builds(Path, st.lists(segments, max_size=5).map(tuple))
path_chars = st.sampled_from(list("$.[]'\"\\*:,- 0123456789abuxn{}\n")) | st.characters()


@given(paths)
def test_print_then_parse_gives_the_same_path(p: Path) -> None:
    assert parse_path(format_path(p)) == p


@settings(max_examples=300)
@given(st.text(path_chars, max_size=30) | st.text(path_chars, max_size=30).map(lambda s: "$" + s))
def test_parsing_any_text_raises_only_our_syntax_error(text: str) -> None:
    try:
        p = parse_path(text)
    except PathSyntaxError as err:
        assert 1 <= err.column <= len(text) + 1
    else:
        assert parse_path(format_path(p)) == p


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=12,
)


@given(json_values, paths, st.booleans())
def test_writing_never_changes_the_input_and_raises_only_our_error(doc: Any, p: Path, definite: bool) -> None:
    before = copy.deepcopy(doc)
    try:
        out = set_path(doc, p, [7], definite=definite)
    except CustomizeError:
        assert not p.segments
    else:
        assert doc == before
        assert all(v == [7] for v in select(out, p) if not any(s.descendant for s in p.segments))
