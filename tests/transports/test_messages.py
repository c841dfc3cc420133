"""Request heads by the rules of RFC 9112, without a socket: ``parse_head``,
``wants_continue``, and the fixed answers to parser errors."""

from __future__ import annotations

import httptools
import pytest

from livehub.transports.messages import Refused, parse_head, parser_refusal, wants_continue

HOST = [(b"Host", b"example.com")]


def refused_status(version: str, headers: list[tuple[bytes, bytes]]) -> int:
    with pytest.raises(Refused) as info:
        parse_head(b"GET", b"/", headers, version, max_body=100)
    return info.value.response.status


def test_a_good_head() -> None:
    request = parse_head(b"GET", b"/a%20b?channel=x&channel=y&e=",
                         [*HOST, (b"X-A", b"1"), (b"x-a", b"2")], "1.1", max_body=100,
                         client="1.2.3.4:5")
    assert request.path == "/a b" and request.args("channel") == ["x", "y"]
    assert request.arg("e") == "" and request.headers["x-a"] == "1, 2"
    assert request.version == "1.1" and request.client == "1.2.3.4:5"


@pytest.mark.parametrize(("version", "headers", "status"), [
    ("1.1", [], 400),                                                  # §3.2: Host required
    ("1.1", [*HOST, (b"host", b"other")], 400),                        # §3.2: one Host
    ("1.0", [(b"Transfer-Encoding", b"chunked")], 400),               # §6.1
    ("2.0", HOST, 505),                                                # §2.3
    ("0.9", [], 400),
    ("1.1", [*HOST, (b"Content-Length", b"101")], 413),
])
def test_refused_heads(version: str, headers: list[tuple[bytes, bytes]], status: int) -> None:
    assert refused_status(version, headers) == status


def test_http10_needs_no_host() -> None:
    assert parse_head(b"GET", b"/", [], "1.0", max_body=1).version == "1.0"


@pytest.mark.parametrize(("version", "headers", "wanted"), [
    ("1.1", [(b"Expect", b"100-Continue"), (b"Content-Length", b"5")], True),
    ("1.1", [(b"Expect", b"100-continue"), (b"Content-Length", b"0")], False),
    ("1.1", [(b"Expect", b"100-continue"), (b"Transfer-Encoding", b"chunked")], True),
    ("1.1", [(b"Expect", b"100-continue")], False),
    ("1.0", [(b"Expect", b"100-continue"), (b"Content-Length", b"5")], False),
    ("1.1", [(b"Content-Length", b"5")], False),
])
def test_wants_continue(version: str, headers: list[tuple[bytes, bytes]],
                        wanted: bool) -> None:
    request = parse_head(b"POST", b"/", HOST + headers, version, max_body=100)
    assert wants_continue(request) is wanted


def test_other_expectations_are_417() -> None:
    request = parse_head(b"POST", b"/", [*HOST, (b"Expect", b"x")], "1.1", max_body=100)
    with pytest.raises(Refused) as info:
        wants_continue(request)
    assert info.value.response.status == 417


def test_parser_errors_get_fixed_texts() -> None:
    for raw in (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"XX\r\n\r\n"):
        parser = httptools.HttpRequestParser(object())
        with pytest.raises(httptools.HttpParserError) as info:
            parser.feed_data(raw)
        body = parser_refusal(info.value).body
        assert str(info.value).encode() not in body
