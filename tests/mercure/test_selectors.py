"""Mercure topic selectors: the three kinds, ``*``, interning, selector sets, the bounded match
cache and the limits against hostile input (docs/limits.md)."""

from __future__ import annotations

import gc

import pytest

from livehub.errors import BadSelector, LivehubError
from livehub.protocols.mercure import selectors
from livehub.protocols.mercure.selectors import (
    MAX_SELECTOR_LENGTH,
    MAX_SELECTORS,
    SelectorSet,
    compile_selector,
    compile_selectors,
)

BOOK = "https://example.com/books/1"


@pytest.mark.parametrize("kind", ["topic", "match", "match_urlpattern"])
def test_star_selects_every_topic_in_every_kind(kind: str) -> None:
    everything = compile_selector(kind, "*")
    assert everything.kind == "everything"
    assert all(everything.matches(t) for t in (BOOK, "chat-room-1", "urn:uuid:1", "*", ""))


def test_topic_kind_is_a_template_when_it_has_braces_and_exact_otherwise() -> None:
    template = compile_selector("topic", "https://example.com/books/{id}")
    exact = compile_selector("topic", BOOK)
    assert (template.kind, exact.kind) == ("template", "exact")
    assert template.matches(BOOK) and template.matches("https://example.com/books/2")
    assert exact.matches(BOOK) and not exact.matches("https://example.com/books/2")


def test_match_kind_is_exact_even_with_braces_or_pattern_syntax() -> None:
    braces = compile_selector("match", "https://example.com/books/{id}")
    colon = compile_selector("match", "https://example.com/books/:id")
    assert braces.kind == colon.kind == "exact"
    assert not braces.matches(BOOK) and not colon.matches(BOOK)
    assert colon.matches("https://example.com/books/:id")


def test_exact_matching_is_case_sensitive_and_never_normalizes() -> None:
    exact = compile_selector("match", BOOK)
    for other in ("https://EXAMPLE.com/books/1", "https://example.com/books/%31",
                  "https://example.com/books/1/", "https://example.com:443/books/1"):
        assert not exact.matches(other)


def test_urlpattern_kind() -> None:
    pattern = compile_selector("match_urlpattern", "https://example.com/books/:id")
    assert pattern.kind == "urlpattern"
    assert pattern.matches(BOOK) and not pattern.matches("https://example.com/books/1/x")


def test_identical_selectors_are_one_object() -> None:
    a = compile_selector("topic", "https://example.com/books/{id}")
    assert a is compile_selector("topic", "https://example.com/books/{id}")
    # a 0.x plain IRI and a 1.0 exact match are the same selector
    assert compile_selector("topic", BOOK) is compile_selector("match", BOOK)
    assert compile_selector("topic", "*") is compile_selector("match_urlpattern", "*")
    assert (compile_selector("match_urlpattern", "/a/:id", base="https://hub.example/")
            is not compile_selector("match_urlpattern", "/a/:id", base="https://other.example/"))


def test_interning_holds_selectors_weakly() -> None:
    text = "https://example.com/weak/{id}"
    compile_selector("topic", text).matches("https://example.com/weak/1")
    selectors.clear_cache()
    gc.collect()
    assert ("template", text, None) not in selectors._selectors


def test_a_selector_set_matches_an_update_once_whatever_its_topics() -> None:
    wanted = SelectorSet.of(compile_selectors([
        ("match", "https://example.com/announcements"),
        ("match_urlpattern", "https://example.com/users/:id/notifications"),
        ("topic", "https://example.com/books/{id}")]))
    assert wanted.matches_any(["https://example.com/other", "https://example.com/announcements"])
    assert wanted.matches_any(["https://example.com/users/42/notifications"])
    assert wanted.matches_any(["x", BOOK])
    assert not wanted.matches_any(["https://example.com/users/42", "x"])
    assert not wanted.matches_any([])
    assert wanted.matches_all([BOOK, "https://example.com/announcements"])
    assert not wanted.matches_all([BOOK, "x"])


def test_identical_sets_are_one_object_whatever_the_order_and_duplicates() -> None:
    a = compile_selector("topic", "https://example.com/books/{id}")
    b = compile_selector("match", BOOK)
    first = SelectorSet.of([a, b])
    assert SelectorSet.of([b, a, b]) is first
    assert len(first) == 2
    assert SelectorSet.of([a]) is not first


def test_pattern_answers_come_from_the_cache_after_the_first_evaluation() -> None:
    selectors.clear_cache()
    calls: list[str] = []
    template = compile_selector("topic", "https://example.com/counted/{id}")
    counted = selectors.Selector("template", template.text,
                                 lambda t: calls.append(t) is None and template.test(t))
    group = SelectorSet.of([counted])
    for _ in range(1000):  # one update, a thousand subscribers sharing this selector
        assert group.matches_any(["https://example.com/counted/1"])
        assert not counted.matches("https://example.com/other")
    assert calls == ["https://example.com/counted/1", "https://example.com/other"]


def test_the_match_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    selectors.clear_cache()
    monkeypatch.setattr(selectors, "MATCH_CACHE_SIZE", 100)
    template = compile_selector("topic", "https://example.com/bounded/{id}")
    for i in range(1000):
        assert template.matches(f"https://example.com/bounded/{i}")
    assert len(selectors._cache) == 100
    assert template.matches("https://example.com/bounded/999")


@pytest.mark.parametrize(("kind", "text", "why"), [
    ("topic", "", "empty"),
    ("regexp", "x", "unknown topic selector kind"),
    ("match_cel", "x", "unknown topic selector kind"),
    ("topic", "x" * (MAX_SELECTOR_LENGTH + 1), "longer than"),
    ("match", "a\nb", "control characters"),
    ("match", "a\x00b", "control characters"),
    ("match", "a\x85b", "control characters"),
    ("topic", "https://example.com/{", "never closed"),
    ("topic", "https://example.com/}", "without"),
    ("match_urlpattern", "https://example.com/:id(", "URL pattern"),
    ("match_urlpattern", "https://example.com/:a/:a", "URL pattern"),
    ("match_urlpattern", "/relative/:id", "URL pattern"),
])
def test_a_bad_selector_is_a_400_with_a_message(kind: str, text: str, why: str) -> None:
    with pytest.raises(BadSelector) as info:
        compile_selector(kind, text)
    assert isinstance(info.value, LivehubError)
    assert info.value.http_status == 400 and why in info.value.message


def test_a_selector_of_the_maximum_length_is_accepted() -> None:
    text = "https://example.com/" + "a" * (MAX_SELECTOR_LENGTH - 20)
    assert compile_selector("match", text).matches(text)


def test_a_request_holds_at_most_max_selectors() -> None:
    pairs = [("match", f"https://example.com/{i}") for i in range(MAX_SELECTORS)]
    assert len(compile_selectors(pairs)) == MAX_SELECTORS
    with pytest.raises(BadSelector, match=f"at most {MAX_SELECTORS}"):
        compile_selectors([*pairs, ("match", "one-more")])


def test_thousands_of_distinct_selectors_leave_no_interned_state_behind() -> None:
    gc.collect()
    before = len(selectors._selectors)
    for i in range(1000):
        compile_selector("topic", f"https://example.com/hostile/{i}/{{id}}")
    selectors.clear_cache()
    gc.collect()
    assert len(selectors._selectors) <= before
