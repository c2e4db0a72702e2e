"""Subscriber lifecycle: sign up, confirm, unsubscribe, feedback."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from typing import Any, TypedDict, Unpack

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, F, Field, Q, QuerySet, Value, When
from django.utils import timezone

from config.celery import task_later, tasks_eager
from newsletter.models import EmailEvent, Feedback, Subscriber, Topic
from papers.models import Paper

log = logging.getLogger(__name__)


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
    topic_ids = [topic.pk for topic in topics]
    try:
        subscriber_insert(subscriber, topic_ids=topic_ids)
    except IntegrityError as error:
        wanted = {"topics": topic_ids, **preferences}
        return _known_address_signup(email=subscriber.email, error=error, wanted=wanted)
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


def _known_address_signup(
    *, email: str, error: IntegrityError, wanted: dict[str, Any]
) -> Subscriber | None:
    """A signup of an address already here, unless it is suppressed: it gets a fresh
    confirmation link, which lists the preferences just asked for; they replace the
    current ones only if the link is followed (this form proves nothing about who sent
    it)."""
    subscriber = Subscriber.objects.with_email(email).first()
    if subscriber is None:
        # Deleted since the insert failed, or the insert failed for another reason (a
        # topic deleted meanwhile): the reader sees the usual page, the log says why.
        cause = error.__cause__ or error
        reason = getattr(getattr(cause, "diag", None), "constraint_name", None)
        log.warning("signup not recorded: %s", reason or type(cause).__name__)
        return None
    if subscriber.status in Subscriber.SUPPRESSED:
        log.info("signup for suppressed subscriber %s ignored", subscriber.pk)
        return None
    Subscriber.objects.filter(pk=subscriber.pk).update(pending_preferences=wanted)
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
    if tasks_eager():
        task_later("send_due_confirmations")
        return
    now = time.monotonic()
    # The send asked for runs at least a quarter of DRAIN_DELAY after this commit, by
    # the clocks of web and worker (kept in step by NTP; a worker clock further ahead
    # would leave some signups to the minute's sweep).
    if now < _drain_at - DRAIN_DELAY / 4:
        return
    _drain_at = now + DRAIN_DELAY
    try:
        task_later("send_due_confirmations", countdown=DRAIN_DELAY)
    except Exception:
        _drain_at = 0.0
        log.warning("confirmation send not queued; the minute's sweep sends it", exc_info=True)


def subscriber_confirm(*, subscriber: Subscriber) -> None:
    """Double opt-in done: the reader is active (again) from now on, with the
    preferences asked for at their latest signup, if any."""
    if subscriber.status in Subscriber.SUPPRESSED:
        return
    now = timezone.now()
    wanted = dict(subscriber.pending_preferences or {})
    topic_ids = wanted.pop("topics", None)
    fields = {name: wanted[name] for name in Preferences.__annotations__ if name in wanted}
    with transaction.atomic():
        Subscriber.objects.filter(pk=subscriber.pk).update(
            status=Subscriber.Status.ACTIVE,
            consent_at=now,
            updated=now,
            pending_preferences={},
            **fields,
        )
        if topic_ids is not None:
            subscriber.topics.set(Topic.objects.filter(pk__in=topic_ids))
    subscriber.refresh_from_db()


def subscriber_unsubscribe(*, subscriber: Subscriber) -> None:
    if subscriber.status in Subscriber.SUPPRESSED:
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
