"""Cursor encoding: round trips, channel-set checks, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livehub.errors import BadCursor
from livehub.wire import sse
from livehub.wire.cursor import CursorCodec, StreamPosition, decode_cursor, encode_cursor

channel_names = st.from_regex(r"[A-Za-z0-9_\-.:@]{1,40}", fullmatch=True)
positions = st.builds(StreamPosition, st.from_regex(r"[A-Za-z0-9]{1,16}", fullmatch=True),
                      st.integers(0, 2**62))


@given(st.dictionaries(channel_names, positions, min_size=1, max_size=8))
def test_round_trip(pos: dict[str, StreamPosition]) -> None:
    text = encode_cursor(pos)
    assert decode_cursor(text, list(pos)) == pos
    # usable as an SSE id and in a query string without escaping
    assert sse.valid_field(text)
    assert all(c.isalnum() or c in ".~" for c in text)


def test_order_of_channels_does_not_matter() -> None:
    pos = {"b": StreamPosition("e1", 5), "a": StreamPosition("e2", 7)}
    assert decode_cursor(encode_cursor(pos), ["a", "b"]) == pos


def test_cursor_of_other_channels_is_refused() -> None:
    text = encode_cursor({"a": StreamPosition("e", 1)})
    with pytest.raises(BadCursor, match="does not belong"):
        decode_cursor(text, ["b"])


@pytest.mark.parametrize("text", ["", "garbage", "x.1~e", "1~e", "..", "a" * 9000])
def test_malformed(text: str) -> None:
    with pytest.raises(BadCursor):
        CursorCodec(["a"]).decode(text)


def test_malformed_entry() -> None:
    codec = CursorCodec(["a"])
    prefix = codec.encode({"a": StreamPosition("e", 1)}).split(".")[0]
    for entry in ["-1~e", "01~e", "1~", "1~e-f", "1", "99999999999999999999~e"]:
        with pytest.raises(BadCursor):
            codec.decode(prefix + "." + entry)
    with pytest.raises(BadCursor, match="number of positions"):
        codec.decode(prefix + ".1~e.2~e")
