"""A live server with the admin dashboard on, and a logged-in admin client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from livehub.admin import AdminSettings
from livehub.core.auth import AuthSettings

from ..conftest import LiveServer, ServerFactory

PASSWORD = "admin-test-password"
TOKEN = "admin-test-token-0123456789"
SECRET = "admin-test-hmac-secret-0123456789abcdef0123456789abcdef"
ADMIN = AdminSettings(admin_password=PASSWORD, admin_token=TOKEN)


@pytest.fixture
def admin_server(make_server: ServerFactory) -> LiveServer:
    return make_server(admin=ADMIN, auth=AuthSettings(token_hmac_secret=SECRET))


class AdminClient:
    """An ``httpx`` client logged in to the dashboard: its cookie and CSRF token."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=5)
        r = self.http.post("/admin/login", data={"password": PASSWORD},
                           headers={"Origin": server.url})
        assert r.status_code == 303, r.text
        page = self.http.get("/admin")
        assert page.status_code == 200
        marker = '<meta name="csrf-token" content="'
        start = page.text.index(marker) + len(marker)
        self.csrf = page.text[start:page.text.index('"', start)]

    def call(self, method: str, params: dict[str, object], **headers: str) -> httpx.Response:
        return self.http.post(f"/admin/api/{method}", json=params,
                              headers={"X-CSRF-Token": self.csrf, "Origin": self.server.url,
                                       **headers})

    def stats(self) -> dict[str, object]:
        r = self.http.get("/admin/api/stats")
        assert r.status_code == 200, r.text
        stats: dict[str, object] = r.json()
        return stats


@pytest.fixture
def admin(admin_server: LiveServer) -> Iterator[AdminClient]:
    client = AdminClient(admin_server)
    yield client
    client.http.close()
