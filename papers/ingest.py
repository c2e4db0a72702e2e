"""Idempotent upsert of PaperRecords, and IngestRun bookkeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from papers.embedding import EmbeddingError, papers_embed
from papers.models import IngestRun, Paper, Source
from papers.sources import PaperRecord, ParseResult, SourceError
from papers.text import readable

log = logging.getLogger(__name__)

READABLE_FIELDS = ("title", "abstract")  # raw text kept in <name>_raw
TEXT_FIELDS = (
    "ai_summary",
    "organization",
    "github_repo",
    "project_page",
    "thumbnail",
)
COUNT_FIELDS = ("upvotes", "num_comments", "github_stars")
BATCH = 500


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0


def _merge(paper: Paper, record: PaperRecord) -> bool:
    """Fold a record into an existing paper. Empty values never replace good data;
    counters never go down (an old saved response must not undo newer upvotes)."""
    changed = False

    def put(name: str, value: object) -> None:
        nonlocal changed
        if getattr(paper, name) != value:
            setattr(paper, name, value)
            changed = True

    for name in READABLE_FIELDS:
        raw = getattr(record, name)
        if raw and raw != getattr(paper, f"{name}_raw"):
            put(f"{name}_raw", raw)
            put(name, readable(raw))
            put("embedding_model", "")  # the text changed: embed it again
    for name in TEXT_FIELDS:
        value = getattr(record, name)
        if value:
            put(name, value)
    if record.categories:
        put("categories", list(record.categories))
    for name in COUNT_FIELDS:
        value = getattr(record, name)
        if value is not None and value > (getattr(paper, name) or 0):
            put(name, value)
    if record.ai_keywords:
        put("ai_keywords", list(record.ai_keywords))
    if record.authors:
        put("authors", list(record.authors))
    if record.published_at and not paper.published_at:
        put("published_at", record.published_at)
    if record.featured_on and not paper.featured_on:
        put("featured_on", record.featured_on)
        put("source", Source.HF)
    if record.announced_on and not paper.announced_on:
        put("announced_on", record.announced_on)
    catalogue_date = paper.featured_on or paper.announced_on or paper.catalogue_date
    put("catalogue_date", catalogue_date)
    return changed


def _new_paper(record: PaperRecord, now: datetime) -> Paper:
    catalogue_date = record.featured_on or record.announced_on
    if catalogue_date is None and record.published_at:
        catalogue_date = record.published_at.date()
    return Paper(
        arxiv_id=record.arxiv_id,
        title=readable(record.title),
        title_raw=record.title,
        abstract=readable(record.abstract),
        abstract_raw=record.abstract,
        categories=list(record.categories),
        ai_summary=record.ai_summary,
        ai_keywords=list(record.ai_keywords),
        authors=list(record.authors),
        organization=record.organization,
        published_at=record.published_at,
        featured_on=record.featured_on,
        announced_on=record.announced_on,
        catalogue_date=catalogue_date or timezone.now().date(),
        upvotes=record.upvotes or 0,
        num_comments=record.num_comments or 0,
        github_repo=record.github_repo,
        github_stars=record.github_stars,
        project_page=record.project_page,
        thumbnail=record.thumbnail,
        source=record.source,
        created=now,
        updated=now,
    )


def papers_upsert(*, records: Iterable[PaperRecord]) -> UpsertCounts:
    """Insert new papers and update known ones, keyed by arXiv id, in batches.

    1. Collapse records with the same id (the later one wins field by field).
    2. Load the batch's known papers in one query.
    3. bulk_create the new ones, bulk_update the changed ones.
    """
    counts = UpsertCounts()
    batch: dict[str, list[PaperRecord]] = {}
    for record in records:
        batch.setdefault(record.arxiv_id, []).append(record)
        if len(batch) >= BATCH:
            _upsert_batch(batch, counts)
            batch = {}
    if batch:
        _upsert_batch(batch, counts)
    return counts


def _upsert_batch(batch: dict[str, list[PaperRecord]], counts: UpsertCounts) -> None:
    now = timezone.now()
    with transaction.atomic():
        known = {p.arxiv_id: p for p in Paper.objects.filter(arxiv_id__in=list(batch))}
        new: list[Paper] = []
        changed: list[Paper] = []
        for arxiv_id, records in batch.items():
            paper = known.get(arxiv_id)
            if paper is None:
                paper = _new_paper(records[0], now)
                for record in records[1:]:
                    _merge(paper, record)
                new.append(paper)
            elif any([_merge(paper, record) for record in records]):
                paper.updated = now
                changed.append(paper)
        Paper.objects.bulk_create(new)
        if changed:
            fields = [
                *READABLE_FIELDS,
                *(f"{name}_raw" for name in READABLE_FIELDS),
                *TEXT_FIELDS,
                "categories",
                *COUNT_FIELDS,
                "ai_keywords",
                "authors",
                "published_at",
                "featured_on",
                "announced_on",
                "catalogue_date",
                "source",
                "embedding_model",
                "updated",
            ]
            Paper.objects.bulk_update(changed, fields)
    counts.created += len(new)
    counts.updated += len(changed)


class IngestBusy(Exception):
    """Another run of the same source holds the lock."""


LOCK_SECONDS = 60 * 60


@contextmanager
def ingest_lock(source: str) -> Iterator[None]:
    """One run per source at a time, across processes (the cache is Redis in production).

    The lock expires on its own, so a killed run cannot block the source for ever.
    """
    key = f"lock:ingest:{source}"
    if not cache.add(key, timezone.now().isoformat(), LOCK_SECONDS):
        raise IngestBusy(f"another {source} ingest is running (since {cache.get(key)})")
    try:
        yield
    finally:
        cache.delete(key)


def ingest_run(
    *,
    source: str,
    fetch: Callable[[], ParseResult],
    window: tuple[date | None, date | None] = (None, None),
    detail: str = "",
    embed: bool = True,
) -> IngestRun:
    """Run one fetch-and-upsert, leaving an IngestRun that says what happened.

    A SourceError (bad JSON, HTTP failure, timeout) fails the run before anything is
    written, so the catalogue stays as it was and the next run tries again. An
    interrupted run (Ctrl-C, a worker's time limit) is recorded as failed too.
    """
    run = IngestRun.objects.create(
        source=source, window_start=window[0], window_end=window[1], detail=detail[:500]
    )
    try:
        result = fetch()
        counts = papers_upsert(records=result.records)
    except SourceError as exc:
        _finish(run, status=IngestRun.Status.FAILED, error=str(exc))
        log.warning("ingest %s %s failed: %s", source, detail or _window_label(window), exc)
        return run
    except BaseException as exc:
        _finish(run, status=IngestRun.Status.FAILED, error=f"interrupted: {exc!r}")
        raise
    run.fetched = result.fetched
    run.created_count = counts.created
    run.updated_count = counts.updated
    run.skipped_count = len(result.skipped)
    run.skipped = result.skipped[:1000]
    _finish(run, status=IngestRun.Status.SUCCEEDED)
    if embed:
        _embed_new_papers()
    return run


def _window_label(window: tuple[date | None, date | None]) -> str:
    start, end = window
    if start is None:
        return "(no date)"
    return start.isoformat() if end in (None, start) else f"{start}..{end}"


def _embed_new_papers() -> None:
    """Vectors for what the run brought in. A failure here never fails the ingest: the
    papers are stored, planning falls back to word matching for them, and the next
    run (or ``manage.py embed_papers``) embeds them."""
    try:
        papers_embed()
    except (EmbeddingError, OSError, RuntimeError, ValueError) as exc:
        log.warning("embedding new papers failed: %s", exc)


def _finish(run: IngestRun, *, status: str, error: str = "") -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.save()


def completed_windows(*, source: str, detail: str) -> set[date]:
    """Days a previous run with this detail (e.g. "backfill") finished: what a resumed
    backfill skips."""
    days = IngestRun.objects.filter(
        source=source,
        status=IngestRun.Status.SUCCEEDED,
        detail=detail,
        window_start=F("window_end"),
    ).values_list("window_start", flat=True)
    return {day for day in days if day is not None}
