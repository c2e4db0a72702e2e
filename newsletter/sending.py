"""Claim -> send -> record. Transient failures are tried again soon; permanent ones fail.

A delivery is claimed with a conditional UPDATE (planned -> sending) before anything
is sent, so duplicate beats, retries and parallel workers never mail anyone twice.

Nothing waits on a worker that died or a queue that was lost:

- A worker holds its chunk's deliveries under a lease (PAPERBOY_SEND_LEASE), taken when
  the chunk starts and renewed every third of it while it sends. When a lease runs out,
  beat's recovery (every PAPERBOY_RECOVER_EVERY seconds) sends them again: a killed
  worker's digests go out within a lease and a recovery period, not when the broker
  hands its unacknowledged task back an hour later.
- Each queued delivery records the queue's epoch (newsletter.queueing): a Redis that
  restarted empty has a new one, and recovery queues again whatever was waiting in the
  old queue.
- A transient refusal (4xx) is tried again in the same chunk after the others, soon and
  with jitter; only what still fails goes back to the queue, and only an outage (the
  provider cannot be reached) waits for the long backoff.
- A send whose answer was lost (the request went out, no answer came back) is marked
  ``unknown``: the provider's webhook may settle it; if nothing does, recovery sends it
  again after PAPERBOY_UNKNOWN_RESEND_AFTER with the same Message-ID, so mail systems can
  fold the copy.

At most the messages in flight when a worker dies can arrive twice.
"""

from __future__ import annotations

import logging
import random
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db import connections as db_connections
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from newsletter.addresses import BadAddress, address_problem
from newsletter.emails import RankedItem, delivery_message_id, digest_message, paper_context
from newsletter.models import Delivery, DeliveryItem, EmailEvent, Subscriber
from newsletter.pacing import send_slot, throttle_note
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
    throttled: int = 0
    retry_ids: list[int] = field(default_factory=list)
    # The provider could not be reached: what is left waits for the long backoff.
    outage: bool = False
    last_transient: float = 0.0  # time.monotonic() of the last transient failure


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


THROTTLE_WORDS = ("rate", "throttl", "too many", "slow down", "limit")


def is_throttled(exc: Exception) -> bool:
    """The provider asks us to slow down: SMTP 421 (closing, try later) or 454 (SES's
    "Throttling failure"), another 4xx that says so, or HTTP 429."""
    if isinstance(exc, AnymailAPIError):
        return exc.status_code == 429
    answers: list[tuple[int, bytes | str]]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
    elif isinstance(exc, smtplib.SMTPResponseException):
        answers = [(exc.smtp_code, exc.smtp_error)]
    else:
        return False
    for code, text in answers:
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if code in (421, 454) or (
            400 <= code < 500 and any(w in words.lower() for w in THROTTLE_WORDS)
        ):
            return True
    return False


def closes_session(exc: Exception) -> bool:
    """After this error the mail session cannot go on: reconnect before the next."""
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421:
        return True
    return not isinstance(exc, smtplib.SMTPResponseException | AnymailAPIError)


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
       SET status = %s, attempts = attempts + 1, claimed_at = %s, lease_until = %s,
           retry_at = NULL
     WHERE id = %s AND status = %s
       AND subscriber_id IN (SELECT id FROM {Subscriber._meta.db_table} WHERE status = %s)
"""  # noqa: S608 (the ORM's update() with this filter, not compiled for every message)
SENT_SQL = f"""
    UPDATE {Delivery._meta.db_table}
       SET status = %s, sent_at = %s, message_id = %s, provider_id = %s, error = '',
           lease_until = NULL
     WHERE id = %s AND status = %s AND claimed_at = %s
