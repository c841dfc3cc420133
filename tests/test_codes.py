"""The catalogue of codes: one reconnect rule everywhere (Centrifugo's, as its SDKs apply it)."""

from __future__ import annotations

import json

import pytest

from livehub.codes import Disconnect, DisconnectInfo, reconnects
from livehub.errors import CommandError, LivehubError, PeerError
from livehub.protocols.centrifugo.protocol import disconnect_body
from livehub.protocols.plain.streams import _sse_goodbye, _stream_goodbye_line


@pytest.mark.parametrize(("code", "expected"), [
    (1000, True), (1011, True), (2999, True),  # transport closes
    (3000, True), (3008, True), (3499, True),
    (3500, False), (3501, False), (3999, False),
    (4000, True), (4499, True),
    (4500, False), (4999, False),
    (5000, True),
])
def test_reconnect_rule(code: int, expected: bool) -> None:
    assert reconnects(code) is expected
    assert DisconnectInfo(code, "r").reconnect is expected


@pytest.mark.parametrize("code", [1011, 3004, 3500, 4000, 4200, 4500, 4999, 5000])
def test_every_wire_says_the_same(code: int) -> None:
    info = DisconnectInfo(code, "why")
    centrifugo = json.loads(disconnect_body(code, "why"))["reconnect"]
    sse = json.loads(_sse_goodbye(info).split(b"data: ", 1)[1])["reconnect"]
    stream = json.loads(_stream_goodbye_line(info))["reconnect"]
    assert centrifugo is sse is stream is reconnects(code)


def test_catalogue_ranges() -> None:
    infos = [v for v in vars(Disconnect).values() if isinstance(v, DisconnectInfo)]
    assert infos and all(i.reconnect is (3000 <= i.code < 3500) for i in infos)


def test_command_error_is_in_the_tree() -> None:
    exc = CommandError(106)
    assert isinstance(exc, PeerError) and isinstance(exc, LivehubError)
    assert (exc.error_code, exc.message, exc.http_status) == (106, "limit exceeded", 400)
    assert CommandError(107, "channel is required").message == "channel is required"
