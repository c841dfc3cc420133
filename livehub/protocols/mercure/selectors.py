"""Mercure topic selectors of both generations, compiled once, interned and matched through a
bounded cache (pure: no I/O; the caches are process-wide and bounded).

Kinds (the query parameter or claim a selector comes from):

- ``"topic"`` (0.x ``?topic=`` and the ``mercure`` claim): ``*`` for every topic, an RFC 6570
  URI template when the text holds ``{`` (``https://example.com/books/{id}``, level 4:
  ``livehub.protocols.mercure.uritemplate``), else the exact IRI;
- ``"match"`` (1.0 ``?match=``, ``?match_exact=``, ``match_type`` ``exact``): ``*`` or the exact
  topic;
- ``"match_urlpattern"`` (1.0 ``?match_urlpattern=``, ``match_type`` ``urlpattern``): ``*`` or a
  WHATWG URL Pattern (``livehub.protocols.mercure.urlpattern``).

API for the protocol plug-in::

    sel = compile_selector("topic", "https://example.com/books/{id}")   # BadSelector (400)
    sel.matches("https://example.com/books/1")                           # True
    wanted = SelectorSet.of(compile_selectors(pairs))   # pairs: (kind, text), capped per request
    wanted.matches_any(update_topics)                   # an update with several topics: once

Cost: exact selectors are a set lookup and ``*`` a flag; templates and URL patterns are
evaluated once per (selector, topic) and the answer kept in a bounded cache
(``MATCH_CACHE_SIZE`` entries, oldest evicted first), so fan-out of one update to many
subscribers evaluates each distinct selector once.  ``compile_selector`` interns: identical
(kind, text, base) gives the same ``Selector`` object, and ``SelectorSet.of`` interns sets, so
subscribers with identical selectors share one object (group them by identity to match an
update once per set).  Interning tables hold their entries weakly: memory follows the live
subscriptions, which the per-request caps bound (``MAX_SELECTORS`` selectors of at most
``MAX_SELECTOR_LENGTH`` characters; docs/limits.md).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from livehub.errors import BadSelector
from livehub.protocols.mercure.uritemplate import compile_template
from livehub.protocols.mercure.urlpattern import compile_urlpattern

KINDS = ("topic", "match", "match_urlpattern")
EVERYTHING = "*"
MAX_SELECTOR_LENGTH = 1024
"""Characters of one selector (query parameter or token claim entry)."""
MAX_SELECTORS = 64
"""Selectors of one subscription request."""
MAX_GRANT_SELECTORS = 256
"""Selectors of one token (its subscribe and publish grants each)."""
MATCH_CACHE_SIZE = 65536
"""(selector, topic) answers kept for templates and URL patterns."""

_cache: dict[tuple[Selector, str], bool] = {}


def _cached(selector: Selector, topic: str) -> bool:
    key = (selector, topic)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    answer = selector.test(topic)
    if len(_cache) >= MATCH_CACHE_SIZE:
        del _cache[next(iter(_cache))]
    _cache[key] = answer
    return answer


def clear_cache() -> None:
    """Forget every cached answer (tests)."""
    _cache.clear()


@dataclass(frozen=True, eq=False, slots=True, weakref_slot=True)
class Selector:
    """A compiled selector; equal only to itself (interned: compare with ``is``)."""

    kind: str
    """``"exact"``, ``"template"``, ``"urlpattern"`` or ``"everything"`` (what it is, not where
    it came from)."""
    text: str
    test: Callable[[str], bool] = field(repr=False)
    """Uncached evaluation; use ``matches``."""

    def matches(self, topic: str) -> bool:
        """Whether ``topic`` is selected."""
        if self.kind == "exact":
            return topic == self.text
        if self.kind == "everything":
            return True
        return _cached(self, topic)


_selectors: weakref.WeakValueDictionary[tuple[str, str, str | None], Selector] = (
    weakref.WeakValueDictionary())


def _build(kind: str, text: str, base: str | None) -> Selector:
    if kind == "everything":
        return Selector(kind, text, lambda topic: True)
    if kind == "exact":
        return Selector(kind, text, text.__eq__)
    if kind == "template":
        regex = compile_template(text)
        return Selector(kind, text, lambda topic: regex.fullmatch(topic) is not None)
    return Selector(kind, text, compile_urlpattern(text, base))


def compile_selector(kind: str, text: str, *, base: str | None = None) -> Selector:
    """The interned selector of ``text`` given as ``kind`` (``"topic"``, ``"match"`` or
    ``"match_urlpattern"``); ``base`` is the hub's URL, against which relative URL patterns
    and topics are resolved.  Raise ``BadSelector`` (400) for an unknown kind, an empty or
    overlong text, control characters, or a malformed template or pattern."""
    if kind not in KINDS:
        raise BadSelector(f"unknown topic selector kind {kind!r}")
    if not text:
        raise BadSelector("empty topic selector")
    if len(text) > MAX_SELECTOR_LENGTH:
        raise BadSelector(f"topic selector longer than {MAX_SELECTOR_LENGTH} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        raise BadSelector("topic selector contains control characters")
    if text == EVERYTHING:
        what = "everything"
    elif kind == "match_urlpattern":
        what = "urlpattern"
    elif kind == "topic" and ("{" in text or "}" in text):
        what = "template"
    else:
        what = "exact"
    key = (what, text, base if what == "urlpattern" else None)
    found = _selectors.get(key)
    if found is None:
        found = _build(what, text, key[2])
        _selectors[key] = found
    return found


def compile_selectors(pairs: Iterable[tuple[str, str]], *, base: str | None = None,
                      limit: int = MAX_SELECTORS) -> list[Selector]:
    """``compile_selector`` over (kind, text) pairs, at most ``limit`` of them."""
    out: list[Selector] = []
    for kind, text in pairs:
        if len(out) == limit:
            raise BadSelector(f"at most {limit} topic selectors per request")
        out.append(compile_selector(kind, text, base=base))
    return out


class SelectorSet:
    """The selectors of one subscription or grant: an update is selected when one of its
    topics matches one of them.  Satisfies ``livehub.core.permissions.NameGrant``."""

    __slots__ = ("__weakref__", "everything", "exact", "patterns", "selectors")

    def __init__(self, selectors: Iterable[Selector]) -> None:
        unique = tuple(dict.fromkeys(selectors))
        self.selectors = unique
        self.everything = any(s.kind == "everything" for s in unique)
        self.exact = frozenset(s.text for s in unique if s.kind == "exact")
        self.patterns = tuple(s for s in unique if s.kind in ("template", "urlpattern"))

    @classmethod
    def of(cls, selectors: Iterable[Selector]) -> SelectorSet:
        """The interned set of ``selectors`` (order and duplicates do not matter)."""
        items = tuple(dict.fromkeys(selectors))
        key = frozenset(items)
        found = _sets.get(key)
        if found is None:
            found = cls(items)
            _sets[key] = found
        return found

    def __len__(self) -> int:
        return len(self.selectors)

    def __repr__(self) -> str:
        return f"SelectorSet({[s.text for s in self.selectors]!r})"

    def matches(self, topic: str) -> bool:
        """Whether one selector matches ``topic``."""
        if self.everything or topic in self.exact:
            return True
        return any(_cached(s, topic) for s in self.patterns)

    def matches_any(self, topics: Sequence[str]) -> bool:
        """Whether one selector matches one of ``topics`` (an update's topics)."""
        if self.everything:
            return True
        exact = self.exact
        if any(t in exact for t in topics):
            return True
        return any(_cached(s, t) for s in self.patterns for t in topics)

    def matches_all(self, topics: Sequence[str]) -> bool:
        """Whether every one of ``topics`` is matched (a publisher's grant)."""
        return all(self.matches(t) for t in topics)


_sets: weakref.WeakValueDictionary[frozenset[Selector], SelectorSet] = (
    weakref.WeakValueDictionary())
EMPTY = SelectorSet(())
