from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from papers.ingest import ingest_run
from papers.models import Source
from papers.sources import ParseResult
from papers.sources.hf import HFClient

LOCK_SECONDS = 30 * 60


@shared_task(acks_late=True)
def ingest_hf_recent() -> str:
    """Beat, hourly: today's and yesterday's lists (UTC), so upvotes stay fresh.

    A cache lock keeps two overlapping runs from fetching the same days twice.
    """
    if not cache.add("lock:ingest:hf", "1", LOCK_SECONDS):
        return "skipped: another Hugging Face ingest is running"
    try:
        today = timezone.now().date()
        yesterday = today - timedelta(days=1)
        client = HFClient()

        def fetch() -> ParseResult:
            result = ParseResult()
            for day in (yesterday, today):
                result.extend(client.fetch_day(day))
            return result

        try:
            run = ingest_run(source=Source.HF, fetch=fetch, window=(yesterday, today))
        finally:
            client.close()
        return f"{run.status}: {run.created_count} new, {run.updated_count} updated"
    finally:
        cache.delete("lock:ingest:hf")
