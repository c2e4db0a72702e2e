"""Hugging Face daily papers: ``GET /api/daily_papers?date=D&limit=100&p=N``.

The response is a bare JSON list. The schema drifted during 2025: every field but
``paper.id`` and ``paper.title`` is optional. The top-level ``publishedAt`` is not
trusted (it changed meaning); ``paper.submittedOnDailyAt`` gives the list date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings

from papers.models import Source
from papers.sources import (
    PaperRecord,
    ParseResult,
    RecordError,
    SourceError,
    clean_arxiv_id,
    clean_count,
    clean_text,
    clean_title,
    clean_url,
    parse_datetime,
)
from papers.sources.http import PoliteClient

PAGE_SIZE = 100
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _authors(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecordError("paper.authors is not a list")
    names = []
    for author in value:
        if not isinstance(author, dict):
            raise RecordError("an author is not an object")
        if author.get("hidden") is True:
            continue
        name = clean_text(author.get("name"), what="author name", limit=300)
        if name:
            names.append(name)
    return tuple(names)


def _keywords(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise RecordError("paper.ai_keywords is not a list of text")
    return tuple(clean_text(k, what="keyword", limit=200) for k in value if k.strip())


def _organization(item: dict[str, Any], paper: dict[str, Any]) -> str:
    org = paper.get("organization") or item.get("organization")
    if org is None:
        return ""
    if not isinstance(org, dict):
        raise RecordError("organization is not an object")
    return clean_text(org.get("fullname") or org.get("name"), what="organization", limit=200)


def parse_item(item: object, *, list_date: date | None) -> PaperRecord:
    """One element of the daily-papers list as a PaperRecord, or RecordError."""
    if not isinstance(item, dict):
        raise RecordError("item is not an object")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise RecordError("item has no paper object")
    arxiv_id = clean_arxiv_id(paper.get("id"))
    title = clean_title(paper.get("title") or item.get("title"))
    submitted = parse_datetime(paper.get("submittedOnDailyAt"), what="paper.submittedOnDailyAt")
    featured_on = submitted.date() if submitted else list_date
    if featured_on is None:
        # Older responses: the top-level publishedAt is the submission-to-daily time.
        top = parse_datetime(item.get("publishedAt"), what="publishedAt")
        featured_on = top.date() if top else None
    return PaperRecord(
        arxiv_id=arxiv_id,
        title=title,
        source=Source.HF,
        abstract=clean_text(paper.get("summary"), what="paper.summary"),
        ai_summary=clean_text(paper.get("ai_summary"), what="paper.ai_summary", limit=5000),
        ai_keywords=_keywords(paper.get("ai_keywords")),
        authors=_authors(paper.get("authors")),
        organization=_organization(item, paper),
        published_at=parse_datetime(paper.get("publishedAt"), what="paper.publishedAt"),
        featured_on=featured_on,
        upvotes=clean_count(paper.get("upvotes"), what="paper.upvotes"),
        num_comments=clean_count(item.get("numComments"), what="numComments"),
        github_repo=clean_url(paper.get("githubRepo"), what="paper.githubRepo"),
        github_stars=clean_count(paper.get("githubStars"), what="paper.githubStars"),
        project_page=clean_url(paper.get("projectPage"), what="paper.projectPage"),
        thumbnail=clean_url(item.get("thumbnail"), what="thumbnail"),
    )


def parse_daily_papers(data: object, *, list_date: date | None = None) -> ParseResult:
    """Parse one decoded response. Bad records are skipped with their reason; a paper
    listed twice is kept once."""
    if not isinstance(data, list):
        raise SourceError(f"expected a JSON list, got {type(data).__name__}")
    result = ParseResult(fetched=len(data))
    seen: set[str] = set()
    for item in data:
        try:
            record = parse_item(item, list_date=list_date)
        except RecordError as exc:
            result.skip(_raw_id(item), str(exc))
            continue
        if record.arxiv_id in seen:
            result.skip(record.arxiv_id, "listed twice in the same response")
            continue
        seen.add(record.arxiv_id)
        result.records.append(record)
    return result


def _raw_id(item: object) -> str:
    if isinstance(item, dict) and isinstance(item.get("paper"), dict):
        return str(item["paper"].get("id") or "?")
    return "?"


def date_from_filename(path: Path) -> date | None:
    match = _DATE_IN_NAME.search(path.name)
    return date.fromisoformat(match.group(1)) if match else None


def parse_file(path: Path) -> ParseResult:
    """A saved response; a YYYY-MM-DD in the file name is the list date."""
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"not valid JSON ({exc})") from None
    return parse_daily_papers(data, list_date=date_from_filename(path))


def parse_files(paths: list[Path]) -> ParseResult:
    result = ParseResult()
    for path in paths:
        result.extend(parse_file(path))
    return result


def days(since: date, until: date) -> Iterator[date]:
    day = since
    while day <= until:
        yield day
        day += timedelta(days=1)


class HFClient:
    """Fetches daily-papers lists, 100 a page, at a polite pace (the anonymous limit is
    500 calls per 5 minutes)."""

    def __init__(self, *, base_url: str | None = None, **options: Any) -> None:
        self.base_url = base_url or settings.PAPERBOY_HF_API_URL
        options.setdefault("min_interval", settings.PAPERBOY_HF_MIN_INTERVAL)
        self.client = PoliteClient(name="Hugging Face", **options)

    def close(self) -> None:
        self.client.close()

    def fetch_day(self, day: date) -> ParseResult:
        """Every page of one day's list; a weekend or empty day is an empty result."""
        result = ParseResult()
        page = 0
        while True:
            data = self._get({"date": day.isoformat(), "limit": PAGE_SIZE, "p": page})
            parsed = parse_daily_papers(data, list_date=day)
            result.extend(parsed)
            if parsed.fetched < PAGE_SIZE:
                return _dedupe(result)
            page += 1

    def _get(self, params: dict[str, Any]) -> object:
        response = self.client.get(self.base_url, params)
        if response.status_code != 200:
            raise SourceError(f"Hugging Face answered HTTP {response.status_code}")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"Hugging Face sent a body that is not JSON ({exc})") from None


def _dedupe(result: ParseResult) -> ParseResult:
    """A paper can appear on two pages when the list shifts between requests."""
    seen: set[str] = set()
    records = []
    for record in result.records:
        if record.arxiv_id in seen:
            result.skip(record.arxiv_id, "listed twice in the same response")
            continue
        seen.add(record.arxiv_id)
        records.append(record)
    result.records = records
    return result
