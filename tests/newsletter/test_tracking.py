"""Provider webhooks through django-anymail's real views, with real-shaped payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from newsletter.models import Delivery, EmailEvent, Subscriber
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db
AUTH = "hook:s3cret"
MAILGUN_KEY = "key-mailgun-signing"


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": AUTH, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def post(client: Client, esp: str, payload: object, auth: str = AUTH) -> Any:
    """A provider's POST, to a site configured for that provider."""
    token = base64.b64encode(auth.encode()).decode()
    body = payload if isinstance(payload, str) else json.dumps(payload)
    with override_settings(PAPERBOY_WEBHOOK_PROVIDER=esp):
        return client.post(
            f"/anymail/{esp}/tracking/",
            body,
            content_type="application/json",
            headers={"Authorization": f"Basic {token}"},
        )


def postmark(
    record: str, kind: str, email: str, event_id: int, **extra: object
) -> dict[str, object]:
    return {
        "RecordType": record,
        "MessageStream": "outbound",
        "ID": event_id,
        "Type": kind,
        "TypeCode": 1,
        "Name": kind,
        "Tag": "digest",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "digest@papers.example.org",
        "BouncedAt": "2026-01-08T07:05:00Z",
        "Inactive": True,
        "CanActivate": True,
        "Subject": "10 papers for you",
        **extra,
    }


def test_a_hard_bounce_suppresses_at_once_and_finds_its_delivery(client: Client) -> None:
    alice = make_subscriber("alice@example.org", "active")
    delivery = Delivery.objects.create(
        subscriber=alice,
        digest_date="2026-01-08",
        period_start="2026-01-07",
        period_end="2026-01-07",
        status="sent",
    )
    payload = postmark(
        "Bounce",
        "HardBounce",
        "Alice@Example.org",
        4323372036854775807,
        Metadata={"delivery": str(delivery.public_id)},
    )
    assert post(client, "postmark", payload).status_code == 200
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.BOUNCED
    event = EmailEvent.objects.get()
    assert (event.provider, event.event_type, event.delivery, event.subscriber) == (
        "Postmark",
        "bounced",
        delivery,
        alice,
    )


def test_a_replayed_event_is_stored_once(client: Client) -> None:
    make_subscriber("alice@example.org", "active")
    payload = postmark("SpamComplaint", "SpamComplaint", "alice@example.org", 42)
    assert post(client, "postmark", payload).status_code == 200
    assert post(client, "postmark", payload).status_code == 200
    assert EmailEvent.objects.count() == 1
    assert Subscriber.objects.get().status == Subscriber.Status.COMPLAINED


def test_soft_bounces_suppress_only_after_the_limit(client: Client, settings: Any) -> None:
    settings.PAPERBOY_SOFT_BOUNCE_LIMIT = 3
    make_subscriber("alice@example.org", "active")
    for n in (1, 2):
        post(client, "postmark", postmark("Bounce", "SoftBounce", "alice@example.org", n))
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    post(client, "postmark", postmark("Bounce", "SoftBounce", "alice@example.org", 3))
    assert Subscriber.objects.get().status == Subscriber.Status.BOUNCED


def test_an_unknown_recipient_is_stored_and_answered_200(client: Client) -> None:
    payload = postmark("Bounce", "HardBounce", "nobody@example.org", 7)
    assert post(client, "postmark", payload).status_code == 200
    assert EmailEvent.objects.get().subscriber is None


def test_a_webhook_without_the_secret_is_refused(client: Client) -> None:
    make_subscriber("alice@example.org", "active")
    response = post(
        client, "postmark", postmark("Bounce", "HardBounce", "alice@example.org", 8), auth="x:y"
    )
    assert response.status_code == 401
    assert (
        Subscriber.objects.get().status == Subscriber.Status.ACTIVE
        and not EmailEvent.objects.exists()
    )


@pytest.mark.parametrize("body", ["{not json", "[]", json.dumps({"RecordType": "Bounce"})])
def test_a_malformed_payload_is_never_a_server_error(client: Client, body: str) -> None:
    assert post(client, "postmark", body).status_code in (200, 400)


def mailgun(
    event: str, severity: str, recipient: str, delivery: str = "", key: str = MAILGUN_KEY
) -> dict[str, object]:
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event,
            "severity": severity,
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": 1736320000.0,
            "recipient": recipient,
            "reason": "bounce",
            "user-variables": {"delivery": delivery} if delivery else {},
            "message": {"headers": {"message-id": "20260108.1@papers.example.org"}},
            "delivery-status": {"code": 550, "message": "5.1.1 No such user", "description": ""},
        },
    }


def test_mailgun_signed_permanent_failure_suppresses(client: Client) -> None:
    make_subscriber("bob@example.org", "active")
    assert (
        post(client, "mailgun", mailgun("failed", "permanent", "bob@example.org")).status_code
        == 200
    )
    assert Subscriber.objects.get().status == Subscriber.Status.BOUNCED


