"""The dashboard's door: off without a secret, 401 without a session, login with a budget,
signed expiring cookies, CSRF refused (Origin and token), the admin token for scripts."""

from __future__ import annotations

import httpx
import pytest

from livehub.admin import AdminSettings
from livehub.admin.session import Sessions
from livehub.errors import ConfigError

from ..conftest import LiveServer, ServerFactory
from .conftest import ADMIN, PASSWORD, TOKEN, AdminClient


def history(server: LiveServer, channel: str) -> list[bytes]:
    result = server.call(server.app.ctx.node.history(channel))  # type: ignore[union-attr]
    return [p.data for p in result.publications]


def test_off_unless_a_secret_is_configured(server: LiveServer) -> None:
    for path in ("/admin", "/admin/api/stats", "/admin/admin.js"):
        assert httpx.get(server.url + path).status_code == 404
    assert httpx.post(server.url + "/admin/login", data={"password": "x"}).status_code == 404


def test_without_credentials_401(admin_server: LiveServer) -> None:
    page = httpx.get(admin_server.url + "/admin")
    assert page.status_code == 401
    assert page.headers["www-authenticate"] == 'Bearer realm="livehub admin"'
    assert 'action="/admin/login"' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for method, path in (("GET", "/admin/api/stats"), ("GET", "/admin/tail?channel=chat:a"),
                         ("POST", "/admin/api/publish"), ("POST", "/admin/logout")):
        r = httpx.request(method, admin_server.url + path,
                          json={"channel": "chat:a", "data": "x"})
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert history(admin_server, "chat:a") == []


def test_wrong_password_401_right_one_sets_a_strict_cookie(admin_server: LiveServer) -> None:
    url = admin_server.url
    wrong = httpx.post(url + "/admin/login", data={"password": "not-the-password"})
    assert wrong.status_code == 401
    assert "Wrong password." in wrong.text
    right = httpx.post(url + "/admin/login", data={"password": PASSWORD},
                       headers={"Origin": url})
    assert right.status_code == 303
    assert right.headers["location"] == "/admin"
    cookie = right.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=3600"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http: the browser would drop a Secure cookie
    https = httpx.post(url + "/admin/login", data={"password": PASSWORD},
                       headers={"Origin": "https://" + url.removeprefix("http://")})
    assert https.status_code == 303  # behind a TLS proxy: the page was https, so Secure
    assert "; Secure" in https.headers["set-cookie"]


