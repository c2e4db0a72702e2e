"""Counting queries for the admin: deliveries and email events per day, signups per
day, subscribers per status and per topic (the dashboard), and how an admin's retry or
resend would treat a selection of deliveries.

Every function runs a fixed number of aggregate queries (GROUP BY), however many days,
subscribers or deliveries it covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from newsletter.models import Delivery, EmailEvent, Subscriber, Topic

DELIVERY_COLUMNS = ("planned", "sending", "sent", "failed", "unknown", "skipped")
# anymail's normalised event types, as stored; "unsubscribed" also covers the link in
# our own emails (provider "paperboy") and an admin's "suppress" (provider "admin"). A
# soft bounce that a provider reports as "deferred" is not counted.
EVENT_COLUMNS = ("bounced", "complained", "unsubscribed")


@dataclass
class DayCounts:
    """Deliveries of one digest date by current status, and events of one day by type."""

    day: date | None  # None for the totals row
    planned: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0

    def add(self, column: str, n: int) -> None:
        setattr(self, column, getattr(self, column) + n)


@dataclass
class DailyCounts:
    rows: list[DayCounts]  # newest first
    total: DayCounts


def daily_counts(*, days: int, today: date | None = None) -> DailyCounts:
    """Per-day counts for the ``days`` days up to ``today`` (default: today in the
    current time zone), newest first, with a totals row.

    1. Deliveries grouped by digest date and current status (one query). A digest
       date after ``today`` (readers east of here) gets a row of its own.
    2. Events of the EVENT_COLUMNS types grouped by the date of their timestamp in the
       current time zone, and by type (one query).
    """
    start, today = _window_start(days, today)
    rows = {
        start + timedelta(days=n): DayCounts(day=start + timedelta(days=n)) for n in range(days)
    }
    total = DayCounts(day=None)
    for day, column, n in _delivery_groups(start) + _event_groups(start):
        rows.setdefault(day, DayCounts(day=day)).add(column, n)
        total.add(column, n)
    return DailyCounts(rows=[rows[day] for day in sorted(rows, reverse=True)], total=total)


def _window_start(days: int, today: date | None) -> tuple[date, date]:
    if days < 1:
        raise ValueError("days must be at least 1")
    today = today or timezone.localdate()
    return today - timedelta(days=days - 1), today


def signups_per_day(*, days: int, today: date | None = None) -> dict[date, int]:
    """Subscribers created on each of the ``days`` days up to ``today``, by the date of
    their signup in the current time zone, whatever their status now (one query).
    Days without signups are absent."""
    start, _ = _window_start(days, today)
    since = timezone.make_aware(datetime.combine(start, time.min))
    groups = (
        Subscriber.objects.filter(created__gte=since)
        .annotate(day=TruncDate("created"))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
    )
    return {g["day"]: g["n"] for g in groups}


@dataclass
class TopicCount:
    name: str
    slug: str
    active: int  # active subscribers following it


def top_topics(*, limit: int = 10) -> list[TopicCount]:
    """The topics with the most active subscribers, most first (one query); topics
    nobody active follows are left out."""
    followed = Count("subscribers", filter=Q(subscribers__status=Subscriber.Status.ACTIVE))
    topics = (
        Topic.objects.annotate(active=followed)
        .filter(active__gt=0)
        .order_by("-active", "name")
        .values("name", "slug", "active")[:limit]
    )
    return [TopicCount(**t) for t in topics]


def status_counts() -> dict[str, int]:
    """Subscribers per status, every status present (one query)."""
    counts = dict.fromkeys(Subscriber.Status.values, 0)
    groups = Subscriber.objects.order_by().values("status").annotate(n=Count("pk"))
    counts.update({g["status"]: g["n"] for g in groups})
    return counts


@dataclass
class DashboardCounts:
    """The dashboard's series, oldest day first, one value per day in ``days``."""

    days: list[date]
    signups: list[int]
    sent: list[int]  # deliveries sent, by digest date
    bounced: list[int]
    complained: list[int]
    unsubscribed: list[int]
    statuses: dict[str, int]
    topics: list[TopicCount]
    sending: SendingCounts


