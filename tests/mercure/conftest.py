"""A livehub server with the Mercure hub installed, and helpers to publish and subscribe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from livehub.app import App
from livehub.core.channels import Namespaces, public_options
from livehub.core.node import Node
from livehub.protocols.centrifugo import CentrifugoSettings
from livehub.protocols.mercure import MercureAuthSettings, MercureSettings
from livehub.transports.context import ServerSettings
from tests.conftest import API_KEY, TEST_NAMESPACES, LiveServer
from tests.mercure.tokens_helpers import PUB_KEY, SUB_KEY
from tests.node.conftest import node, node_bin

__all__ = ["node", "node_bin"]

HUB = "/.well-known/mercure"
MERCURE_NAMESPACES = {**TEST_NAMESPACES,
                      "books": public_options(history_size=100),
                      "mercure": public_options(history_size=1000)}


class MercureServer(LiveServer):
    """A ``LiveServer`` whose app serves the Mercure hub with ``mercure`` settings."""

    def __init__(self, *args: Any, mercure: MercureSettings, mercure_auth: MercureAuthSettings,
                 centrifugo: CentrifugoSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mercure = mercure
        self.mercure_auth = mercure_auth
        self.centrifugo = centrifugo

    def create_app(self, node: Node) -> App:
        return App.create(node, self.settings, auth=self.auth, mercure=self.mercure,
                          mercure_auth=self.mercure_auth, centrifugo=self.centrifugo)

    def mercure_publish(self, *topics: str, data: str = "", **fields: str) -> httpx.Response:
        """POST an update with the server API key (the publisher's credential here)."""
        form: dict[str, str | list[str]] = {"topic": list(topics), "data": data, **fields}
        return httpx.post(self.url + HUB, data=form, headers={"X-API-Key": API_KEY})


DEFAULT_MERCURE = MercureSettings(mercure=True, mercure_journal="mercure:$journal",
                                  mercure_namespace="",
                                  mercure_topics=("books=https://example.com/books/",))
DEFAULT_AUTH = MercureAuthSettings(mercure_anonymous=True, mercure_publisher_jwt_key=PUB_KEY,
                                   mercure_subscriber_jwt_key=SUB_KEY)
"""Anonymous subscribers allowed; tokens signed with the keys of ``tokens_helpers``."""


@pytest.fixture
def make_mercure() -> Iterator[Any]:
    servers: list[MercureServer] = []

    def make(mercure: MercureSettings = DEFAULT_MERCURE,
             mercure_auth: MercureAuthSettings = DEFAULT_AUTH,
             **overrides: Any) -> MercureServer:
        namespaces = overrides.pop("namespaces", MERCURE_NAMESPACES)
        limits = overrides.pop("limits", None)
        auth = overrides.pop("auth", None)
        centrifugo = overrides.pop("centrifugo", None)
        params: dict[str, Any] = {"api_key": API_KEY, "clock": False, "port": 0}
        params.update(overrides)
        srv = MercureServer(ServerSettings(**params), Namespaces(public_options(), namespaces),
                            limits, auth, mercure=mercure, mercure_auth=mercure_auth,
                            centrifugo=centrifugo)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def hub(make_mercure: Any) -> MercureServer:
    server: MercureServer = make_mercure()
    return server
