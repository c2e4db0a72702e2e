"""Sending over a real SMTP server on loopback: transient errors go back to the queue,
permanent ones fail the delivery with the reason, the rest of the chunk goes out."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from anymail.signals import AnymailTrackingEvent

from newsletter.models import Delivery, Subscriber
from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
from newsletter.sending import (
    deliveries_send,
    delivery_claim,
    is_transient,
    is_unknown_outcome,
    send_slot,
)
from newsletter.tracking import event_record
from papers.models import Paper
from tests.conftest import Inbox, make_subscriber

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)


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


def test_a_digest_that_cannot_be_built_fails_alone(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    ids = plan_for("a@example.org", "b@example.org", "c@example.org")
    broken = Delivery.objects.get(subscriber__email="b@example.org")
    broken.items.all().delete()  # nothing to render: the template cannot name a top paper
    counts = deliveries_send(delivery_ids=ids)
    assert (counts.sent, counts.failed) == (2, 1)
    broken.refresh_from_db()
    assert broken.status == Delivery.Status.FAILED and broken.error


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
    settings.EMAIL_BACKEND = "newsletter.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    ids = plan_for("a@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert counts.retry_ids == ids
    assert Delivery.objects.get().status == Delivery.Status.PLANNED


def test_only_one_caller_can_claim_a_delivery(sample_week: list[Paper]) -> None:
    [delivery_id] = plan_for("a@example.org")
    assert delivery_claim(delivery_id=delivery_id) is True
    assert delivery_claim(delivery_id=delivery_id) is False


def test_a_success_is_recorded_with_the_next_claim_even_when_that_claim_fails(
    sample_week: list[Paper],
) -> None:
    first, second = plan_for("a@example.org", "b@example.org")
    assert delivery_claim(delivery_id=first) and delivery_claim(delivery_id=second)
    # The second is taken already: no claim, but the first's success is written.
    assert delivery_claim(delivery_id=second, record=(first, "<m@paperboy>", "p-1")) is False
    sent = Delivery.objects.get(pk=first)
    assert (sent.status, sent.message_id, sent.provider_id) == ("sent", "<m@paperboy>", "p-1")
    assert Delivery.objects.get(pk=second).status == Delivery.Status.SENDING


def test_each_message_costs_one_statement_to_record_and_claim(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ids = plan_for("a@example.org", "b@example.org", "c@example.org")
    with CaptureQueriesContext(connection) as queries:
        assert deliveries_send(delivery_ids=ids).sent == 3
    writes = [q["sql"] for q in queries if q["sql"].lstrip().startswith(("UPDATE", "WITH"))]
    # Claim a; record a + claim b; record b + claim c; record c. SQLite has no
    # data-modifying WITH, so there each pair is two statements in one transaction.
    assert len(writes) == (4 if connection.vendor == "postgresql" else 6)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


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

    from newsletter.tasks import recover_deliveries

    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    [delivery_id] = plan_for("a@example.org")
    assert delivery_claim(delivery_id=delivery_id)  # then the worker was killed
    time_machine.move_to(datetime(2026, 1, 8, 7, 10, tzinfo=UTC), tick=False)
    assert recover_deliveries() == {"recovered": 0, "requeued": 0}  # it may still be working
    time_machine.move_to(datetime(2026, 1, 8, 7, 20, tzinfo=UTC), tick=False)
    assert recover_deliveries() == {"recovered": 1, "requeued": 0}
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 2
    assert [m["To"] for m in smtp_settings.messages] == ["a@example.org"]


def test_a_lost_answer_marks_the_delivery_unknown_not_retried(
    sample_week: list[Paper], smtp_settings: Inbox, settings: Any
) -> None:
    """The server took b's message but its answer came after the client gave up: the
    delivery is neither retried (a second copy) nor failed (maybe a lost digest)."""
    settings.EMAIL_TIMEOUT = 0.5
    smtp_settings.stall["b@example.org"] = 1.5
    ids = plan_for("a@example.org", "b@example.org", "c@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert (counts.sent, counts.unknown, counts.failed, counts.retry_ids) == (2, 1, 0, [])
    unknown = Delivery.objects.get(status=Delivery.Status.UNKNOWN)
    assert unknown.subscriber.email == "b@example.org"
    assert unknown.message_id and "outcome unknown" in unknown.error
    assert smtp_settings.recipients() == {
        "a@example.org": 1,
        "b@example.org": 1,
        "c@example.org": 1,
    }


@pytest.mark.parametrize(
    ("event_type", "status"),
    [("delivered", Delivery.Status.SENT), ("bounced", Delivery.Status.FAILED)],
)
def test_the_providers_webhook_settles_an_unknown_delivery(
    sample_week: list[Paper], event_type: str, status: str
) -> None:
    [delivery_id] = plan_for("a@example.org")
    Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.UNKNOWN)
    delivery = Delivery.objects.get()
    event = AnymailTrackingEvent(
        event_type=event_type,
        event_id=f"evt-{event_type}",
        recipient="a@example.org",
        metadata={"delivery": str(delivery.public_id)},
        description="mailbox does not exist" if event_type == "bounced" else "",
        esp_event={},
    )
    event_record(event=event, esp_name="Postmark")
    delivery.refresh_from_db()
    assert delivery.status == status


def test_an_api_read_timeout_is_unknown_a_connect_timeout_is_transient() -> None:
    def anymail_error(cause: type[Exception]) -> Exception:
        kind = type("AnymailRequestsAPIError", (AnymailRequestsAPIError, cause), {})
        return kind("Error posting to https://api.example/send")

    read, connect = anymail_error(requests.ReadTimeout), anymail_error(requests.ConnectTimeout)
    assert is_unknown_outcome(read)
    assert not is_unknown_outcome(connect) and is_transient(connect)


def test_the_send_rate_holds_per_second() -> None:
    """Twelve sends at 5 a second: never more than five in one second of the clock."""
    clock = [1000.2]
    granted: list[float] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    for _ in range(12):
        send_slot(rate=5, clock=lambda: clock[0], sleep=sleep)
        granted.append(clock[0])
    per_second = Counter(int(t) for t in granted)
    assert max(per_second.values()) == 5 and sorted(per_second) == [1000, 1001, 1002]


def test_a_slow_rate_spaces_messages_out() -> None:
    clock = [50.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    waits = [send_slot(rate=0.5, clock=lambda: clock[0], sleep=sleep) for _ in range(3)]
    assert waits[0] == 0 and all(1.9 < w < 2.1 for w in waits[1:])
