"""URI templates for resource templates: matching returns the variables; expansion inverts matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import UriTemplate


@pytest.mark.parametrize(
    ("template", "uri", "expected"),
    [
        ("users://{id}/profile", "users://42/profile", {"id": "42"}),
        ("users://{id}/profile", "users://4/2/profile", None),  # level 1 never spans '/'
        ("users://{id}/profile", "users:///profile", None),  # empty values do not match
        ("users://{id}/profile", "users://42/profile/x", None),
        ("weather://{city}/{day}", "weather://Paris/monday", {"city": "Paris", "day": "monday"}),
        ("greeting://{name}", "greeting://J%C3%BCrgen%20M", {"name": "Jürgen M"}),
        ("file:///{+path}", "file:///a/b/c.txt", {"path": "a/b/c.txt"}),
        ("search://items{?q,limit}", "search://items", {}),
        ("search://items{?q,limit}", "search://items?q=red%20hat&limit=5", {"q": "red hat", "limit": "5"}),
        ("search://items{?q,limit}", "search://items?other=1", {}),
        ("plain://static", "plain://static", {}),
        ("plain://static", "plain://other", None),
        ("a.b://{x}.json", "a.b://report.json", {"x": "report"}),
        ("a.b://{x}.json", "aXb://report.json", None),  # literal dots are escaped
        ("v://{a.b}", "v://1", {"a.b": "1"}),
    ],
)
def test_match(template: str, uri: str, expected: dict[str, str] | None) -> None:
    assert UriTemplate.parse(template).match(uri) == expected


def test_variables_and_literal() -> None:
    t = UriTemplate.parse("s://{a}/{+b}{?c,d}")
    assert t.variables == ("a", "b", "c", "d")
    assert not t.is_literal
    assert UriTemplate.parse("s://x").is_literal


def test_expand() -> None:
    assert UriTemplate.parse("users://{id}/profile").expand({"id": "a b/c"}) == "users://a%20b%2Fc/profile"
    assert UriTemplate.parse("file:///{+path}").expand({"path": "a/b c"}) == "file:///a/b%20c"
    assert UriTemplate.parse("s://x{?q,n}").expand({"q": "a&b"}) == "s://x?q=a%26b"
    assert UriTemplate.parse("s://x{?q,n}").expand({}) == "s://x"


@pytest.mark.parametrize(
    "template",
    ["s://{a", "s://a}", "s://{}", "s://{a}{a}", "s://{?q}/after", "s://{a,b}", "s://{#frag}", "s://{a b}"],
)
def test_bad_templates_raise_value_error(template: str) -> None:
    with pytest.raises(ValueError, match="URI template"):
        UriTemplate.parse(template)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_expand_then_match_round_trips(a: str, b: str) -> None:
    t = UriTemplate.parse("x://{a}/items/{b}")
    assert t.match(t.expand({"a": a, "b": b})) == {"a": a, "b": b}
