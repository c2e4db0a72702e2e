"""The confirmation outbox: a confirmation email owed is a mark on the subscriber's row,
written with the signup; workers send what is owed, once each, and keep owing what a
provider outage stopped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.core import mail
from django.db import connection
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery import app
from newsletter import mailings, subscriptions
from newsletter.account import subscriber_erase
from newsletter.mailings import CONFIRMATION_LEASE, confirmations_send_due
from newsletter.models import Subscriber, Topic
from newsletter.subscriptions import confirmation_request, subscriber_signup
from newsletter.tasks import send_confirmation, send_due_confirmations
from tests.conftest import Inbox, free_port, make_subscriber, need_postgres, need_redis
from tests.integration.conftest import reset_connections

pytestmark = pytest.mark.django_db


@contextmanager
def queued(broker_url: str) -> Iterator[None]:
    """Tasks go to a broker, as outside tests, instead of running at once."""
    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.update(task_always_eager=False, broker_url=broker_url)
    try:
        yield
    finally:
        app.conf.update(task_always_eager=saved[0], broker_url=saved[1])
        reset_connections()


def owed() -> set[str]:
    return set(
        Subscriber.objects.filter(confirmation_due__isnull=False).values_list("email", flat=True)
    )


def test_a_signup_owes_its_confirmation_and_a_send_pays_it_once() -> None:
    reader = subscriber_signup(email="new@example.org")
    assert reader is not None and owed() == {"new@example.org"}
    assert mail.outbox == []  # sent once the signup commits, by a worker
    counts = confirmations_send_due()
    assert (counts.sent, counts.more) == (1, False)
    assert [m.to for m in mail.outbox] == [["new@example.org"]] and owed() == set()
    assert confirmations_send_due().sent == 0


def test_requests_before_the_send_make_one_email(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        subscriber_signup(email="eager@example.org")
        subscriber_signup(email="eager@example.org")  # a second click, same second
    assert len(mail.outbox) == 1


def test_a_provider_outage_leaves_it_owed_until_the_lease_ends(
    smtp_settings: Inbox, settings: Any, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-02T09:00Z", tick=False)
    for n in range(3):
        make_subscriber(f"r{n}@example.org", "pending")
        time_machine.shift(1)
    confirmation_request(subscriber=Subscriber.objects.get(email="r0@example.org"))
    for n in (1, 2):
        confirmation_request(subscriber=Subscriber.objects.get(email=f"r{n}@example.org"))
    working_port, settings.EMAIL_PORT = settings.EMAIL_PORT, free_port()  # nobody there
    counts = confirmations_send_due()
    # The first one failed for a passing reason: the batch stops, nothing is lost.
    assert (counts.sent, counts.retry, counts.more) == (0, 1, False)
    assert owed() == {"r0@example.org", "r1@example.org", "r2@example.org"}
    settings.EMAIL_PORT = working_port
    assert confirmations_send_due().sent == 2  # the others; r0 is leased
    time_machine.shift(CONFIRMATION_LEASE + timedelta(seconds=1))
    assert confirmations_send_due().sent == 1
    assert smtp_settings.recipients() == {f"r{n}@example.org": 1 for n in range(3)}
    assert owed() == set()


def test_a_refused_address_is_failed_not_retried(smtp_settings: Inbox) -> None:
    smtp_settings.refuse["nobody@example.org"] = "550 5.1.1 No such user"
    for email in ("nobody@example.org", "somebody@example.org"):
        confirmation_request(subscriber=make_subscriber(email, "pending"))
    counts = confirmations_send_due()
    assert (counts.sent, counts.failed, counts.retry) == (1, 1, 0)
    assert owed() == set() and smtp_settings.recipients() == {"somebody@example.org": 1}


def test_one_claimed_by_another_worker_is_left_to_it() -> None:
    reader = make_subscriber("busy@example.org", "pending")
    leased = timezone.now() + CONFIRMATION_LEASE
    Subscriber.objects.filter(pk=reader.pk).update(confirmation_due=leased)
    assert confirmations_send_due() == mailings.ConfirmationCounts()
    assert mail.outbox == []


def test_a_newer_request_during_a_send_is_sent_too(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = make_subscriber("twice@example.org", "pending")
    confirmation_request(subscriber=reader)
    send = mailings.confirmation_send

    def send_and_ask_again(*, subscriber_id: int) -> bool:
        confirmation_request(subscriber=reader)  # the reader clicks again meanwhile
        return send(subscriber_id=subscriber_id)

    monkeypatch.setattr(mailings, "confirmation_send", send_and_ask_again)
    assert confirmations_send_due().sent == 1
    assert owed() == {"twice@example.org"}
    monkeypatch.setattr(mailings, "confirmation_send", send)
    assert confirmations_send_due().sent == 1 and len(mail.outbox) == 2


def test_a_full_batch_asks_for_another(django_capture_on_commit_callbacks: Any) -> None:
    for n in range(3):
        confirmation_request(subscriber=make_subscriber(f"b{n}@example.org", "pending"))
    counts = confirmations_send_due(batch=2)
    assert (counts.sent, counts.more) == (2, True)
    send_due_confirmations.delay()  # the task sends batch after batch until done
    assert owed() == set() and len(mail.outbox) == 3


def test_suppressed_erased_and_deleted_readers_get_nothing() -> None:
    bounced = make_subscriber("bounced@example.org", "bounced")
    confirmation_request(subscriber=bounced)
    erased = make_subscriber("erased@example.org", "pending")
    confirmation_request(subscriber=erased)
    Subscriber.objects.filter(pk=erased.pk).update(status="deleted")  # a race with "delete me"
    gone = make_subscriber("gone@example.org", "pending")
    confirmation_request(subscriber=gone)
    gone.delete()
    counts = confirmations_send_due()
    assert (counts.sent, counts.skipped) == (0, 2) and mail.outbox == []


def test_delete_me_cancels_a_confirmation_owed() -> None:
    reader = make_subscriber("leaving@example.org", "pending")
    confirmation_request(subscriber=reader)
    subscriber_erase(subscriber=reader)
    assert owed() == set() and confirmations_send_due() == mailings.ConfirmationCounts()


def test_a_task_queued_by_an_earlier_release_still_sends(
    django_capture_on_commit_callbacks: Any,
) -> None:
    reader = make_subscriber("old@example.org", "pending")
    with django_capture_on_commit_callbacks(execute=True):
        send_confirmation.delay(reader.pk)
    assert [m.to for m in mail.outbox] == [["old@example.org"]]


def test_a_web_process_asks_a_worker_about_once_a_second(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """Outside tests, tasks go to the broker: one send is asked for per second or so,
    however many signups there are, and always one that starts after the signup."""
    need_redis()
    url = os.environ["REDIS_URL"]
    client = redis.Redis.from_url(url)
    client.delete("celery")
    clock = [1000.0]
    monkeypatch.setattr(subscriptions.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(subscriptions, "_drain_at", 0.0)
    with queued(url):
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(50):  # 50 signups within a tenth of a second
                subscriber_signup(email=f"burst{n}@example.org")
                clock[0] += 0.002
        assert client.llen("celery") == 1
        clock[0] += 0.9  # the asked-for send is about to start: the next signup asks again
        with django_capture_on_commit_callbacks(execute=True):
            subscriber_signup(email="late@example.org")
        assert client.llen("celery") == 2
    client.delete("celery")
    assert len(owed()) == 51 and mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_signup_is_one_statement_with_no_transaction_around_it() -> None:
    need_postgres()
    # The statement is not Model.save(): nothing may listen for a subscriber's signals.
    assert not pre_save.has_listeners(Subscriber) and not post_save.has_listeners(Subscriber)
    assert not m2m_changed.has_listeners(Subscriber.topics.through)
    topics = list(Topic.objects.order_by("pk")[:3])
    assert not connection.in_atomic_block and connection.get_autocommit()
    with queued("memory://"), CaptureQueriesContext(connection) as queries:
        reader = subscriber_signup(email="one@example.org", topics=topics, keywords="KV cache")
    assert reader is not None
    [(statement)] = [q["sql"] for q in queries.captured_queries]
    assert statement.lstrip().startswith("WITH")
    stored = Subscriber.objects.get(pk=reader.pk)
    assert (stored.email, stored.status, stored.keywords) == (
        "one@example.org",
        "pending",
        "KV cache",
    )
    assert set(stored.topics.all()) == set(topics)
    assert stored.confirmation_due == stored.created == reader.created


def test_an_outage_longer_than_the_daily_cap_still_sends_in_the_end(
    smtp_settings: Inbox, settings: Any, time_machine: Any
) -> None:
    """Failed tries are not counted against the address's daily cap."""
    time_machine.move_to("2026-03-02T09:00Z", tick=False)
    settings.PAPERBOY_CONFIRMATIONS_PER_DAY = 3
    confirmation_request(subscriber=make_subscriber("patient@example.org", "pending"))
    working_port, settings.EMAIL_PORT = settings.EMAIL_PORT, free_port()
    for _ in range(5):  # 25 minutes of outage
        assert confirmations_send_due().retry == 1
        time_machine.shift(CONFIRMATION_LEASE + timedelta(seconds=1))
    settings.EMAIL_PORT = working_port
    assert confirmations_send_due().sent == 1
    assert smtp_settings.recipients() == {"patient@example.org": 1}


