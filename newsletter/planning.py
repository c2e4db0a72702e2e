"""Who is due, and what they get: writes Delivery rows and their ranked items."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from newsletter.matching import (
    Catalogue,
    Match,
    PaperFeatures,
    Preferences,
    TopicTerms,
    paper_features,
    rank,
)
from newsletter.models import Delivery, DeliveryItem, Subscriber
from papers.models import Paper

log = logging.getLogger(__name__)

BATCH = 1000
# A reader back after a long pause gets at most this far back, not a month of papers.
MAX_LOOKBACK: dict[str, int] = {Subscriber.Frequency.DAILY: 7, Subscriber.Frequency.WEEKLY: 14}


@dataclass
class PlanCounts:
    planned: int = 0
    skipped: int = 0
    delivery_ids: list[int] | None = None

    def __post_init__(self) -> None:
        self.delivery_ids = self.delivery_ids or []


def preferences_of(subscriber: Subscriber) -> Preferences:
    """A subscriber's preferences as a hashable value (topics must be prefetched)."""
    topics = sorted(subscriber.topics.all(), key=lambda t: t.slug)
    return Preferences(
        topics=tuple(TopicTerms(t.name, tuple(t.term_list())) for t in topics),
        keywords=tuple(subscriber.keyword_list()),
        authors=tuple(a for a in subscriber.authors if isinstance(a, str) and a.strip()),
    )


def digest_period(subscriber: Subscriber, day: date, last_end: date | None) -> tuple[date, date]:
    """The catalogue dates the digest dated ``day`` covers: after the previous digest's
    period, up to the day before; a first digest covers the day (or week) before."""
    end = day - timedelta(days=1)
    if last_end is None:
        start = subscriber.first_period_start(day)
    else:
        start = max(
            last_end + timedelta(days=1), day - timedelta(MAX_LOOKBACK[subscriber.frequency])
        )
    return min(start, end), end


def subscribers_for_date(day: date) -> QuerySet[Subscriber]:
    """Active readers whose schedule includes ``day`` and who have no digest for it."""
    weekday = day.weekday()
    return (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE)
        .filter(
            Q(frequency=Subscriber.Frequency.DAILY)
            | Q(frequency=Subscriber.Frequency.WEEKLY, weekly_day=weekday)
        )
        .exclude(deliveries__digest_date=day)
        .order_by("pk")
    )


def due_now(now: datetime | None = None) -> Iterator[tuple[date, QuerySet[Subscriber]]]:
    """Readers whose local send hour has come today, grouped by their local date."""
    now = now or timezone.now()
    zones = (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE)
        .values_list("timezone", flat=True)
        .distinct()
    )
    by_date: dict[date, list[tuple[str, int]]] = defaultdict(list)
    for zone in zones:
        local = now.astimezone(Subscriber(timezone=zone).zone)
        by_date[local.date()].append((zone, local.hour))
    for day, zone_hours in sorted(by_date.items()):
        for zone, hour in zone_hours:
            yield day, subscribers_for_date(day).filter(timezone=zone, send_hour__lte=hour)


def _batches(queryset: QuerySet[Subscriber]) -> Iterator[list[Subscriber]]:
    """Fixed-size batches by primary key, so memory does not grow with the readers."""
    last_pk = 0
    while True:
        batch = list(queryset.filter(pk__gt=last_pk).prefetch_related("topics")[:BATCH])
        if not batch:
            return
        yield batch
        last_pk = batch[-1].pk


def _candidates(start: date, end: date) -> list[tuple[Paper, PaperFeatures]]:
    papers = Paper.objects.filter(catalogue_date__range=(start, end)).only(
        "id",
        "title",
        "abstract",
        "ai_summary",
        "ai_keywords",
        "authors",
        "upvotes",
        "catalogue_date",
    )
    return [
        (
            p,
            paper_features(
                paper_id=p.pk,
                title=p.title,
                abstract=p.abstract,
                ai_summary=p.ai_summary,
                keywords=p.ai_keywords,
                authors=p.authors,
                upvotes=p.upvotes,
            ),
        )
        for p in papers.order_by("-upvotes", "id")
    ]


def _choose(
    subscriber: Subscriber,
    matches: list[Match],
    by_id: dict[int, Paper],
    period: tuple[date, date],
    sent: set[tuple[int, int]],
) -> list[Match]:
    """The reader's items: ranked matches within their period, never a paper twice."""
    start, end = period
    return [
        m
        for m in matches
        if start <= by_id[m.paper_id].catalogue_date <= end
        and (subscriber.pk, m.paper_id) not in sent
    ][: subscriber.max_papers]


@dataclass
class Preview:
    period: tuple[date, date]
    items: list[tuple[Paper, Match]]
    delivery: Delivery | None = None


