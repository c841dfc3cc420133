"""WHATWG URL Patterns as Mercure 1.0 topic matchers (``match_urlpattern``), on the pure-Python
``urlpattern-py`` package, with the limits that keep a hostile pattern cheap (pure, no I/O).

The URL Pattern standard compiles patterns to backtracking regular expressions, and the Mercure
specification asks hubs to bound their cost ("URL Pattern" matcher type: a linear-time engine
or an evaluation limit).  Python's ``re`` backtracks, so the cost is bounded before a pattern is
accepted: a custom regexp group (``:id(\\d+)``) may hold no nested group, back-reference or
lookaround (the shapes of catastrophic backtracking, such as ``(?:a+)+b``); a pattern may
hold at most ``MAX_QUANTIFIERS`` unbounded repetitions in all (``*`` wildcards, ``*``/``+``
modifiers and the quantifiers inside its regexp groups); a ``{...}`` group or a regexp group
is never repeated (``{a*}*`` nests repetitions); and two variable parts (``:name``,
``(regexp)``, ``*``) need a ``/`` between them (``:a:b`` or ``{:a}?{:b}?`` could split one
segment in as many ways as it has characters, to the power of the parts).  ``:name`` groups
and ``{/...}?`` optional segments otherwise cost nothing: ``/`` delimits them.

Matching is case-sensitive (``ignoreCase`` never set); a topic that is not a URL matches no
pattern.  Relative patterns and topics (``/.well-known/mercure/subscriptions/:id``) are resolved
against ``base``, the hub's URL, when one is given, and refused (pattern) or unmatched (topic)
without it.
"""

from __future__ import annotations

from collections.abc import Callable

from urlpattern import URLPattern

from livehub.errors import BadSelector

MAX_QUANTIFIERS = 2
"""Unbounded repetitions one pattern may hold (docs/limits.md): two wildcards cost at most
quadratic time in the length of a topic."""


def _regexp_cost(text: str, start: int) -> tuple[int, int]:
    """The quantifiers of the regexp group opened at ``text[start] == "("`` and the index
    after its ``)``; raise ``BadSelector`` for the constructs that can backtrack without
    bound."""
    cost = 0
    in_class = False
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            following = text[i + 1:i + 2]
            if following.isdigit() or following == "k":
                raise BadSelector("URL pattern: back-references are not allowed in regexp "
                                  "groups")
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            raise BadSelector("URL pattern: a regexp group may not contain another group "
                              "(nested groups can backtrack without bound)")
        elif char == ")":
            return cost, i + 1
        elif char in "*+{":
            cost += 1
        i += 1
    raise BadSelector("URL pattern: a regexp group is never closed")


def _name_end(text: str, i: int) -> int:
    """The end of the ``:name`` starting at ``text[i] == ":"`` (``i`` when it is no name, as
    in ``https:`` or a port)."""
    j = i + 1
    if j < len(text) and (text[j].isalpha() or text[j] in "_$"):
        j += 1
        while j < len(text) and (text[j].isalnum() or text[j] in "_$"):
            j += 1
        return j
    return i


def check_cost(text: str) -> None:
    """Raise ``BadSelector`` unless ``text`` is cheap to evaluate (see the module docstring)."""
    cost = 0
    in_segment = 0
    last = ""  # the previous token: "name", "regexp", "group", "repeat" (a * or +) or ""
    i = 0
    while i < len(text):
        char = text[i]
        token = ""
        if char == "\\":
            i += 2
            last = ""
            continue
        if char == "(":
            inner, i = _regexp_cost(text, i)
            cost += inner
            in_segment += last != "name"  # :name(regexp) is one part
            last = "regexp"
        elif char == ":" and _name_end(text, i) > i:
            i = _name_end(text, i)
            in_segment += 1
            last = "name"
        else:
            if char == "/":
                in_segment = 0
            elif char in "*+" and last in ("regexp", "group", "repeat"):
                raise BadSelector("URL pattern: a group, regexp or wildcard may not be repeated "
                                  "with * or + (nested repetitions backtrack without bound)")
            elif char in "*+":
                cost += 1
                in_segment += char == "*" and last != "name"  # a wildcard, not a modifier
                token = "repeat"
            elif char == "}":
                token = "group"
            last = token
            i += 1
        if in_segment > 1:
            raise BadSelector("URL pattern: two variable parts (:name, (regexp), *) need a "
                              "'/' between them")
    if cost > MAX_QUANTIFIERS:
        raise BadSelector(f"URL pattern: at most {MAX_QUANTIFIERS} wildcards and repetitions "
                          "per pattern")


def compile_urlpattern(text: str, base: str | None = None) -> Callable[[str], bool]:
    """The test of URL Pattern ``text``: a function telling whether a topic matches it; raise
    ``BadSelector`` when the pattern is malformed, relative without ``base``, or too costly."""
    check_cost(text)
    try:
        pattern = URLPattern(text, base) if base else URLPattern(text)
    except (TypeError, ValueError) as exc:
        raise BadSelector(f"URL pattern: {exc}") from None
    except RecursionError:
        raise BadSelector("URL pattern: nested too deep") from None

    def test(topic: str) -> bool:
        try:
            return bool(pattern.test(topic, base) if base else pattern.test(topic))
        except (TypeError, ValueError, UnicodeError):
            return False  # not a URL: no pattern matches it

    return test
