"""The tracking webhooks, attacked: only the configured provider's endpoint exists, it
refuses everything until its secret is set, caps bodies, and never answers 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from newsletter.models import EmailEvent, Subscriber
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db
AUTH = "hook:s3cret"
ALL_ESPS = ["postmark", "mailgun", "postal", "mandrill", "unisender_go", "mailersend", "brevo"]


def bounce(email: str) -> dict[str, object]:
    """A Postmark-shaped hard bounce, as anyone on the internet can send."""
    return {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Email": email,
        "BouncedAt": "2026-01-08T07:05:00Z",
        "Description": "unknown user",
        "Metadata": {},
    }


def complaint(email: str) -> dict[str, object]:
    return {**bounce(email), "RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 43}


def post(client: Client, esp: str, body: object, auth: str | None = None) -> Any:
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        f"/anymail/{esp}/tracking/", data, content_type="application/json", headers=headers
    )


@pytest.fixture
def smtp_site(settings: Any) -> None:
    """EMAIL_PROVIDER=smtp as a deployment sets it: no provider, no webhook."""
    settings.EMAIL_PROVIDER = "smtp"
    settings.PAPERBOY_WEBHOOK_PROVIDER = ""
    settings.ANYMAIL = {}
    settings.ANYMAIL_WEBHOOK_SECRET = ""


@pytest.mark.parametrize("payload", [bounce, complaint])
def test_with_smtp_no_webhook_exists_and_nobody_is_suppressed(
    client: Client, smtp_site: None, payload: Any
) -> None:
    make_subscriber("victim@example.org", "active")
    assert post(client, "postmark", payload("victim@example.org")).status_code == 404
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("esp", ALL_ESPS)
def test_with_smtp_no_endpoint_answers_500(client: Client, smtp_site: None, esp: str) -> None:
    assert post(client, esp, {"event": "x"}).status_code == 404


@pytest.mark.parametrize("esp", ALL_ESPS)
def test_an_endpoint_without_its_secret_refuses_everything(
    client: Client, settings: Any, esp: str
) -> None:
    """Configured but no secret yet: 403 for every request, never 500, never stored."""
    settings.PAPERBOY_WEBHOOK_PROVIDER = esp
    settings.ANYMAIL = {}
    settings.ANYMAIL_WEBHOOK_SECRET = ""
    make_subscriber("victim@example.org", "active")
    assert post(client, esp, bounce("victim@example.org")).status_code == 403
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("esp", ["postal", "mandrill", "unisender_go", "mailersend", "mailgun"])
def test_a_signed_endpoint_without_its_signing_key_is_403_not_500(
    client: Client, settings: Any, esp: str
) -> None:
    settings.PAPERBOY_WEBHOOK_PROVIDER = esp
    settings.ANYMAIL = {"WEBHOOK_SECRET": AUTH}
    assert post(client, esp, {"event": "x"}, auth=AUTH).status_code == 403


def test_only_the_configured_providers_endpoint_is_mounted(client: Client, settings: Any) -> None:
    settings.PAPERBOY_WEBHOOK_PROVIDER = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": AUTH}
    make_subscriber("victim@example.org", "active")
    assert post(client, "mailgun", {"event": "x"}, auth=AUTH).status_code == 404
    assert post(client, "brevo", {"event": "hard_bounce"}, auth=AUTH).status_code == 404
    assert post(client, "postmark", bounce("victim@example.org")).status_code == 401
    assert (
        post(client, "postmark", bounce("victim@example.org"), auth="hook:guess").status_code == 401
    )
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert post(client, "postmark", bounce("victim@example.org"), auth=AUTH).status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.BOUNCED


def test_a_huge_body_is_refused_unread(client: Client, settings: Any) -> None:
    settings.PAPERBOY_WEBHOOK_PROVIDER = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": AUTH}
    big = {**bounce("nobody@example.org"), "Details": "x" * (2 * 1024 * 1024)}
    assert post(client, "postmark", big).status_code == 413
    assert post(client, "postmark", big, auth=AUTH).status_code == 413
    assert not EmailEvent.objects.exists()
