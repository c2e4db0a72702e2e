"""A reader's own account, reached through their signed links (no passwords): pause and
resume, resubscribe, a fresh opt-in after a bounce or complaint, "email me my link",
"sign out my links", download their data, delete it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F, Prefetch
from django.utils import timezone

from config.celery import task_later
from newsletter.abuse import daily_quota_take
from newsletter.models import Delivery, DeliveryItem, EmailEvent, Feedback, Subscriber

log = logging.getLogger(__name__)

Status = Subscriber.Status
MANAGE_LINKS_PER_DAY = 5  # "email me my link" emails to one address a day
# Reset to the defaults when a reader deletes their data (a time zone hints at where
# someone lives).
SCHEDULE = ("frequency", "weekly_day", "max_papers", "send_hour", "timezone")


def _move(subscriber: Subscriber, *, from_: tuple[str, ...], to: str, **fields: Any) -> bool:
    """Change the status only from one of ``from_`` (a conditional UPDATE, so a bounce
    or an unsubscribe arriving meanwhile is never overwritten); whether it changed."""
    changed = Subscriber.objects.filter(pk=subscriber.pk, status__in=from_).update(
        status=to, updated=timezone.now(), **fields
    )
    subscriber.refresh_from_db()
    return bool(changed)


def subscriber_pause(*, subscriber: Subscriber) -> bool:
    """No digests until the reader resumes: planning and sending take active readers only."""
    return _move(subscriber, from_=(Status.ACTIVE,), to=Status.PAUSED)


def subscriber_resume(*, subscriber: Subscriber) -> bool:
    return _move(subscriber, from_=(Status.PAUSED,), to=Status.ACTIVE)


def subscriber_resubscribe(*, subscriber: Subscriber) -> bool:
    """Back to active from pending or unsubscribed; never from bounced or complained
    (those need a fresh opt-in, ``subscriber_reoptin``)."""
    return _move(
        subscriber, from_=Subscriber.RESUBSCRIBABLE, to=Status.ACTIVE, consent_at=timezone.now()
    )


def subscriber_unsubscribe_undo(*, subscriber: Subscriber) -> bool:
    """Back to active right after an unsubscribe, through the same link."""
    return _move(subscriber, from_=(Status.UNSUBSCRIBED,), to=Status.ACTIVE)


def subscriber_reoptin(*, subscriber: Subscriber) -> bool:
    """The fresh opt-in link was followed and its button pressed."""
    return _move(
        subscriber, from_=Subscriber.REOPTABLE, to=Status.ACTIVE, consent_at=timezone.now()
    )


def links_revoke(*, subscriber: Subscriber) -> None:
    """Every link sent so far (manage, unsubscribe, feedback, confirm) stops working."""
    Subscriber.objects.filter(pk=subscriber.pk).update(
        token_version=F("token_version") + 1, updated=timezone.now()
    )
    subscriber.refresh_from_db()


def links_sign_out(*, subscriber: Subscriber) -> None:
    """Revoke every link and email a fresh manage link, so the reader is not locked out."""
    links_revoke(subscriber=subscriber)
    subscriber_id = subscriber.pk
    transaction.on_commit(lambda: task_later("send_manage_link", subscriber_id, True))


def manage_link_request(*, email: str) -> None:
    """The "email me my link" form. The caller answers the same whatever happens here,
    so nobody learns whether an address is known."""
    email = email.strip().lower()
    subscriber = (
        Subscriber.objects.with_email(email).exclude(status=Status.DELETED).only("pk").first()
    )
    if subscriber is None:
        return
    if not daily_quota_take(kind="manage-link", email=email, per_day=MANAGE_LINKS_PER_DAY):
        log.info("manage link for subscriber %s not sent: daily quota used", subscriber.pk)
        return
    subscriber_id = subscriber.pk
    transaction.on_commit(lambda: task_later("send_manage_link", subscriber_id, False))


def resubscribe_link_request(*, subscriber: Subscriber) -> bool:
    """Email a bounced or complained reader an expiring opt-in link; whether one goes."""
    if subscriber.status not in Subscriber.SUPPRESSED:
        return False
    subscriber_id = subscriber.pk
    transaction.on_commit(lambda: task_later("send_resubscribe_link", subscriber_id))
    return True


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def subscriber_export(*, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about one reader, as JSON-ready values (a fixed handful of
    queries, however many digests they had)."""
    items = DeliveryItem.objects.select_related("paper").only(
        "delivery_id", "rank", "score", "reason", "paper__arxiv_id", "paper__title"
    )
    deliveries = (
        Delivery.objects.filter(subscriber=subscriber)
        .order_by("digest_date")
        .prefetch_related(Prefetch("items", queryset=items.order_by("rank")))
    )
    feedback = (
        Feedback.objects.filter(subscriber=subscriber)
        .select_related("paper")
        .order_by("created", "pk")
    )
    events = EmailEvent.objects.filter(subscriber=subscriber).order_by("timestamp", "pk")
    return {
        "exported_at": _iso(timezone.now()),
        "profile": _profile(subscriber),
        "topics": [
            {"slug": t.slug, "name": t.name, "area": t.area} for t in subscriber.topics.all()
        ],
        "interests": subscriber.keywords,
        "authors": list(subscriber.authors),
        "liked_papers": list(subscriber.liked_papers),
        "requested_preferences": dict(subscriber.pending_preferences or {}),
        "deliveries": [_delivery(d) for d in deliveries],
        "feedback": [
            {
                "arxiv_id": f.paper.arxiv_id,
                "title": f.paper.title,
                "vote": "up" if f.vote == Feedback.Vote.UP else "down",
                "at": _iso(f.created),
            }
            for f in feedback
        ],
        "events": [
            {
                "type": e.event_type,
                "provider": e.provider,
                "at": _iso(e.timestamp),
                "description": e.description,
            }
            for e in events
        ],
    }


