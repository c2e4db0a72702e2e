"""Subscriber lifecycle: sign up, confirm, unsubscribe, feedback."""

from __future__ import annotations

import functools
import logging
import smtplib
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NamedTuple, TypedDict, Unpack

from anymail.exceptions import AnymailError
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, F, Field, Q, QuerySet, Value, When
from django.utils import timezone

from newsletter.abuse import confirmation_quota_take, daily_quota_return
from newsletter.addresses import BadAddress, address_problem
from newsletter.emails import confirm_message
from newsletter.models import EmailEvent, Feedback, Subscriber, Topic
from newsletter.sending import is_refused_recipient, is_transient, recipient_refuse
from papers.models import Paper

log = logging.getLogger(__name__)

SUPPRESSED = (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED)


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Preferences(TypedDict, total=False):
    """What a reader picks on the signup form; anything left out gets the model default."""

    keywords: str
    authors: list[str]
    liked_papers: list[str]
    frequency: str
    weekly_day: int
    send_hour: int
    timezone: str
    max_papers: int


def subscriber_signup(
    *, email: str, topics: Iterable[Topic] = (), **preferences: Unpack[Preferences]
) -> Subscriber | None:
    """Record a signup from the public form and owe it a confirmation email.

    The caller shows the same page whatever happens here, so nobody can learn whether
    an address is known. A new address becomes a pending subscriber with the topics and
    preferences given. Preferences of an existing address never change through this
    unauthenticated form: it only gets a confirmation link (which resubscribes).
    Suppressed addresses (bounced, complained) get nothing.
    """
    now = timezone.now()
    subscriber = Subscriber(
        email=normalise_email(email), created=now, updated=now, confirmation_due=now, **preferences
    )
    # Most signups are new addresses: insert first and let the unique index on the
    # address say when it is known, rather than look it up before every insert.
    try:
        subscriber_insert(subscriber, topic_ids=[topic.pk for topic in topics])
    except IntegrityError as error:
        return _known_address_signup(email=subscriber.email, error=error)
    confirmations_wake()  # the row says the email is owed: this only hurries it
    return subscriber


