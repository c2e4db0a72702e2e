from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from papers.ingest import ingest_run, papers_upsert
from papers.models import IngestRun, Paper, Source
from papers.sources import ParseResult, SourceError
from papers.sources.hf import parse_file
from tests.conftest import NEW_SCHEMA, OLD_SCHEMA, need_shared

pytestmark = pytest.mark.django_db


def test_ingest_command_loads_both_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "ingest", "hf", "--file", str(need_shared(NEW_SCHEMA)), str(need_shared(OLD_SCHEMA))
    )
    assert Paper.objects.count() == 29
    runs = IngestRun.objects.order_by("window_start")
    assert [(r.status, r.fetched, r.created_count, r.skipped_count) for r in runs] == [
        ("succeeded", 15, 15, 0),
        ("succeeded", 14, 14, 0),
    ]
    assert [r.window_start for r in runs] == [date(2025, 2, 3), date(2026, 1, 5)]
    assert "created 14" in capsys.readouterr().out


def test_reingesting_changes_nothing_and_never_duplicates() -> None:
    call_command("ingest", "hf", "--file", str(need_shared(NEW_SCHEMA)))
    call_command("ingest", "hf", "--file", str(need_shared(NEW_SCHEMA)))
    assert Paper.objects.count() == 14
    second = IngestRun.objects.order_by("-pk").first()
    assert second is not None
    assert (second.created_count, second.updated_count) == (0, 0)


def test_newer_upvotes_update_but_empty_fields_never_erase() -> None:
    record = parse_file(need_shared(NEW_SCHEMA)).records[0]
    upvotes = record.upvotes or 0
    papers_upsert(records=[record])
    newer = replace(record, upvotes=upvotes + 40, ai_summary="", github_repo="")
    counts = papers_upsert(records=[newer])
    paper = Paper.objects.get(arxiv_id=record.arxiv_id)
    assert counts.updated == 1
    assert paper.upvotes == upvotes + 40
    assert paper.github_repo == record.github_repo
    older = replace(record, upvotes=1)
    papers_upsert(records=[older])
    paper.refresh_from_db()
    assert paper.upvotes == upvotes + 40


def test_a_failed_source_leaves_the_catalogue_as_it_was(sample_week: list[Paper]) -> None:
    before = Paper.objects.count()

    def broken() -> ParseResult:
        raise SourceError("Hugging Face answered HTTP 503")

    run = ingest_run(source=Source.HF, fetch=broken)
    assert run.status == IngestRun.Status.FAILED
    assert run.error == "Hugging Face answered HTTP 503"
    assert Paper.objects.count() == before


def test_ingest_command_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("ingest", "hf", "--file", str(tmp_path / "nope.json"))


def test_ingest_command_fails_clearly_on_malformed_json(tmp_path: Path) -> None:
    bad = tmp_path / "2026-01-05.json"
    bad.write_text("[{")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("ingest", "hf", "--file", str(bad))
    run = IngestRun.objects.get()
    assert run.status == IngestRun.Status.FAILED and "not valid JSON" in run.error


def test_the_catalogue_date_is_the_daily_list_date(load_papers: Callable[..., list[Paper]]) -> None:
    load_papers(need_shared(NEW_SCHEMA))
    assert set(Paper.objects.values_list("catalogue_date", flat=True)) == {date(2026, 1, 5)}


def test_a_nul_byte_in_one_record_is_removed_and_the_whole_file_imports(tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text and JSON: one such record used to abort the run."""
    from tests.conftest import SAMPLE_DIR

    source = sorted(SAMPLE_DIR.glob("*.json"))[0]
    entries = json.loads(source.read_text())
    first = entries[0]["paper"]
    first["title"] = "Null\u0000 Title\u0007"
    first["summary"] = "An abstract with a NUL\u0000 byte."
    first["authors"][0]["name"] = "Hao\u0000 Yu"
    first["ai_keywords"] = ["key\u0000word"]
    poisoned = tmp_path / source.name
    poisoned.write_text(json.dumps(entries))
    run = ingest_run(source=Source.HF, fetch=lambda: parse_file(poisoned))
    assert run.status == "succeeded", run.error
    assert Paper.objects.count() == len(entries)
    paper = Paper.objects.get(arxiv_id=first["id"])
    assert paper.title == "Null Title"
    assert "\x00" not in paper.abstract and paper.authors[0] == "Hao Yu"
    assert paper.ai_keywords == ["keyword"]
