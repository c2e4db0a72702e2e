"""Thin beat tasks: each takes the source's lock, so overlapping runs exit cleanly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from papers.ingest import IngestBusy, ingest_lock, ingest_run
from papers.models import Source
from papers.sources import ParseResult
from papers.sources.arxiv import ArxivClient
from papers.sources.hf import HFClient

log = logging.getLogger(__name__)


def _ingest_days(
    source: str, days: list[date], fetch: Callable[[date], ParseResult], detail: str
) -> str:
    """One run per day under the source's lock; an overlapping run exits and says why."""
    try:
        with ingest_lock(source):
            runs = [
                ingest_run(
                    source=source, fetch=partial(fetch, day), window=(day, day), detail=detail
                )
                for day in days
            ]
    except IngestBusy as busy:
        log.info("%s ingest skipped: %s", source, busy)
        return f"skipped: {busy}"
    return "; ".join(
        f"{r.window_start}: {r.status}, {r.created_count} new, {r.updated_count} updated"
        for r in runs
    )


@shared_task(acks_late=True)
def ingest_hf_recent() -> str:
    """Beat, hourly: yesterday's and today's lists (UTC), so upvotes stay fresh."""
    today = timezone.now().date()
    client = HFClient()
    try:
        return _ingest_days(
            Source.HF, [today - timedelta(days=1), today], client.fetch_day, "hourly"
        )
    finally:
        client.close()


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def ingest_arxiv_recent() -> str:
    """Beat, daily: the last three days of submissions (late announcements included)."""
    today = timezone.now().date()
    categories = list(settings.PAPERBOY_ARXIV_CATEGORIES)
    client = ArxivClient()

    def fetch(day: date) -> ParseResult:
        return client.fetch(categories=categories, since=day, until=day)

    try:
        days = [today - timedelta(days=n) for n in (2, 1, 0)]
        return _ingest_days(Source.ARXIV, days, fetch, ",".join(categories))
    finally:
        client.close()
