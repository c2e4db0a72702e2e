"""Thin beat tasks: each takes the source's lock, so overlapping runs exit cleanly."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from papers.ingest import IngestBusy, ingest_lock, ingest_run
from papers.models import Source
from papers.sources.arxiv import ArxivClient
from papers.sources.hf import HFClient

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def ingest_hf_recent() -> str:
    """Beat, hourly: yesterday's and today's lists (UTC), so upvotes stay fresh."""
    today = timezone.now().date()
    client = HFClient()
    try:
        with ingest_lock(Source.HF):
            runs = [
                ingest_run(
                    source=Source.HF,
                    fetch=partial(client.fetch_day, day),
                    window=(day, day),
                    detail="hourly",
                )
                for day in (today - timedelta(days=1), today)
            ]
    except IngestBusy as busy:
        log.info("Hugging Face ingest skipped: %s", busy)
        return f"skipped: {busy}"
    finally:
        client.close()
    return "; ".join(
        f"{r.window_start}: {r.status}, {r.created_count} new, {r.updated_count} updated"
        for r in runs
    )


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def ingest_arxiv_recent() -> str:
    """Beat, daily: the last three days of submissions (late announcements included)."""
    today = timezone.now().date()
    categories = list(settings.PAPERBOY_ARXIV_CATEGORIES)
    client = ArxivClient()
    try:
        with ingest_lock(Source.ARXIV):
            runs = [
                ingest_run(
                    source=Source.ARXIV,
                    fetch=partial(client.fetch, categories=categories, since=day, until=day),
                    window=(day, day),
                    detail=",".join(categories),
                )
                for day in (today - timedelta(days=n) for n in (2, 1, 0))
            ]
    except IngestBusy as busy:
        log.info("arXiv ingest skipped: %s", busy)
        return f"skipped: {busy}"
    finally:
        client.close()
    return "; ".join(f"{r.window_start}: {r.status}, {r.created_count} new" for r in runs)
