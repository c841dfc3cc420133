"""The one set of rules for what peers send: strict JSON, and what a publication may hold.

Pure functions, no I/O.  Two entry points:

* ``loads``: every JSON text a peer sends (API bodies, Centrifugo commands, control messages)
  is parsed by it.  Strict where ``json.loads`` is lenient: ``NaN``, ``Infinity`` and numbers
  that overflow to infinity are refused (RFC 8259 §6 has no such values, and most peers cannot
  parse them back); nesting deeper than ``max_depth`` is refused before it can exhaust the
  interpreter's recursion limit anywhere later; lone UTF-16 surrogates (``"\\ud800"``) are
  refused, since they cannot be encoded as UTF-8 (RFC 8259 §8.2, I-JSON RFC 7493 §2.1).
  Errors are ``BadRequest`` (400 / 1008 / 107) with a message for the client.
* ``PublicationRules.check``: every publication, from every protocol, passes it once before it
  is stored (``Node.publish``).  Once it passed, every wire can carry it: the fan-out of a stored
  publication cannot fail part way.  Oversized publications are ``PayloadTooLarge``
  (413 / 1009 / 106), the rest ``BadRequest``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from livehub.errors import BadRequest, PayloadTooLarge
from livehub.wire import sse
from livehub.wire.payload import PayloadKind

MAX_DEPTH = 64
"""Default nesting limit of JSON values (arrays and objects)."""
MAX_EVENT_NAME = 64
"""Characters of an event name (SSE ``event:``, Centrifugo ``tags.event``)."""

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)
"""The C scanner, with NaN, Infinity, -Infinity and floats that overflow refused."""
def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH, what: str = "body") -> object:
    """Parse JSON text strictly (see the module docstring); raise ``BadRequest``."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
        value = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"{what} is nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not valid JSON: not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON: {_short(str(exc))}") from None
    check_value(value, text, max_depth=max_depth, what=what)
    return value


def check_value(value: object, text: str, *, max_depth: int, what: str) -> None:
    """Refuse a decoded JSON ``value`` (of valid JSON source ``text``) nested deeper than
    ``max_depth`` or holding lone surrogates.  Each check walks the value (iteratively) only
    when ``text`` makes it possible: more than ``max_depth`` brackets; a ``\\uD8xx``-``\\uDFxx``
    escape."""
    if text.count("[") + text.count("{") > max_depth and isinstance(value, dict | list):
        stack: list[tuple[dict[str, object] | list[object], int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > max_depth:
                raise BadRequest(f"{what} is nested deeper than {max_depth} levels")
            for child in item.values() if isinstance(item, dict) else item:
                if type(child) is dict or type(child) is list:
                    stack.append((child, depth + 1))
    if _ESCAPED_SURROGATE.search(text) is None:
        return
    strings: list[object] = [value]
    while strings:
        node = strings.pop()
        if isinstance(node, dict):
            strings.extend(node.keys())
            strings.extend(node.values())
        elif isinstance(node, list):
            strings.extend(node)
        elif isinstance(node, str) and _SURROGATE.search(node):
            raise BadRequest(f"{what} holds a lone UTF-16 surrogate (not Unicode text)")


def check_decoded(value: object, *, max_depth: int = MAX_DEPTH, what: str) -> None:
    """The rules of ``loads`` for a value some other parser decoded (JWT claims): bounded
    nesting, finite numbers, no lone surrogates; raise ``BadRequest``."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise BadRequest(f"{what} is nested deeper than {max_depth} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            check_text(item, what)
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadRequest(f"{what} holds a number that is not finite")


def check_text(value: str, what: str) -> None:
    """Refuse a string that cannot be encoded as UTF-8 (lone surrogates)."""
    if _SURROGATE.search(value):
        raise BadRequest(f"{what} holds a lone UTF-16 surrogate (not Unicode text)")


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicationRules:
    """What a publication may hold; checked once per publication, before it is stored."""

    max_size: int = 1024 * 1024
    """Bytes of a publication's payload (after inflation, as stored)."""
    max_depth: int = MAX_DEPTH
    """Nesting of a JSON payload."""

    def check(self, data: bytes, kind: PayloadKind, event: str | None = None) -> None:
        """Raise ``PayloadTooLarge`` or ``BadRequest`` unless every wire can carry it:

        * the payload is at most ``max_size`` bytes;
        * a TEXT payload is UTF-8; a JSON payload is strict JSON of bounded nesting;
        * an event name is 1-64 characters, none of CR, LF, NUL (SSE ``event:`` field,
          WHATWG "event stream interpretation"), and no lone surrogate.
        """
        if len(data) > self.max_size:
            raise PayloadTooLarge(f"publication of {len(data)} bytes is over the limit of "
                                  f"{self.max_size} bytes")
        if kind is PayloadKind.TEXT:
            try:
                data.decode()
            except UnicodeDecodeError:
                raise BadRequest("text publication is not UTF-8") from None
        elif kind is PayloadKind.JSON:
            loads(data, max_depth=self.max_depth, what="publication data")
        if event is not None:
            check_event(event)


def check_event(event: str) -> None:
    """Raise ``BadRequest`` unless ``event`` can be an event name on every wire."""
    if (not event or len(event) > MAX_EVENT_NAME or not sse.valid_field(event)
            or _SURROGATE.search(event)):
        raise BadRequest(f"event must be a non-empty string of at most {MAX_EVENT_NAME} "
                         "characters without line breaks, NUL or lone surrogates")
