"""The admin site: Django's, plus the dashboard and a login that slows down guessing.

Failed logins are counted in the cache per client IP and per username; once either
has PAPERBOY_ADMIN_LOGIN_RATE failures in its window, further attempts get a 429 page
without their password being checked, until the window ends.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_ratelimit.core import get_usage

LOGIN_GROUP = "admin-login"


def _username(group: str, request: HttpRequest) -> str:
    """The name as the login form reads it (Django's UsernameField NFKC-normalises:
    fullwidth letters log in as the plain name), then case-folded: every spelling that
    reaches one account counts against it."""
    name = unicodedata.normalize("NFKC", request.POST.get("username", ""))
    return name.strip().casefold()


LOGIN_KEYS: tuple[Any, ...] = ("ip", _username)


class PaperboyAdminSite(admin.AdminSite):
    site_header = "Paperboy administration"
    site_title = "Paperboy admin"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from newsletter.admin import dashboard_view
        from newsletter.admin_control import control_view

        return [
            path("dashboard/", self.admin_view(dashboard_view), name="dashboard"),
            path("control/", self.admin_view(control_view), name="control"),
            *super().get_urls(),
        ]

    @method_decorator(never_cache)
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if request.method != "POST":
            return super().login(request, extra_context)
        wait = login_wait(request)
        if wait:
            context = {
                **self.each_context(request),
                "title": "Too many failed logins",
                "minutes": math.ceil(wait / 60),
            }
            return TemplateResponse(request, "admin/login_limited.html", context, status=429)
        response = super().login(request, extra_context)
        if response.status_code != 302:  # the form came back: a failed attempt
            login_failed(request)
        return response


def _usage(request: HttpRequest, key: Any, increment: bool) -> dict[str, Any] | None:
    return get_usage(
        request,
        group=LOGIN_GROUP,
        key=key,
        rate=settings.PAPERBOY_ADMIN_LOGIN_RATE,
        method="POST",
        increment=increment,
    )


def login_wait(request: HttpRequest) -> int:
    """Seconds until this IP and this username may try again (0: now)."""
    waits = [0]
    for key in LOGIN_KEYS:
        usage = _usage(request, key, increment=False)
        if usage is not None and usage["count"] >= usage["limit"]:
            waits.append(max(usage["time_left"], 1))
    return max(waits)


def login_failed(request: HttpRequest) -> None:
    for key in LOGIN_KEYS:
        _usage(request, key, increment=True)
