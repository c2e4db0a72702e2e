"""Addresses that pass a syntax check but cannot be sent as written: refused at signup
with a clear message, and, when such a row is already stored, refused at send without
holding up anyone else."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from newsletter import abuse
from newsletter.addresses import BadAddress, address_clean
from newsletter.mailings import confirmations_send_due
from newsletter.models import Delivery, EmailEvent, Subscriber
from newsletter.planning import digest_plan, subscribers_for_date
from newsletter.sending import deliveries_send
from newsletter.subscriber_csv import subscribers_import
from newsletter.subscriptions import confirmation_request
from papers.models import Paper
from tests.conftest import Inbox, make_subscriber

pytestmark = pytest.mark.django_db
POISON = [
    "=?utf-8?b?zxzpba==?=@example.org",  # does not encode at all
    "=?utf-8?q?p0=0d=0ax?=@example.org",  # decodes to a newline
    "=?utf-8?q?victim=40other.example?=@example.org",  # decodes to another mailbox
]
THURSDAY = date(2026, 1, 8)


def signup(client: Client, email: str) -> Any:
    stamp = abuse.stamp_issue(issued_at=time.time() - 60)
    return client.post(reverse("signup"), {"email": email, "stamp": stamp})


@pytest.mark.parametrize("email", [*POISON, "jörg@example.org"])
def test_signup_refuses_it_with_a_message_and_stores_nothing(client: Client, email: str) -> None:
    page = signup(client, email)
    assert page.status_code == 200 and b"Check your inbox" not in page.content
    text = page.content.decode()
    reasons = ("could not be delivered as written", "before the @", "Enter a valid email")
    assert any(reason in text for reason in reasons)
    assert not Subscriber.objects.exists()


def test_ordinary_and_international_domain_addresses_are_still_welcome(client: Client) -> None:
    for email in ("a.b+papers@example.org", "reader@bücher.de"):
        assert signup(client, email).status_code == 302
    assert Subscriber.objects.count() == 2


@pytest.mark.parametrize("email", POISON)
def test_the_subscribe_command_and_the_csv_import_refuse_it(email: str) -> None:
    with pytest.raises(BadAddress):
        address_clean(email)
    with pytest.raises(CommandError, match="delivered as written"):
        call_command("subscribe", email)
    report = subscribers_import(data=f"email\n{email}\n".encode(), consented=True, dry_run=False)
    assert report.errors == 1 and "delivered as written" in " ".join(report.rows[0].notes)
    assert not Subscriber.objects.exists()


def test_stored_poison_confirmations_are_refused_and_the_rest_go_out(
    smtp_settings: Inbox,
) -> None:
    """Rows stored before signup refused them: each fails alone, is marked, never
    retried, and the good address behind them gets its email in the same run."""
    for email in POISON:
        Subscriber.objects.create(email=email, status="pending")
    make_subscriber("good@example.org", "pending")
    confirmation_request(subscriber=Subscriber.objects.get(email="good@example.org"))
    for subscriber in Subscriber.objects.all():
        confirmation_request(subscriber=subscriber)
    counts = confirmations_send_due()
    assert (counts.sent, counts.failed, counts.retry) == (1, 3, 0)
    assert smtp_settings.recipients() == {"good@example.org": 1}
    poisoned = Subscriber.objects.exclude(email="good@example.org")
    assert set(poisoned.values_list("status", flat=True)) == {"bounced"}
    assert not Subscriber.objects.filter(confirmation_due__isnull=False).exists()
    assert EmailEvent.objects.filter(event_type="rejected").count() == 3
    assert confirmations_send_due().failed == 0  # never tried again


def test_a_stored_poison_digest_fails_alone_and_is_suppressed(
    smtp_settings: Inbox, sample_week: list[Paper]
) -> None:
    for email in POISON:
        make_subscriber(email, "active", ["agents", "reasoning"])
    make_subscriber("good@example.org", "active", ["agents", "reasoning"])
    counts = digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    ids = sorted(counts.delivery_ids)
    sent = deliveries_send(delivery_ids=ids)
    assert (sent.sent, sent.failed, sent.retry_ids) == (1, 3, [])
    assert smtp_settings.recipients() == {"good@example.org": 1}
    assert "victim@other.example" not in str(smtp_settings.messages[0]["To"])
    failed = Delivery.objects.filter(status="failed").values_list("subscriber__status", flat=True)
    assert list(failed) == ["bounced"] * 3
