"""Claim -> send -> record. Transient failures go back to the queue; permanent ones fail.

A delivery is claimed with a conditional UPDATE (planned -> sending) before anything
is sent, so duplicate beats, retries and parallel workers never mail anyone twice.
A send whose outcome is unknown (the request went out, no answer came back) is marked
``unknown`` rather than retried or failed: the provider's webhook or an admin settles it.
"""

from __future__ import annotations

import logging
import random
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.core.cache import cache
from django.core.mail import get_connection
from django.db import connection, transaction
from django.utils import timezone

from newsletter.addresses import BadAddress, address_problem
from newsletter.emails import RankedItem, digest_message, paper_context
from newsletter.models import Delivery, DeliveryItem, EmailEvent, Subscriber
from newsletter.smtp import OutcomeUnknown
from papers.models import Paper

log = logging.getLogger(__name__)


class TransientSendError(Exception):
    """Worth another try later: SMTP 4xx, a dropped connection, API 429 or 5xx."""


@dataclass
class SendCounts:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    not_claimed: int = 0
    retry_ids: list[int] = field(default_factory=list)


def is_unknown_outcome(exc: Exception) -> bool:
    """The request reached the provider and the answer was lost: an API read timeout
    (anymail's error is also the requests exception), or SMTP after the message's end."""
    return isinstance(exc, OutcomeUnknown | requests.ReadTimeout)


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, AnymailRecipientsRefused):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | socket.timeout):
        return True
    if isinstance(exc, AnymailAPIError):
        status = exc.status_code
        return status is None or status == 429 or status >= 500
    return isinstance(exc, OSError)


def is_refused_recipient(exc: Exception) -> bool:
    """The address itself is refused for good: it cannot be encoded as written (Django's
    mail code raises ValueError or UnicodeError), or the server or provider refused the
    recipient permanently (SMTP 5xx at RCPT, anymail's recipients refused)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return not is_transient(exc)
    return isinstance(exc, AnymailRecipientsRefused | ValueError | UnicodeError)


def recipient_refuse(*, subscriber_id: int, reason: str) -> bool:
    """Suppress a reader whose address was refused for good (status bounced, with a
    "rejected" event saying why), so it is never tried again and never holds up the
    others; whether it changed."""
    now = timezone.now()
    changed = Subscriber.objects.filter(pk=subscriber_id, status__in=Subscriber.REACHABLE).update(
        status=Subscriber.Status.BOUNCED, confirmation_due=None, updated=now
    )
    if changed:
        EmailEvent.objects.create(
            provider="paperboy",
            event_type="rejected",
            subscriber_id=subscriber_id,
            timestamp=now,
            description=f"address refused: {reason}"[:2000],
        )
        log.warning("subscriber %s suppressed: address refused: %s", subscriber_id, reason)
    return bool(changed)


# Table names come from the models, values are parameters.
CLAIM_SQL = f"""
    UPDATE {Delivery._meta.db_table}
       SET status = %s, attempts = attempts + 1, claimed_at = %s
     WHERE id = %s AND status = %s
       AND subscriber_id IN (SELECT id FROM {Subscriber._meta.db_table} WHERE status = %s)
"""  # noqa: S608 (the ORM's update() with this filter, not compiled for every message)
SENT_SQL = f"""
    UPDATE {Delivery._meta.db_table}
       SET status = %s, sent_at = %s, message_id = %s, provider_id = %s, error = ''
     WHERE id = %s AND status = %s
"""  # noqa: S608


# The previous message's success and the next claim, in one statement: no BEGIN and
# COMMIT round trips, one trip to the database per message. A data-modifying WITH runs
# to completion whether or not the main statement reads it.
RECORD_AND_CLAIM_SQL = f"WITH sent AS ({SENT_SQL} RETURNING id) {CLAIM_SQL}"

Sent = tuple[int, str, str]  # a delivery sent and not yet recorded: id, Message-ID, provider id


def _claim_params(delivery_id: int) -> list[Any]:
    return [
        Delivery.Status.SENDING,
        timezone.now(),
        delivery_id,
        Delivery.Status.PLANNED,
        Subscriber.Status.ACTIVE,
    ]


def _sent_params(sent: Sent) -> list[Any]:
    delivery_id, message_id, provider_id = sent
    return [
        Delivery.Status.SENT,
        timezone.now(),
        message_id,
        provider_id[:255],
        delivery_id,
        Delivery.Status.SENDING,
    ]


def delivery_claim(*, delivery_id: int, record: Sent | None = None) -> bool:
    """Move a planned delivery to sending; True only for the one caller that did.
    ``record`` (the previous message's success) is written in the same transaction."""
    if record is None:
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_SQL, _claim_params(delivery_id))
            return cursor.rowcount == 1
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                RECORD_AND_CLAIM_SQL, [*_sent_params(record), *_claim_params(delivery_id)]
            )
            return cursor.rowcount == 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SENT_SQL, _sent_params(record))
        cursor.execute(CLAIM_SQL, _claim_params(delivery_id))
        return cursor.rowcount == 1


