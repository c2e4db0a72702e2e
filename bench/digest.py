"""The main path, end to end: ingest the bundled week, plan and send digests.

Prints one JSON object. Runs on a fresh schema in the machine's PostgreSQL (or
BENCH_DATABASE_URL), else on SQLite in a temporary folder. Emails go to Django's in-memory backend.
Baselines measured in the same run: parsing the JSON alone (ingest overhead ratio) and
building a plain EmailMessage with the same text (render overhead ratio).

    python bench/digest.py [--readers N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import ROOT, django_setup, peak_rss_mb, timed, weekly_readers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vendor = django_setup(tmp)
        from django.conf import settings

        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        print(json.dumps({"benchmark": "digest", "database": vendor, **run(args.readers)}))


def run(readers: int) -> dict[str, object]:
    from django.core import mail
    from django.core.mail import EmailMessage

    from newsletter.emails import digest_message
    from newsletter.models import Delivery
    from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
    from newsletter.sending import deliveries_send
    from papers.ingest import ingest_run
    from papers.models import Source
    from papers.sources.hf import parse_files

    files = sorted((ROOT / "papers" / "sample").glob("*.json"))
    _, parse_s = timed(lambda: [json.loads(f.read_bytes()) for f in files])
    run_, ingest_s = timed(lambda: ingest_run(source=Source.HF, fetch=lambda: parse_files(files)))

    weekly_readers(readers, ["", "", "", "KV cache", "video generation"])
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
        "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    main()
