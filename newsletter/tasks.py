"""Thin tasks: take ids, call one service, own the retry policy."""

from __future__ import annotations

import random
from datetime import date

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction

from newsletter.control import control_run_execute
from newsletter.mailings import (
    confirmations_send_due,
    manage_link_send,
    pending_expire,
    resubscribe_link_send,
)
from newsletter.models import Subscriber
from newsletter.planning import digest_plan, due_now, stale_planned_ids, subscribers_for_date
from newsletter.queueing import enqueue_plans, enqueue_sends
from newsletter.sending import deliveries_recover, deliveries_send, is_transient
from newsletter.subscriptions import confirmations_request

MAX_SEND_RETRIES = 8


MAX_BACKOFF = 600


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter (PAPERBOY_SEND_RETRY_BASE seconds, doubling),
    capped at 10 minutes: always far below the broker's visibility timeout (one hour)."""
    ceiling = min(MAX_BACKOFF, settings.PAPERBOY_SEND_RETRY_BASE * 2**retries)
    return random.uniform(ceiling / 10, ceiling)


@shared_task(bind=True, acks_late=True, max_retries=MAX_SEND_RETRIES)
def send_deliveries(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    """Send one chunk over one connection; retry only what failed transiently."""
    counts = deliveries_send(delivery_ids=delivery_ids)
    if counts.retry_ids and not settings.CELERY_TASK_ALWAYS_EAGER:
        raise self.retry(args=(counts.retry_ids,), countdown=backoff(self.request.retries))
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
    """Beat, every few minutes: deliveries a dead worker left in sending, and planned
    ones whose send task was lost (a broker restart, a purged queue), go back out.
    Sending claims first, so a delivery queued twice is still sent once."""
    stuck = deliveries_recover()
    stale = [pk for pk in stale_planned_ids() if pk not in set(stuck)]
    enqueue_sends(stuck + stale)
    return {"recovered": len(stuck), "requeued": len(stale)}


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