def test_a_cache_outage_defers_instead_of_dropping(settings: Any) -> None:
    settings.CACHES = {  # the daily cap's counter lives there: nobody listens
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    for email in ("a@example.org", "b@example.org"):
        confirmation_request(subscriber=make_subscriber(email, "pending"))
    counts = confirmations_send_due()
    assert (counts.sent, counts.failed, counts.retry) == (0, 0, 1)
    assert owed() == {"a@example.org", "b@example.org"} and mail.outbox == []


def test_a_run_stops_at_its_time_budget_and_asks_for_another() -> None:
    confirmation_request(subscriber=make_subscriber("later@example.org", "pending"))
    counts = confirmations_send_due(seconds=-1)
    assert (counts.sent, counts.more) == (0, True) and owed() == {"later@example.org"}


def test_a_soft_time_limit_leaves_the_email_owed(monkeypatch: pytest.MonkeyPatch) -> None:
    confirmation_request(subscriber=make_subscriber("slow@example.org", "pending"))

    def out_of_time(*, subscriber_id: int) -> bool:
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(mailings, "confirmation_send", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        confirmations_send_due()
    assert owed() == {"slow@example.org"}


def test_saving_a_copy_read_earlier_keeps_a_request_made_meanwhile() -> None:
    reader = make_subscriber("edited@example.org", "pending")
    stale = Subscriber.objects.get(pk=reader.pk)  # an admin's change form, say
    confirmation_request(subscriber=reader)
    stale.keywords = "diffusion"
    stale.save()
    assert owed() == {"edited@example.org"}
    assert Subscriber.objects.get(pk=reader.pk).keywords == "diffusion"
    partial = Subscriber.objects.only("pk", "send_hour").get(pk=reader.pk)
    partial.send_hour = 9
    partial.save()  # only what was loaded is written, as Django does
    assert Subscriber.objects.get(pk=reader.pk).send_hour == 9
