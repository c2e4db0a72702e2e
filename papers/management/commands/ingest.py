from __future__ import annotations

from argparse import ArgumentParser
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from papers.ingest import ingest_run
from papers.models import IngestRun, Source
from papers.sources import ParseResult
from papers.sources.hf import HFClient, date_from_filename, days, parse_files


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; use YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Load papers into the catalogue. Re-ingesting updates upvotes and never duplicates.\n"
        "  ingest hf [--date D | --since D --until D] [--file PATH ...]"
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
        hf = sources.add_parser(
            "hf",
            help="Hugging Face daily papers (API, or saved responses with --file)",
            description="Hugging Face daily papers: one date, a date range, or saved JSON files.",
        )
        when = hf.add_mutually_exclusive_group()
        when.add_argument("--date", type=_date, help="one list date, YYYY-MM-DD (default: today)")
        when.add_argument("--since", type=_date, help="first date of a range, YYYY-MM-DD")
        hf.add_argument("--until", type=_date, help="last date of a range (default: today)")
        hf.add_argument(
            "--file",
            type=Path,
            nargs="+",
            action="extend",
            default=[],
            metavar="PATH",
            help="saved daily_papers JSON responses; a YYYY-MM-DD in the name is the list date",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run = self.ingest_hf(options)
        self.report(run)

    def ingest_hf(self, options: dict[str, Any]) -> IngestRun:
        files: list[Path] = options["file"]
        if files:
            for path in files:
                if not path.is_file():
                    raise CommandError(f"{path}: no such file")
            listed = [d for d in (date_from_filename(p) for p in files) if d]
            return ingest_run(
                source=Source.HF,
                fetch=lambda: parse_files(files),
                window=(min(listed, default=None), max(listed, default=None)),
                detail=", ".join(p.name for p in files),
            )
        today = date.today()
        since = options["since"] or options["date"] or today
        until = options["until"] or (options["date"] or today)
        if until < since:
            raise CommandError("--until is before --since")
        client = HFClient()

        def fetch() -> ParseResult:
            result = ParseResult()
            for day in days(since, until):
                result.extend(client.fetch_day(day))
            return result

        try:
            return ingest_run(source=Source.HF, fetch=fetch, window=(since, until))
        finally:
            client.close()

    def report(self, run: IngestRun) -> None:
        if run.status == IngestRun.Status.FAILED:
            raise CommandError(f"ingest failed: {run.error}")
        self.stdout.write(
            f"{run.get_source_display()}: fetched {run.fetched}, created {run.created_count}, "
            f"updated {run.updated_count}, skipped {run.skipped_count}"
        )
        for skipped in run.skipped[:20]:
            self.stderr.write(f"  skipped {skipped['id']}: {skipped['reason']}")
