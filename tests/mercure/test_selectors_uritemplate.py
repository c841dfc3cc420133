"""RFC 6570 URI template matching (0.x Mercure selectors): every expansion example of RFC 6570
§3.2 matches its template, near misses do not, and (hypothesis) every expansion of random
values through the RFC's own algorithm (Appendix A, written here for the test) matches."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livehub.errors import BadSelector
from livehub.protocols.mercure.uritemplate import compile_template

# RFC 6570 §3.2.1 .. §3.2.9: (template, expansion) with the variables of §3.2
RFC_EXAMPLES = [
    # 3.2.1 variable expansion
    ("{count}", "one,two,three"), ("{count*}", "one,two,three"),
    ("{/count}", "/one,two,three"), ("{/count*}", "/one/two/three"),
    ("{;count}", ";count=one,two,three"), ("{;count*}", ";count=one;count=two;count=three"),
    ("{?count}", "?count=one,two,three"), ("{?count*}", "?count=one&count=two&count=three"),
    ("{&count*}", "&count=one&count=two&count=three"),
    # 3.2.2 simple string expansion
    ("{var}", "value"), ("{hello}", "Hello%20World%21"), ("{half}", "50%25"),
    ("O{empty}X", "OX"), ("O{undef}X", "OX"), ("{x,y}", "1024,768"),
    ("{x,hello,y}", "1024,Hello%20World%21,768"), ("?{x,empty}", "?1024,"),
    ("?{x,undef}", "?1024"), ("?{undef,y}", "?768"), ("{var:3}", "val"), ("{var:30}", "value"),
    ("{list}", "red,green,blue"), ("{list*}", "red,green,blue"),
    ("{keys}", "semi,%3B,dot,.,comma,%2C"), ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
    # 3.2.3 reserved expansion
    ("{+var}", "value"), ("{+hello}", "Hello%20World!"), ("{+half}", "50%25"),
    ("{base}", "http%3A%2F%2Fexample.com%2Fhome%2F"), ("{+base}", "http://example.com/home/"),
    ("O{+empty}X", "OX"), ("O{+undef}X", "OX"), ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"), ("up{+path}{var}/here", "up/foo/barvalue/here"),
    ("{+x,hello,y}", "1024,Hello%20World!,768"), ("{+path,x}/here", "/foo/bar,1024/here"),
    ("{+path:6}/here", "/foo/b/here"), ("{+list}", "red,green,blue"),
    ("{+list*}", "red,green,blue"), ("{+keys}", "semi,;,dot,.,comma,,"),
    ("{+keys*}", "semi=;,dot=.,comma=,"),
    # 3.2.4 fragment expansion
    ("{#var}", "#value"), ("{#hello}", "#Hello%20World!"), ("{#half}", "#50%25"),
    ("foo{#empty}", "foo#"), ("foo{#undef}", "foo"), ("{#x,hello,y}", "#1024,Hello%20World!,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"), ("{#path:6}/here", "#/foo/b/here"),
    ("{#list}", "#red,green,blue"), ("{#list*}", "#red,green,blue"),
    ("{#keys}", "#semi,;,dot,.,comma,,"), ("{#keys*}", "#semi=;,dot=.,comma=,"),
    # 3.2.5 label expansion
    ("{.who}", ".fred"), ("{.who,who}", ".fred.fred"), ("{.half,who}", ".50%25.fred"),
    ("www{.dom*}", "www.example.com"), ("X{.var}", "X.value"), ("X{.empty}", "X."),
    ("X{.undef}", "X"), ("X{.var:3}", "X.val"), ("X{.list}", "X.red,green,blue"),
    ("X{.list*}", "X.red.green.blue"), ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
    ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"), ("X{.empty_keys}", "X"),
    ("X{.empty_keys*}", "X"),
    # 3.2.6 path segment expansion
    ("{/who}", "/fred"), ("{/who,who}", "/fred/fred"), ("{/half,who}", "/50%25/fred"),
    ("{/who,dub}", "/fred/me%2Ftoo"), ("{/var}", "/value"), ("{/var,empty}", "/value/"),
    ("{/var,undef}", "/value"), ("{/var,x}/here", "/value/1024/here"),
    ("{/var:1,var}", "/v/value"), ("{/list}", "/red,green,blue"),
    ("{/list*}", "/red/green/blue"), ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
    ("{/keys}", "/semi,%3B,dot,.,comma,%2C"), ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
    # 3.2.7 path-style parameter expansion
    ("{;who}", ";who=fred"), ("{;half}", ";half=50%25"), ("{;empty}", ";empty"),
    ("{;v,empty,who}", ";v=6;empty;who=fred"), ("{;v,bar,who}", ";v=6;who=fred"),
    ("{;x,y}", ";x=1024;y=768"), ("{;x,y,empty}", ";x=1024;y=768;empty"),
    ("{;x,y,undef}", ";x=1024;y=768"), ("{;hello:5}", ";hello=Hello"),
    ("{;list}", ";list=red,green,blue"), ("{;list*}", ";list=red;list=green;list=blue"),
    ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"), ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
    # 3.2.8 form-style query expansion
    ("{?who}", "?who=fred"), ("{?half}", "?half=50%25"), ("{?x,y}", "?x=1024&y=768"),
    ("{?x,y,empty}", "?x=1024&y=768&empty="), ("{?x,y,undef}", "?x=1024&y=768"),
    ("{?var:3}", "?var=val"), ("{?list}", "?list=red,green,blue"),
    ("{?list*}", "?list=red&list=green&list=blue"), ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
    ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
    # 3.2.9 form-style query continuation
    ("{&who}", "&who=fred"), ("{&half}", "&half=50%25"), ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{&x,y,empty}", "&x=1024&y=768&empty="), ("{&var:3}", "&var=val"),
    ("{&list}", "&list=red,green,blue"), ("{&list*}", "&list=red&list=green&list=blue"),
    ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"), ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
]


@pytest.mark.parametrize(("template", "expansion"), RFC_EXAMPLES)
def test_every_rfc_6570_example_expansion_matches_its_template(template: str,
                                                                expansion: str) -> None:
    assert compile_template(template).fullmatch(expansion)


NEAR_MISSES = [
    ("https://example.com/books/{id}", "https://example.com/books/1/2"),  # a "/" is encoded
    ("https://example.com/books/{id}", "https://example.com/books/1?x=2"),
    ("https://example.com/books/{id}", "https://example.com/book/1"),
    ("https://example.com/books/{id}", "https://example.com/books/1#top"),
    ("https://example.com/books/{id}.jsonld", "https://example.com/books/1.json"),
    ("{var:3}", "valu"),  # the prefix bounds a lone variable
    ("{/who}", "/fred/fred"),  # one variable: at most one segment
    ("{?x}", "?y=1"),  # named: the name is the variable's
    ("{;x}", ";y=1"),
    ("{&x}", "&x=1&y=2"),
    ("X{.var}", "Xvalue"),  # the operator's prefix
    ("{hello}", "Hello World!"),  # unencoded space and "!" are no simple expansion
    ("{+path}", "/foo bar"),
    ("https://example.com/{+path}", "https://example.org/a"),
]


@pytest.mark.parametrize(("template", "topic"), NEAR_MISSES)
def test_a_near_miss_does_not_match(template: str, topic: str) -> None:
    assert compile_template(template).fullmatch(topic) is None


def test_templates_match_iris_with_characters_beyond_ascii() -> None:
    assert compile_template("https://example.com/livres/{id}").fullmatch(
        "https://example.com/livres/élan")


@pytest.mark.parametrize("template", [
    "{", "}", "a}b", "{a", "{}", "{a{b}}", "{!a}", "{=a}", "{,a}", "{@a}", "{|a}",
    "{a b}", "{a..b}", "{.a.}", "{a:0}", "{a:10000}", "{a:}", "{a:3*}", "{a*:3}", "{a,}",
    "{-a}", "{a%2}",
])
def test_a_malformed_template_is_refused(template: str) -> None:
    with pytest.raises(BadSelector) as info:
        compile_template(template)
    assert info.value.http_status == 400 and "URI template" in info.value.message


# -- RFC 6570 Appendix A, written for the test: the expansion of string and list values --------

OPERATORS = {  # op: (first, sep, named, ifemp, allow reserved)
    "": ("", ",", False, "", False), "+": ("", ",", False, "", True),
    ".": (".", ".", False, "", False), "/": ("/", "/", False, "", False),
    ";": (";", ";", True, "", False), "?": ("?", "&", True, "=", False),
    "&": ("&", "&", True, "=", False), "#": ("#", ",", False, "", True),
}
RESERVED = ":/?#[]@!$&'()*+,;="


def _encode(value: str, reserved: bool) -> str:
    return quote(value, safe=RESERVED if reserved else "")


def expand(op: str, specs: list[tuple[str, int, bool]],
           values: dict[str, str | list[str] | None]) -> str:
    first, sep, named, ifemp, reserved = OPERATORS[op]
    items: list[str] = []
    for name, prefix, explode in specs:
        value = values.get(name)
        if value is None or value == []:
            continue
        if isinstance(value, str):
            text = _encode(value[:prefix] if prefix else value, reserved)
            items.append((f"{name}={text}" if text else f"{name}{ifemp}") if named else text)
        elif explode:
            parts = [_encode(v, reserved) for v in value]
            items.append(sep.join((f"{name}={p}" if p else f"{name}{ifemp}") if named else p
                                  for p in parts))
        else:
            joined = ",".join(_encode(v, reserved) for v in value)
            items.append((f"{name}={joined}" if joined else f"{name}{ifemp}") if named
                         else joined)
    return first + sep.join(items) if items else ""


NAMES = ("a", "b", "c")
values_st = st.one_of(st.none(), st.text(max_size=8), st.lists(st.text(max_size=5), max_size=3))
spec_st = st.tuples(st.sampled_from(NAMES), st.sampled_from([0, 0, 2]), st.booleans())


@given(op=st.sampled_from(list(OPERATORS)),
       specs=st.lists(spec_st, min_size=1, max_size=3, unique_by=lambda s: s[0]),
       values=st.fixed_dictionaries({n: values_st for n in NAMES}),
       literal=st.sampled_from(["", "https://example.com/x", "urn:a:"]))
def test_every_expansion_of_random_values_matches(op: str, specs: list[tuple[str, int, bool]],
                                                   values: dict[str, str | list[str] | None],
                                                   literal: str) -> None:
    specs = [(n, 0 if explode else prefix, explode) for n, prefix, explode in specs]
    values = {n: v for n, v in values.items()
              if not isinstance(v, list) or all(p == 0 for m, p, _ in specs if m == n)}
    body = ",".join(f"{n}{f':{p}' if p else ''}{'*' if e else ''}" for n, p, e in specs)
    template = f"{literal}{{{op}{body}}}/end"
    expansion = literal + expand(op, specs, values) + "/end"
    assert compile_template(template).fullmatch(expansion), (template, expansion)


@given(st.text(min_size=1, max_size=20))
def test_a_simple_variable_matches_one_encoded_value_and_never_a_slash(value: str) -> None:
    template = compile_template("https://example.com/books/{id}")
    assert template.fullmatch("https://example.com/books/" + quote(value, safe=""))
    assert not template.fullmatch(f"https://example.com/books/{quote(value, safe='')}/x")


def test_a_prefix_counts_characters_before_they_are_percent_encoded() -> None:
    two = compile_template("{a:2}")
    assert two.fullmatch("0%C2%80") and two.fullmatch("%E2%82%AC%F0%9F%98%80")
    assert not two.fullmatch("%E2%82%AC%F0%9F%98%80x")
    assert not two.fullmatch("%C2")  # half a character
    assert not two.fullmatch("%zz")
