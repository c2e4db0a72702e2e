from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from papers.sources import SourceError
from papers.sources.hf import parse_daily_papers, parse_file
from tests.conftest import NEW_SCHEMA, OLD_SCHEMA, SAMPLE_DIR, need_shared


def test_it_parses_the_current_schema() -> None:
    result = parse_file(need_shared(NEW_SCHEMA))
    assert result.fetched == 14
    assert len(result.records) == 14
    assert result.skipped == []
    youtu = next(r for r in result.records if r.arxiv_id == "2512.24615")
    assert youtu.title.startswith("Youtu-Agent")
    assert youtu.upvotes == 86
    assert youtu.github_repo == "https://github.com/TencentCloudADP/youtu-agent"
    assert youtu.github_stars == 4095
    assert youtu.organization == "Tencent"
    assert youtu.featured_on == date(2026, 1, 5)
    assert youtu.published_at is not None and youtu.published_at.date() == date(2025, 12, 31)
    assert youtu.authors and all(isinstance(a, str) for a in youtu.authors)


def test_it_parses_the_older_schema_without_optional_fields() -> None:
    result = parse_file(need_shared(OLD_SCHEMA))
    assert len(result.records) == 15
    s1 = next(r for r in result.records if r.arxiv_id == "2501.19393")
    assert s1.authors[0] == "Niklas Muennighoff"
    assert s1.ai_summary == "" and s1.github_repo == "" and s1.github_stars is None
    assert s1.featured_on == date(2025, 2, 3)
    assert "  " not in s1.abstract and "\n" not in s1.abstract


def test_without_a_list_date_the_old_top_level_submission_time_is_used() -> None:
    data = json.loads(need_shared(OLD_SCHEMA).read_text())
    result = parse_daily_papers(data, list_date=None)
    # Submissions land on the list the same day or the day after.
    assert {r.featured_on for r in result.records} <= {date(2025, 2, 2), date(2025, 2, 3)}


def test_the_bundled_sample_parses_cleanly() -> None:
    for path in sorted(SAMPLE_DIR.glob("*.json")):
        result = parse_file(path)
        assert result.records and not result.skipped, path.name


def _item(**paper: object) -> dict[str, object]:
    return {"paper": {"id": "2601.00001", "title": "A title", **paper}, "numComments": 0}


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"paper": {"title": "no id"}}, "no arXiv id"),
        (_item(id="not-an-id"), "invalid arXiv id"),
        (_item(title=""), "no title"),
        (_item(upvotes="many"), "not a whole number"),
        (_item(upvotes=-3), "negative"),
        (_item(summary="x" * 5_000_000), "over the limit"),
        (_item(authors="Someone"), "not a list"),
        (_item(title="<script>alert(1)</script> Attention"), "script tag"),
        (_item(id="2601.123"), "invalid arXiv id"),
        ("just a string", "not an object"),
    ],
)
def test_a_malformed_record_is_skipped_with_its_reason(item: object, reason: str) -> None:
    good = _item(id="2601.00002", title="Good paper")
    result = parse_daily_papers([item, good], list_date=date(2026, 1, 5))
    assert [r.arxiv_id for r in result.records] == ["2601.00002"]
    assert len(result.skipped) == 1
    assert reason in result.skipped[0]["reason"]


def test_html_in_a_title_stays_text() -> None:
    result = parse_daily_papers([_item(title="<b>Bold</b> claims & <i>Attention</i>")])
    assert result.records[0].title == "<b>Bold</b> claims & <i>Attention</i>"


def test_a_paper_listed_twice_is_kept_once() -> None:
    result = parse_daily_papers([_item(), _item()])
    assert len(result.records) == 1
    assert result.skipped[0]["reason"] == "listed twice in the same response"


def test_a_body_that_is_not_a_list_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        parse_daily_papers({"error": "rate limited"})
    broken = tmp_path / "2026-01-05.json"
    broken.write_text('[{"paper": {"id": "2601.0')
    with pytest.raises(SourceError, match="not valid JSON"):
        parse_file(broken)
