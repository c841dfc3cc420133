"""The Redis message format (livehub.core.redis.codec): round trips, no Redis needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livehub.core.presence import ClientInfo
from livehub.core.redis.codec import (
    CodecError,
    Keys,
    decode_info,
    decode_join_leave,
    decode_message,
    encode_body,
    encode_info,
    encode_join_leave,
)
from livehub.errors import ConfigError
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

infos = st.builds(ClientInfo, st.text(max_size=40), st.text(max_size=40),
                  st.none() | st.binary(max_size=64), st.none() | st.binary(max_size=64))


def as_published(offset: int, epoch: str, time_ms: int, body: bytes) -> bytes:
    """What the publish script prepends (redis_scripts.PUBLISH)."""
    return f"{offset}:{epoch}:{time_ms}:".encode() + body


@given(data=st.binary(max_size=200), kind=st.sampled_from(list(PayloadKind)),
       event=st.none() | st.text(min_size=1, max_size=30), info=st.none() | infos,
       offset=st.integers(1, 2**53), time_ms=st.integers(0, 2**42))
def test_publication_round_trip(data: bytes, kind: PayloadKind, event: str | None,  # noqa: PLR0917
                                info: ClientInfo | None, offset: int, time_ms: int) -> None:
    message = as_published(offset, "ab12cd34", time_ms, encode_body(data, kind, event, info))
    pub = decode_message("chat:room", message)
    assert pub.channel == "chat:room"
    assert (pub.data, pub.kind, pub.event, pub.info) == (data, kind, event, info)
    assert pub.position == StreamPosition("ab12cd34", offset)
    assert pub.time == time_ms / 1000


@given(info=infos, join=st.booleans())
def test_join_leave_and_info_round_trip(info: ClientInfo, join: bool) -> None:
    assert decode_join_leave(encode_join_leave(join, info)) == (join, info)
    assert decode_info(encode_info(info)) == info


@pytest.mark.parametrize("message", [
    b"", b"1:e:2", b"x:e:2:\x01\x01\x00", b"1:e:2:\x09\x01\x00", b"1:e:2:\x01\x07\x00",
    b"1:e:2:\x01\x01\x01\x00\x09ab",
])
def test_malformed_messages_are_refused(message: bytes) -> None:
    with pytest.raises(CodecError):
        decode_message("c", message)


def test_keys_share_a_cluster_slot_per_channel() -> None:
    keys = Keys("lh")
    names = [keys.meta("chat:1"), keys.history("chat:1"), keys.presence("chat:1"),
             keys.presence_expiry("chat:1"), keys.pub_topic("chat:1").decode(),
             keys.join_leave_topic("chat:1").decode()]
    assert all("{chat:1}" in name for name in names)
    assert keys.control == b"lh:ctl"
    with pytest.raises(ConfigError):
        Keys("bad prefix{")