def digest_preview(*, subscriber: Subscriber, digest_date: date) -> Preview:
    """Exactly what the digest dated ``digest_date`` holds (if planned) or would hold,
    writing nothing."""
    planned = Delivery.objects.filter(subscriber=subscriber, digest_date=digest_date).first()
    if planned is not None:
        items = list(planned.items.select_related("paper"))
        return Preview(
            period=(planned.period_start, planned.period_end),
            items=[(i.paper, Match(i.paper_id, i.score, i.reason.split("; "))) for i in items],
            delivery=planned,
        )
    last_end = Delivery.objects.filter(
        subscriber=subscriber, digest_date__lt=digest_date
    ).aggregate(end=Max("period_end"))["end"]
    period = digest_period(subscriber, digest_date, last_end)
    candidates = _candidates(*period)
    by_id = {p.pk: p for p, _ in candidates}
    sent = {
        (subscriber.pk, paper_id)
        for paper_id in DeliveryItem.objects.filter(
            subscriber=subscriber, paper__in=list(by_id)
        ).values_list("paper_id", flat=True)
    }
    matches = rank(preferences_of(subscriber), [f for _, f in candidates])
    chosen = _choose(subscriber, matches, by_id, period, sent)
    return Preview(period=period, items=[(by_id[m.paper_id], m) for m in chosen])


def digest_plan(*, digest_date: date, subscribers: QuerySet[Subscriber]) -> PlanCounts:
    """Plan the digest dated ``digest_date`` for ``subscribers``, in batches.

    1. Work out each reader's period from their previous digest.
    2. Load the candidate papers of all periods once and compute their features once.
    3. Rank once per distinct set of preferences; per reader, keep the papers in their
       period that they have not been sent, up to their maximum.
    4. Write the Deliveries (planned, or skipped when nothing is left) and items in bulk.
    """
    counts = PlanCounts()
    ranked: dict[Preferences, list[Match]] = {}
    loaded: tuple[date, date] | None = None
    by_id: dict[int, Paper] = {}
    catalogue = Catalogue([])
    for batch in _batches(subscribers):
        last_ends = dict(
            Delivery.objects.filter(subscriber__in=batch, digest_date__lt=digest_date)
            .values("subscriber")
            .annotate(end=Max("period_end"))
            .values_list("subscriber", "end")
        )
        periods = {s.pk: digest_period(s, digest_date, last_ends.get(s.pk)) for s in batch}
        window = (min(p[0] for p in periods.values()), digest_date - timedelta(days=1))
        if loaded is None or window[0] < loaded[0]:
            candidates = _candidates(*window)
            by_id = {p.pk: p for p, _ in candidates}
            catalogue = Catalogue([f for _, f in candidates])
            loaded, ranked = window, {}
        sent = set(
            DeliveryItem.objects.filter(subscriber__in=batch, paper__in=list(by_id)).values_list(
                "subscriber_id", "paper_id"
            )
        )
        plans = []
        for subscriber in batch:
            prefs = preferences_of(subscriber)
            if prefs not in ranked:
                ranked[prefs] = rank(prefs, catalogue)
            start, end = periods[subscriber.pk]
            chosen = _choose(subscriber, ranked[prefs], by_id, (start, end), sent)
            plans.append((subscriber, start, end, chosen))
        _write(digest_date, plans, counts)
    return counts


def _write(
    digest_date: date,
    plans: list[tuple[Subscriber, date, date, list[Match]]],
    counts: PlanCounts,
) -> None:
    """Bulk-write one batch. If another planner got there first (the unique constraint
    fires), drop the readers it already planned and write the rest."""
    try:
        with transaction.atomic():
            deliveries = Delivery.objects.bulk_create(
                [
                    Delivery(
                        subscriber=s,
                        digest_date=digest_date,
                        period_start=start,
                        period_end=end,
                        status=Delivery.Status.PLANNED if chosen else Delivery.Status.SKIPPED,
                    )
                    for s, start, end, chosen in plans
                ]
            )
            DeliveryItem.objects.bulk_create(
                [
                    DeliveryItem(
                        delivery=d,
                        subscriber=s,
                        paper_id=m.paper_id,
                        rank=i,
                        score=m.score,
                        reason=m.reason,
                    )
                    for d, (s, _, _, chosen) in zip(deliveries, plans, strict=True)
                    for i, m in enumerate(chosen, start=1)
                ]
            )
    except IntegrityError:
        taken = set(
            Delivery.objects.filter(
                subscriber__in=[p[0] for p in plans], digest_date=digest_date
            ).values_list("subscriber_id", flat=True)
        )
        rest = [p for p in plans if p[0].pk not in taken]
        log.info("planning %s: %d readers planned elsewhere", digest_date, len(plans) - len(rest))
        if rest and len(rest) < len(plans):
            _write(digest_date, rest, counts)
        return
    for delivery in deliveries:
        if delivery.status == Delivery.Status.PLANNED:
            counts.planned += 1
            assert counts.delivery_ids is not None
            counts.delivery_ids.append(delivery.pk)
        else:
            counts.skipped += 1


def planned_ids(digest_date: date) -> Iterable[int]:
    return (
        Delivery.objects.filter(digest_date=digest_date, status=Delivery.Status.PLANNED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
