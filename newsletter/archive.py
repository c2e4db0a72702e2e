"""The public web archive of each day's trending list, and the sample on the front page.

A day's trending list is the Hugging Face daily-papers list of that date, most upvoted
first. Pages get plain values (no query runs inside a template) and Django's templates
escape every piece of paper text; links go out only when they are http(s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery

from newsletter.emails import authors_short, short_summary
from papers.models import Paper

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class PaperCard:
    """What a page shows of one paper."""

    rank: int
    arxiv_id: str
    title: str
    authors: str
    organization: str
    summary: str
    upvotes: int
    num_comments: int
    github_stars: int | None
    hf_url: str
    arxiv_url: str
    pdf_url: str
    code_url: str
    project_url: str


def _web_link(url: str) -> str:
    """A stored URL, only if it is a web address (never javascript: or data:)."""
    return url if url.lower().startswith(("https://", "http://")) else ""


def paper_card(paper: Paper, rank: int) -> PaperCard:
    return PaperCard(
        rank=rank,
        arxiv_id=paper.arxiv_id,
        title=paper.title,
        authors=authors_short(paper.authors),
        organization=paper.organization,
        summary=short_summary(paper),
        upvotes=paper.upvotes,
        num_comments=paper.num_comments,
        github_stars=paper.github_stars,
        hf_url=paper.hf_url,
        arxiv_url=paper.arxiv_url,
        pdf_url=paper.pdf_url,
        code_url=_web_link(paper.github_repo),
        project_url=_web_link(paper.project_page),
    )


def _trending() -> QuerySet[Paper]:
    """Papers of the Hugging Face lists. Their catalogue date is the list's date, and
    catalogue_date is the indexed column, so every query below goes by it."""
    return Paper.objects.filter(featured_on__isnull=False)


def archive_latest_day() -> date | None:
    return _trending().order_by("-catalogue_date").values_list("catalogue_date", flat=True).first()


def archive_days() -> QuerySet[Any, Any]:
    """One row per day with a trending list, newest first: the day, its paper count and
    its most upvoted title (for a paginator: it counts and slices in the database)."""
    top = (
        _trending()
        .filter(catalogue_date=OuterRef("catalogue_date"))
        .order_by("-upvotes", "arxiv_id")
    )
    return (
        _trending()
        .values("catalogue_date")
        .annotate(papers=Count("pk"), top_title=Subquery(top.values("title")[:1]))
        .order_by("-catalogue_date")
    )


def archive_day(*, day: date, limit: int | None = None) -> list[PaperCard]:
    """That day's trending list, most upvoted first."""
    papers = _trending().filter(catalogue_date=day).order_by("-upvotes", "arxiv_id")
    if limit is not None:
        papers = papers[:limit]
    return [paper_card(paper, rank) for rank, paper in enumerate(papers, start=1)]


def archive_neighbours(*, day: date) -> tuple[date | None, date | None]:
    """The trending days just before and just after ``day``."""
    days = _trending().values_list("catalogue_date", flat=True)
    earlier = days.filter(catalogue_date__lt=day).order_by("-catalogue_date").first()
    later = days.filter(catalogue_date__gt=day).order_by("catalogue_date").first()
    return earlier, later


def sample_digest() -> tuple[date | None, list[PaperCard]]:
    """The front page's sample: the latest day's top trending papers."""
    day = archive_latest_day()
    if day is None:
        return None, []
    return day, archive_day(day=day, limit=SAMPLE_SIZE)
