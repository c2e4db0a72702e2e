from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from config import cli
from newsletter.models import Subscriber
from newsletter.planning import digest_preview


class Command(cli.Command):
    help = (
        "Show exactly what the digest dated D would contain for one subscriber, with scores "
        "and reasons. Writes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--date",
            type=cli.date_arg,
            default=None,
            help="digest date: YYYY-MM-DD, today or yesterday (default: the reader's today)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        subscriber = Subscriber.objects.with_email(options["email"].strip()).first()
        if subscriber is None:
            raise CommandError(f"no subscriber {options['email']}")
        digest_date = options["date"] or subscriber.local_date()
        preview = digest_preview(subscriber=subscriber, digest_date=digest_date)
        papers: list[dict[str, Any]] = [
            {"arxiv_id": p.arxiv_id, "title": p.title, "score": m.score, "reasons": m.reasons}
            for p, m in preview.items
        ]
        period = {"start": preview.period[0].isoformat(), "end": preview.period[1].isoformat()}
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "email": subscriber.email,
                        "date": digest_date.isoformat(),
                        "period": period,
                        "papers": papers,
                    },
                    ensure_ascii=False,
                )
            )
            return
        self.stdout.write(
            f"{subscriber.email}: digest dated {digest_date}, papers from {period['start']} "
            f"to {period['end']}: {len(papers)} paper(s)"
        )
        if not subscriber.receives_on(digest_date):
            self.stdout.write("(this reader's schedule has no digest on that date)")
        for rank, paper in enumerate(papers, start=1):
            self.stdout.write(
                f"{rank:>2}. [{paper['score']:.2f}] {paper['arxiv_id']} {paper['title']}"
            )
            for reason in paper["reasons"]:
                self.stdout.write(f"      {reason}")
