from __future__ import annotations

from argparse import ArgumentParser
from collections import Counter
from datetime import date
from typing import Any

from django.db.models import Q
from django.utils import timezone

from config import cli
from newsletter.models import Delivery
from newsletter.planning import digest_preview, due_now, planned_ids, subscribers_for_date
from newsletter.tasks import enqueue_plans, enqueue_sends


class Command(cli.Command):
    help = (
        "Plan and send digests. With --date D: the digest dated D to every active reader whose "
        "schedule includes D (daily readers; weekly readers on their day), whatever the hour. "
        "Without it: what beat does, the readers due now. Running it again sends nothing twice."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--date",
            type=cli.date_arg,
            default=None,
            help="digest date: YYYY-MM-DD, today or yesterday",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="show who would get how many papers; write and send nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day: date | None = options["date"]
        batches = [(day, subscribers_for_date(day))] if day else list(due_now())
        for digest_date, subscribers in batches:
            if options["dry_run"]:
                self.dry_run(digest_date, subscribers)
                continue
            started = timezone.now()
            leftovers = list(planned_ids(digest_date))  # planned by an earlier, cut-short run
            chunks = enqueue_plans(digest_date, subscribers)
            enqueue_sends(leftovers)
            status = Counter(
                Delivery.objects.filter(digest_date=digest_date)
                .filter(Q(created__gte=started) | Q(pk__in=leftovers))
                .values_list("status", flat=True)
            )
            self.stdout.write(
                f"{digest_date}: {chunks} planning chunk(s) queued; so far planned "
                f"{sum(status.values()) - status['skipped']}, skipped {status['skipped']} "
                f"(nothing to send), sent {status['sent']}, failed {status['failed']}, "
                f"waiting {status['planned'] + status['sending']}"
            )
        if not batches:
            self.stdout.write("nobody is due now")

    def dry_run(self, digest_date: date, subscribers: Any) -> None:
        would_send = 0
        for subscriber in subscribers.prefetch_related("topics").iterator(chunk_size=500):
            preview = digest_preview(subscriber=subscriber, digest_date=digest_date)
            would_send += bool(preview.items)
            self.stdout.write(f"{digest_date} {subscriber.email}: {len(preview.items)} paper(s)")
        self.stdout.write(f"{digest_date}: would send {would_send} digest(s) (dry run)")
