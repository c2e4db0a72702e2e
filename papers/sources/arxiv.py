"""arXiv API (Atom): papers by category and submission-date window.

``GET http://export.arxiv.org/api/query?search_query=...&start=N&max_results=M``.
At most one request every 3 seconds, on one connection. A bad query answers HTTP 400
with an Atom feed holding one "Error" entry; that becomes a SourceError with its text.
arXiv papers carry no upvotes; their catalogue date is the announcement date.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from django.conf import settings

from papers.models import Source
from papers.sources import (
    PaperRecord,
    ParseResult,
    RecordError,
    SourceError,
    clean_arxiv_id,
    clean_text,
    clean_title,
    parse_datetime,
)
from papers.sources.http import PoliteClient

DEFAULT_CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "cs.AI")
PAGE_SIZE = 200
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
}
_ABS_ID = re.compile(r"arxiv\.org/abs/(.+)$")
EASTERN = ZoneInfo("America/New_York")
CUTOFF = time(14, 0)  # submissions before 14:00 US Eastern are announced that evening


def announcement_date(submitted: datetime) -> date:
    """The date arXiv announces a paper: the same weekday evening (US Eastern) if it was
    submitted before the 14:00 cutoff on Monday to Friday, else the next such day.
    (Holidays shift real announcements by a day; the digest window absorbs that.)"""
    local = submitted.astimezone(EASTERN)
    day = local.date()
    if local.weekday() < 5 and local.time() < CUTOFF:
        return day
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _text(entry: ET.Element, path: str) -> str:
    node = entry.find(path, NS)
    return node.text or "" if node is not None else ""


def parse_entry(entry: ET.Element) -> PaperRecord:
    match = _ABS_ID.search(_text(entry, "atom:id"))
    if not match:
        raise RecordError(f"entry id {_text(entry, 'atom:id')[:60]!r} is not an arXiv abstract URL")
    arxiv_id = clean_arxiv_id(match.group(1))
    title = clean_title(_text(entry, "atom:title"))
    published = parse_datetime(_text(entry, "atom:published"), what="published")
    authors = tuple(
        name
        for name in (
            clean_text(a.findtext("atom:name", "", NS), what="author", limit=300)
            for a in entry.findall("atom:author", NS)
        )
        if name
    )
    categories = tuple(
        c.get("term", "") for c in entry.findall("atom:category", NS) if c.get("term")
    )
    return PaperRecord(
        arxiv_id=arxiv_id,
        title=title,
        source=Source.ARXIV,
        abstract=clean_text(_text(entry, "atom:summary"), what="summary"),
        authors=authors,
        categories=categories,
        published_at=published,
        announced_on=announcement_date(published) if published else None,
    )


def parse_feed(body: bytes) -> tuple[ParseResult, int]:
    """Records of one Atom page, and the feed's total result count."""
    try:
        root = ET.fromstring(body)  # noqa: S314 (the stdlib parser does not expand external entities)
    except ET.ParseError as exc:
        raise SourceError(f"arXiv sent a body that is not valid Atom XML ({exc})") from None
    if root.tag != f"{{{NS['atom']}}}feed":
        raise SourceError(f"arXiv sent {root.tag!r}, not an Atom feed")
    entries = root.findall("atom:entry", NS)
    for entry in entries:
        if "/api/errors" in _text(entry, "atom:id"):
            raise SourceError(f"arXiv API error: {_text(entry, 'atom:summary').strip()}")
    result = ParseResult(fetched=len(entries))
    for entry in entries:
        try:
            result.records.append(parse_entry(entry))
        except RecordError as exc:
            result.skip(_text(entry, "atom:id").rsplit("/", 1)[-1] or "?", str(exc))
    total = root.findtext("opensearch:totalResults", "0", NS)
    return result, int(total) if total.isdigit() else 0


def parse_file(path: Path) -> ParseResult:
    return parse_feed(path.read_bytes())[0]


def search_query(categories: list[str] | tuple[str, ...], since: date, until: date) -> str:
    cats = " OR ".join(f"cat:{c}" for c in categories)
    return f"({cats}) AND submittedDate:[{since:%Y%m%d}0000 TO {until:%Y%m%d}2359]"


class ArxivClient:
    def __init__(self, *, base_url: str | None = None, **options: Any) -> None:
        self.base_url = base_url or settings.PAPERBOY_ARXIV_API_URL
        options.setdefault("min_interval", max(3.0, settings.PAPERBOY_ARXIV_MIN_INTERVAL))
        options.setdefault("timeout", 60.0)
        self.client = PoliteClient(name="arXiv", **options)

    def close(self) -> None:
        self.client.close()

    def fetch(
        self, *, categories: list[str] | tuple[str, ...], since: date, until: date
    ) -> ParseResult:
        """Every page of papers submitted in [since, until] in the categories."""
        query = search_query(categories, since, until)
        result = ParseResult()
        start = 0
        while True:
            params = {
                "search_query": query,
                "start": start,
                "max_results": PAGE_SIZE,
                "sortBy": "submittedDate",
                "sortOrder": "ascending",
            }
            response = self.client.get(self.base_url, params)
            if response.status_code == 400:
                parse_feed(response.content)  # raises with arXiv's own error text
            if response.status_code != 200:
                raise SourceError(f"arXiv answered HTTP {response.status_code}")
            page, total = parse_feed(response.content)
            result.extend(page)
            start += page.fetched
            if page.fetched < PAGE_SIZE or start >= total:
                return result
