"""The admin dashboard's endpoints: ``/admin`` (login form or dashboard), ``/admin/login``,
``/admin/logout``, ``/admin/api/stats``, ``POST /admin/api/<method>`` (every server API
method, run by ``protocols.centrifugo.api.call``), ``/admin/tail`` (a channel's live
publications) and the page's script and style.

Every endpoint but the login form, the script and the style needs a session (or the admin
token): 401 without one.  ``POST`` needs the session's CSRF token and no foreign ``Origin``
(403); see ``livehub.admin.session``.
"""

from __future__ import annotations

import html
import logging
from functools import partial
from importlib import resources
from urllib.parse import parse_qs

from livehub.admin.session import COOKIE, LoginBudget, Sessions, client_ip
from livehub.admin.settings import AdminSettings
from livehub.admin.stats import snapshot
from livehub.codes import Disconnect
from livehub.core.permissions import Principal
from livehub.errors import BadRequest, Forbidden, LoginRequired, Unavailable
from livehub.protocols.centrifugo import api
from livehub.protocols.centrifugo.node import CentrifugoNode
from livehub.protocols.credentials import Access, cookie, same_origin
from livehub.protocols.plain.streams import stream_authorized, stream_channels
from livehub.ratelog import RateLimitedLog
from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange, Router

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

PAGE_HEADERS = [
    ("cache-control", "no-store"), ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"), ("referrer-policy", "same-origin"),
    ("content-security-policy", "default-src 'self'; frame-ancestors 'none'; "
     "form-action 'self'; base-uri 'none'; object-src 'none'"),
]
"""Headers of every admin answer: never cached, never framed (clickjacking), no inline
script."""
REALM = "livehub admin"
ASSETS = {"/admin/admin.js": ("admin.js", "text/javascript; charset=utf-8"),
          "/admin/admin.css": ("admin.css", "text/css; charset=utf-8")}
HTML = "text/html; charset=utf-8"


def _asset(name: str) -> bytes:
    return resources.files("livehub.admin").joinpath("static", name).read_bytes()


