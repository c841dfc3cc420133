"""livehub in a Django ASGI app (one file): ``uvicorn examples.django_app:application``.

The hub serves ``/live/...``; every other path goes to Django.  A Django view publishes, and the
hub knows Django's user from the session (``authenticate``): ``notes:inbox#alice`` is readable
by alice's session only (``allow_user_limited_channels`` in ``livehub.toml``).
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-change-me",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
)
django.setup()

from django.contrib.sessions.backends.signed_cookies import SessionStore  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

import livehub  # noqa: E402


async def session_user(scope: dict[str, Any]) -> str | None:
    """The user of Django's session cookie in an ASGI request (the hub's ``authenticate``)."""
    for name, value in scope["headers"]:
        if name == b"cookie":
            morsel = SimpleCookie(value.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
            if morsel is not None:
                user = await SessionStore(session_key=morsel.value).aget("user")
                return str(user) if user else None
    return None


hub = livehub.Hub(config=Path(__file__).with_name("livehub.toml"), authenticate=session_user)


def login(request: HttpRequest) -> HttpResponse:
    """A stand-in for Django's auth: remember who this browser is."""
    request.session["user"] = request.GET["user"]
    return HttpResponse("logged in")


@require_POST
async def notify(request: HttpRequest) -> JsonResponse:
    """Publish a note to a user's inbox from a Django view."""
    published = await hub.publish(f"notes:inbox#{request.GET['user']}",
                                  {"text": request.GET["text"]})
    return JsonResponse({"offset": published.offset})


urlpatterns = [path("login", login), path("notify", notify)]

application = hub.asgi(prefix="/live", fallback=get_asgi_application())