def dashboard_counts(*, days: int, today: date | None = None, topics: int = 10) -> DashboardCounts:
    """Everything the dashboard draws, in seven queries whatever ``days`` is."""
    daily = daily_counts(days=days, today=today)
    signups = signups_per_day(days=days, today=today)
    rows = list(reversed(daily.rows))  # every row of daily_counts has a day
    dates = [row.day for row in rows if row.day is not None]
    return DashboardCounts(
        days=dates,
        signups=[signups.get(day, 0) for day in dates],
        sent=[row.sent for row in rows],
        bounced=[row.bounced for row in rows],
        complained=[row.complained for row in rows],
        unsubscribed=[row.unsubscribed for row in rows],
        statuses=status_counts(),
        topics=top_topics(limit=topics),
        sending=sending_counts(since=dates[0]),
    )


@dataclass
class SendingCounts:
    """Deliveries on their way: waiting for a worker or being sent, waiting to be tried
    again after a transient error, outcome unknown, and (over the dashboard's days)
    those that recovery took back from a dead worker, a lost task or a lost answer."""

    waiting: int
    retrying: int
    unknown: int
    recovered: int


PIPELINE = {
    "waiting": Q(status__in=["planned", "sending"], retry_at__isnull=True),
    "retrying": Q(status="planned", retry_at__isnull=False),
    "unknown": Q(status="unknown"),
    "recovered": Q(recoveries__gt=0),
}


def sending_counts(*, since: date) -> SendingCounts:
    """Two queries, each on a partial index: the open deliveries by kind, and those
    recovered among the digests dated ``since`` and later."""
    open_ = Delivery.objects.filter(status__in=["planned", "sending", "unknown"]).aggregate(
        **{name: Count("pk", filter=PIPELINE[name]) for name in ("waiting", "retrying", "unknown")}
    )
    recovered = Delivery.objects.filter(PIPELINE["recovered"], digest_date__gte=since).count()
    return SendingCounts(recovered=recovered, **open_)


def _delivery_groups(start: date) -> list[tuple[date, str, int]]:
    groups = (
        Delivery.objects.filter(digest_date__gte=start, status__in=DELIVERY_COLUMNS)
        .order_by()
        .values("digest_date", "status")
        .annotate(n=Count("pk"))
    )
    return [(g["digest_date"], g["status"], g["n"]) for g in groups]


def _event_groups(start: date) -> list[tuple[date, str, int]]:
    since = timezone.make_aware(datetime.combine(start, time.min))
    groups = (
        EmailEvent.objects.filter(timestamp__gte=since, event_type__in=EVENT_COLUMNS)
        .annotate(day=TruncDate("timestamp"))
        .order_by()
        .values("day", "event_type")
        .annotate(n=Count("pk"))
    )
    return [(g["day"], g["event_type"], g["n"]) for g in groups]


@dataclass
class RequeueSplit:
    """How ``deliveries_requeue`` will treat a selection of deliveries."""

    eligible: int  # in one of the statuses, reader active
    wrong_status: int  # in another status (whatever the reader)
    inactive_reader: int  # in one of the statuses, reader no longer active


def requeue_split(*, delivery_ids: list[int], statuses: tuple[str, ...]) -> RequeueSplit:
    right_status = Q(status__in=statuses)
    active = Q(subscriber__status=Subscriber.Status.ACTIVE)
    counts = Delivery.objects.filter(pk__in=delivery_ids).aggregate(
        eligible=Count("pk", filter=right_status & active),
        wrong_status=Count("pk", filter=~right_status),
        inactive_reader=Count("pk", filter=right_status & ~active),
    )
    return RequeueSplit(**counts)