"""  # noqa: S608


# The previous message's success and the next claim, in one statement: no BEGIN and
# COMMIT round trips, one trip to the database per message. A data-modifying WITH runs
# to completion whether or not the main statement reads it.
RECORD_AND_CLAIM_SQL = f"WITH sent AS ({SENT_SQL} RETURNING id) {CLAIM_SQL}"

# A delivery sent and not yet recorded: id, Message-ID, provider id, and its claim's
# time, which fences every write of its outcome: if recovery took it back and another
# worker claimed it, this worker's late answer changes nothing.
Sent = tuple[int, str, str, Any]


def _claim_params(delivery_id: int, claimed_at: datetime) -> list[Any]:
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM writes and compares it
    return [
        Delivery.Status.SENDING,
        adapt(claimed_at),
        adapt(claimed_at + timedelta(seconds=settings.PAPERBOY_SEND_LEASE)),
        delivery_id,
        Delivery.Status.PLANNED,
        Subscriber.Status.ACTIVE,
    ]


def _sent_params(sent: Sent) -> list[Any]:
    delivery_id, message_id, provider_id, claimed_at = sent
    return [
        Delivery.Status.SENT,
        timezone.now(),
        message_id,
        provider_id[:255],
        delivery_id,
        Delivery.Status.SENDING,
        connection.ops.adapt_datetimefield_value(claimed_at),
    ]


def delivery_claim(*, delivery_id: int, record: Sent | None = None) -> datetime | None:
    """Move a planned delivery to sending; the claim's time only for the one caller that
    did (None for the others). ``record`` (the previous message's success) is written
    in the same transaction."""
    claimed_at = timezone.now()
    params = _claim_params(delivery_id, claimed_at)
    if record is None:
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_SQL, params)
            return claimed_at if cursor.rowcount == 1 else None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(RECORD_AND_CLAIM_SQL, [*_sent_params(record), *params])
            return claimed_at if cursor.rowcount == 1 else None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SENT_SQL, _sent_params(record))
        _check_recorded(record, cursor.rowcount)
        cursor.execute(CLAIM_SQL, params)
        return claimed_at if cursor.rowcount == 1 else None


def _mark_sent(sent: Sent | None) -> None:
    if sent is not None:
        with connection.cursor() as cursor:
            cursor.execute(SENT_SQL, _sent_params(sent))
            _check_recorded(sent, cursor.rowcount)


def _check_recorded(sent: Sent, rowcount: int) -> None:
    if rowcount != 1:
        log.warning("delivery %s was sent but another claim holds it now: not recorded", sent[0])


class Lease:
    """A worker's hold on its chunk, as a context: taken on entry, renewed every third
    of PAPERBOY_SEND_LEASE by a heartbeat thread (on a database connection of its own)
    for as long as the chunk runs, whatever the sending thread is blocked on, and left
    to run out on exit. A worker that dies stops renewing it."""

    def __init__(self, delivery_ids: list[int]) -> None:
        self.delivery_ids = delivery_ids
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.renew()
        self._thread = threading.Thread(target=self._beat, name="lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def renew(self) -> None:
        until = timezone.now() + timedelta(seconds=settings.PAPERBOY_SEND_LEASE)
        Delivery.objects.filter(
            pk__in=self.delivery_ids, status__in=(Delivery.Status.PLANNED, Delivery.Status.SENDING)
        ).update(lease_until=until)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.PAPERBOY_SEND_LEASE / 3):
                try:
                    self.renew()
                except Exception:  # the next beat tries again; recovery is the backstop
                    log.warning("renewing a chunk's lease failed", exc_info=True)
        finally:
            db_connections.close_all()  # this thread's own connections


def deliveries_send(*, delivery_ids: list[int]) -> SendCounts:
    """Send a chunk of planned deliveries over one provider connection.

    1. Take the chunk's lease; load its readers and items (two queries for the chunk).
    2. For each delivery: wait for a send slot, claim it (skip those another worker
       has, or whose reader left), render and send it, record the Message-ID.
    3. A transient error puts the delivery back to planned; after the others, those are
       tried again (PAPERBOY_SEND_QUICK_RETRIES times, with a short jittered pause), and
       what still fails is listed for the queue. A permanent error marks the delivery
       failed with the reason; a lost answer marks it unknown. When the provider cannot
       be reached at all, the rest of the chunk is listed and ``outage`` set.
    """
    with Lease(delivery_ids):
        return _send_leased(delivery_ids)


def _send_leased(delivery_ids: list[int]) -> SendCounts:
    counts = SendCounts()
    # Claims stop well before the task's soft time limit; the rest goes to the retry.
    deadline = time.monotonic() + 0.75 * settings.CELERY_TASK_SOFT_TIME_LIMIT
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("mail connection failed, %d deliveries wait: %r", len(delivery_ids), exc)
        counts.retry_ids, counts.outage = list(delivery_ids), True
        return counts
    papers: dict[int, dict[str, Any]] = {}
    deliveries = _chunk(delivery_ids, papers)
    pending = delivery_ids
    try:
        for round_ in range(settings.PAPERBOY_SEND_QUICK_RETRIES + 1):
            if round_:  # the pause counts from the last failure: the others took time
                pause = settings.PAPERBOY_SEND_QUICK_RETRY_DELAY * 2 ** (round_ - 1)
                since = time.monotonic() - counts.last_transient
                time.sleep(max(0.0, random.uniform(pause / 2, pause) - since))
            counts.retry_ids = []
            _send_round(pending, deliveries, connection, counts, papers, deadline)
            if counts.outage or not counts.retry_ids or time.monotonic() > deadline:
                break
            pending = counts.retry_ids
    finally:
        try:
            connection.close()
        except Exception:  # a dead connection cannot be closed politely
            log.debug("closing the mail connection failed", exc_info=True)
    return counts


def _send_round(
    delivery_ids: list[int],
    deliveries: dict[int, Delivery],
    connection: Any,
    counts: SendCounts,
    papers: dict[int, dict[str, Any]],
    deadline: float,
) -> None:
    # A sent message is recorded in the same transaction as the next claim: one trip to
    # the database per message, and still nothing claimed unrecorded beyond the one in
    # flight. Before any wait for a send slot (a rate limit, a throttling pause), it is
    # recorded on its own: nothing sent sits unrecorded while the worker sleeps.
    unrecorded: list[Sent | None] = [None]

    def record_then_sleep(seconds: float) -> None:
        _mark_sent(unrecorded[0])
        unrecorded[0] = None
        time.sleep(seconds)

    try:
        for position, delivery_id in enumerate(delivery_ids):
            delivery = deliveries.get(delivery_id)
            if delivery is None or delivery.status != Delivery.Status.PLANNED:
                counts.not_claimed += 1
                continue
            if time.monotonic() > deadline:
                log.warning(
                    "chunk near its time limit: %d deliveries go back", len(delivery_ids) - position
                )
                counts.retry_ids.extend(delivery_ids[position:])
                return
            send_slot(sleep=record_then_sleep)
            claimed_at = delivery_claim(delivery_id=delivery_id, record=unrecorded[0])
            unrecorded[0] = None
            if claimed_at is None:
                counts.not_claimed += 1
                _skip_if_inactive(delivery_id)
                continue
            delivery.claimed_at = claimed_at
            unrecorded[0] = _send_one(delivery, connection, counts, papers)
            if counts.outage:
                counts.retry_ids.extend(delivery_ids[position + 1 :])
                return
    finally:
        _mark_sent(unrecorded[0])


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


def deliveries_defer(*, delivery_ids: list[int], retry_at: datetime) -> list[int]:
    """Deliveries that met a transient error, to be tried again at ``retry_at`` by the
    same task, retried: their lease runs to a lease past that moment, so they go out
    again even if the worker holding the retry dies. Those planned more than
    PAPERBOY_SEND_GIVE_UP_AFTER ago are failed instead, with their last reason, as a
    mail server bounces what sat too long in its deferred queue. Returns the ids still
    waiting."""
    waiting = Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.PLANNED)
    too_old = timezone.now() - timedelta(seconds=settings.PAPERBOY_SEND_GIVE_UP_AFTER)
    waiting.filter(created__lt=too_old).update(
        status=Delivery.Status.FAILED,
        lease_until=None,
        error=Concat(
            Value("gave up: still refused for now a day after planning; last "), F("error")
        ),
    )
    lease_until = retry_at + timedelta(seconds=settings.PAPERBOY_SEND_LEASE)
    waiting.update(retry_at=retry_at, lease_until=lease_until)
    return list(waiting.order_by("pk").values_list("pk", flat=True))


@dataclass
class Recovery:
    """What one recovery run took back, by kind."""

    stuck: list[int] = field(default_factory=list)  # sending, its lease run out
    expired: list[int] = field(default_factory=list)  # planned, its lease run out
    orphaned: list[int] = field(default_factory=list)  # planned, its task lost
    unknown: list[int] = field(default_factory=list)  # unknown outcome, sent again

    @property
    def ids(self) -> list[int]:
        return sorted({*self.stuck, *self.expired, *self.orphaned, *self.unknown})

    def counts(self) -> dict[str, int]:
        return {
            "stuck": len(self.stuck),
            "expired": len(self.expired),
            "orphaned": len(self.orphaned),
            "unknown": len(self.unknown),
        }


RECOVER_BATCH = 10_000


def deliveries_recover(*, epoch: str, now: datetime | None = None) -> Recovery:
    """Deliveries nobody holds any more, back to planned for the caller to queue:

    - stuck: claimed (sending) by a worker whose lease ran out: it died mid-send, and
      the message may have gone out just before; the only kind that can arrive twice;
    - expired: planned in a dead worker's chunk (or its deferred retry), lease run out;
    - orphaned: planned and held by no worker, queued in a queue of an earlier
      ``epoch`` (a Redis that restarted empty), never queued within
      PAPERBOY_QUEUE_GRACE, or queued longer ago than the broker's visibility timeout;
    - unknown: no answer and no provider event for PAPERBOY_UNKNOWN_RESEND_AFTER, sent
      again (at most PAPERBOY_UNKNOWN_RESENDS times) with the same Message-ID.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.PAPERBOY_SEND_LEASE)
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    planned = Q(status=Delivery.Status.PLANNED)
    recovery = Recovery(
        stuck=_take_back(
            Q(status=Delivery.Status.SENDING)
            & (Q(lease_until__lt=now) | Q(lease_until__isnull=True, claimed_at__lt=now - lease)),
            "its worker stopped mid-send: sent again",
        ),
        expired=_take_back(planned & Q(lease_until__lt=now), "its worker stopped: sent again"),
        orphaned=_take_back(
            planned
            & Q(lease_until__isnull=True)
            & (
                Q(
                    queued_at__isnull=True,
                    created__lt=now - timedelta(seconds=settings.PAPERBOY_QUEUE_GRACE),
                )
                | (Q(queued_at__isnull=False) & ~Q(queue_epoch=epoch))
                | Q(queued_at__lt=now - timedelta(seconds=visibility))
            ),
            "its send task was lost: queued again",
        ),
        unknown=_take_back(
            Q(
                status=Delivery.Status.UNKNOWN,
                resends__lt=settings.PAPERBOY_UNKNOWN_RESENDS,
                claimed_at__lt=now - timedelta(seconds=settings.PAPERBOY_UNKNOWN_RESEND_AFTER),
            ),
            "no answer and no provider event: sent again with the same Message-ID",
            resend=True,
        ),
    )
    if recovery.ids:
        log.warning("recovered deliveries: %s", recovery.counts())
    return recovery


