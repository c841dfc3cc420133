"""Presence is stored before the subscribe reply (as in Centrifugo), even with a slow store."""

from __future__ import annotations

import asyncio

from livehub.core.auth import AuthSettings
from livehub.core.channels import Namespaces
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.core.presence import ClientInfo, MemoryPresence
from livehub.protocols.centrifugo import CentrifugoSettings
from livehub.transports.context import ServerSettings

from ..conftest import API_KEY
from .conftest import CF_NAMESPACES, OPEN, SECRET, CfServer, token
from .wsclient import RawClient, connect


class SlowPresence(MemoryPresence):
    """A presence store with a round trip as slow as a distant Redis."""

    async def add(self, channel: str, info: ClientInfo, *, ttl: float) -> None:
        await asyncio.sleep(0.3)
        await super().add(channel, info, ttl=ttl)


class SlowPresenceServer(CfServer):
    def create_node(self) -> Node:
        return Node(MemoryBroker(), self.namespaces, presence=SlowPresence(), release_delay=0.05)


async def test_presence_is_stored_before_the_subscribe_reply() -> None:
    srv = SlowPresenceServer(ServerSettings(api_key=API_KEY, clock=False, port=0),
                             Namespaces(OPEN, CF_NAMESPACES),
                             CentrifugoSettings(), auth=AuthSettings(token_hmac_secret=SECRET))
    srv.start()
    try:
        async with connect(srv.cf_ws) as ws:
            client = RawClient(ws)
            connected = await client.call("connect", {"token": token("ord")})
            client_id = connected["connect"]["client"]
            reply = await client.call("subscribe", {"channel": "chat:order"})
            assert "error" not in reply
            # right after the reply, any node's presence already lists the subscriber
            body = await asyncio.to_thread(srv.api, "presence", channel="chat:order")
            assert list(body["result"]["presence"]) == [client_id]
    finally:
        srv.stop()
