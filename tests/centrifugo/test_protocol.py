"""Pure protocol code (livehub.protocols.centrifugo.protocol, control, variants), without a loop.

Grouped by the part of the spec: client.proto Command parsing, Reply/Push encoding, the JSON
embedding of ``bytes`` fields, control messages and push variants.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livehub.codes import Disconnect, ErrorCode
from livehub.core.broker import Publication
from livehub.core.presence import ClientInfo
from livehub.protocols.centrifugo import control, protocol
from livehub.protocols.centrifugo.protocol import Command, ProtocolViolation
from livehub.protocols.centrifugo.variants import (
    http_stream_variant,
    sse_variant,
    websocket_variant,
)
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

# -- Command (client.proto) and top-level batching ------------------------------------------


def test_batch_of_commands_newline_delimited() -> None:
    frame = ('{"id":1,"connect":{"token":"t"}}\n\n'
             '{"id":2,"subscribe":{"channel":"a"}}\n{}')
    assert protocol.parse_commands(frame) == [
        Command(1, "connect", {"token": "t"}), Command(2, "subscribe", {"channel": "a"}),
        Command(0, None, {})]


def test_first_known_request_field_wins_and_unknown_is_method_not_found() -> None:
    assert protocol.parse_command({"id": 3, "publish": {"channel": "x"}, "rpc": {}}).method == (
        "publish")
    assert protocol.parse_command({"id": 4, "frobnicate": {}}) == Command(4, "", {})
    assert protocol.parse_command({"send": {"data": 1}}) == Command(0, "send", {"data": 1})


@pytest.mark.parametrize("value", [
    [], "x", {"id": -1, "ping": {}}, {"id": "1", "ping": {}}, {"id": True, "ping": {}},
    {"id": 2**32, "ping": {}}, {"id": 1.5, "ping": {}}, {"subscribe": {"channel": "a"}},
    {"id": 1, "subscribe": "a"}, {"id": 1, "subscribe": []},
])
def test_protocol_violations(value: object) -> None:
    with pytest.raises(ProtocolViolation) as info:
        protocol.parse_command(value)
    assert info.value.close_code == Disconnect.BAD_REQUEST.code


def test_malformed_json_and_too_many_commands() -> None:
    with pytest.raises(ProtocolViolation):
        protocol.parse_commands("{nope")
    with pytest.raises(ProtocolViolation):
        protocol.parse_commands(b"\xff\xfe")
    with pytest.raises(ProtocolViolation):
        protocol.parse_commands("\n".join(["{}"] * 5), max_commands=4)


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(1, 2**32 - 1), st.sampled_from(protocol.METHODS),
                          st.dictionaries(st.text(max_size=5), st.integers())), max_size=8))
def test_round_trip_of_encoded_batches(items: list[tuple[int, str, dict[str, int]]]) -> None:
    frame = "\n".join(json.dumps({"id": i, m: p}) for i, m, p in items)
    assert protocol.parse_commands(frame) == [Command(i, m, p) for i, m, p in items]


# -- Reply and Push --------------------------------------------------------------------------


def test_replies() -> None:
    assert protocol.reply(7, "subscribe") == b'{"id":7,"subscribe":{}}'
    assert json.loads(protocol.reply(8, "presence_stats", {"num_clients": 1})) == {
        "id": 8, "presence_stats": {"num_clients": 1}}
    assert json.loads(protocol.error_reply(9, ErrorCode.PERMISSION_DENIED)) == {
        "id": 9, "error": {"code": 103, "message": "permission denied"}}
    assert json.loads(protocol.error_reply(9, ErrorCode.INTERNAL))["error"]["temporary"] is True


def test_pushes_bidirectional_and_unidirectional() -> None:
    body = b'{"info":{"user":"u","client":"c"}}'
    assert json.loads(protocol.push("join", body, "ch")) == {
        "push": {"channel": "ch", "join": {"info": {"user": "u", "client": "c"}}}}
    assert json.loads(protocol.push("join", body, "ch", uni=True)) == {
        "channel": "ch", "join": {"info": {"user": "u", "client": "c"}}}
    assert json.loads(protocol.push("disconnect", protocol.disconnect_body(3501, "bad"))) == {
        "push": {"disconnect": {"code": 3501, "reason": "bad", "reconnect": False}}}


def _pub(data: bytes, kind: PayloadKind, **kw: object) -> Publication:
    return Publication("ch", data, kind, StreamPosition("e1", 5), **kw)  # type: ignore[arg-type]


def test_publication_embeds_payload_as_json() -> None:
    info = ClientInfo("c1", "u1", b'{"a":1}', None)
    assert json.loads(protocol.publication(_pub(b'{"x":[1]}', PayloadKind.JSON, info=info))) == {
        "data": {"x": [1]}, "offset": 5,
        "info": {"user": "u1", "client": "c1", "conn_info": {"a": 1}}}
    assert json.loads(protocol.publication(_pub("hé\n".encode(), PayloadKind.TEXT,
                                                event="news"))) == {
        "data": "hé\n", "offset": 5, "tags": {"event": "news"}}
    assert json.loads(protocol.publication(_pub(b"\x00\xff", PayloadKind.BINARY))) == {
        "data": "AP8=", "offset": 5}


@settings(max_examples=40)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=10))
def test_client_data_round_trips_through_a_publication(value: object) -> None:
    data, kind = protocol.payload_from_json(value)
    assert json.loads(protocol.data_json(data, kind)) == value


# -- control messages and variants -------------------------------------------------------------


def test_control_messages() -> None:
    raw = control.encode("emulation", node="n", session="s", data='{"id":1}', client=None)
    assert control.decode(raw) == ("emulation", {"node": "n", "session": "s",
                                                 "data": '{"id":1}'})
    for other in (b"", b"plain text", b'{"kind":"x"}', b"[1]", b"{broken"):
        assert control.decode(other) is None


def test_variants_are_interned_and_encode_one_push() -> None:
    assert websocket_variant(None) is websocket_variant(None)
    assert websocket_variant(None) is not websocket_variant(None, uni=True)
    pub = _pub(b'"x"', PayloadKind.JSON)
    line = b'{"push":{"channel":"ch","pub":{"data":"x","offset":5}}}'
    assert sse_variant().encode(pub, {}) == b"data: " + line + b"\n\n"
    assert http_stream_variant().encode(pub, {}) == b"%x\r\n%s\n\r\n" % (len(line) + 1, line)
    uni = sse_variant(uni=True).encode(pub, {})
    assert uni == b'data: {"channel":"ch","pub":{"data":"x","offset":5}}\n\n'
    assert websocket_variant(None).encode(pub, {}).endswith(line)
    assert sse_variant().encode_reset(["ch"], {}) == b""
