"""Sending over a real SMTP server on loopback: transient errors go back to the queue,
permanent ones fail the delivery with the reason, the rest of the chunk goes out."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from newsletter.models import Delivery, Subscriber
from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
from newsletter.sending import deliveries_send, delivery_claim
from papers.models import Paper
from tests.conftest import Inbox, make_subscriber

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)


@pytest.fixture
def smtp_settings(settings: Any, smtp_server: tuple[Inbox, int]) -> Inbox:
    inbox, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    return inbox


def plan_for(*emails: str) -> list[int]:
    for email in emails:
        make_subscriber(email, "active")
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    return list(planned_ids(THURSDAY))


def test_a_chunk_goes_out_over_one_connection(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    ids = plan_for("a@example.org", "b@example.org", "c@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert (counts.sent, counts.failed, counts.retry_ids) == (3, 0, [])
    assert sorted(m["To"] for m in smtp_settings.messages) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_permanent_refusal_fails_that_delivery_only(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    smtp_settings.refuse["b@example.org"] = "550 5.1.1 No such user"
    ids = plan_for("a@example.org", "b@example.org", "c@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert (counts.sent, counts.failed) == (2, 1)
    failed = Delivery.objects.get(status=Delivery.Status.FAILED)
    assert failed.subscriber.email == "b@example.org"
    assert "No such user" in failed.error


def test_a_transient_refusal_goes_back_to_the_queue(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    smtp_settings.refuse["b@example.org"] = "451 4.3.0 Try again later"
    ids = plan_for("a@example.org", "b@example.org")
    counts = deliveries_send(delivery_ids=ids)
    waiting = Delivery.objects.get(subscriber__email="b@example.org")
    assert counts.retry_ids == [waiting.pk]
    assert waiting.status == Delivery.Status.PLANNED and "Try again later" in waiting.error
    del smtp_settings.refuse["b@example.org"]
    assert deliveries_send(delivery_ids=counts.retry_ids).sent == 1
    assert len(smtp_settings.messages) == 2


def test_a_server_that_is_down_loses_nothing(sample_week: list[Paper], settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    ids = plan_for("a@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert counts.retry_ids == ids
    assert Delivery.objects.get().status == Delivery.Status.PLANNED


def test_only_one_caller_can_claim_a_delivery(sample_week: list[Paper]) -> None:
    [delivery_id] = plan_for("a@example.org")
    assert delivery_claim(delivery_id=delivery_id) is True
    assert delivery_claim(delivery_id=delivery_id) is False


def test_a_reader_who_unsubscribed_after_planning_gets_nothing(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    ids = plan_for("a@example.org")
    Subscriber.objects.update(status=Subscriber.Status.UNSUBSCRIBED)
    counts = deliveries_send(delivery_ids=ids)
    assert (counts.sent, counts.not_claimed) == (0, 1)
    assert not smtp_settings.messages
    assert Delivery.objects.get().status == Delivery.Status.SKIPPED


def test_deliveries_a_dead_worker_left_in_sending_go_out_again(
    sample_week: list[Paper], smtp_settings: Inbox, time_machine: Any
) -> None:
    from datetime import UTC, datetime

    from newsletter.tasks import recover_stuck_deliveries

    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    [delivery_id] = plan_for("a@example.org")
    assert delivery_claim(delivery_id=delivery_id)  # then the worker was killed
    time_machine.move_to(datetime(2026, 1, 8, 7, 10, tzinfo=UTC), tick=False)
    assert recover_stuck_deliveries() == {"recovered": 0}  # it may still be working
    time_machine.move_to(datetime(2026, 1, 8, 7, 20, tzinfo=UTC), tick=False)
    assert recover_stuck_deliveries() == {"recovered": 1}
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 2
    assert [m["To"] for m in smtp_settings.messages] == ["a@example.org"]
