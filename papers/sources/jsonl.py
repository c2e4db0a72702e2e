"""JSON Lines import: one paper per line, for bulk imports from elsewhere.

Each line is a JSON object. Required: ``arxiv_id`` and ``title``. Optional:
``abstract``, ``authors`` (list of names), ``organization``, ``categories`` (list),
``ai_summary``, ``ai_keywords`` (list), ``published_at`` (ISO 8601 date-time),
``featured_on`` (the Hugging Face daily-papers date, YYYY-MM-DD), ``announced_on`` (the
arXiv announcement date), ``upvotes``, ``num_comments``, ``github_repo``,
``github_stars``, ``project_page``, ``thumbnail``. A paper needs ``featured_on`` or
``announced_on`` (else ``published_at``) to get a catalogue date. Blank lines are
ignored; a line that is not valid JSON or breaks the schema is skipped with its line
number and reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from papers.models import Source
from papers.sources import (
    PaperRecord,
    ParseResult,
    RecordError,
    clean_arxiv_id,
    clean_count,
    clean_text,
    clean_title,
    clean_url,
    parse_datetime,
)

FIELDS = {
    "arxiv_id",
    "title",
    "abstract",
    "authors",
    "organization",
    "categories",
    "ai_summary",
    "ai_keywords",
    "published_at",
    "featured_on",
    "announced_on",
    "upvotes",
    "num_comments",
    "github_repo",
    "github_stars",
    "project_page",
    "thumbnail",
}


def _names(value: object, *, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"{what} is not a list of text")
    return tuple(t for t in (clean_text(v, what=what, limit=300) for v in value) if t)


def _date(value: object, *, what: str) -> date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RecordError(f"{what} is not a YYYY-MM-DD date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RecordError(f"{what} {value[:20]!r} is not a YYYY-MM-DD date") from None


def parse_object(obj: object) -> PaperRecord:
    if not isinstance(obj, dict):
        raise RecordError("line is not a JSON object")
    unknown = set(obj) - FIELDS
    if unknown:
        raise RecordError(f"unknown field(s) {', '.join(sorted(unknown))[:100]}")
    title = clean_title(obj.get("title"))
    return PaperRecord(
        arxiv_id=clean_arxiv_id(obj.get("arxiv_id")),
        title=title,
        source=Source.JSONL,
        abstract=clean_text(obj.get("abstract"), what="abstract"),
        authors=_names(obj.get("authors"), what="authors"),
        organization=clean_text(obj.get("organization"), what="organization", limit=200),
        categories=_names(obj.get("categories"), what="categories"),
        ai_summary=clean_text(obj.get("ai_summary"), what="ai_summary", limit=5000),
        ai_keywords=_names(obj.get("ai_keywords"), what="ai_keywords"),
        published_at=parse_datetime(obj.get("published_at"), what="published_at"),
        featured_on=_date(obj.get("featured_on"), what="featured_on"),
        announced_on=_date(obj.get("announced_on"), what="announced_on"),
        upvotes=clean_count(obj.get("upvotes"), what="upvotes"),
        num_comments=clean_count(obj.get("num_comments"), what="num_comments"),
        github_repo=clean_url(obj.get("github_repo"), what="github_repo"),
        github_stars=clean_count(obj.get("github_stars"), what="github_stars"),
        project_page=clean_url(obj.get("project_page"), what="project_page"),
        thumbnail=clean_url(obj.get("thumbnail"), what="thumbnail"),
    )


def parse_lines(lines: Iterable[str]) -> ParseResult:
    result = ParseResult()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        result.fetched += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            result.skip(f"line {number}", f"not valid JSON ({exc.msg})")
            continue
        try:
            record = parse_object(obj)
        except RecordError as exc:
            ident = obj.get("arxiv_id") if isinstance(obj, dict) else None
            result.skip(f"line {number}" + (f" ({ident})" if ident else ""), str(exc))
            continue
        if (
            record.featured_on is None
            and record.announced_on is None
            and record.published_at is None
        ):
            result.skip(
                f"line {number} ({record.arxiv_id})",
                "no date: give featured_on, announced_on or published_at",
            )
            continue
        result.records.append(record)
    return result


def parse_file(path: Path) -> ParseResult:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return parse_lines(lines)
