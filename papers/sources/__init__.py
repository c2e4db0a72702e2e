"""Sources turn an API response into PaperRecords. No database access here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

# New-style ids (2501.19393, optionally with a version) and old-style (hep-th/9901001).
ARXIV_ID_RE = re.compile(r"^(\d{4}\.\d{4,5}|[a-z][a-z.-]*/\d{7})(v\d+)?$")
_SPACE_RE = re.compile(r"\s+")
MAX_TEXT = 20_000


# Control characters mean nothing in a title or an abstract, and PostgreSQL refuses NUL
# in text and JSON outright: one NUL would fail a whole batch. Tab and newline stay
# (clean_text turns them into spaces where it matters).
_CONTROLS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def no_controls(value: str) -> str:
    return value.translate(_CONTROLS)


class SourceError(Exception):
    """The whole response is unusable (bad JSON, wrong shape, HTTP failure)."""


class RecordError(ValueError):
    """One record is unusable; the rest of the batch goes on."""


@dataclass(frozen=True)
class PaperRecord:
    arxiv_id: str
    title: str
    source: str
    abstract: str = ""
    ai_summary: str = ""
    ai_keywords: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    organization: str = ""
    categories: tuple[str, ...] = ()
    published_at: datetime | None = None
    featured_on: date | None = None
    announced_on: date | None = None
    upvotes: int | None = None
    num_comments: int | None = None
    github_repo: str = ""
    github_stars: int | None = None
    project_page: str = ""
    thumbnail: str = ""

    def __post_init__(self) -> None:
        """Every text of every source loses its control characters here, once."""
        for name, value in vars(self).items():
            if isinstance(value, str):
                cleaned: object = no_controls(value)
            elif isinstance(value, tuple) and any(isinstance(v, str) for v in value):
                cleaned = tuple(no_controls(v) if isinstance(v, str) else v for v in value)
            else:
                continue
            if cleaned != value:
                object.__setattr__(self, name, cleaned)


@dataclass
class ParseResult:
    records: list[PaperRecord] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    fetched: int = 0

    def skip(self, record_id: object, reason: str) -> None:
        self.skipped.append({"id": no_controls(str(record_id))[:64], "reason": no_controls(reason)})

    def extend(self, other: ParseResult) -> None:
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)
        self.fetched += other.fetched


def clean_text(value: object, *, what: str, limit: int = MAX_TEXT) -> str:
    """Whitespace-normalised text; None is empty; anything but a string is an error."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{what} is {type(value).__name__}, not text")
    if len(value) > limit:
        raise RecordError(f"{what} is {len(value)} characters, over the limit of {limit}")
    return _SPACE_RE.sub(" ", value).strip()


_SCRIPT = re.compile(r"<\s*script|javascript:", re.IGNORECASE)


def clean_title(value: object) -> str:
    """A title: required, at most 1,000 characters. Markup stays text (emails escape it),
    but a script tag marks the record as hostile and it is skipped."""
    title = clean_text(value, what="title", limit=1000)
    if not title:
        raise RecordError("no title")
    if _SCRIPT.search(title):
        raise RecordError("title contains a script tag")
    return title


def clean_count(value: object, *, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} is {type(value).__name__}, not a whole number")
    if value < 0:
        raise RecordError(f"{what} is negative ({value})")
    return value


def clean_url(value: object, *, what: str) -> str:
    text = clean_text(value, what=what, limit=500)
    if text and not text.startswith(("https://", "http://")):
        raise RecordError(f"{what} is not an http(s) URL")
    return text


def clean_arxiv_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError("no arXiv id")
    arxiv_id = value.strip()
    if not ARXIV_ID_RE.match(arxiv_id):
        raise RecordError(f"invalid arXiv id {arxiv_id[:40]!r}")
    return re.sub(r"v\d+$", "", arxiv_id)


def parse_datetime(value: object, *, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RecordError(f"{what} is {type(value).__name__}, not a date")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"{what} {value[:40]!r} is not an ISO date") from None
