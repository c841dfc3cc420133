"""Strict JSON and the publication rules (``livehub.wire.validation``), without a server."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livehub.errors import BadRequest, PayloadTooLarge
from livehub.wire import sse
from livehub.wire.payload import PayloadKind
from livehub.wire.validation import PublicationRules, check_decoded, check_event, loads

# -- strict JSON (RFC 8259 §6 numbers, §8.2 strings; I-JSON RFC 7493 §2.1) ----------------------


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e999",
                                  "[-1e400]", '{"x": [1, 2, 1E+999]}'])
def test_non_finite_numbers_are_refused(text: str) -> None:
    assert json.loads(text) is not None  # what the lenient parser accepts
    with pytest.raises(BadRequest, match="not valid JSON"):
        loads(text)


def test_nesting_limit() -> None:
    assert loads("[" * 64 + "]" * 64) is not None
    assert loads('{"a":' * 64 + "1" + "}" * 64) is not None
    for text in ("[" * 65 + "]" * 65, '{"a":' * 65 + "1" + "}" * 65,
                 "[" * 984 + "]" * 984, "[" * 1100, "[" * 100_000):
        with pytest.raises(BadRequest, match="nested deeper than 64"):
            loads(text)
    with pytest.raises(BadRequest, match="nested deeper than 3"):
        loads("[[[[1]]]]", max_depth=3)


def test_many_brackets_that_are_not_deep_pass() -> None:
    wide = "[" + ",".join(["[]"] * 1000) + "]"
    assert loads(wide) == [[]] * 1000
    assert loads(json.dumps({"text": "[" * 500})) == {"text": "[" * 500}
    assert loads(json.dumps("{" * 500)) == "{" * 500


@pytest.mark.parametrize("text", ['"\\ud800"', '{"\\udc00": 1}', '["ok", {"a": ["\\uDBFF"]}]'])
def test_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(BadRequest, match="surrogate"):
        loads(text)


def test_raw_surrogate_bytes_are_not_utf8() -> None:
    with pytest.raises(BadRequest, match="not UTF-8"):
        loads(b'"\xed\xa0\x80"')


def test_surrogate_pairs_are_text() -> None:
    assert loads('"\\ud83d\\ude00"') == "\U0001f600"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30))
def test_round_trip_of_valid_json(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert loads(text) == value
    assert loads(text.encode()) == value


# -- publication rules -----------------------------------------------------------------------


def test_publication_size_limit() -> None:
    rules = PublicationRules(max_size=10)
    rules.check(b"x" * 10, PayloadKind.BINARY)
    with pytest.raises(PayloadTooLarge, match="11 bytes is over the limit of 10") as info:
        rules.check(b"x" * 11, PayloadKind.TEXT)
    assert (info.value.http_status, info.value.close_code, info.value.error_code) == (
        413, 1009, 106)


def test_json_publications_are_strict() -> None:
    rules = PublicationRules()
    rules.check(b'{"a":[1,2.5,"x"]}', PayloadKind.JSON)
    for data in (b"NaN", b'{"a":Infinity}', b"1e999", b"[" * 984 + b"]" * 984, b"{",
                 b'"\\ud800"'):
        with pytest.raises(BadRequest):
            rules.check(data, PayloadKind.JSON)


def test_text_publications_are_utf8() -> None:
    rules = PublicationRules()
    rules.check("héllo".encode(), PayloadKind.TEXT)
    rules.check(b"NaN", PayloadKind.TEXT)  # text is text, not JSON
    with pytest.raises(BadRequest, match="not UTF-8"):
        rules.check(b"\xed\xa0\x80", PayloadKind.TEXT)
    rules.check(b"\xed\xa0\x80", PayloadKind.BINARY)


@pytest.mark.parametrize("event", ["", "a\nb", "a\rb", "a\x00b", "\ud800", "x" * 65])
def test_bad_event_names(event: str) -> None:
    with pytest.raises(BadRequest, match="event must be"):
        check_event(event)
    with pytest.raises(BadRequest):
        PublicationRules().check(b"1", PayloadKind.JSON, event)


@given(st.text(min_size=1, max_size=64))
def test_accepted_event_names_encode_on_the_sse_wire(event: str) -> None:
    try:
        check_event(event)
    except BadRequest:
        return
    block = sse.event_block(sse.data_lines(b"x"), event=event)
    assert block.count(b"\n") == 3  # event:, data:, and the blank line: one event


def test_values_decoded_elsewhere_follow_the_same_rules() -> None:
    check_decoded({"sub": "u", "info": {"a": [1, 2.5, "\U0001f600"]}}, what="claims")
    nested: object = 1
    for _ in range(64):
        nested = [nested]
    check_decoded(nested, what="claims")
    for bad, fragment in (({"a": "\udfff"}, "surrogate"), ([float("inf")], "not finite"),
                          ({"x": float("nan")}, "not finite"), ([nested], "nested deeper")):
        with pytest.raises(BadRequest, match=fragment):
            check_decoded(bad, what="claims")
