"""The forms' rate limits against a client that picks its own address: X-Forwarded-For
from an untrusted peer, IPv6 /64s rotated inside one /48, one form stamp replayed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from newsletter import abuse
from newsletter.models import Subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_proxy(settings: Any) -> None:
    """The deployment's defaults: behind a proxy, which is on loopback."""
    settings.PAPERBOY_BEHIND_PROXY = True
    settings.PAPERBOY_TRUSTED_PROXIES = ["127.0.0.1", "::1"]
    settings.PAPERBOY_FORM_RATE_PER_IP = "3/h"


def fresh_stamp() -> str:
    return abuse.stamp_issue(issued_at=time.time() - 60)


def post(client: Client, n: int, stamp: str | None = None, **meta: Any) -> int:
    data = {"email": f"reader{n}@example.org", "stamp": stamp or fresh_stamp()}
    return client.post(reverse("signup"), data, **meta).status_code


def test_a_client_reaching_gunicorn_directly_cannot_pick_its_address(
    client: Client, production_proxy: None
) -> None:
    """From 192.0.2.9 (not the proxy), a new X-Forwarded-For on every post."""
    codes = [
        post(client, n, REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(5)
    ]
    assert codes == [302, 302, 302, 429, 429]


def test_through_the_proxy_each_client_is_counted_by_its_own_address(
    client: Client, production_proxy: None
) -> None:
    codes = [
        post(client, n, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"1.2.3.4, 198.51.100.{n}")
        for n in range(5)
    ]
    assert codes == [302] * 5  # five clients, whatever they wrote further left


def test_forwarded_proto_from_an_untrusted_peer_is_dropped(rf: Any, production_proxy: None) -> None:
    from newsletter.middleware import ProxyHeadersMiddleware

    seen: dict[str, Any] = {}

    def view(request: Any) -> Any:
        seen.update(request.META)
        return None

    direct = rf.get("/", REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_PROTO="https")
    ProxyHeadersMiddleware(view)(direct)
    assert "HTTP_X_FORWARDED_PROTO" not in seen
    proxied = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    ProxyHeadersMiddleware(view)(proxied)
    assert seen["HTTP_X_FORWARDED_PROTO"] == "https"


def test_a_trusted_proxy_network_and_a_chain_of_proxies(rf: Any, settings: Any) -> None:
    settings.PAPERBOY_BEHIND_PROXY = True
    settings.PAPERBOY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.9.9.9")
    assert abuse.client_ip(request) == "203.0.113.5"
    assert abuse.client_ip(rf.get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="junk")) == (
        "10.1.2.3"
    )


def test_rotating_ipv6_64s_inside_one_48_is_limited(
    client: Client, settings: Any, production_proxy: None
) -> None:
    settings.PAPERBOY_FORM_RATE_PER_NETWORK = "6/h"
    codes = [
        post(client, n, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"2001:db8:1:{n:x}::1")
        for n in range(8)
    ]
    assert codes == [302] * 6 + [429, 429]
    # Another site is not affected.
    other = post(client, 99, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="2001:db8:2::1")
    assert other == 302


def test_one_stamp_makes_one_accepted_post(client: Client, production_proxy: None) -> None:
    stamp = fresh_stamp()
    assert post(client, 1, stamp=stamp, REMOTE_ADDR="127.0.0.1") == 302
    page = client.post(
        reverse("signup"), {"email": "reader2@example.org", "stamp": stamp}, REMOTE_ADDR="127.0.0.1"
    )
    assert page.status_code == 200 and b"already sent once" in page.content
    assert Subscriber.objects.count() == 1
    # The form shown again carries a fresh stamp, not the used one.
    again = page.content.decode().split('name="stamp" value="')[1].split('"')[0]
    assert again != stamp and abuse.stamp_age(again) < 5
