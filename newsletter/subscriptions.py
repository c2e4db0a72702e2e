"""Subscriber lifecycle: sign up, confirm, unsubscribe."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from newsletter.emails import confirm_message
from newsletter.models import Subscriber, Topic

log = logging.getLogger(__name__)

SUPPRESSED = (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def subscriber_signup(*, email: str, topics: Iterable[Topic] = ()) -> Subscriber | None:
    """Record a signup from the public form and send the confirmation email.

    The caller shows the same page whatever happens here, so nobody can learn whether
    an address is known. Preferences of an existing reader never change through this
    unauthenticated form: they only get a confirmation link (which resubscribes).
    Suppressed addresses (bounced, complained) get nothing.
    """
    from newsletter.tasks import send_confirmation

    email = normalise_email(email)
    subscriber = Subscriber.objects.filter(email=email).first()
    if subscriber is None:
        try:
            with transaction.atomic():
                subscriber = Subscriber.objects.create(email=email)
                subscriber.topics.set(topics)
        except IntegrityError:  # a concurrent signup of the same address
            return None
    elif subscriber.status == Subscriber.Status.PENDING:
        subscriber.topics.set(topics)
    elif subscriber.status in SUPPRESSED:
        log.info("signup for suppressed subscriber %s ignored", subscriber.pk)
        return None
    subscriber_id = subscriber.pk
    transaction.on_commit(lambda: send_confirmation.delay(subscriber_id))
    return subscriber


def confirmation_send(*, subscriber_id: int) -> None:
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    if subscriber.status in SUPPRESSED:
        return
    confirm_message(subscriber).send()


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
    Subscriber.objects.filter(pk=subscriber.pk).update(
        status=Subscriber.Status.UNSUBSCRIBED, updated=timezone.now()
    )
    subscriber.refresh_from_db()
