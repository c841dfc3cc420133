"""The npm ``ws`` client against ``/echo``: text, 70 KB text and binary, with and without
permessage-deflate (RFC 7692), including replies the server compresses (>= 64 bytes)."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import LiveServer
from tests.node.conftest import NodeFactory

pytestmark = pytest.mark.node

MODES = ("plain", "deflate", "deflate-params")
BIG_TEXT = ("".join(chr(97 + i % 26) for i in range(70 * 1024))
            + " h\u00e9llo \u2713 \U0001f600")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_ws_echo_with_and_without_permessage_deflate(server: LiveServer,
                                                     node: NodeFactory) -> None:
    script = node("echo.mjs", server.ws_url + "/echo")
    lines = script.until(lambda line: line["kind"] == "done", timeout=20)
    script.finish()

    opens = {line["mode"]: line for line in lines if line["kind"] == "open"}
    assert opens["plain"]["extensions"] == "" and opens["plain"]["header"] is None
    for mode in ("deflate", "deflate-params"):
        assert opens[mode]["extensions"] == "permessage-deflate", opens[mode]
        assert opens[mode]["header"].startswith("permessage-deflate"), opens[mode]
    params = {p.strip() for p in opens["deflate-params"]["header"].split(";")}
    # (client_max_window_bits may be left out of the answer: the client said it uses 10)
    assert {"server_max_window_bits=10", "server_no_context_takeover",
            "client_no_context_takeover"} <= params, params

    replies = {(line["mode"], line["name"]): line for line in lines if line["kind"] == "reply"}
    assert len(replies) == 5 * len(MODES), lines
    for mode in MODES:
        hello = replies[mode, "hello"]
        assert hello["text"] == "Echo: Hello Server!" and not hello["binary"]

        big = replies[mode, "big"]
        expected = ("Echo: " + BIG_TEXT).encode()
        assert not big["binary"]
        assert (big["bytes"], big["sha256"]) == (len(expected), sha256(expected))

        small = replies[mode, "small-compressible"]
        assert small["text"] == "Echo: " + "x" * 200

        for name in ("binary-random", "binary-compressible"):
            reply = replies[mode, name]
            assert reply["binary"], reply
            assert reply["sha256"] == reply["sentSha256"], reply
        assert replies[mode, "binary-compressible"]["bytes"] == 3000

    # Without the extension every reply is at least its payload on the wire; with it, the
    # server compresses replies of 64 bytes or more (frame header + DEFLATE stream) and sends
    # shorter ones as they are (2-byte header + 19 bytes).
    for name in ("big", "small-compressible", "binary-compressible"):
        plain = replies["plain", name]
        assert plain["wire"] >= plain["bytes"], plain
        for mode in ("deflate", "deflate-params"):
            compressed = replies[mode, name]
            assert compressed["wire"] < compressed["bytes"] // 4, compressed
    for mode in MODES:
        assert replies[mode, "hello"]["wire"] == 2 + len("Echo: Hello Server!")

    fragmented = [line for line in lines if line["kind"] == "fragmented"]
    assert [(f["mode"], f["text"], f["pong"]) for f in fragmented] == [
        (mode, "Echo: Hello fragmented \u00e9 Server!", "between fragments") for mode in MODES]

    closes = [(line["mode"], line["code"]) for line in lines if line["kind"] == "close"]
    assert closes == [(mode, 1000) for mode in MODES]