def test_login_from_another_site_refused(admin_server: LiveServer) -> None:
    r = httpx.post(admin_server.url + "/admin/login", data={"password": PASSWORD},
                   headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert "set-cookie" not in r.headers


def test_token_logs_in_too(admin_server: LiveServer) -> None:
    r = httpx.post(admin_server.url + "/admin/login", data={"password": TOKEN})
    assert r.status_code == 303


def test_csrf_refused(admin: AdminClient) -> None:
    server = admin.server
    publish = {"channel": "chat:csrf", "data": "forged"}
    no_token = admin.http.post("/admin/api/publish", json=publish,
                               headers={"Origin": server.url})
    assert no_token.status_code == 403
    assert "CSRF" in no_token.json()["error"]["message"]
    wrong_token = admin.call("publish", publish, **{"X-CSRF-Token": "0" * 64})
    assert wrong_token.status_code == 403
    foreign = admin.call("publish", publish, Origin="https://evil.example")
    assert foreign.status_code == 403
    assert "cross-origin" in foreign.json()["error"]["message"]
    logout = admin.http.post("/admin/logout", headers={"Origin": server.url})
    assert logout.status_code == 403
    assert history(server, "chat:csrf") == []
    ok = admin.call("publish", publish)
    assert ok.status_code == 200
    assert ok.json()["result"]["offset"] == 1
    assert history(server, "chat:csrf") == [b"forged"]


def test_no_cors_for_the_dashboard(admin: AdminClient) -> None:
    r = admin.http.get("/admin/api/stats", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200  # a same-site GET is harmless: nobody else can read it
    assert "access-control-allow-origin" not in r.headers
    pre = admin.http.options("/admin/api/publish",
                             headers={"Origin": "https://evil.example",
                                      "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403
    assert "access-control-allow-origin" not in pre.headers


def test_forged_and_expired_sessions_refused() -> None:
    sessions = Sessions(ADMIN)
    value = sessions.new(now=1000.0)
    assert sessions.valid(value, now=1000.0 + 3599)
    assert not sessions.valid(value, now=1000.0 + 3600)  # expired
    version, expires, nonce, signature = value.split(".")
    assert not sessions.valid(f"{version}.{int(expires) + 10**6}.{nonce}.{signature}",
                              now=1000.0)  # a longer life is not signed
    assert not sessions.valid(f"{version}.{expires}.{nonce}.{'0' * 64}", now=1000.0)
    assert not sessions.valid("garbage", now=1000.0)
    other = Sessions(AdminSettings(admin_password="another-password"))
    assert not other.valid(value, now=1000.0)  # a new password ends every session


def test_tampered_cookie_401(admin_server: LiveServer) -> None:
    value = Sessions(AdminSettings(admin_password="not-the-configured-one")).new()
    r = httpx.get(admin_server.url + "/admin/api/stats",
                  cookies={"livehub_admin": value})
    assert r.status_code == 401
    assert httpx.get(admin_server.url + "/admin", cookies={"livehub_admin": value}
                     ).status_code == 401


def test_bearer_token_for_scripts(admin_server: LiveServer) -> None:
    url = admin_server.url
    ok = httpx.post(url + "/admin/api/publish", json={"channel": "chat:bot", "data": 1},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.json()["result"]["offset"] == 1
    wrong = httpx.get(url + "/admin/api/stats", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    password = httpx.get(url + "/admin/api/stats",
                         headers={"Authorization": f"Bearer {PASSWORD}"})
    assert password.status_code == 401  # the password is for the form only
    foreign = httpx.post(url + "/admin/api/publish", json={"channel": "chat:bot", "data": 2},
                         headers={"Authorization": f"Bearer {TOKEN}",
                                  "Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_login_attempts_rate_limited_per_address(make_server: ServerFactory) -> None:
    settings = AdminSettings(admin_password=PASSWORD, admin_login_burst=2,
                             admin_login_rate=0.01)
    server = make_server(admin=settings)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):
            assert client.post("/admin/login", data={"password": "wrong-one"}
                               ).status_code == 401
        over = client.post("/admin/login", data={"password": PASSWORD})
        assert over.status_code == 429  # even the right password: the budget is spent
        assert over.headers["retry-after"] == "100"
        assert "set-cookie" not in over.headers
    other = httpx.Client(base_url=server.url,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:
        assert other.post("/admin/login", data={"password": PASSWORD}).status_code == 303


def test_logout_clears_the_cookie(admin: AdminClient) -> None:
    r = admin.http.post("/admin/logout", headers={"X-CSRF-Token": admin.csrf,
                                                  "Origin": admin.server.url})
    assert r.status_code == 303
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert admin.http.get("/admin").status_code == 401


@pytest.mark.parametrize("secret", ["short", "1234567"])
def test_short_secrets_refused(secret: str) -> None:
    with pytest.raises(ConfigError, match="at least 8"):
        AdminSettings(admin_password=secret)
    with pytest.raises(ConfigError, match="at least 8"):
        AdminSettings(admin_token=secret)


def test_login_budget_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MAX_TRACKED`` addresses are remembered: refilled ones are forgotten first (a
    new bucket would be the same), then the oldest; a spent address stays spent meanwhile."""
    from livehub.admin import session

    monkeypatch.setattr(session, "MAX_TRACKED", 10)
    budget = session.LoginBudget(AdminSettings(admin_password=PASSWORD, admin_login_burst=1,
                                               admin_login_rate=1.0))
    assert budget.take("10.0.0.1", now=0.0)
    assert not budget.take("10.0.0.1", now=0.1)  # spent
    for n in range(2, 11):
        assert budget.take(f"10.0.0.{n}", now=5.0)
    assert budget.take("10.0.0.11", now=5.5)  # 10.0.0.1 refilled by now: forgotten
    assert len(budget._buckets) <= 10
    assert "10.0.0.1" not in budget._buckets
    for n in range(12, 40):
        budget.take(f"10.0.0.{n}", now=5.6)  # all spent: the oldest go
        assert len(budget._buckets) <= 10
