"""RFC 6570 URI templates (level 4) compiled to regular expressions that tell whether a topic is
one of the template's expansions: the 0.x Mercure topic selectors (pure, no I/O).

Theory of operation
-------------------
A template is literals and ``{...}`` expressions (RFC 6570 §2).  Matching asks "is there an
assignment of the variables whose expansion (§3.2) is this string?".  Each expression becomes a
regular expression for every expansion its operator can produce, with every variable free to
be undefined, a string, a list or an associative array, so the question becomes one
``fullmatch``.  The expansions are written so that the regex engine never has two ways to
split a string (no nested or adjacent quantifiers over the same characters): matching stays
linear in the length of the topic whatever template a client sends.

What an expansion may contain (§3.2.1): the simple, label, path, path-parameter and query
operators percent-encode every character outside ``unreserved``, so their values are
``unreserved`` characters and ``%XX`` triplets (plus ``,``, the separator of list values); the
reserved (``+``) and fragment (``#``) operators also pass the ``reserved`` set through.  Topics
are IRIs, so characters beyond ASCII are accepted where RFC 6570 would percent-encode them.

Deliberate looseness, never a wider language for a single-variable expression: in an
expression of several variables the order of named query parameters (``{?x,y}``) is not
enforced, and a prefix modifier (``{var:3}``) is enforced only when it is the expression's only
variable.
"""

from __future__ import annotations

import re

from livehub.errors import BadSelector

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_RESERVED = ":/?#[]@!$&'()*+,;="


def _chars(allowed: str, *, percent: bool = True) -> str:
    """One negated character class: ``allowed``, ``%`` (of ``%XX`` triplets) and every character
    beyond ASCII and C1 (IRI ``ucschar``).  One class node compiles much faster than
    alternations, which matters because every distinct template a client sends is compiled."""
    ranges: list[tuple[int, int]] = []
    for c in range(0xA0):
        if chr(c) in allowed + ("%" if percent else ""):
            continue
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "[^" + "".join(f"\\x{a:02x}-\\x{b:02x}" for a, b in ranges) + "]"


_VALUE = _chars(_UNRESERVED + ",")
"""A character of an expansion with every reserved character encoded (lists joined by ``,``)."""
_EXPLODED = _chars(_UNRESERVED + ",=")
"""The same in an exploded associative array of an unnamed operator (``name=value`` pairs)."""
_SCALAR = _chars(_UNRESERVED, percent=False)
"""A character of a single (prefixable) string value, but a percent-encoded one."""
_RESERVED_VALUE = _chars(_UNRESERVED + _RESERVED)
_RESERVED_SCALAR = _chars(_UNRESERVED + _RESERVED.replace(",", ""), percent=False)
_ENCODED_CHAR = ("(?:%[0-7][0-9A-Fa-f]|%[C-Dc-d][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]"
                 "|%[Ee][0-9A-Fa-f](?:%[89ABab][0-9A-Fa-f]){2}"
                 "|%[Ff][0-7](?:%[89ABab][0-9A-Fa-f]){3})")
"""One character percent-encoded as UTF-8 (1 to 4 triplets): what a prefix counts as one."""
_NAME = _chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.") + "+"
"""An associative array key in an exploded named expansion (``{?keys*}``)."""
_VARNAME = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*")
_PREFIX = re.compile(r"[1-9][0-9]{0,3}")
OPERATORS = frozenset("+#./;?&")
RESERVED_OPERATORS = frozenset("=,!@|")


class Varspec:
    """One ``varname[:prefix|*]`` of an expression."""

    __slots__ = ("explode", "name", "prefix")

    def __init__(self, text: str) -> None:
        self.explode = text.endswith("*")
        name, _, prefix = text.removesuffix("*").partition(":")
        if not _VARNAME.fullmatch(name):
            raise BadSelector(f"URI template: invalid variable name {name!r}")
        if (prefix and self.explode) or (":" in text and not _PREFIX.fullmatch(prefix)):
            raise BadSelector(f"URI template: invalid modifier in {text!r} (a prefix is :1 to "
                              ":9999, an explode is *; not both)")
        self.name = name
        self.prefix = int(prefix) if prefix else 0


def _expression(body: str) -> str:
    """The regex of every expansion of ``{body}`` (RFC 6570 §3.2.1)."""
    op = body[:1] if body[:1] in OPERATORS else ""
    if body[:1] in RESERVED_OPERATORS:
        raise BadSelector(f"URI template: operator {body[0]!r} is reserved (RFC 6570 §2.2)")
    specs = [Varspec(text) for text in body[len(op):].split(",")]
    exploded = any(s.explode for s in specs)
    only = specs[0] if len(specs) == 1 and specs[0].prefix else None
    # an exploded associative array expands to name=value pairs on the unnamed operators
    value = _EXPLODED if exploded else _VALUE
    if op in ("", "+"):
        if only is not None:  # a prefix counts characters before they are encoded
            char = _SCALAR if op == "" else _RESERVED_SCALAR
            return f"(?:{_ENCODED_CHAR}|{char}){{0,{only.prefix}}}"
        return f"{value if op == '' else _RESERVED_VALUE}*"
    if op == "#":
        return rf"(?:\#{_RESERVED_VALUE}*)?"
    if op == ".":
        return rf"(?:\.{value}*)?"
    if op == "/":
        segment = f"/{value}*"
        return f"(?:{segment})*" if exploded else f"(?:{segment}){{0,{len(specs)}}}"
    if op == ";":
        if exploded:
            return rf"(?:;{_NAME}(?:={_VALUE}*)?)*"
        return "".join(rf"(?:;{re.escape(s.name)}(?:={_VALUE}*)?)?" for s in specs)
    names = _NAME if exploded else "(?:" + "|".join(re.escape(s.name) for s in specs) + ")"
    item = f"{names}={_VALUE}*"
    if op == "?":
        return rf"(?:\?{item}(?:&{item})*)?"
    return f"(?:&{item})*"  # "&"


def compile_template(template: str) -> re.Pattern[str]:
    """The compiled matcher of ``template``; raise ``BadSelector`` when it is malformed
    (unbalanced braces, empty or reserved-operator expressions, invalid variable names or
    modifiers)."""
    parts: list[str] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        close = template.find("}", pos)
        if close != -1 and (start == -1 or close < start):
            raise BadSelector(f"URI template: '}}' without '{{' at {close}")
        if start == -1:
            parts.append(re.escape(template[pos:]))
            break
        parts.append(re.escape(template[pos:start]))
        end = template.find("}", start)
        if end == -1:
            raise BadSelector(f"URI template: '{{' at {start} is never closed")
        body = template[start + 1:end]
        if not body or "{" in body:
            raise BadSelector(f"URI template: invalid expression at {start}")
        parts.append(_expression(body))
        pos = end + 1
    return re.compile("".join(parts))