def _mark_sent(sent: Sent | None) -> None:
    if sent is not None:
        with connection.cursor() as cursor:
            cursor.execute(SENT_SQL, _sent_params(sent))


def send_slot(
    *,
    rate: float | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until one more message may go out, so that all workers together send at
    most ``rate`` messages a second (PAPERBOY_SEND_RATE; 0 means no limit).

    A counter per one-second window in the shared cache (an atomic INCR on Redis); a
    worker that finds the window full sleeps until the next. Returns seconds waited.
    """
    rate = settings.PAPERBOY_SEND_RATE if rate is None else rate
    if rate <= 0:
        return 0.0
    window = max(1.0, 1.0 / rate)
    allowance = max(1, int(rate * window))
    waited = 0.0
    while True:
        now = clock()
        slot = int(now // window)
        key = f"send-rate:{window:g}:{slot}"
        cache.add(key, 0, timeout=int(window * 2) + 2)
        try:
            count = cache.incr(key)
        except ValueError:  # the window's key expired between add and incr
            continue
        if count <= allowance:
            return waited
        pause = (slot + 1) * window - now + random.uniform(0, 0.005)
        sleep(pause)
        waited += pause


def deliveries_send(*, delivery_ids: list[int]) -> SendCounts:
    """Send a chunk of planned deliveries over one provider connection.

    1. Load the chunk's readers and items (two queries for the whole chunk).
    2. For each delivery: wait for a send slot, claim it (skip those another worker
       has, or whose reader left), render and send it, record the Message-ID.
    3. A transient error puts the delivery back to planned and lists it for a retry;
       a permanent one marks it failed with the reason; a lost answer marks it unknown.
    """
    counts = SendCounts()
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("mail connection failed, %d deliveries wait: %r", len(delivery_ids), exc)
        counts.retry_ids = list(delivery_ids)
        return counts
    papers: dict[int, dict[str, Any]] = {}
    deliveries = _chunk(delivery_ids, papers)
    # A sent message is recorded in the same transaction as the next claim: one trip to
    # the database per message, and still nothing claimed unrecorded beyond the one in
    # flight.
    unrecorded: Sent | None = None
    try:
        for delivery_id in delivery_ids:
            delivery = deliveries.get(delivery_id)
            if delivery is None or delivery.status != Delivery.Status.PLANNED:
                counts.not_claimed += 1
                continue
            if settings.PAPERBOY_SEND_RATE > 0:  # send_slot may sleep: record first
                _mark_sent(unrecorded)
                unrecorded = None
            send_slot()
            claimed = delivery_claim(delivery_id=delivery_id, record=unrecorded)
            unrecorded = None
            if not claimed:
                counts.not_claimed += 1
                _skip_if_inactive(delivery_id)
                continue
            unrecorded = _send_one(delivery, connection, counts, papers)
    finally:
        _mark_sent(unrecorded)
        try:
            connection.close()
        except Exception:  # a dead connection cannot be closed politely
            log.debug("closing the mail connection failed", exc_info=True)
    return counts


def _chunk(delivery_ids: list[int], papers: dict[int, dict[str, Any]]) -> dict[int, Delivery]:
    """The chunk's deliveries with their readers and ranked items, in three queries;
    each distinct paper is loaded and prepared once into ``papers``."""
    deliveries = {
        d.pk: d for d in Delivery.objects.filter(pk__in=delivery_ids).select_related("subscriber")
    }
    for delivery in deliveries.values():
        delivery.ranked_items = []  # type: ignore[attr-defined]
    items = (
        DeliveryItem.objects.filter(delivery_id__in=deliveries)
        .order_by("delivery_id", "rank")
        .values_list("delivery_id", "paper_id", "rank", "reason")
    )
    for delivery_id, paper_id, rank, reason in items:
        ranked = RankedItem(paper_id=paper_id, rank=rank, reason=reason)
        deliveries[delivery_id].ranked_items.append(ranked)  # type: ignore[attr-defined]
    needed = {i.paper_id for d in deliveries.values() for i in d.ranked_items}  # type: ignore[attr-defined]
    for paper in Paper.objects.filter(pk__in=needed - papers.keys()):
        papers[paper.pk] = paper_context(paper)
    return deliveries


def deliveries_recover(*, now: datetime | None = None) -> list[int]:
    """Deliveries a worker claimed and never finished (it died mid-chunk): back to
    planned, to be sent again. One may have gone out just before the worker died, so
    at most the messages in flight at that moment can arrive twice.
    PAPERBOY_SEND_STUCK_AFTER (15 minutes) is far beyond a chunk's hard time limit."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PAPERBOY_SEND_STUCK_AFTER)
    stuck = list(
        Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:10_000]
    )
    if stuck:
        Delivery.objects.filter(pk__in=stuck, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.PLANNED, error="recovered after a worker stopped mid-send"
        )
        log.warning("recovered %d deliveries stuck in sending", len(stuck))
    return stuck


