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
    """One run per day under the source's lock, one line each; an overlapping run exits
    and says why."""
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
    return "\n".join(
        f"{r.window_start}: {r.status}, {r.created_count} new, {r.updated_count} updated"
        + (f" ({r.error})" if r.error else "")
        for r in runs
    )


def ingest_hf_days(days: list[date]) -> str:
    """The Hugging Face daily lists of these days (UTC), one run each."""
    client = HFClient()
    try:
        return _ingest_days(Source.HF, days, client.fetch_day, "hourly")
    finally:
        client.close()


def ingest_arxiv_days(days: list[date]) -> str:
    """The arXiv submissions of these days in PAPERBOY_ARXIV_CATEGORIES, one run each."""
    categories = list(settings.PAPERBOY_ARXIV_CATEGORIES)
    client = ArxivClient()

    def fetch(day: date) -> ParseResult:
        return client.fetch(categories=categories, since=day, until=day)

    try:
        return _ingest_days(Source.ARXIV, days, fetch, ",".join(categories))
    finally:
        client.close()


def recent_days(source: str) -> list[date]:
    """The days a scheduled run fetches: yesterday's and today's Hugging Face lists
    (UTC), so upvotes stay fresh; the last three days of arXiv (late announcements)."""
    today = timezone.now().date()
    back = (1, 0) if source == Source.HF else (2, 1, 0)
    return [today - timedelta(days=n) for n in back]


@shared_task(acks_late=True)
def ingest_hf_recent() -> str:
    """Beat, hourly: yesterday's and today's Hugging Face lists."""
    return ingest_hf_days(recent_days(Source.HF))


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def ingest_arxiv_recent() -> str:
    """Beat, daily: the last three days of arXiv submissions."""
    return ingest_arxiv_days(recent_days(Source.ARXIV))
