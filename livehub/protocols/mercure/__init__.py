"""The Mercure hub at ``/.well-known/mercure`` on livehub's channels (see docs/mercure.md).

``install`` mounts the subscribe (``GET``) and publish (``POST``) endpoints on a ``Router``,
and the active subscriptions API when it is on.
"""

from __future__ import annotations

from livehub.protocols.mercure.hub import HUB_PATH, MercureHub
from livehub.protocols.mercure.settings import MercureSettings
from livehub.protocols.mercure.subscriptions import PREFIX
from livehub.protocols.mercure.tokens import MercureAuthSettings
from livehub.transports.routing import Router

__all__ = ["MercureAuthSettings", "MercureHub", "MercureSettings", "install"]


def install(app: Router, settings: MercureSettings,
            auth: MercureAuthSettings | None = None) -> MercureHub:
    """Create this server's Mercure hub and mount its endpoints."""
    hub = MercureHub(app.ctx, settings, auth or MercureAuthSettings())
    app.route(HUB_PATH, frozenset({"GET", "HEAD", "POST"}), hub.endpoint)
    if settings.mercure_subscriptions:
        get = frozenset({"GET", "HEAD"})
        app.route(PREFIX, get, hub.subscriptions_endpoint)
        app.route(PREFIX + "/*", get, hub.subscriptions_endpoint)
    return hub
