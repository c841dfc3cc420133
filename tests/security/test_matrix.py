"""Every permission rule and every bad token on every transport: the same rule gives the same
answer on ``/events``, ``/stream``, ``/poll``, ``/ws``, the three bidirectional Centrifugo
transports and the three unidirectional ones (``docs/security.md`` has the table)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest

from ..centrifugo.conftest import CfServer
from ..sseclient import events
from .clients import CENTRIFUGO, PLAIN, TRANSPORTS, attempt, probe_cursor
from .conftest import BAD_TOKENS, OTHER_SECRET, tok

U42 = "42"


def _conn(user: str | None, **claims: object) -> Callable[[str], str | None]:
    """A connection token maker; ``{ch}`` in a claim becomes the channel of the attempt."""
    def make(channel: str) -> str | None:
        if user is None:
            return None
        filled = json.loads(json.dumps(claims).replace("{ch}", channel))
        return tok(user, **filled)
    return make


def unique(channel: str, transport: str) -> str:
    """``channel`` made unique per transport (before any ``#`` user list), so that no attempt
    reuses a channel another attempt has just left."""
    name, sep, users = channel.partition("#")
    return f"{name}-{transport}{sep}{users}"


# (case, channel, connection token, expected)
CHANNEL_RULES: list[tuple[str, str, Callable[[str], str | None], str]] = [
    ("public, anonymous", "news", _conn(None), "ok"),
    ("public, user", "news", _conn(U42), "ok"),
    ("$ anonymous", "$secret", _conn(None), "denied"),
    ("$ user without claim", "$secret", _conn(U42), "denied"),
    ("$ namespaced, user", "talk:$secret", _conn(U42), "denied"),
    ("$ claimed in channels", "$secret", _conn(U42, channels=["{ch}"]), "ok"),
    ("$ claimed in subs", "talk:$x", _conn(U42, subs={"{ch}": {}}), "ok"),
    ("# listed user", "user:notes#42", _conn(U42), "ok"),
    ("# list with the user", "user:notes#7,42", _conn(U42), "ok"),
    ("# other user", "user:notes#43", _conn(U42), "denied"),
    ("# list without the user", "user:notes#43,44", _conn(U42), "denied"),
    ("# empty name, other user", "user:#43", _conn(U42), "denied"),
    ("# anonymous", "user:notes#42", _conn(None), "denied"),
    ("# in an open namespace, other user", "talk:room#43", _conn(U42), "denied"),
    ("# in an open namespace, anonymous", "talk:room#42", _conn(None), "denied"),
    ("# public namespace-less, other user", "notes#43", _conn(U42), "denied"),
    ("namespace closed by default", "closed:x", _conn(U42), "denied"),
    ("users-only namespace, anonymous", "members:x", _conn(None), "denied"),
    ("users-only namespace, user", "members:x", _conn(U42), "ok"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rule", CHANNEL_RULES, ids=[c[0] for c in CHANNEL_RULES])
async def test_channel_rules(sec_server: CfServer, transport: str,
                             rule: tuple[str, str, Callable[[str], str | None], str]) -> None:
    case, channel, conn, expected = rule
    # ``user:#43`` has no name to make unique: the user list is all there is
    name = channel if channel == "user:#43" else unique(channel, transport)
    got = await attempt(sec_server, transport, name, token=conn(name))
    assert got == expected, f"{case} on {transport}"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_connection_tokens(sec_server: CfServer, transport: str, kind: str) -> None:
    make, expected = BAD_TOKENS[kind]
    got = await attempt(sec_server, transport, unique("news", transport), token=make())
    assert got == expected


SUB_RULES: list[tuple[str, str, Callable[[str], str], str]] = [
    ("token for the channel", "$secret", lambda ch: tok(U42, channel=ch), "ok"),
    ("token for a # channel", "user:notes#43", lambda ch: tok(U42, channel=ch), "ok"),
    ("token for a closed namespace", "closed:x", lambda ch: tok(U42, channel=ch), "ok"),
    ("token for another channel", "$secret", lambda ch: tok(U42, channel=ch + "x"), "denied"),
    ("token for another user", "$secret", lambda ch: tok("43", channel=ch), "denied"),
    ("expired token (exp)", "$secret", lambda ch: tok(U42, channel=ch, ttl=-30), "expired"),
    ("expired token (expire_at)", "$secret",
     lambda ch: tok(U42, channel=ch, ttl=None, expire_at=int(time.time()) - 30), "expired"),
    ("forged token", "$secret", lambda ch: tok(U42, channel=ch, secret=OTHER_SECRET),
     "invalid"),
]


@pytest.mark.parametrize("transport", PLAIN + CENTRIFUGO)
@pytest.mark.parametrize("rule", SUB_RULES, ids=[c[0] for c in SUB_RULES])
async def test_subscription_tokens(sec_server: CfServer, transport: str,
                                   rule: tuple[str, str, Callable[[str], str], str]) -> None:
    case, channel, sub, expected = rule
    name = unique(channel, transport)
    got = await attempt(sec_server, transport, name, token=tok(U42), sub_token=sub(name))
    assert got == expected, f"{case} on {transport}"


async def test_other_clients_keep_receiving(sec_server: CfServer) -> None:
    """A subscriber of a public channel sees every publication while refused clients come
    and go on every transport."""
    received: list[str] = []
    cursor = await asyncio.to_thread(probe_cursor, sec_server, "calm", "start")

    async def listen() -> None:
        async with httpx.AsyncClient(timeout=10) as client, client.stream(
                "GET", sec_server.url + "/events",
                params={"channel": "calm", "cursor": cursor}) as r:
            async for event in events(r):
                received.append(event.data)
                if event.data == "last":
                    return

    task = asyncio.create_task(listen())
    for transport in TRANSPORTS:
        assert await attempt(sec_server, transport, "$secret") == "denied"
        await asyncio.to_thread(sec_server.publish, "calm", transport)
    await asyncio.to_thread(sec_server.publish, "calm", "last")
    await asyncio.wait_for(task, 10)
    assert received == ["start", *TRANSPORTS, "last"]
