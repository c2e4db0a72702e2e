"""Idempotent upsert of PaperRecords, and IngestRun bookkeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from papers.models import IngestRun, Paper, Source
from papers.sources import PaperRecord, ParseResult, SourceError

log = logging.getLogger(__name__)

TEXT_FIELDS = (
    "title",
    "abstract",
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

    for name in TEXT_FIELDS:
        value = getattr(record, name)
        if value:
            put(name, value)
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
        title=record.title,
        abstract=record.abstract,
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
                *TEXT_FIELDS,
                *COUNT_FIELDS,
                "ai_keywords",
                "authors",
                "published_at",
                "featured_on",
                "announced_on",
                "catalogue_date",
                "source",
                "updated",
            ]
            Paper.objects.bulk_update(changed, fields)
    counts.created += len(new)
    counts.updated += len(changed)


def ingest_run(
    *,
    source: str,
    fetch: Callable[[], ParseResult],
    window: tuple[date | None, date | None] = (None, None),
    detail: str = "",
) -> IngestRun:
    """Run one fetch-and-upsert, leaving an IngestRun that says what happened.

    A SourceError (bad JSON, HTTP failure, timeout) fails the run before anything is
    written, so the catalogue stays as it was and the next run tries again.
    """
    run = IngestRun.objects.create(
        source=source, window_start=window[0], window_end=window[1], detail=detail[:500]
    )
    try:
        result = fetch()
        counts = papers_upsert(records=result.records)
    except SourceError as exc:
        run.status = IngestRun.Status.FAILED
        run.error = str(exc)
        log.warning("ingest %s failed: %s", source, exc)
    else:
        run.status = IngestRun.Status.SUCCEEDED
        run.fetched = result.fetched
        run.created_count = counts.created
        run.updated_count = counts.updated
        run.skipped_count = len(result.skipped)
        run.skipped = result.skipped[:1000]
    run.finished_at = timezone.now()
    run.save()
    return run
