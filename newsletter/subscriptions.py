"""Subscriber lifecycle: sign up, confirm, unsubscribe, feedback."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import TypedDict, Unpack

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from newsletter.abuse import confirmation_quota_take
from newsletter.emails import confirm_message
from newsletter.models import EmailEvent, Feedback, Subscriber, Topic
from papers.models import Paper

log = logging.getLogger(__name__)

SUPPRESSED = (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED)


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Preferences(TypedDict, total=False):
    """What a reader picks on the signup form; anything left out gets the model default."""

    keywords: str
    authors: list[str]
    frequency: str
    weekly_day: int
    send_hour: int
    timezone: str
    max_papers: int


def subscriber_signup(
    *, email: str, topics: Iterable[Topic] = (), **preferences: Unpack[Preferences]
) -> Subscriber | None:
    """Record a signup from the public form and send the confirmation email.

    The caller shows the same page whatever happens here, so nobody can learn whether
    an address is known. A new address becomes a pending subscriber with the topics and
    preferences given. Preferences of an existing address never change through this
    unauthenticated form: it only gets a confirmation link (which resubscribes).
    Suppressed addresses (bounced, complained) get nothing.
    """
    email = normalise_email(email)
    # Most signups are new addresses: insert first and let the unique index on the
    # address say when it is known, rather than look it up before every insert.
    try:
        with transaction.atomic():
            subscriber = Subscriber.objects.create(email=email, **preferences)
            subscriber.topics.add(*topics)  # a new row: nothing to replace
    except IntegrityError as error:
        return _known_address_signup(email=email, error=error)
    _confirmation_enqueue(subscriber.pk)  # its clock started just now
    return subscriber


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


def confirmation_request(*, subscriber: Subscriber) -> None:
    """Send a (fresh) confirmation link once the transaction commits. A pending
    subscriber's clock restarts, so ``pending_expire`` never deletes a reader whose
    latest link still works."""
    if subscriber.status == Subscriber.Status.PENDING:
        Subscriber.objects.filter(pk=subscriber.pk).update(updated=timezone.now())
    _confirmation_enqueue(subscriber.pk)


def _confirmation_enqueue(subscriber_id: int) -> None:
    from newsletter.tasks import send_confirmation

    transaction.on_commit(lambda: send_confirmation.delay(subscriber_id))


def confirmation_send(*, subscriber_id: int) -> bool:
    """Send the confirmation email, at most PAPERBOY_CONFIRMATIONS_PER_DAY a day to one
    address (a signup form cannot be used to flood an inbox); whether it went out."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status in SUPPRESSED:
        return False
    if not confirmation_quota_take(email=subscriber.email):
        log.info("confirmation for subscriber %s not sent: daily cap reached", subscriber_id)
        return False
    confirm_message(subscriber).send()
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