def test_mailgun_temporary_failure_is_a_soft_bounce(client: Client) -> None:
    make_subscriber("bob@example.org", "active")
    assert (
        post(client, "mailgun", mailgun("failed", "temporary", "bob@example.org")).status_code
        == 200
    )
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert EmailEvent.objects.get().event_type == "deferred"


def test_mailgun_with_a_forged_signature_is_refused(client: Client) -> None:
    make_subscriber("bob@example.org", "active")
    forged = mailgun("failed", "permanent", "bob@example.org", key="not-the-key")
    assert post(client, "mailgun", forged).status_code == 403
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


def sns(ses_event: dict[str, object], message_id: str) -> tuple[dict[str, object], dict[str, str]]:
    envelope: dict[str, object] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:paperboy-ses",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-01-08T07:05:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
    }
    return envelope, {"X-Amz-Sns-Message-Type": "Notification", "X-Amz-Sns-Message-Id": message_id}


def ses_bounce(kind: str, email: str) -> dict[str, object]:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "timestamp": "2026-01-08T07:05:00.000Z",
            "feedbackId": "0100017c-bounce",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
        },
        "mail": {
            "timestamp": "2026-01-08T07:00:00.000Z",
            "messageId": "0100017c-ses-message",
            "source": "digest@papers.example.org",
            "destination": [email],
            "tags": {"ses:configuration-set": ["paperboy"]},
        },
    }


def post_sns(client: Client, envelope: dict[str, object], headers: dict[str, str]) -> Any:
    token = base64.b64encode(AUTH.encode()).decode()
    with override_settings(PAPERBOY_WEBHOOK_PROVIDER="amazon_ses"):
        return client.post(
            "/anymail/amazon_ses/tracking/",
            json.dumps(envelope),
            content_type="text/plain",
            headers={"Authorization": f"Basic {token}", **headers},
        )


def test_amazon_ses_permanent_bounce_in_an_sns_envelope_suppresses(client: Client) -> None:
    make_subscriber("carol@example.org", "active")
    envelope, headers = sns(ses_bounce("Permanent", "carol@example.org"), "sns-1")
    assert post_sns(client, envelope, headers).status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.BOUNCED


def test_amazon_ses_transient_bounce_is_soft(client: Client) -> None:
    make_subscriber("carol@example.org", "active")
    envelope, headers = sns(ses_bounce("Transient", "carol@example.org"), "sns-2")
    assert post_sns(client, envelope, headers).status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert EmailEvent.objects.count() == 1


def test_amazon_ses_unknown_sns_type_is_a_400(client: Client) -> None:
    envelope, headers = sns(ses_bounce("Permanent", "carol@example.org"), "sns-3")
    envelope["Type"] = headers["X-Amz-Sns-Message-Type"] = "Surprise"
    assert post_sns(client, envelope, headers).status_code == 400


def brevo(event: str, email: str, event_id: int) -> dict[str, object]:
    return {
        "event": event,
        "email": email,
        "id": event_id,
        "date": "2026-01-08 08:05:00",
        "ts": 1736323500,
        "message-id": "<202601080705.1@papers.example.org>",
        "ts_event": 1736323500,
        "ts_epoch": 1736323500123,
        "subject": "10 papers for you",
        "tag": "digest",
        "sending_ip": "185.41.28.109",
        "reason": "550 5.1.1 unknown user",
    }


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("hard_bounce", "bounced"),
        ("spam", "complained"),
        ("unsubscribe", "unsubscribed"),
        ("soft_bounce", "active"),
    ],
)
def test_brevo_events(client: Client, event: str, status: str) -> None:
    make_subscriber("dan@example.org", "active")
    assert post(client, "brevo", brevo(event, "dan@example.org", 101)).status_code == 200
    assert Subscriber.objects.get().status == status


def resend(kind: str, email: str) -> dict[str, object]:
    return {
        "type": kind,
        "created_at": "2026-01-08T07:05:00.000Z",
        "data": {
            "created_at": "2026-01-08T07:00:00.000Z",
            "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
            "from": "Paperboy <digest@papers.example.org>",
            "to": [email],
            "subject": "10 papers for you",
            "bounce": {
                "message": "The recipient's mailbox does not exist.",
                "subType": "General",
                "type": "Permanent",
            },
        },
    }


@pytest.mark.parametrize(
    ("kind", "status"), [("email.bounced", "bounced"), ("email.complained", "complained")]
)
def test_resend_events(client: Client, kind: str, status: str) -> None:
    make_subscriber("erin@example.org", "active")
    assert post(client, "resend", resend(kind, "erin@example.org")).status_code == 200
    assert Subscriber.objects.get().status == status
