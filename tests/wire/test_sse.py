"""SSE encoding, checked against the WHATWG "event stream interpretation" rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from livehub.wire import sse

from ..sseclient import Interpreter


def interpret(stream: bytes) -> list[dict[str, str]]:
    """A small reference interpreter of WHATWG HTML §9.2.6 (only what the tests need)."""
    interpreter = Interpreter()
    lines = stream.decode().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    events = [interpreter.feed(line) for line in lines]
    return [{"data": ev.data, "event": ev.event, "id": ev.id} for ev in events if ev is not None]


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
def test_data_round_trip(text: str) -> None:
    block = sse.event_block(sse.data_lines(text.encode()), event="x", event_id="7")
    [ev] = interpret(block)
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert ev == {"data": expected, "event": "x", "id": "7"}


def test_id_only_sets_last_event_id_without_event() -> None:
    stream = sse.id_only("c1") + sse.event_block(sse.data_lines(b"hi"))
    assert interpret(stream) == [{"data": "hi", "event": "message", "id": "c1"}]


def test_comment_and_retry_are_not_events() -> None:
    assert interpret(sse.comment("heartbeat") + sse.retry(1500)) == []
    assert sse.retry(1500) == b"retry: 1500\n\n"


def test_valid_field() -> None:
    assert sse.valid_field("update")
    assert not sse.valid_field("a\nb")
    assert not sse.valid_field("a\rb")
    assert not sse.valid_field("a\0b")
