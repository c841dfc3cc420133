"""A live livehub server with the Centrifugo layer configured for the SDK tests."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import uvloop

from livehub.app import App
from livehub.core.auth import AuthSettings
from livehub.core.channels import ChannelOptions, Namespaces, public_options
from livehub.core.limits import Limits
from livehub.core.node import Node
from livehub.protocols.centrifugo import CentrifugoSettings
from livehub.transports.context import ServerSettings

from ..conftest import API_KEY, LiveServer

SECRET = "centrifugo-test-secret-long-enough-for-hs512-keys-0123456789abcdef"

OPEN = public_options(presence=True, join_leave=True, force_push_join_leave=True,
                      force_recovery=True, client_publish=True,
                      allow_presence_for_subscriber=True, allow_history_for_subscriber=True)
CF_NAMESPACES = {
    "chat": OPEN,
    "private": ChannelOptions(allow_subscribe_for_client=False, presence=True,
                              allow_publish_for_subscriber=True,
                              allow_presence_for_subscriber=True),
    "ro": public_options(force_recovery=True),
    "small": public_options(history_size=3, force_recovery=True, client_publish=True),
    "nohist": public_options(history_size=0, client_publish=True),
    "user": ChannelOptions(allow_subscribe_for_client=False, allow_user_limited_channels=True),
}


def token(user: str, *, ttl: float | None = 3600, secret: str = SECRET,
          algorithm: str = "HS256", **claims: Any) -> str:
    body: dict[str, Any] = {"sub": user, **claims}
    if ttl is not None:
        body["exp"] = int(time.time() + ttl)
    return jwt.encode(body, secret, algorithm=algorithm)


def sub_token(user: str, channel: str, *, ttl: float | None = 3600, **claims: Any) -> str:
    return token(user, ttl=ttl, channel=channel, **claims)


class CfServer(LiveServer):
    """``LiveServer`` whose app has Centrifugo settings."""

    def __init__(self, settings: ServerSettings, namespaces: Namespaces,
                 cf: CentrifugoSettings, limits: Limits | None = None,
                 auth: AuthSettings | None = None) -> None:
        super().__init__(settings, namespaces, limits, auth=auth)
        self.cf = cf

    def create_app(self, node: Node) -> App:
        return App.create(node, self.settings, centrifugo=self.cf, auth=self.auth)

    def stop(self) -> None:
        """Stop like ``LiveServer``, but first abort connections still closing, so none is
        left open when the loop closes (the SDKs close fast; our close handshake waits)."""
        app = self.app
        if app is not None:
            self.call(app.stop(drain=0.5))

            async def abort_rest() -> None:
                for conn in list(app.ctx.connections):
                    transport = getattr(conn, "transport", None)
                    if transport is not None:
                        transport.abort()
                await asyncio.sleep(0.05)

            self.call(abort_rest())
            self.app = None
        super().stop()

    @property
    def cf_ws(self) -> str:
        return self.ws_url + "/connection/websocket"

    def api(self, method: str, **params: Any) -> dict[str, Any]:
        import httpx

        r = httpx.post(f"{self.url}/api/{method}", json=params, headers={"X-API-Key": API_KEY})
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body


AUTH_FIELDS = frozenset(AuthSettings.__dataclass_fields__)


def make_cf_server(*, server_class: type[CfServer] | None = None, **overrides: Any) -> CfServer:
    """A started ``CfServer`` (or ``server_class``); ``cf`` holds Centrifugo and auth settings
    (``token_*``, ``client_insecure``...), ``namespaces`` replaces ``CF_NAMESPACES``."""
    cf_params: dict[str, Any] = {"token_hmac_secret": SECRET, "emulation": True, "uni": True}
    cf_params.update(overrides.pop("cf", {}))
    auth_params = {k: cf_params.pop(k) for k in list(cf_params) if k in AUTH_FIELDS}
    limits = overrides.pop("limits", None)
    namespaces = overrides.pop("namespaces", CF_NAMESPACES)
    default = overrides.pop("default_options", OPEN)
    params: dict[str, Any] = {"api_key": API_KEY, "clock": False, "port": 0}
    params.update(overrides)
    srv = (server_class or CfServer)(
        ServerSettings(**params), Namespaces(default, namespaces),
        CentrifugoSettings(**cf_params), limits, AuthSettings(**auth_params))
    srv.start()
    return srv


@pytest.fixture
def cf_server() -> Iterator[CfServer]:
    srv = make_cf_server()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shared_cf_server() -> Iterator[CfServer]:
    """One server for the tests of a module that do not depend on a fresh state."""
    srv = make_cf_server()
    yield srv
    srv.stop()


JS_DIR = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def js_modules() -> Path:
    """The npm packages of tests/centrifugo/js (centrifuge, ws, eventsource), installed with
    ``npm ci`` when missing.  Never skips: without them the tests fail and say why."""
    if (JS_DIR / "node_modules" / "centrifuge" / "package.json").is_file():
        return JS_DIR
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are required for the centrifuge-js tests "
                    "(apt-get install nodejs npm)")
    proc = subprocess.run([npm, "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        pytest.fail("npm ci --prefix tests/centrifugo/js failed; the centrifuge-js tests need "
                    f"the npm packages centrifuge, ws and eventsource:\n{proc.stderr[-2000:]}")
    return JS_DIR


def run_js(srv: LiveServer, scenario: str, timeout: float = 40, **args: Any) -> dict[str, Any]:
    """Run one scenario of js/scenarios.cjs against ``srv``; its JSON result."""
    args.setdefault("base", srv.url)
    args.setdefault("secret", SECRET)
    args.setdefault("timeoutMs", int(timeout * 1000) - 2000)
    proc = subprocess.run(["node", str(JS_DIR / "scenarios.cjs"), scenario, json.dumps(args)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"scenario {scenario} failed:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


__all__ = ["SECRET", "CfServer", "make_cf_server", "run_js", "sub_token", "token", "uvloop"]
