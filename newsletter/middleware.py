"""Two middlewares: proxy headers believed only from the trusted proxies, and a
Content-Security-Policy header on every response that has none of its own.

Content-Security-Policy:

The public pages load their stylesheet and their one script (the time zone guess on
the signup form) from /static/, so the policy allows no inline script or style at all.
The admin marks statuses with inline styles, so its pages may use them (never inline
scripts). A view that sets its own, stricter policy keeps it: the "view in browser"
copy of a digest does.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from newsletter.abuse import is_trusted_proxy

FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


class ProxyHeadersMiddleware:
    """Behind the proxy (PAPERBOY_BEHIND_PROXY), X-Forwarded-* headers count only on a
    connection from PAPERBOY_TRUSTED_PROXIES: from anyone else they are dropped before
    Django reads them (SECURE_PROXY_SSL_HEADER, the rate limits' client address), so a
    client that reaches gunicorn directly can neither pick its address nor claim https."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.PAPERBOY_BEHIND_PROXY and not is_trusted_proxy(
            str(request.META.get("REMOTE_ADDR", ""))
        ):
            for name in FORWARDED:
                request.META.pop(name, None)
        return self.get_response(request)


HEADER = "Content-Security-Policy"

_COMMON = (
    "default-src 'self'",
    "script-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
PUBLIC_POLICY = "; ".join([*_COMMON, "style-src 'self'"])
ADMIN_POLICY = "; ".join([*_COMMON, "style-src 'self' 'unsafe-inline'"])


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.admin_prefix = ""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response:
            return response
        # Django's own debug pages (DEBUG only) are built with inline styles and scripts.
        if settings.DEBUG and response.status_code >= 400 and _is_debug_page(response):
            return response
        response[HEADER] = ADMIN_POLICY if self._is_admin(request) else PUBLIC_POLICY
        return response

    def _is_admin(self, request: HttpRequest) -> bool:
        if not self.admin_prefix:
            self.admin_prefix = reverse("admin:index")
        return request.path.startswith(self.admin_prefix)


def _is_debug_page(response: HttpResponse) -> bool:
    content = getattr(response, "content", b"")
    return b'<meta name="robots" content="NONE,NOARCHIVE">' in content[:2000]
