"""Work handed to the workers in chunks of ids, each chunk one task, queued by the
task's name: the admin, the commands and the control room ask for work here without
importing ``newsletter.tasks``, which imports the services that do it."""

from __future__ import annotations

import itertools
from datetime import date

from django.conf import settings
from django.db.models import QuerySet

from config.celery import task_later
from newsletter.models import Subscriber


def enqueue_sends(delivery_ids: list[int]) -> int:
    """One send task per PAPERBOY_SEND_CHUNK deliveries; returns the chunk count."""
    chunk = settings.PAPERBOY_SEND_CHUNK
    chunks = [delivery_ids[i : i + chunk] for i in range(0, len(delivery_ids), chunk)]
    for ids in chunks:
        task_later("send_deliveries", ids)
    return len(chunks)


def enqueue_plans(digest_date: date, subscribers: QuerySet[Subscriber]) -> int:
    """Fan planning out to the workers in chunks of readers; returns the chunk count."""
    chunk = settings.PAPERBOY_PLAN_CHUNK
    ids = subscribers.values_list("pk", flat=True).iterator(chunk_size=chunk)
    count = 0
    while batch := list(itertools.islice(ids, chunk)):
        task_later("plan_digests", digest_date.isoformat(), batch)
        count += 1
    return count
