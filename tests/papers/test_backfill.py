"""Backfills over HTTP (a local server replaying responses) and the whole shared year."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from papers.models import IngestRun, Paper
from papers.sources.arxiv import ArxivClient
from papers.sources.http import PoliteClient
from tests.conftest import SHARED, need_shared
from tests.replay import ReplayServer, Reply

pytestmark = pytest.mark.django_db
YEAR = SHARED / "datasets" / "hf_daily_papers_2025-02-02_2026-01-13.tar.gz"


@pytest.fixture
def hf_server(settings: Any, monkeypatch: Any) -> Iterator[ReplayServer]:
    monkeypatch.setattr(PoliteClient, "_backoff", lambda self, attempt, asked: 0.0)
    with ReplayServer() as server:
        settings.PAPERBOY_HF_API_URL = server.url
        settings.PAPERBOY_HF_MIN_INTERVAL = 0
        yield server


def day_list(*ids: int) -> Reply:
    return Reply(
        body=json.dumps(
            [{"paper": {"id": f"2601.{n:05d}", "title": f"Paper {n}", "upvotes": n}} for n in ids]
        ).encode()
    )


def test_a_backfill_is_one_run_per_day_and_resumable(
    hf_server: ReplayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    hf_server.queue(
        day_list(1, 2), Reply(500), Reply(500), Reply(500), Reply(500), Reply(500), day_list(3)
    )
    with pytest.raises(CommandError, match="1 of 3 run"):
        call_command("ingest", "hf", "--since", "2026-01-05", "--until", "2026-01-07")
    out = capsys.readouterr()
    assert "2026-01-05: fetched 2, created 2" in out.out  # plain lines when not a terminal
    assert "2026-01-06: FAILED: Hugging Face answered HTTP 500" in out.err
    assert Paper.objects.count() == 3
    # Resume: only the failed day is fetched again.
    hf_server.requests.clear()
    hf_server.queue(day_list(4))
    call_command("ingest", "hf", "--since", "2026-01-05", "--until", "2026-01-07", "--resume")
    assert [r["date"] for r in hf_server.requests] == [["2026-01-06"]]
    assert Paper.objects.count() == 4
    assert IngestRun.objects.filter(status="succeeded").count() == 3


def test_an_interrupted_run_is_recorded_as_failed(
    hf_server: ReplayServer, monkeypatch: Any
) -> None:
    from papers.sources import hf

    def interrupt(self: object, day: date) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(hf.HFClient, "fetch_day", interrupt)
    with pytest.raises(KeyboardInterrupt):
        call_command("ingest", "hf", "--date", "2026-01-05")
    run = IngestRun.objects.get()
    assert run.status == "failed" and run.error.startswith("interrupted")


def test_the_arxiv_client_pages_through_results() -> None:
    entry = (
        "<entry><id>http://arxiv.org/abs/2601.{n:05d}v1</id><title>Paper {n}</title>"
        "<summary>About {n}.</summary><published>2026-01-05T10:00:00Z</published>"
        "<author><name>A. Author</name></author></entry>"
    )

    def feed(ids: range, total: int) -> bytes:
        return (
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
            f"<opensearch:totalResults>{total}</opensearch:totalResults>"
            + "".join(entry.format(n=n) for n in ids)
            + "</feed>"
        ).encode()

    with ReplayServer() as server:
        server.queue(Reply(body=feed(range(200), 250)), Reply(body=feed(range(200, 250), 250)))
        client = ArxivClient(base_url=server.url, min_interval=0)
        result = client.fetch(categories=["cs.LG"], since=date(2026, 1, 5), until=date(2026, 1, 5))
        client.close()
    assert len(result.records) == 250
    assert [r["start"] for r in server.requests] == [["0"], ["200"]]


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("year")
    with tarfile.open(need_shared(YEAR)) as archive:
        archive.extractall(folder, filter="data")
    return sorted(folder.rglob("*.json"))


def test_the_whole_shared_year_ingests_and_reingests_cleanly(year: list[Path]) -> None:
    assert len(year) == 246
    call_command("ingest", "hf", "--no-embed", "--file", *map(str, year))
    runs = IngestRun.objects.all()
    assert sum(r.fetched for r in runs) == 6337
    assert Paper.objects.count() == 6333
    assert {r.status for r in runs} == {"succeeded"}
    before = {p.arxiv_id: (p.upvotes, p.title, p.catalogue_date) for p in Paper.objects.all()}
    call_command("ingest", "hf", "--no-embed", "--file", *map(str, year))
    second = IngestRun.objects.order_by("-pk")[:246]
    assert sum(r.created_count for r in second) == 0
    assert sum(r.updated_count for r in second) == 0
    after = {p.arxiv_id: (p.upvotes, p.title, p.catalogue_date) for p in Paper.objects.all()}
    assert after == before


def test_the_hourly_task_fetches_yesterday_and_today(hf_server: ReplayServer) -> None:
    from papers.tasks import ingest_hf_recent

    hf_server.queue(day_list(1), day_list(1, 2))
    summary = ingest_hf_recent()
    assert len(hf_server.requests) == 2 and Paper.objects.count() == 2
    assert summary.count("succeeded") == 2


def test_an_overlapping_hourly_run_exits_and_says_why(hf_server: ReplayServer) -> None:
    from papers.ingest import ingest_lock
    from papers.models import Source
    from papers.tasks import ingest_hf_recent

    with ingest_lock(Source.HF):
        assert ingest_hf_recent().startswith("skipped: another hf ingest is running")
    assert not hf_server.requests and not IngestRun.objects.exists()