def subscriber_insert(subscriber: Subscriber, *, topic_ids: list[int]) -> None:
    """Insert a new subscriber with its topics, all or nothing. On PostgreSQL that is
    one statement (a data-modifying WITH): outside a transaction it needs no BEGIN or
    COMMIT, so a signup costs one trip to the database. It sends no save signals
    (nothing listens for a subscriber's)."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            subscriber.save(force_insert=True)
            subscriber.topics.add(*topic_ids)
        return
    sql, fields = _insert_with_topics_sql()
    params = [
        field.get_db_prep_save(field.pre_save(subscriber, True), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        if connection.in_atomic_block:  # a savepoint, so the caller's transaction survives
            with transaction.atomic():
                cursor.execute(sql, [*params, topic_ids])
        else:
            cursor.execute(sql, [*params, topic_ids])
        subscriber.pk = cursor.fetchone()[0]
    subscriber._state.adding = False
    subscriber._state.db = connection.alias


@functools.cache
def _insert_with_topics_sql() -> tuple[str, list[Field[Any, Any]]]:
    """The subscriber's INSERT and its topic rows' INSERT in one statement; the names
    come from the models, the values are parameters."""

    def name(model: type[models.Model], field: str | None = None) -> str:
        meta = model._meta
        column = getattr(meta.get_field(field), "column", None) if field else meta.db_table
        return connection.ops.quote_name(str(column))

    through = Subscriber.topics.through
    fields = [field for field in Subscriber._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(name(Subscriber, field.name) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    sql = f"""
        WITH s AS (
            INSERT INTO {name(Subscriber)} ({columns}) VALUES ({values}) RETURNING id
        ), t AS (
            INSERT INTO {name(through)} ({name(through, "subscriber")}, {name(through, "topic")})
            SELECT s.id, topic FROM s, unnest(%s::bigint[]) AS topic
        )
        SELECT id FROM s
    """  # noqa: S608
    return sql, fields


def _known_address_signup(*, email: str, error: IntegrityError) -> Subscriber | None:
    """A signup of an address already here: its preferences stay, it gets a fresh
    confirmation link, unless it is suppressed."""
    subscriber = Subscriber.objects.with_email(email).first()
    if subscriber is None:
        # Deleted since the insert failed, or the insert failed for another reason (a
        # topic deleted meanwhile): the reader sees the usual page, the log says why.
        cause = error.__cause__ or error
        reason = getattr(getattr(cause, "diag", None), "constraint_name", None)
        log.warning("signup not recorded: %s", reason or type(cause).__name__)
        return None
    if subscriber.status in SUPPRESSED:
        log.info("signup for suppressed subscriber %s ignored", subscriber.pk)
        return None
    confirmation_request(subscriber=subscriber)
    return subscriber


# The confirmation outbox ---------------------------------------------------------------
#
# A confirmation email that is owed is a timestamp on the subscriber's row
# (``confirmation_due``), written in the same transaction as the signup: a broker that is
# down or restarted loses none, and the web process does not publish a task per signup.
# Workers send what is due: soon after a signup (each web process asks for a send at
# most about once a second, whatever the number of signups) and every minute (beat),
# which also retries what a provider outage left owed.

CONFIRMATION_LEASE = timedelta(minutes=5)  # a send in progress; retried after it
CLOCK_SLACK = timedelta(seconds=10)  # web and worker clocks may differ this much
DRAIN_BATCH = 500
DRAIN_SECONDS = 60.0  # then another run takes over: well within the task's time limit
DRAIN_DELAY = 1.0  # seconds from a signup to the send that takes it
_drain_at = 0.0  # monotonic time of the latest send this process asked for


def confirmation_request(*, subscriber: Subscriber) -> None:
    """A (fresh) confirmation link for one reader, sent once the transaction commits."""
    confirmations_request(Subscriber.objects.filter(pk=subscriber.pk))


def confirmations_request(subscribers: QuerySet[Subscriber]) -> int:
    """Owe each of these readers a (fresh) confirmation email, sent by the workers once
    the caller's transaction commits; how many. A pending reader's clock restarts, so
    ``pending_expire`` never deletes a reader whose latest link still works."""
    now = timezone.now()
    pending = Q(status=Subscriber.Status.PENDING)
    count = subscribers.update(
        confirmation_due=now,
        updated=Case(When(pending, then=Value(now)), default=F("updated")),
    )
    if count:
        confirmations_wake()
    return count


def confirmations_wake() -> None:
    """Once the transaction commits, make sure a worker sends the confirmation emails
    owed within about DRAIN_DELAY seconds. A web process that has already asked for a
    send that starts after this commit asks for nothing more."""
    transaction.on_commit(_drain_soon)


def _drain_soon() -> None:
    global _drain_at
    from newsletter.tasks import send_due_confirmations

    if send_due_confirmations.app.conf.task_always_eager:
        send_due_confirmations.delay()
        return
    now = time.monotonic()
    # The send asked for runs at least a quarter of DRAIN_DELAY after this commit, by
    # the clocks of web and worker (kept in step by NTP; a worker clock further ahead
    # would leave some signups to the minute's sweep).
    if now < _drain_at - DRAIN_DELAY / 4:
        return
    _drain_at = now + DRAIN_DELAY
    try:
        send_due_confirmations.apply_async(countdown=DRAIN_DELAY)
    except Exception:
        _drain_at = 0.0
        log.warning("confirmation send not queued; the minute's sweep sends it", exc_info=True)


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
    if subscriber is None or subscriber.status in (*SUPPRESSED, Subscriber.Status.DELETED):
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


def subscriber_confirm(*, subscriber: Subscriber) -> None:
    """Double opt-in done: the reader is active (again) from now on."""
    if subscriber.status in SUPPRESSED:
        return
    now = timezone.now()
    Subscriber.objects.filter(pk=subscriber.pk).update(
        status=Subscriber.Status.ACTIVE, consent_at=now, updated=now
    )
    subscriber.refresh_from_db()


def subscriber_unsubscribe(*, subscriber: Subscriber) -> None:
    if subscriber.status in SUPPRESSED:
        return
    now = timezone.now()
    changed = (
        Subscriber.objects.filter(pk=subscriber.pk)
        .exclude(status=Subscriber.Status.UNSUBSCRIBED)
        .update(status=Subscriber.Status.UNSUBSCRIBED, updated=now)
    )
    if changed:  # the same timeline as the providers' events, counted per day
        EmailEvent.objects.create(
            provider="paperboy",
            event_type="unsubscribed",
            subscriber=subscriber,
            timestamp=now,
            description="unsubscribed through the link in an email",
        )
    subscriber.refresh_from_db()


def feedback_record(*, subscriber: Subscriber, paper: Paper, vote: int) -> Feedback:
    """One vote per reader and paper; a later vote replaces the earlier one."""
    feedback, _ = Feedback.objects.update_or_create(
        subscriber=subscriber, paper=paper, defaults={"vote": vote, "created": timezone.now()}
    )
    return feedback
