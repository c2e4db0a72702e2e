"""Claim -> send -> record. Transient failures go back to the queue; permanent ones fail.

A delivery is claimed with a conditional UPDATE (planned -> sending) before anything
is sent, so duplicate beats, retries and parallel workers never mail anyone twice.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core.mail import get_connection
from django.db.models import F
from django.utils import timezone

from newsletter.emails import digest_message
from newsletter.models import Delivery, Subscriber

log = logging.getLogger(__name__)


class TransientSendError(Exception):
    """Worth another try later: SMTP 4xx, a dropped connection, API 429 or 5xx."""


@dataclass
class SendCounts:
    sent: int = 0
    failed: int = 0
    not_claimed: int = 0
    retry_ids: list[int] = field(default_factory=list)


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


def delivery_claim(*, delivery_id: int) -> bool:
    """Move a planned delivery to sending; True only for the one caller that did."""
    return (
        Delivery.objects.filter(
            id=delivery_id,
            status=Delivery.Status.PLANNED,
            subscriber__status=Subscriber.Status.ACTIVE,
        ).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=timezone.now()
        )
        == 1
    )


def deliveries_send(*, delivery_ids: list[int]) -> SendCounts:
    """Send a chunk of planned deliveries over one provider connection.

    1. Claim each delivery; skip those another worker has (or that were suppressed).
    2. Render and send it; record the Message-ID and the provider's id.
    3. A transient error puts the delivery back to planned and lists it for a retry;
       a permanent one marks it failed with the reason.
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
    try:
        for delivery_id in delivery_ids:
            if not delivery_claim(delivery_id=delivery_id):
                counts.not_claimed += 1
                _skip_if_inactive(delivery_id)
                continue
            _send_one(delivery_id, connection, counts)
    finally:
        try:
            connection.close()
        except Exception:  # a dead connection cannot be closed politely
            log.debug("closing the mail connection failed", exc_info=True)
    return counts


STUCK_AFTER = timedelta(minutes=15)  # far beyond a chunk's hard time limit


def deliveries_recover(*, now: datetime | None = None) -> list[int]:
    """Deliveries a worker claimed and never finished (it died mid-chunk): back to
    planned, to be sent again. One may have gone out just before the worker died, so
    at most the messages in flight at that moment can arrive twice."""
    cutoff = (now or timezone.now()) - STUCK_AFTER
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


def _skip_if_inactive(delivery_id: int) -> None:
    """A reader who left (or bounced) between planning and sending gets nothing."""
    Delivery.objects.filter(id=delivery_id, status=Delivery.Status.PLANNED).exclude(
        subscriber__status=Subscriber.Status.ACTIVE
    ).update(status=Delivery.Status.SKIPPED, error="the reader was no longer active")


def _send_one(delivery_id: int, connection: object, counts: SendCounts) -> None:
    delivery = Delivery.objects.select_related("subscriber").get(id=delivery_id)
    message = digest_message(delivery)
    try:
        message.connection = connection  # type: ignore[assignment]
        message.send()
    except Exception as exc:
        if is_transient(exc):
            log.warning("delivery %s: transient error, will retry: %r", delivery_id, exc)
            Delivery.objects.filter(id=delivery_id, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.PLANNED, error=f"retrying after: {exc!r}"[:2000]
            )
            counts.retry_ids.append(delivery_id)
            _reopen(connection)
            return
        log.warning("delivery %s failed: %r", delivery_id, exc)
        Delivery.objects.filter(id=delivery_id).update(
            status=Delivery.Status.FAILED, error=repr(exc)[:2000]
        )
        counts.failed += 1
        return
    status = getattr(message, "anymail_status", None)
    Delivery.objects.filter(id=delivery_id).update(
        status=Delivery.Status.SENT,
        sent_at=timezone.now(),
        message_id=delivery.message_id,
        provider_id=(getattr(status, "message_id", None) or "")[:255],
        error="",
    )
    counts.sent += 1


def _reopen(connection: object) -> None:
    """After a transient error the session may be dead (421 closes it): start afresh."""
    try:
        connection.close()  # type: ignore[attr-defined]
        connection.open()  # type: ignore[attr-defined]
    except Exception:
        log.debug("reopening the mail connection failed", exc_info=True)
