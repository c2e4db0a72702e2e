"""Thin tasks: take ids, call one service, own the retry policy."""

from __future__ import annotations

import random
from datetime import date, timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.control import control_run_execute
from newsletter.mailings import (
    confirmations_send_due,
    manage_link_send,
    pending_expire,
    resubscribe_link_send,
)
from newsletter.models import Subscriber
from newsletter.planning import digest_plan, due_now, subscribers_for_date
from newsletter.queueing import broker_epoch, enqueue_plans, enqueue_sends
from newsletter.sending import deliveries_defer, deliveries_recover, deliveries_send, is_transient
from newsletter.subscriptions import confirmations_request

MAX_SEND_RETRIES = 8
SOON_RETRIES = 2  # task retries after a few refusals that wait only a few seconds


MAX_BACKOFF = 120


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter (PAPERBOY_SEND_RETRY_BASE seconds, doubling),
    capped at 2 minutes: a chunk that met an outage is tried again within two minutes of
    the provider coming back, and each try costs only a connection attempt."""
    ceiling = min(MAX_BACKOFF, settings.PAPERBOY_SEND_RETRY_BASE * 2**retries)
    return random.uniform(ceiling / 10, ceiling)


def soon() -> float:
    """The wait before a few transient failures are tried again: a few seconds, jittered,
    so that the retries of many chunks do not land together."""
    return random.uniform(1.0, max(1.0, settings.PAPERBOY_SEND_RETRY_BASE / 3))


@shared_task(bind=True, acks_late=True, max_retries=MAX_SEND_RETRIES)
def send_deliveries(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    """Send one chunk over one connection; retry only what failed transiently: soon
    after a few failures, with the doubling backoff after an outage. A retry lost with
    its worker, or one past the last, is taken back by recovery when its lease ends."""
    counts = deliveries_send(delivery_ids=delivery_ids)
    if counts.retry_ids and not settings.CELERY_TASK_ALWAYS_EAGER:
        # A few refusals are tried again soon (each try is three attempts); if they
        # keep coming, or the provider cannot be reached, the backoff grows.
        retries = self.request.retries
        countdown = backoff(retries) if counts.outage or retries >= SOON_RETRIES else soon()
        retry_at = timezone.now() + timedelta(seconds=countdown)
        waiting = deliveries_defer(delivery_ids=counts.retry_ids, retry_at=retry_at)
        if waiting:
            raise self.retry(args=(waiting,), countdown=countdown)
    return {
        "sent": counts.sent,
        "failed": counts.failed,
        "unknown": counts.unknown,
        "retry": len(counts.retry_ids),
    }


@shared_task(acks_late=True)
def plan_due_digests() -> dict[str, int]:
    """Beat, every few minutes: fan out planning for the readers whose local send hour
    has come."""
    chunks = sum(enqueue_plans(day, subscribers) for day, subscribers in due_now())
    return {"plan_chunks": chunks}


@shared_task(acks_late=True)
def recover_deliveries() -> dict[str, int]:
    """Beat, every PAPERBOY_RECOVER_EVERY seconds: deliveries whose worker's lease ran
    out, planned ones whose send task was lost (a Redis that restarted empty, a purged
    queue), and unknown outcomes nothing settled go back out. Sending claims first, so
    a delivery queued twice is still sent once."""
    recovery = deliveries_recover(epoch=broker_epoch())
    enqueue_sends(recovery.ids)
    return recovery.counts()


@shared_task(acks_late=True)
def plan_digests(day: str, subscriber_ids: list[int]) -> dict[str, int]:
    """Plan one chunk of readers (those not planned yet) and fan out their sending."""
    digest_date = date.fromisoformat(day)
    subscribers = subscribers_for_date(digest_date).filter(pk__in=subscriber_ids)
    counts = digest_plan(digest_date=digest_date, subscribers=subscribers)
    enqueue_sends(counts.delivery_ids)
    return {"planned": counts.planned, "skipped": counts.skipped}


@shared_task(acks_late=True)
def send_due_confirmations() -> dict[str, int]:
    """Soon after a signup, and from beat every minute: send the confirmation emails
    owed (a provider outage leaves them owed, for a later run); another run follows at
    once while a full batch went out."""
    counts = confirmations_send_due()
    if counts.more:
        send_due_confirmations.delay()
    return counts._asdict()


@shared_task(acks_late=True)
def send_confirmation(subscriber_id: int) -> None:
    """A confirmation queued as a task of its own (as before the outbox, still in a
    queue after an upgrade): the email is owed like any other, and sent with them."""
    with transaction.atomic():
        confirmations_request(Subscriber.objects.filter(pk=subscriber_id))


@shared_task(acks_late=True)
def expire_pending_signups() -> dict[str, int]:
    """Beat, daily: signups never confirmed within PAPERBOY_CONFIRM_MAX_AGE_DAYS are
    deleted (their link has expired; signing up again starts afresh)."""
    return {"deleted": pending_expire()}


@shared_task(bind=True, acks_late=True, max_retries=5)
def send_manage_link(self: Task, subscriber_id: int, signed_out: bool = False) -> None:
    """The reader's manage link: asked for on the "email me my link" form, or the new
    one after "sign out my links"."""
    try:
        manage_link_send(subscriber_id=subscriber_id, signed_out=signed_out)
    except Exception as exc:
        if is_transient(exc) and not settings.CELERY_TASK_ALWAYS_EAGER:
            raise self.retry(countdown=backoff(self.request.retries)) from exc
        raise


@shared_task(bind=True, acks_late=True, max_retries=5)
def send_resubscribe_link(self: Task, subscriber_id: int) -> None:
    """A fresh opt-in for a bounced or complained reader who asked for one."""
    try:
        resubscribe_link_send(subscriber_id=subscriber_id)
    except Exception as exc:
        if is_transient(exc) and not settings.CELERY_TASK_ALWAYS_EAGER:
            raise self.retry(countdown=backoff(self.request.retries)) from exc
        raise


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def run_control(run_id: int) -> None:
    """An action an operator started from the admin's control room."""
    control_run_execute(run_id=run_id)
