"""WHATWG URL Pattern selectors (1.0 ``match_urlpattern``): the examples of the Mercure
documentation ("Topics and matchers", "Authorization"), relative patterns against the hub's URL,
and the cost limits that keep a hostile pattern from backtracking without bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livehub.errors import BadSelector
from livehub.protocols.mercure.urlpattern import MAX_QUANTIFIERS, check_cost, compile_urlpattern

HUB = "https://hub.example.com/.well-known/mercure"

EXAMPLES = [
    # (pattern, topic, matches)
    ("https://example.com/books/:id", "https://example.com/books/42", True),
    ("https://example.com/books/:id", "https://example.com/books/42/reviews", False),
    ("https://example.com/books/:id", "https://example.com/books/", False),
    ("https://example.com/books/:id", "https://example.org/books/42", False),
    ("https://example.com/books/:id", "http://example.com/books/42", False),
    ("https://example.com/users/:id/orders", "https://example.com/users/7/orders", True),
    ("https://example.com/users/:id/orders", "https://example.com/users/7/carts", False),
    ("https://example.com/feed/:type(news|alerts)", "https://example.com/feed/news", True),
    ("https://example.com/feed/:type(news|alerts)", "https://example.com/feed/alerts", True),
    ("https://example.com/feed/:type(news|alerts)", "https://example.com/feed/sport", False),
    ("https://example.com/items{/:tail}?", "https://example.com/items", True),
    ("https://example.com/items{/:tail}?", "https://example.com/items/1", True),
    ("https://example.com/items{/:tail}?", "https://example.com/items/1/2", False),
    ("https://example.com/users/42/*", "https://example.com/users/42/messages/1", True),
    ("https://example.com/users/42/*", "https://example.com/users/99/messages/1", False),
    ("https://example.com/books/:id(\\d+)", "https://example.com/books/12", True),
    ("https://example.com/books/:id(\\d+)", "https://example.com/books/x", False),
    ("https://*.example.com/news", "https://fr.example.com/news", True),
    ("https://*.example.com/news", "https://example.org/news", False),
    # case-sensitive paths (ignoreCase never set); hosts are canonicalised by the URL parser
    ("https://example.com/Books/:id", "https://example.com/books/1", False),
    ("https://example.com/books/:id", "https://EXAMPLE.com/books/1", True),
    # a topic that is not a URL matches no pattern
    ("https://example.com/books/:id", "urn:uuid:e1ee88e2-532a-4d6f-ba70-f0f8bd584022", False),
    ("https://example.com/books/:id", "chat-room-1234", False),
    ("https://example.com/books/:id", "", False),
]


@pytest.mark.parametrize(("pattern", "topic", "matches"), EXAMPLES)
def test_the_documented_patterns(pattern: str, topic: str, matches: bool) -> None:
    assert compile_urlpattern(pattern)(topic) is matches


def test_relative_patterns_and_topics_resolve_against_the_hub_url() -> None:
    events = compile_urlpattern("/.well-known/mercure/subscriptions/:match_type/:match/:sub",
                                base=HUB)
    assert events("/.well-known/mercure/subscriptions/exact/t/1")
    assert events("https://hub.example.com/.well-known/mercure/subscriptions/exact/t/1")
    assert not events("https://other.example/.well-known/mercure/subscriptions/exact/t/1")


def test_a_relative_pattern_without_the_hub_url_is_refused() -> None:
    with pytest.raises(BadSelector, match="URL pattern"):
        compile_urlpattern("/books/:id")


@pytest.mark.parametrize(("pattern", "why"), [
    ("https://example.com/:x((?:a+)+b)", "may not contain another group"),
    ("https://example.com/:x((a|aa)+)", "may not contain another group"),
    ("https://example.com/:x(a)/:y(\\1)", "back-references"),
    ("https://example.com/:x(a\\k<x>)", "back-references"),
    ("https://example.com/:x(a*a*a*b)", f"at most {MAX_QUANTIFIERS}"),
    ("https://example.com/*/*/*/z", f"at most {MAX_QUANTIFIERS}"),
    ("https://example.com/:x(abc", "never closed"),
    ("https://example.com/{a*}*", "may not be repeated"),
    ("https://example.com/{:a}+", "may not be repeated"),
    ("https://example.com/:x(a)+", "may not be repeated"),
    ("https://example.com/*+/x", "may not be repeated"),  # (.*)+: hypothesis found it hanging
    ("https://example.com/:a*+", "may not be repeated"),
    ("https://example.com/:a:b", "need a '/' between them"),
    ("https://example.com/:a-:b", "need a '/' between them"),
    ("https://example.com/{:a}?{:b}?", "need a '/' between them"),
    ("https://example.com/*:a", "need a '/' between them"),
    ("https://example.com/:x(a)(b)", "need a '/' between them"),
])
def test_patterns_that_could_backtrack_without_bound_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(BadSelector, match="URL pattern") as info:
        compile_urlpattern(pattern)
    assert why in info.value.message


@pytest.mark.parametrize("pattern", [
    "https://example.com/:a/:b/:c/:d/:e/:f",  # named groups are delimited: free
    "https://example.com/items{/:tail}?{/:more}?",
    "https://*.example.com/*",
    "https://example.com:8080/:id",  # a port is no group
    "https://example.com/:path+",  # a repeated name repeats whole segments
    "https://example.com/feed/:type(news|alerts)/:id(\\d+)",
    "https://example.com/:x([*+{]+)",  # quantifier characters inside a class are none
])
def test_ordinary_patterns_are_within_the_cost_limit(pattern: str) -> None:
    check_cost(pattern)
    compile_urlpattern(pattern)


HOSTILE_TOPICS = ["https://example.com/" + "a" * 200, "https://example.com/" + "a/" * 100,
                  "https://example.com/" + "a." * 100, "https://example.com/" + "a-" * 100]


@settings(deadline=None)
@given(st.text(alphabet="ab/:*+(){}?\\.-", max_size=40))
def test_any_text_either_compiles_or_is_a_bad_selector(text: str) -> None:
    """Hypothesis found ``{a*}*``-like patterns that backtracked for minutes before the cost
    check refused repeated groups and adjacent variable parts: the per-test timeout catches
    any that would still slip through."""
    try:
        test = compile_urlpattern("https://example.com/" + text)
    except BadSelector as exc:
        assert exc.http_status == 400 and exc.message.startswith("URL pattern")
    else:
        for topic in HOSTILE_TOPICS:
            assert test(topic) in (True, False)
