from __future__ import annotations

import logging
import sys
from argparse import ArgumentParser
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone
from tqdm import tqdm

from config import cli
from papers.ingest import IngestBusy, completed_windows, ingest_lock, ingest_run
from papers.models import IngestRun, Source
from papers.sources import ParseResult, arxiv, hf, jsonl

BACKFILL = "backfill"


def _days(since: date, until: date) -> list[date]:
    if until < since:
        raise CommandError("--until is before --since")
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


class Command(cli.Command):
    help = (
        "Load papers into the catalogue. Re-ingesting updates upvotes, comments and stars "
        "and never duplicates a paper. Each day (or file) is one run, recorded as an "
        "IngestRun; a malformed record is skipped and counted, a broken response fails "
        "its run and changes nothing.\n\n"
        "  ingest hf    [--date D | --since D --until D] [--resume] [--file PATH ...]\n"
        "  ingest arxiv [--category C ...] [--since D] [--until D] [--file PATH ...]\n"
        "  ingest jsonl PATH"
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
        hf_parser = sources.add_parser(
            "hf",
            help="Hugging Face daily papers (API, or saved responses with --file)",
            description="Hugging Face daily papers: one date (default today), a date range "
            "(a backfill: progress bar on a terminal, resumable with --resume), or saved "
            "daily_papers JSON files.",
        )
        when = hf_parser.add_mutually_exclusive_group()
        when.add_argument(
            "--date", type=cli.date_arg, help="one list date: YYYY-MM-DD, today or yesterday"
        )
        when.add_argument(
            "--since",
            type=cli.date_arg,
            help="first date of a range: YYYY-MM-DD, today or yesterday",
        )
        hf_parser.add_argument(
            "--until", type=cli.date_arg, help="last date of a range (default today)"
        )
        hf_parser.add_argument(
            "--resume", action="store_true", help="skip days an earlier backfill already finished"
        )
        self._file_argument(
            hf_parser,
            "saved daily_papers JSON responses; a YYYY-MM-DD in the file name is the list date",
        )

        arxiv_parser = sources.add_parser(
            "arxiv",
            help="arXiv API by category and submission date",
            description="arXiv papers submitted in a date window, by category, at most one "
            "request every 3 seconds; or saved Atom responses with --file.",
        )
        arxiv_parser.add_argument(
            "--category",
            action="append",
            default=[],
            metavar="C",
            help="an arXiv category, repeatable (default: "
            f"{', '.join(settings.PAPERBOY_ARXIV_CATEGORIES)})",
        )
        arxiv_parser.add_argument(
            "--since", type=cli.date_arg, help="first submission date (default yesterday)"
        )
        arxiv_parser.add_argument(
            "--until", type=cli.date_arg, help="last submission date (default today)"
        )
        self._file_argument(arxiv_parser, "saved arXiv API Atom responses")

        jsonl_parser = sources.add_parser(
            "jsonl",
            help="a JSON Lines file, one paper per line",
            description=jsonl.__doc__,
        )
        jsonl_parser.add_argument("path", type=Path, metavar="PATH")
        _no_embed_argument(jsonl_parser)

    def _file_argument(self, parser: ArgumentParser, text: str) -> None:
        parser.add_argument(
            "--file", type=Path, nargs="+", action="extend", default=[], metavar="PATH", help=text
        )
        _no_embed_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verbosity"] < 2:  # the command says what failed itself, once
            for name in ("papers.ingest", "papers.sources.http"):
                logging.getLogger(name).setLevel(logging.ERROR)
        source = options["source"]
        self.embed = not options["no_embed"]
        try:
            with ingest_lock(source):
                runs = list(getattr(self, f"ingest_{source}")(options))
        except IngestBusy as busy:
            self.stdout.write(f"Nothing done: {busy}. It will run again on schedule.")
            return
        failed = [run for run in runs if run.status == IngestRun.Status.FAILED]
        if failed:
            if len(runs) == 1:
                raise CommandError(f"{failed[0].label}: {failed[0].error}")
            what = ", ".join(r.label for r in failed[:5])
            more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
            raise CommandError(f"{len(failed)} of {len(runs)} runs failed: {what}{more}")

    # Sources --------------------------------------------------------------------------

    def ingest_hf(self, options: dict[str, Any]) -> Iterator[IngestRun]:
        if options["file"]:
            yield from self.files(Source.HF, options["file"], hf.parse_file, hf.date_from_filename)
            return
        today = timezone.now().date()
        if options["date"] and options["until"]:
            raise CommandError("--until goes with --since, not --date")
        days = _days(
            options["since"] or options["date"] or today,
            options["until"] or options["date"] or today,
        )
        backfill = len(days) > 1
        if options["resume"]:
            done = completed_windows(source=Source.HF, detail=BACKFILL)
            days = [d for d in days if d not in done]
        self.many = len(days) > 1
        client = hf.HFClient()
        try:
            for day in self.progress(days, "Hugging Face"):
                yield self.one(
                    Source.HF,
                    partial(client.fetch_day, day),
                    (day, day),
                    BACKFILL if backfill else "",
                    label=day.isoformat(),
                )
        finally:
            client.close()

    def ingest_arxiv(self, options: dict[str, Any]) -> Iterator[IngestRun]:
        if options["file"]:
            yield from self.files(Source.ARXIV, options["file"], arxiv.parse_file, lambda p: None)
            return
        today = timezone.now().date()
        categories = options["category"] or list(settings.PAPERBOY_ARXIV_CATEGORIES)
        days = _days(options["since"] or today - timedelta(days=1), options["until"] or today)
        self.many = len(days) > 1
        client = arxiv.ArxivClient()
        try:
            for day in self.progress(days, "arXiv"):
                yield self.one(
                    Source.ARXIV,
                    partial(client.fetch, categories=categories, since=day, until=day),
                    (day, day),
                    ",".join(categories),
                    label=day.isoformat(),
                )
        finally:
            client.close()

    def ingest_jsonl(self, options: dict[str, Any]) -> Iterator[IngestRun]:
        yield from self.files(Source.JSONL, [options["path"]], jsonl.parse_file, lambda p: None)

    # Plumbing -------------------------------------------------------------------------

    def files(
        self,
        source: str,
        paths: list[Path],
        parse: Callable[[Path], ParseResult],
        date_of: Callable[[Path], date | None],
    ) -> Iterator[IngestRun]:
        for path in paths:
            if path.is_dir():
                raise CommandError(f"{path} is a folder: name the files in it", returncode=2)
            if not path.is_file():
                raise CommandError(f"{path}: no such file", returncode=2)
        self.many = len(paths) > 1
        for path in self.progress(paths, "files"):
            day = date_of(path)
            yield self.one(
                source,
                partial(parse, path),
                (day, day),
                path.name,
                label=path.name,
            )

    def one(
        self,
        source: str,
        fetch: Callable[[], ParseResult],
        window: tuple[date | None, date | None],
        detail: str,
        *,
        label: str,
    ) -> IngestRun:
        run = ingest_run(source=source, fetch=fetch, window=window, detail=detail, embed=self.embed)
        run.label = label  # type: ignore[attr-defined]
        if run.status == IngestRun.Status.FAILED:
            if self.many:  # as it happens; a single run's failure is the closing line
                self.stderr.write(f"{label}: FAILED: {run.error}")
        else:
            self.stdout.write(
                f"{label}: fetched {run.fetched}, created {run.created_count}, "
                f"updated {run.updated_count}, skipped {run.skipped_count}"
            )
            for skipped in run.skipped[:10]:
                self.stderr.write(f"  skipped {skipped['id']}: {skipped['reason']}")
        return run

    def progress(self, items: list[Any], what: str) -> Any:
        """A progress bar on a terminal; plain log lines (written by one()) otherwise."""
        if len(items) > 1 and sys.stderr.isatty():
            return tqdm(items, desc=what, unit="day" if what != "files" else "file")
        return items


def _no_embed_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--no-embed",
        action="store_true",
        help="store the papers without computing their embeddings (for a big backfill: run "
        "manage.py embed_papers afterwards, in one pass)",
    )