def _take_back(condition: Q, why: str, *, resend: bool = False) -> list[int]:
    ids = list(
        Delivery.objects.filter(condition)
        .order_by("pk")
        .values_list("pk", flat=True)[:RECOVER_BATCH]
    )
    if ids:
        Delivery.objects.filter(condition, pk__in=ids).update(
            status=Delivery.Status.PLANNED,
            lease_until=None,
            retry_at=None,
            recoveries=F("recoveries") + 1,
            resends=F("resends") + int(resend),
            queued_at=None,  # queued by the caller; if that fails, the next run does
            error=why,
        )
    return ids


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
    requeue = Delivery.objects.filter(pk__in=ids, status__in=statuses)
    # A resend of a digest that went out is a new message; a retry of an unknown one
    # keeps its Message-ID, so a copy of one that did arrive can be folded.
    for resent in requeue.filter(status=Delivery.Status.SENT).only("pk", "public_id"):
        message_id = delivery_message_id(resent, fresh=True)
        Delivery.objects.filter(pk=resent.pk).update(message_id=message_id)
    requeue.update(
        status=Delivery.Status.PLANNED,
        lease_until=None,
        retry_at=None,
        queued_at=None,
        attempts=0,  # a fresh start: its earlier tries do not count against it
        resends=0,
        error="requeued by an admin",
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
        # Fenced by the claim: a late answer after recovery gave it to another worker
        # changes nothing.
        pending = Delivery.objects.filter(
            id=delivery.pk, status=Delivery.Status.SENDING, claimed_at=delivery.claimed_at
        )
        if isinstance(exc, SoftTimeLimitExceeded):  # mid-send: it may have gone out
            pending.update(
                status=Delivery.Status.UNKNOWN,
                message_id=delivery.message_id,
                lease_until=None,
                error="the task's time limit struck mid-send",
            )
            raise
        if is_unknown_outcome(exc):
            log.warning("delivery %s: outcome unknown: %r", delivery.pk, exc)
            pending.update(
                status=Delivery.Status.UNKNOWN,
                message_id=delivery.message_id,
                lease_until=None,
                error=f"outcome unknown, waiting for the provider: {exc!r}"[:2000],
            )
            counts.unknown += 1
            counts.outage = not _reopen(connection)
        elif is_transient(exc):
            throttled = is_throttled(exc)
            if throttled:
                counts.throttled += 1
                pause = throttle_note()
                log.warning("delivery %s: throttled, all pause %.0f s: %r", delivery.pk, pause, exc)
            else:
                log.warning("delivery %s: transient error, will retry: %r", delivery.pk, exc)
            pending.update(status=Delivery.Status.PLANNED, error=f"retrying after: {exc!r}"[:2000])
            counts.retry_ids.append(delivery.pk)
            counts.last_transient = time.monotonic()
            if closes_session(exc):
                counts.outage = not _reopen(connection)
        else:
            log.warning("delivery %s failed: %r", delivery.pk, exc)
            pending.update(status=Delivery.Status.FAILED, lease_until=None, error=repr(exc)[:2000])
            counts.failed += 1
            if is_refused_recipient(exc):
                recipient_refuse(subscriber_id=delivery.subscriber_id, reason=repr(exc))
        return None
    status = getattr(message, "anymail_status", None)
    counts.sent += 1
    provider_id = getattr(status, "message_id", None) or ""
    return (delivery.pk, delivery.message_id, provider_id, delivery.claimed_at)


def _reopen(connection: object) -> bool:
    """After an error that ended the session (a dropped connection, 421): start afresh.
    False when the provider cannot be reached."""
    try:
        connection.close()  # type: ignore[attr-defined]
    except Exception:
        log.debug("closing the mail connection failed", exc_info=True)
    try:
        connection.open()  # type: ignore[attr-defined]
    except Exception as exc:
        log.warning("the mail connection cannot be reopened: %r", exc)
        return False
    return True
