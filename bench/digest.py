"""The main path, end to end: ingest the bundled week, plan and send digests.

Prints one JSON object. Runs on a fresh SQLite database in a temporary folder, or on
PostgreSQL when BENCH_DATABASE_URL is set. Emails go to Django's in-memory backend.
Baselines measured in the same run: parsing the JSON alone (ingest overhead ratio) and
building a plain EmailMessage with the same text (render overhead ratio).

    python bench/digest.py [--readers N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(tmp: str) -> None:
    os.environ["PAPERBOY_VAR_DIR"] = tmp
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    for name in ("REDIS_URL", "EMAIL_PROVIDER", "EMAIL_URL"):
        os.environ.pop(name, None)
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{tmp}/bench.db")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command(
        "flush", interactive=False, verbosity=0
    ) if "BENCH_DATABASE_URL" in os.environ else None
    call_command("migrate", verbosity=0)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        print(json.dumps(run(args.readers)))


def run(readers: int) -> dict[str, object]:
    from django.core import mail
    from django.core.mail import EmailMessage

    from newsletter.emails import digest_message
    from newsletter.models import Delivery, Subscriber, Topic
    from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
    from newsletter.sending import deliveries_send
    from papers.ingest import ingest_run
    from papers.models import Source
    from papers.sources.hf import parse_files

    files = sorted((ROOT / "papers" / "sample").glob("*.json"))
    _, parse_s = timed(lambda: [json.loads(f.read_bytes()) for f in files])
    run_, ingest_s = timed(lambda: ingest_run(source=Source.HF, fetch=lambda: parse_files(files)))

    rng = random.Random(7)
    topics = list(Topic.objects.all())
    subs = Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n}@example.org",
            status="active",
            frequency="weekly",
            weekly_day=0,
            keywords=rng.choice(["", "", "", "KV cache", "video generation"]),
        )
        for n in range(readers)
    )
    through = Subscriber.topics.through
    through.objects.bulk_create(
        through(subscriber_id=s.pk, topic_id=t.pk)
        for s in subs
        for t in rng.sample(topics, rng.randint(1, 5))
    )
    day = date(2026, 1, 12)
    counts, plan_s = timed(
        lambda: digest_plan(digest_date=day, subscribers=subscribers_for_date(day))
    )
    ids = list(planned_ids(day))
    sample = list(Delivery.objects.filter(pk__in=ids[:200]).select_related("subscriber"))
    messages, render_s = timed(lambda: [digest_message(d) for d in sample])
    _, plain_s = timed(
        lambda: [EmailMessage(m.subject, m.body, to=m.to).message().as_bytes() for m in messages]
    )
    result, send_s = timed(lambda: deliveries_send(delivery_ids=ids))
    return {
        "benchmark": "digest",
        "papers": run_.created_count,
        "readers": readers,
        "ingest_papers_per_s": round(run_.created_count / ingest_s),
        "ingest_vs_json_parse_ratio": round(ingest_s / parse_s, 1),
        "plan_readers_per_s": round(readers / plan_s),
        "planned": counts.planned,
        "skipped": counts.skipped,
        "render_digests_per_s": round(len(sample) / render_s),
        "render_vs_plain_message_ratio": round(render_s / plain_s, 1),
        "send_digests_per_s": round(result.sent / send_s),
        "sent": result.sent,
        "outbox": len(mail.outbox),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    main()
