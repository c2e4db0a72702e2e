"""The worker half of every one-off email to a reader: the confirmation outbox's
drain (send what is owed, once each), the expiry of signups never confirmed, the manage
link and the fresh opt-in. The modules that ask for these emails (subscriptions, account)
never import this one: they write what is owed, or hand a task its name
(``config.celery.task_later``), and ``newsletter.tasks`` calls in here.
"""

from __future__ import annotations

import logging
import smtplib
import time
from datetime import timedelta
from typing import NamedTuple

from anymail.exceptions import AnymailError
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from newsletter.abuse import confirmation_quota_take, daily_quota_return
from newsletter.addresses import BadAddress, address_problem
from newsletter.emails import confirm_message, manage_link_message, resubscribe_message
from newsletter.models import Subscriber
from newsletter.sending import is_refused_recipient, is_transient, recipient_refuse

log = logging.getLogger(__name__)

CONFIRMATION_LEASE = timedelta(minutes=5)  # a send in progress; retried after it
CLOCK_SLACK = timedelta(seconds=10)  # web and worker clocks may differ this much
DRAIN_BATCH = 500
DRAIN_SECONDS = 60.0  # then another run takes over: well within the task's time limit


class ConfirmationCounts(NamedTuple):
    sent: int = 0
    skipped: int = 0  # suppressed, gone or over the daily cap
    failed: int = 0
    retry: int = 0  # a provider outage: owed again once the lease ends
    more: bool = False  # a full batch: more may be owed


def confirmations_send_due(
    *, batch: int = DRAIN_BATCH, seconds: float = DRAIN_SECONDS
) -> ConfirmationCounts:
    """Send the confirmation emails owed, oldest first, for at most ``seconds``. Each is
    claimed first (its due time moves to the end of a lease), so two workers never send
    the same one. Only a refusal by the mail server or provider ends a confirmation
    owed; any other failure (a provider outage, the cache or database away) leaves it
    owed, to be tried again when its lease ends, and ends the batch."""
    started, now = time.monotonic(), timezone.now()
    due = Subscriber.objects.filter(confirmation_due__lte=now + CLOCK_SLACK)
    ids = list(due.order_by("confirmation_due").values_list("pk", flat=True)[:batch])
    counts = {"sent": 0, "skipped": 0, "failed": 0, "retry": 0}
    for pk in ids:
        if time.monotonic() - started > seconds:
            return ConfirmationCounts(**counts, more=True)
        lease = timezone.now() + CONFIRMATION_LEASE
        if not due.filter(pk=pk).update(confirmation_due=lease):
            continue  # another worker has it
        settled = Subscriber.objects.filter(pk=pk, confirmation_due=lease)  # no newer request
        try:
            sent = confirmation_send(subscriber_id=pk)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            if is_refused_recipient(exc):  # this address, for good: the others go on
                settled.update(confirmation_due=None)
                recipient_refuse(subscriber_id=pk, reason=str(exc) or repr(exc))
                counts["failed"] += 1
                continue
            if _refused(exc):
                log.warning("confirmation for subscriber %s refused: %s", pk, exc)
                settled.update(confirmation_due=None)
                counts["failed"] += 1
                continue
            if is_transient(exc):  # an outage: no need for the traceback
                log.warning("confirmation for subscriber %s deferred: %s", pk, exc)
            else:
                log.exception("confirmation for subscriber %s deferred", pk)
            counts["retry"] += 1
            break
        settled.update(confirmation_due=None)
        counts["sent" if sent else "skipped"] += 1
    return ConfirmationCounts(**counts, more=len(ids) == batch and not counts["retry"])


def _refused(exc: Exception) -> bool:
    """The mail server or provider said no for good (an address refused, a 5xx)."""
    return isinstance(exc, AnymailError | smtplib.SMTPException) and not is_transient(exc)


def confirmation_send(*, subscriber_id: int) -> bool:
    """Send the confirmation email, at most PAPERBOY_CONFIRMATIONS_PER_DAY a day to one
    address (a signup form cannot be used to flood an inbox); whether it went out. One
    that fails is not counted."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status in Subscriber.NEVER_MAILED:
        return False
    problem = address_problem(subscriber.email)  # stored before signup refused such
    if problem:
        raise BadAddress(problem)
    if not confirmation_quota_take(email=subscriber.email):
        log.info("confirmation for subscriber %s not sent: daily cap reached", subscriber_id)
        return False
    try:
        confirm_message(subscriber).send()
    except BaseException:
        daily_quota_return(kind="confirm", email=subscriber.email)
        raise
    return True


def pending_expire(*, batch: int = 1000) -> int:
    """Delete signups never confirmed within PAPERBOY_CONFIRM_MAX_AGE_DAYS of their
    latest confirmation link (whose link has expired by now); how many went."""
    cutoff = timezone.now() - timedelta(days=settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS)
    stale = Subscriber.objects.filter(
        status=Subscriber.Status.PENDING, consent_at__isnull=True, updated__lt=cutoff
    )
    deleted = 0
    while ids := list(stale.values_list("pk", flat=True)[:batch]):
        # The same filter again: a reader who confirmed meanwhile stays.
        _, counts = stale.filter(pk__in=ids).delete()
        deleted += counts.get(Subscriber._meta.label, 0)
    return deleted


def manage_link_send(*, subscriber_id: int, signed_out: bool) -> None:
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    if subscriber.status == Subscriber.Status.DELETED:
        return
    manage_link_message(subscriber, signed_out=signed_out).send()


def resubscribe_link_send(*, subscriber_id: int) -> None:
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    if subscriber.status not in Subscriber.SUPPRESSED:
        return
    resubscribe_message(subscriber).send()