RETRYABLE = (Delivery.Status.FAILED, Delivery.Status.UNKNOWN)
RESENDABLE = (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.UNKNOWN)


def deliveries_requeue(*, delivery_ids: list[int], statuses: tuple[str, ...]) -> list[int]:
    """An admin's retry (failed, unknown) or resend (also sent): back to planned, for the
    caller to enqueue. Deliveries in other states, or whose reader is no longer active,
    are left alone. Returns the ids that were requeued."""
    ids = list(
        Delivery.objects.filter(
            pk__in=delivery_ids,
            status__in=statuses,
            subscriber__status=Subscriber.Status.ACTIVE,
        ).values_list("pk", flat=True)
    )
    Delivery.objects.filter(pk__in=ids, status__in=statuses).update(
        status=Delivery.Status.PLANNED, error="requeued by an admin"
    )
    return ids


def _skip_if_inactive(delivery_id: int) -> None:
    """A reader who left (or bounced) between planning and sending gets nothing."""
    Delivery.objects.filter(id=delivery_id, status=Delivery.Status.PLANNED).exclude(
        subscriber__status=Subscriber.Status.ACTIVE
    ).update(status=Delivery.Status.SKIPPED, error="the reader was no longer active")


def _send_one(
    delivery: Delivery, connection: object, counts: SendCounts, papers: dict[int, dict[str, Any]]
) -> Sent | None:
    """Send one claimed delivery. Failures are written at once; a success is returned,
    for the caller to record with the next claim."""
    try:
        # Inside the try: a digest that cannot be built fails alone, not the whole chunk.
        problem = address_problem(delivery.subscriber.email)  # stored before signup refused it
        if problem:
            raise BadAddress(problem)
        message = digest_message(delivery, papers=papers)
        message.connection = connection  # type: ignore[assignment]
        message.send()
    except Exception as exc:
        pending = Delivery.objects.filter(id=delivery.pk, status=Delivery.Status.SENDING)
        if is_unknown_outcome(exc):
            log.warning("delivery %s: outcome unknown: %r", delivery.pk, exc)
            pending.update(
                status=Delivery.Status.UNKNOWN,
                message_id=delivery.message_id,
                error=f"outcome unknown, waiting for the provider or an admin: {exc!r}"[:2000],
            )
            counts.unknown += 1
            _reopen(connection)
        elif is_transient(exc):
            log.warning("delivery %s: transient error, will retry: %r", delivery.pk, exc)
            pending.update(status=Delivery.Status.PLANNED, error=f"retrying after: {exc!r}"[:2000])
            counts.retry_ids.append(delivery.pk)
            _reopen(connection)
        else:
            log.warning("delivery %s failed: %r", delivery.pk, exc)
            pending.update(status=Delivery.Status.FAILED, error=repr(exc)[:2000])
            counts.failed += 1
            if is_refused_recipient(exc):
                recipient_refuse(subscriber_id=delivery.subscriber_id, reason=repr(exc))
        return None
    status = getattr(message, "anymail_status", None)
    counts.sent += 1
    provider_id = getattr(status, "message_id", None) or ""
    return (delivery.pk, delivery.message_id, provider_id)


def _reopen(connection: object) -> None:
    """After a transient error the session may be dead (421 closes it): start afresh."""
    try:
        connection.close()  # type: ignore[attr-defined]
        connection.open()  # type: ignore[attr-defined]
    except Exception:
        log.debug("reopening the mail connection failed", exc_info=True)