class Admin:
    """The dashboard of one node: its sessions, login budget and endpoints."""

    def __init__(self, ctx: ServerContext, node: CentrifugoNode,
                 settings: AdminSettings) -> None:
        self.ctx = ctx
        self.node = node
        self.settings = settings
        self.sessions = Sessions(settings)
        self.budget = LoginBudget(settings)
        self._pages = {name: _asset(name).decode() for name in ("login.html", "index.html")}

    def install(self, router: Router) -> None:
        get, post = frozenset({"GET", "HEAD"}), frozenset({"POST"})
        router.route("/admin", get, self.dashboard)
        router.route("/admin/login", post, self.login)
        router.route("/admin/logout", post, self.logout)
        router.route("/admin/api/stats", get, self.stats)
        router.route("/admin/tail", get, self.tail)
        for name in api.METHODS:
            router.route(f"/admin/api/{name}", post, partial(self.call, name),
                         precheck=self.precheck)
        for path in ASSETS:
            router.route(path, get, self.asset)

    # -- who is asking -----------------------------------------------------------------------

    def precheck(self, ctx: ServerContext, request: Request) -> None:
        """Credentials, origin and CSRF token from the head (before ``100 Continue``)."""
        self.authorize(request, change=True)

    def session(self, request: Request) -> str | None:
        """The request's valid session cookie, or None."""
        value = cookie(request, COOKIE)
        return value if self.sessions.valid(value) else None

    def authorize(self, request: Request, *, change: bool) -> float | None:
        """Check the request's credentials (and, for ``change``, its origin and CSRF token);
        the Unix time its session expires (None: the admin token, which does not)."""
        if change and "origin" in request.headers and not same_origin(request):
            raise Forbidden("cross-origin requests to the admin API are refused")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            if not self.sessions.token_ok(value.strip()):
                raise LoginRequired("wrong admin token", realm=REALM)
            return None
        session = self.session(request)
        if session is None:
            raise LoginRequired("log in at /admin first (or send the admin token)",
                                realm=REALM)
        if change and not self.sessions.csrf_ok(session, request.headers.get("x-csrf-token")):
            raise Forbidden("missing or wrong CSRF token (X-CSRF-Token)")
        return float(session.split(".")[1])

    # -- pages -------------------------------------------------------------------------------

    def _page(self, status: int, name: str, **fields: str) -> Response:
        text = self._pages[name]
        for key, value in fields.items():
            text = text.replace("{{" + key + "}}", html.escape(value))
        headers = list(PAGE_HEADERS)
        if status == 401:
            headers.append(("www-authenticate", f'Bearer realm="{REALM}"'))
        return Response(status, text.encode(), HTML, headers)

    def _login_page(self, status: int, message: str = "") -> Response:
        return self._page(status, "login.html", message=message)

    async def dashboard(self, ctx: ServerContext, request: Request,
                        http: Exchange) -> Response:
        """The dashboard with the session's CSRF token, or the login form (401)."""
        session = self.session(request)
        if session is None:
            return self._login_page(401)
        return self._page(200, "index.html", csrf=self.sessions.csrf(session))

    async def asset(self, ctx: ServerContext, request: Request,
                    http: Exchange) -> Response:
        name, content_type = ASSETS[request.path]
        return Response(200, _asset(name), content_type, list(PAGE_HEADERS))

    async def login(self, ctx: ServerContext, request: Request,
                    http: Exchange) -> Response:
        """``POST /admin/login`` (form field ``password``): a session cookie and a redirect to
        the dashboard, 401 for a wrong secret, 429 past the login budget, 403 from another
        origin (login CSRF)."""
        if "origin" in request.headers and not same_origin(request):
            return self._login_page(403, "Refused: the login form was sent by another site.")
        ip = client_ip(request.client)
        if not self.budget.take(ip):
            rlog.warning("admin-login", "admin login attempts from %s over budget", ip)
            response = self._login_page(429, "Too many attempts: wait a minute and retry.")
            response.headers.append(("retry-after", str(self.budget.retry_after())))
            return response
        fields = parse_qs(request.body.decode("utf-8", "replace"), max_num_fields=4)
        given = (fields.get("password") or [""])[0]
        if not given or not self.sessions.password_ok(given):
            rlog.warning("admin-login", "admin login refused from %s", ip)
            return self._login_page(401, "Wrong password.")
        log.info("admin login from %s", ip)
        secure = "; Secure" if request.headers.get("origin", "").startswith("https:") else ""
        cookie = (f"{COOKIE}={self.sessions.new()}; Path=/admin; HttpOnly; SameSite=Strict; "
                  f"Max-Age={int(self.settings.admin_session_ttl)}{secure}")
        return Response(303, b"", HTML, [*PAGE_HEADERS, ("location", "/admin"),
                                         ("set-cookie", cookie)])

    async def logout(self, ctx: ServerContext, request: Request,
                     http: Exchange) -> Response:
        self.authorize(request, change=True)
        cookie = f"{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"
        return Response(303, b"", HTML, [*PAGE_HEADERS, ("location", "/admin"),
                                         ("set-cookie", cookie)])

    # -- the dashboard's data ----------------------------------------------------------------

    async def stats(self, ctx: ServerContext, request: Request,
                    http: Exchange) -> Response:
        self.authorize(request, change=False)
        response = Response.json(await snapshot(ctx, self.node))
        response.headers += PAGE_HEADERS
        return response

    async def call(self, name: str, ctx: ServerContext, request: Request,
                   http: Exchange) -> Response:
        """``POST /admin/api/<method>``: the server API method ``name`` with the JSON body as
        its parameters, answered as ``POST /api/<name>`` answers."""
        self.authorize(request, change=True)
        params = request.json(max_depth=ctx.node.limits.max_json_depth) \
            if request.body.strip() else {}
        if not isinstance(params, dict):
            raise BadRequest("body must be a JSON object")
        log.info("admin %s from %s", name, client_ip(request.client))
        try:
            answer = await api.call(self.node, name, params)
        except Unavailable as exc:
            return Response.json({"error": {"code": exc.error_code, "message": exc.message}},
                                 503)
        response = Response.json(answer)
        response.headers += PAGE_HEADERS
        return response

    async def tail(self, ctx: ServerContext, request: Request,
                   http: Exchange) -> Response | None:
        """``GET /admin/tail?channel=c``: the channel's live publications as JSON lines (as
        ``/stream`` sends them), whatever its permissions, until the session expires."""
        expires = self.authorize(request, change=False)
        channels = stream_channels(ctx, request)
        access = Access(Principal(), expires, Disconnect.EXPIRED)
        return await stream_authorized(ctx, request, http, channels, access)


def install(router: Router, node: CentrifugoNode, settings: AdminSettings) -> Admin | None:
    """Mount the dashboard when an admin password or token is configured."""
    if not settings.enabled:
        return None
    admin = Admin(router.ctx, node, settings)
    admin.install(router)
    return admin

