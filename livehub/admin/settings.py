"""Settings of the admin dashboard (``[admin]`` in the TOML file, ``LIVEHUB_ADMIN_*``, flags)."""

from __future__ import annotations

from dataclasses import dataclass

from livehub.errors import ConfigError

MIN_SECRET = 8
"""Characters an admin password or token needs at least."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSettings:
    admin_password: str | None = None
    """Password of the admin dashboard at ``/admin``; the dashboard is off (404) unless this or
    ``admin_token`` is set."""
    admin_token: str | None = None
    """A second admin secret, for scripts: ``Authorization: Bearer <token>`` on
    ``/admin/api/*`` (no cookie, no CSRF token); also accepted by the login form."""
    admin_session_ttl: float = 3600.0
    """Seconds an admin login lasts (the session cookie expires then)."""
    admin_login_rate: float = 0.1
    """Login attempts per second one client address may make on average (429 beyond)."""
    admin_login_burst: int = 5
    """Login attempts one client address may make at once above the average rate."""

    def __post_init__(self) -> None:
        for name in ("admin_password", "admin_token"):
            secret = getattr(self, name)
            if secret and len(secret) < MIN_SECRET:
                raise ConfigError(f"{name} must be at least {MIN_SECRET} characters")
        if self.admin_session_ttl <= 0:
            raise ConfigError("admin_session_ttl must be > 0")
        if self.admin_login_rate <= 0 or self.admin_login_burst < 1:
            raise ConfigError("admin_login_rate must be > 0 and admin_login_burst >= 1")

    @property
    def enabled(self) -> bool:
        """Whether ``/admin`` is served (a password or a token is configured)."""
        return bool(self.admin_password or self.admin_token)
