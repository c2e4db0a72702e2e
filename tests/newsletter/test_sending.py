"""Sending over a real SMTP server on loopback: transient errors go back to the queue,
permanent ones fail the delivery with the reason, the rest of the chunk goes out."""

from __future__ import annotations

import contextlib
import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from anymail.signals import AnymailTrackingEvent
from django.core.cache import cache
from django.utils import timezone
from redis.exceptions import RedisError

from newsletter import pacing
from newsletter.models import Delivery, Subscriber
from newsletter.pacing import send_slot, throttle_note
from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
from newsletter.sending import (
    RESENDABLE,
    Lease,
    deliveries_defer,
    deliveries_recover,
    deliveries_requeue,
    deliveries_send,
    delivery_claim,
    is_throttled,
    is_transient,
    is_unknown_outcome,
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
    assert delivery_claim(delivery_id=delivery_id) is not None  # the claim's time
    assert delivery_claim(delivery_id=delivery_id) is None


def test_a_success_is_recorded_with_the_next_claim_even_when_that_claim_fails(
    sample_week: list[Paper],
) -> None:
    first, second = plan_for("a@example.org", "b@example.org")
    claimed_at = delivery_claim(delivery_id=first)
    assert claimed_at and delivery_claim(delivery_id=second)
    # The second is taken already: no claim, but the first's success is written.
    record = (first, "<m@paperboy>", "p-1", claimed_at)
    assert delivery_claim(delivery_id=second, record=record) is None
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
    # The chunk's lease; claim a; record a + claim b; record b + claim c; record c.
    # SQLite has no data-modifying WITH, so there each pair is two statements in one
    # transaction.
    assert len(writes) == (5 if connection.vendor == "postgresql" else 7)
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
    """Its lease (PAPERBOY_SEND_LEASE, 90 s at the defaults) runs out, and the next
    recovery sends it again: minutes, not the quarter of an hour of a fixed wait."""
    from newsletter.tasks import recover_deliveries

    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    [delivery_id] = plan_for("a@example.org")
    assert delivery_claim(delivery_id=delivery_id)  # then the worker was killed
    assert Delivery.objects.get().lease_until == datetime(2026, 1, 8, 7, 1, 30, tzinfo=UTC)
    time_machine.move_to(datetime(2026, 1, 8, 7, 1, 0, tzinfo=UTC), tick=False)
    assert recover_deliveries()["stuck"] == 0  # it may still be working
    time_machine.move_to(datetime(2026, 1, 8, 7, 1, 31, tzinfo=UTC), tick=False)
    assert recover_deliveries() == {"stuck": 1, "expired": 0, "orphaned": 0, "unknown": 0}
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 2
    assert delivery.recoveries == 1 and delivery.lease_until is None
    assert [m["To"] for m in smtp_settings.messages] == ["a@example.org"]


def test_the_rest_of_a_dead_workers_chunk_goes_out_when_its_lease_ends(
    sample_week: list[Paper], smtp_settings: Inbox, time_machine: Any
) -> None:
    from newsletter.tasks import recover_deliveries

    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    ids = plan_for("a@example.org", "b@example.org")
    Lease(ids).renew()  # the worker took the chunk and died before its first claim
    assert Delivery.objects.get(pk=ids[0]).waiting_reason() == "its chunk is with a worker"
    time_machine.move_to(datetime(2026, 1, 8, 7, 1, 31, tzinfo=UTC), tick=False)
    assert "its worker stopped" in Delivery.objects.get(pk=ids[0]).waiting_reason()
    assert recover_deliveries()["expired"] == 2
    assert smtp_settings.recipients() == {"a@example.org": 1, "b@example.org": 1}


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_renews_the_lease_while_the_chunk_runs(
    sample_week: list[Paper], settings: Any
) -> None:
    """Whatever the sending thread is blocked on (a slow server, a throttling pause),
    the heartbeat thread renews the lease every third of it."""
    settings.PAPERBOY_SEND_LEASE = 0.6
    [delivery_id] = plan_for("a@example.org")
    with Lease([delivery_id]):
        taken = Delivery.objects.get().lease_until
        renewed = taken
        for _ in range(100):  # this thread is blocked, as in a send that takes long
            time.sleep(0.05)
            renewed = Delivery.objects.get().lease_until
            if renewed != taken:
                break
    assert taken is not None and renewed is not None and renewed > taken


def test_deliveries_whose_queue_was_lost_are_queued_again_at_once(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    """Redis restarted empty: its epoch is new, so whatever waited in the old queue is
    queued again by the next recovery, however recently it was planned."""
    ids = plan_for("a@example.org", "b@example.org")
    Delivery.objects.update(queued_at=timezone.now(), queue_epoch="before-the-restart")
    assert deliveries_recover(epoch="before-the-restart").ids == []  # its task is queued
    recovery = deliveries_recover(epoch="after-the-restart")
    assert recovery.orphaned == ids and recovery.counts()["orphaned"] == 2


def test_a_delivery_never_queued_is_queued_after_the_grace(
    sample_week: list[Paper], time_machine: Any
) -> None:
    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    [delivery_id] = plan_for("a@example.org")  # planning died before it queued the send
    assert Delivery.objects.get().waiting_reason() == (
        "planned, not queued yet: recovery queues it"
    )
    time_machine.move_to(datetime(2026, 1, 8, 7, 4, tzinfo=UTC), tick=False)
    assert deliveries_recover(epoch="e").ids == []
    time_machine.move_to(datetime(2026, 1, 8, 7, 5, 1, tzinfo=UTC), tick=False)
    assert deliveries_recover(epoch="e").orphaned == [delivery_id]


def test_an_unknown_outcome_nothing_settles_is_sent_again_with_its_message_id(
    sample_week: list[Paper], smtp_settings: Inbox, settings: Any, time_machine: Any
) -> None:
    """SMTP has no provider event: after PAPERBOY_UNKNOWN_RESEND_AFTER (2 minutes) the
    digest goes out again with the same Message-ID, at most PAPERBOY_UNKNOWN_RESENDS
    times; after that it waits for an admin."""
    from newsletter.tasks import recover_deliveries

    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=True)
    smtp_settings.drop_after_data = 1
    [delivery_id] = plan_for("a@example.org")
    assert deliveries_send(delivery_ids=[delivery_id]).unknown == 1
    unknown = Delivery.objects.get()
    assert unknown.status == Delivery.Status.UNKNOWN and unknown.message_id
    assert "sent again with the same Message-ID 2 minutes after it" in unknown.waiting_reason()
    assert recover_deliveries()["unknown"] == 0
    time_machine.move_to(datetime(2026, 1, 8, 7, 2, 5, tzinfo=UTC), tick=True)
    assert recover_deliveries()["unknown"] == 1
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.resends == 1
    first, second = smtp_settings.messages
    assert first["Message-ID"] == second["Message-ID"] == delivery.message_id
    Delivery.objects.update(
        status=Delivery.Status.UNKNOWN, resends=settings.PAPERBOY_UNKNOWN_RESENDS
    )
    time_machine.move_to(datetime(2026, 1, 8, 9, 0, tzinfo=UTC), tick=True)
    assert recover_deliveries()["unknown"] == 0
    assert "settle it by hand" in Delivery.objects.get().waiting_reason()


def test_a_resend_by_an_admin_is_a_new_message(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    [delivery_id] = plan_for("a@example.org")
    deliveries_send(delivery_ids=[delivery_id])
    first = Delivery.objects.get().message_id
    assert deliveries_requeue(delivery_ids=[delivery_id], statuses=RESENDABLE) == [delivery_id]
    deliveries_send(delivery_ids=[delivery_id])
    assert Delivery.objects.get().message_id != first
    assert len({m["Message-ID"] for m in smtp_settings.messages}) == 2


def test_a_deferred_message_is_tried_again_in_the_same_chunk(
    sample_week: list[Paper], smtp_settings: Inbox, settings: Any
) -> None:
    """451 twice for b: a, c go out, then b on the second quick retry; nothing waits
    for the queue, and no one gets two copies."""
    settings.PAPERBOY_SEND_QUICK_RETRY_DELAY = 0.01
    smtp_settings.defer_first["b@example.org"] = 2
    ids = plan_for("a@example.org", "b@example.org", "c@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert (counts.sent, counts.retry_ids, counts.outage) == (3, [], False)
    assert set(smtp_settings.recipients().values()) == {1}
    assert Delivery.objects.get(subscriber__email="b@example.org").attempts == 3


def test_what_still_fails_after_the_quick_retries_waits_with_its_reason(
    sample_week: list[Paper], smtp_settings: Inbox, settings: Any, time_machine: Any
) -> None:
    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    settings.PAPERBOY_SEND_QUICK_RETRY_DELAY = 0.0
    smtp_settings.defer_first["b@example.org"] = 5
    ids = plan_for("a@example.org", "b@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert counts.sent == 1 and counts.retry_ids == [ids[1]] and not counts.outage
    retry_at = datetime(2026, 1, 8, 7, 0, 4, tzinfo=UTC)
    assert deliveries_defer(delivery_ids=counts.retry_ids, retry_at=retry_at) == [ids[1]]
    waiting = Delivery.objects.get(pk=ids[1])
    assert waiting.retry_at == retry_at and waiting.attempts == 3
    assert waiting.lease_until == retry_at + timedelta(seconds=settings.PAPERBOY_SEND_LEASE)
    assert waiting.waiting_reason().startswith("tried again at 07:00:04 UTC (retrying after:")
    assert "451" in waiting.waiting_reason()


def test_a_delivery_still_refused_a_day_after_planning_fails(
    sample_week: list[Paper], time_machine: Any
) -> None:
    time_machine.move_to(datetime(2026, 1, 8, 7, 0, tzinfo=UTC), tick=False)
    [delivery_id] = plan_for("a@example.org")
    Delivery.objects.update(attempts=40, error="retrying after: 451 try later")
    time_machine.move_to(datetime(2026, 1, 9, 6, 59, tzinfo=UTC), tick=False)
    assert deliveries_defer(delivery_ids=[delivery_id], retry_at=timezone.now()) == [delivery_id]
    time_machine.move_to(datetime(2026, 1, 9, 7, 1, tzinfo=UTC), tick=False)
    assert deliveries_defer(delivery_ids=[delivery_id], retry_at=timezone.now()) == []
    failed = Delivery.objects.get()
    assert failed.status == Delivery.Status.FAILED
    assert failed.error == (
        "gave up: still refused for now a day after planning; last retrying after: 451 try later"
    )


def test_an_admins_retry_starts_afresh(sample_week: list[Paper]) -> None:
    [delivery_id] = plan_for("a@example.org")
    Delivery.objects.update(status="failed", attempts=12, resends=2, queued_at=timezone.now())
    assert deliveries_requeue(delivery_ids=[delivery_id], statuses=RESENDABLE) == [delivery_id]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.resends) == ("planned", 0, 0)
    assert delivery.queued_at is None  # recovery queues it if the caller does not


def test_a_late_answer_after_another_claim_changes_nothing(
    sample_week: list[Paper], smtp_settings: Inbox
) -> None:
    """Recovery gave a delivery to another worker: the first worker's late success is
    fenced by its claim's time and leaves the new claim alone."""
    from newsletter.sending import _mark_sent

    [delivery_id] = plan_for("a@example.org")
    first = delivery_claim(delivery_id=delivery_id)
    assert first is not None
    Delivery.objects.update(status="planned")  # recovery took it back
    second = delivery_claim(delivery_id=delivery_id)
    assert second is not None and second != first
    _mark_sent((delivery_id, "<late@x>", "", first))
    delivery = Delivery.objects.get()
    assert delivery.status == "sending" and delivery.claimed_at == second
    _mark_sent((delivery_id, "<b@x>", "", second))
    assert Delivery.objects.get().status == "sent"


def test_an_unreachable_server_is_an_outage(sample_week: list[Paper], settings: Any) -> None:
    from tests.conftest import free_port

    settings.EMAIL_BACKEND = "newsletter.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    ids = plan_for("a@example.org", "b@example.org")
    counts = deliveries_send(delivery_ids=ids)
    assert counts.outage and counts.retry_ids == ids and counts.sent == 0


def test_throttling_pauses_every_sender_and_fails_nothing(
    sample_week: list[Paper], smtp_settings: Inbox, settings: Any, fresh_pace: None
) -> None:
    """SES's 454: the message is tried again after a pause shared by all workers."""
    settings.PAPERBOY_SEND_THROTTLE_PAUSE = 0.2
    settings.PAPERBOY_SEND_QUICK_RETRY_DELAY = 0.01
    ids = plan_for("a@example.org", "b@example.org")
    smtp_settings.throttle_until = time.time() + 0.1
    started = time.monotonic()
    counts = deliveries_send(delivery_ids=ids)
    assert counts.sent == 2 and counts.failed == 0 and counts.throttled >= 1
    assert time.monotonic() - started >= 0.2
    assert smtp_settings.throttled >= 1


@pytest.mark.parametrize(
    ("code", "text", "throttled"),
    [
        (454, "4.7.0 Throttling failure: Maximum sending rate exceeded.", True),
        (421, "4.7.0 Try again later, closing connection.", True),
        (450, "4.2.1 The user you are trying to contact is receiving mail at a rate", True),
        (451, "4.3.0 Try again later", False),
        (550, "5.7.1 Rate limited for good", False),
    ],
)
def test_throttling_answers_are_told_apart(code: int, text: str, throttled: bool) -> None:
    assert is_throttled(smtplib.SMTPDataError(code, text)) is throttled


def test_an_api_429_is_throttling() -> None:
    from anymail.exceptions import AnymailAPIError

    error = AnymailAPIError("Too many requests", status_code=429)
    assert is_throttled(error) and is_transient(error)


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


@pytest.fixture
def fresh_pace() -> Iterator[None]:
    """No pace or throttle left over from another test."""
    pacing._local_next[0] = 0.0
    cache.delete(pacing.LEVEL_KEY)
    yield
    pacing._local_next[0] = 0.0
    with contextlib.suppress(RedisError):  # a test pointed the cache at no server
        cache.delete(pacing.LEVEL_KEY)


def test_the_send_rate_spaces_messages_evenly(fresh_pace: None) -> None:
    """Eleven sends at 50 a second: each one a fiftieth of a second after the last, with
    no burst at the start."""
    slept: list[float] = []
    send_slot(rate=50, sleep=slept.append)
    first = pacing._local_next[0] - 0.02  # the moment the first send was given
    for _ in range(10):
        send_slot(rate=50, sleep=slept.append)
    # Each send took the next free moment, one interval after the last: no two together.
    assert pacing._local_next[0] == pytest.approx(first + 11 * 0.02)
    assert len(slept) == 10 and slept == sorted(slept)  # each waited longer than the last


def test_a_throttle_pause_doubles_while_it_goes_on(settings: Any, fresh_pace: None) -> None:
    """Every process meeting the same throttle shares one pause; a throttle met again
    after it doubles the pause, up to 30 seconds."""
    settings.PAPERBOY_SEND_THROTTLE_PAUSE = 0.05
    cache.delete("send-pace:throttles")
    assert throttle_note() == 0.05
    assert throttle_note() <= 0.05  # the same episode: no doubling
    slept: list[float] = []
    assert send_slot(rate=0, sleep=slept.append) > 0.03 and slept
    time.sleep(0.06)
    assert throttle_note() == 0.1
    time.sleep(0.11)
    assert throttle_note() == 0.2
    settings.PAPERBOY_SEND_THROTTLE_PAUSE = 20
    time.sleep(0.21)
    assert throttle_note() == 30  # 20 x 8, at most 30


def test_pacing_goes_on_alone_while_redis_is_down(settings: Any, fresh_pace: None) -> None:
    """A Redis that cannot be reached does not stop a chunk: each process keeps its own
    pace, and a throttle still pauses the process that met it."""
    from tests.conftest import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    slept: list[float] = []
    for _ in range(3):
        send_slot(rate=100, sleep=slept.append)
    assert len(slept) == 2  # the first goes at once, the next two wait their turn
    settings.PAPERBOY_SEND_THROTTLE_PAUSE = 0.05
    assert throttle_note() == 0.05
    assert send_slot(rate=0) > 0  # the pause holds this process too
