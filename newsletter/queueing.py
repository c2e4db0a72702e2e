"""Work handed to the workers in chunks of ids, each chunk one task, queued by the
task's name: the admin, the commands and the control room ask for work here without
importing ``newsletter.tasks``, which imports the services that do it."""

from __future__ import annotations

import itertools
import uuid
from datetime import date

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from config.celery import task_later
from newsletter.models import Delivery, Subscriber

EPOCH_KEY = "broker-epoch"
STAMP_BATCH = 5000


def broker_epoch() -> str:
    """The identity of the queue as it is now: a random value kept in Redis beside the
    queue (the cache and the broker share REDIS_URL), made when missing. A Redis that
    restarted empty has lost its queued tasks and its epoch alike, so deliveries
    stamped with another epoch have lost their send task."""
    cache.add(EPOCH_KEY, uuid.uuid4().hex, timeout=None)
    return str(cache.get(EPOCH_KEY, ""))


def enqueue_sends(delivery_ids: list[int]) -> int:
    """One send task per PAPERBOY_SEND_CHUNK deliveries; returns the chunk count. The
    deliveries still planned are stamped with the time and the queue's epoch, read
    before queueing: if the queue is lost in between, the old epoch gives it away."""
    epoch = broker_epoch()
    chunk = settings.PAPERBOY_SEND_CHUNK
    chunks = [delivery_ids[i : i + chunk] for i in range(0, len(delivery_ids), chunk)]
    for ids in chunks:
        task_later("send_deliveries", ids)
    now = timezone.now()
    for start in range(0, len(delivery_ids), STAMP_BATCH):
        Delivery.objects.filter(
            pk__in=delivery_ids[start : start + STAMP_BATCH],
            status=Delivery.Status.PLANNED,
            lease_until__isnull=True,
        ).update(queued_at=now, queue_epoch=epoch)
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
