"""arXiv and JSON Lines sources, LaTeX clean-up, and the merge of sources."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from papers.ingest import papers_upsert
from papers.models import IngestRun, Paper, Source
from papers.sources import PaperRecord, SourceError
from papers.sources.arxiv import announcement_date, parse_feed, search_query
from papers.sources.jsonl import parse_lines
from papers.text import readable
from tests.conftest import FIXTURES, NEW_SCHEMA, need_shared

SEARCH = FIXTURES / "arxiv_api_query_search_testing_start0_max10.atom.xml"
ID_LIST = FIXTURES / "arxiv_api_query_id_list_0808.05394_1707.08567.atom.xml"
ERROR = FIXTURES / "arxiv_api_query_error_http400_incorrect_id_format.atom.xml"


def test_every_arxiv_fixture_parses() -> None:
    result, total = parse_feed(need_shared(SEARCH).read_bytes())
    assert len(result.records) == 10 and not result.skipped
    assert all(r.source == Source.ARXIV and r.upvotes is None for r in result.records)
    assert all(r.title and r.authors and r.announced_on for r in result.records)
    single, total = parse_feed(need_shared(ID_LIST).read_bytes())
    assert total == 1 and [r.arxiv_id for r in single.records] == ["1707.08567"]
    record = single.records[0]
    assert record.authors[0] == "Kees A. Schouhamer Immink"
    assert record.categories == ("cs.IT",)
    assert record.published_at == datetime(2017, 7, 27, 8, 18, 33, tzinfo=UTC)


def test_the_arxiv_error_feed_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="arXiv API error: incorrect id format for abc"):
        parse_feed(need_shared(ERROR).read_bytes())


def test_a_broken_feed_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="not valid Atom XML"):
        parse_feed(b"<feed><entry>")


@pytest.mark.parametrize(
    ("submitted", "announced"),
    [
        (datetime(2026, 1, 5, 15, 0, tzinfo=UTC), date(2026, 1, 5)),  # Mon 10:00 ET
        (datetime(2026, 1, 5, 20, 0, tzinfo=UTC), date(2026, 1, 6)),  # Mon 15:00 ET
        (datetime(2026, 1, 9, 20, 0, tzinfo=UTC), date(2026, 1, 12)),  # Fri after cutoff
        (datetime(2026, 1, 10, 12, 0, tzinfo=UTC), date(2026, 1, 12)),  # Saturday
    ],
)
def test_the_announcement_date_follows_the_cutoff(submitted: datetime, announced: date) -> None:
    assert announcement_date(submitted) == announced


def test_the_arxiv_query_covers_categories_and_dates() -> None:
    query = search_query(["cs.LG", "cs.CL"], date(2026, 1, 5), date(2026, 1, 6))
    assert query == "(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202601050000 TO 202601062359]"


@pytest.mark.django_db
def test_a_paper_first_seen_on_arxiv_gains_its_hf_fields() -> None:
    hf = json.loads(need_shared(NEW_SCHEMA).read_text())[0]["paper"]
    early = PaperRecord(
        arxiv_id=hf["id"],
        title=hf["title"],
        source=Source.ARXIV,
        abstract="arXiv abstract",
        announced_on=date(2026, 1, 1),
    )
    papers_upsert(records=[early])
    assert Paper.objects.get().catalogue_date == date(2026, 1, 1)
    call_command("ingest", "hf", "--file", str(need_shared(NEW_SCHEMA)))
    paper = Paper.objects.get(arxiv_id=hf["id"])
    assert paper.source == Source.HF and paper.upvotes == hf["upvotes"]
    assert paper.featured_on == date(2026, 1, 5) == paper.catalogue_date
    assert paper.announced_on == date(2026, 1, 1)


@pytest.mark.django_db
def test_ingest_arxiv_file_and_error_file(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("ingest", "arxiv", "--file", str(need_shared(SEARCH)))
    assert Paper.objects.filter(source=Source.ARXIV).count() == 10
    with pytest.raises(CommandError, match="incorrect id format for abc"):
        call_command("ingest", "arxiv", "--file", str(need_shared(ERROR)))
    assert Paper.objects.count() == 10


def test_jsonl_skips_bad_lines_with_their_number() -> None:
    lines = [
        json.dumps(
            {
                "arxiv_id": "2601.00001",
                "title": "Good",
                "announced_on": "2026-01-05",
                "authors": ["A. Author"],
                "upvotes": 3,
            }
        ),
        "",
        "{not json",
        json.dumps({"arxiv_id": "2601.00002", "title": "No date"}),
        json.dumps(
            {"arxiv_id": "2601.00003", "title": "Typo", "upvote": 1, "featured_on": "2026-01-05"}
        ),
        json.dumps({"arxiv_id": "2601.00004", "title": "Bad date", "featured_on": "05/01/2026"}),
    ]
    result = parse_lines(lines)
    assert [r.arxiv_id for r in result.records] == ["2601.00001"]
    assert [s["id"] for s in result.skipped] == [
        "line 3",
        "line 4 (2601.00002)",
        "line 5 (2601.00003)",
        "line 6 (2601.00004)",
    ]
    assert "unknown field(s) upvote" in result.skipped[2]["reason"]


@pytest.mark.django_db
def test_ingest_jsonl_command(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    path.write_text(
        json.dumps(
            {
                "arxiv_id": "2601.00001",
                "title": "$\\textbf{Only-IF}$ works",
                "featured_on": "2026-01-05",
            }
        )
        + "\n"
    )
    call_command("ingest", "jsonl", str(path))
    paper = Paper.objects.get()
    assert (paper.title, paper.title_raw) == ("Only-IF works", "$\\textbf{Only-IF}$ works")
    assert paper.source == Source.JSONL and paper.catalogue_date == date(2026, 1, 5)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "$\\textbf{Only-IF}$: Revealing the Decisive Effect",
            "Only-IF: Revealing the Decisive Effect",
        ),
        (
            "Learning with $f$-divergence and \\emph{robust} gains of 15%",
            "Learning with f-divergence and robust gains of 15%",
        ),
        ("$\\alpha$-RoPE for AT&T", "α-RoPE for AT&T"),
        ("$\\texttt{LLaMA}$ 3 and \\textit{Text2Video}--Zero", "LLaMA 3 and Text2Video–Zero"),
        ("<b>markup</b> stays   text", "<b>markup</b> stays text"),
        ("A $5 budget", "A $5 budget"),
        ("$AT^2PO$: Agentic Turn-based Policy", "AT²PO: Agentic Turn-based Policy"),
        ("$\\text{AT}^{2}\\text{PO}$", "AT²PO"),
        ("Beyond $O(n^2)$ attention at $10^{-3}$ cost", "Beyond O(n²) attention at 10⁻³ cost"),
        ("$x_1$ and $W_{ij}$", "x₁ and W_ij"),
    ],
)
def test_latex_becomes_readable_text(raw: str, clean: str) -> None:
    assert readable(raw) == clean


@pytest.mark.django_db
def test_a_second_run_exits_cleanly_while_one_holds_the_lock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from papers.ingest import ingest_lock

    with ingest_lock(Source.HF):
        call_command("ingest", "hf", "--file", str(need_shared(NEW_SCHEMA)))
    assert "Nothing done: another hf ingest is running" in capsys.readouterr().out
    assert not IngestRun.objects.exists()