def _profile(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "status": subscriber.status,
        "frequency": subscriber.frequency,
        "weekly_day": subscriber.weekly_day,
        "send_hour": subscriber.send_hour,
        "timezone": subscriber.timezone,
        "max_papers": subscriber.max_papers,
        "subscribed_at": _iso(subscriber.created),
        "confirmed_at": _iso(subscriber.consent_at),
        "updated_at": _iso(subscriber.updated),
    }


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "digest_date": _iso(delivery.digest_date),
        "period": {"start": _iso(delivery.period_start), "end": _iso(delivery.period_end)},
        "status": delivery.status,
        "sent_at": _iso(delivery.sent_at),
        "papers": [
            {
                "rank": item.rank,
                "arxiv_id": item.paper.arxiv_id,
                "title": item.paper.title,
                "reason": item.reason,
            }
            for item in delivery.items.all()
        ],
    }


def erased_email(subscriber_id: int) -> str:
    """What a deleted reader's address becomes: unique, and no address at all (the
    ``.invalid`` top-level domain never resolves, and signup refuses it)."""
    return f"deleted-{subscriber_id}@erased.invalid"


@transaction.atomic
def subscriber_erase(*, subscriber: Subscriber) -> None:
    """Delete a reader's personal data, keeping the anonymous counts.

    1. Delete their feedback and the papers their digests held (their reading history).
    2. Keep each delivery's date and status (deliveries per day), drop its error text;
       planned ones become skipped.
    3. Keep each event's type and time (events per day), blank the address, the
       provider's text and payload; also for events that name the address only. The
       admin's history names the reader by number instead of by address.
    4. If they were still getting digests, record an "unsubscribed" event, so the
       per-day counts show the reader leaving.
    5. The row stays, anonymous: a placeholder address, no preferences or consent
       time, status deleted (never mailed again), token version bumped (every link
       ever sent dies).
    """
    row = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    now = timezone.now()
    Feedback.objects.filter(subscriber=row).delete()
    DeliveryItem.objects.filter(subscriber=row).delete()
    deliveries = Delivery.objects.filter(subscriber=row)
    deliveries.filter(status=Delivery.Status.PLANNED).update(status=Delivery.Status.SKIPPED)
    deliveries.exclude(error="").update(error="")
    row.traces_erase()
    if row.status in Subscriber.SUBSCRIBED:
        EmailEvent.objects.create(
            provider="paperboy",
            event_type="unsubscribed",
            subscriber=row,
            timestamp=now,
            description="deleted their data",
        )
    row.topics.clear()
    blank = Subscriber()
    Subscriber.objects.filter(pk=row.pk).update(
        email=erased_email(row.pk),
        status=Status.DELETED,
        keywords="",
        authors=[],
        liked_papers=[],
        pending_preferences={},
        consent_at=None,
        confirmation_due=None,
        token_version=F("token_version") + 1,
        updated=now,
        **{name: getattr(blank, name) for name in SCHEDULE},
    )
    subscriber.refresh_from_db()
    log.info("subscriber %s deleted their data", row.pk)
