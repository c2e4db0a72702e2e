"""The catalogue in the admin: topics with their readers, papers found by title, arXiv
id or author and filtered, and ingest runs as a read-only record."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from newsletter.models import Subscriber, Topic
from papers.ingest import ingest_run
from papers.models import IngestRun, Paper, Source
from papers.sources import PaperRecord, ParseResult
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db
PAPERS = "admin:papers_paper_changelist"


def listed(response: Any) -> list[Any]:
    return list(response.context["cl"].result_list)


def test_topics_show_their_readers_and_sort_by_them(
    admin_client: Client, alice: Subscriber, bob: Subscriber
) -> None:
    make_subscriber("dave@example.org", "active", ["agents"])
    make_subscriber("erin@example.org", "unsubscribed", ["agents"])
    url = reverse("admin:newsletter_topic_changelist")
    page = admin_client.get(url + "?o=-5")  # active subscribers, most first
    topics = listed(page)
    assert [(t.slug, t.n_active, t.n_subscribers) for t in topics[:2]] == [
        ("agents", 2, 3),
        ("reasoning", 1, 1),
    ]
    quantization = next(t for t in topics if t.slug == "quantization")
    assert (quantization.n_active, quantization.n_subscribers) == (0, 1)  # bob is pending
    agents = Topic.objects.get(slug="agents")
    html = page.content.decode()
    assert f"?topics__id__exact={agents.pk}&amp;status__exact=active" in html
    by_all = listed(admin_client.get(url + "?o=-6"))
    assert by_all[0].slug == "agents"


@pytest.fixture
def papers(db: None) -> list[Paper]:
    day = date(2026, 1, 8)
    rows = [
        Paper(
            arxiv_id="2601.00001",
            title="Speculative decoding at scale",
            authors=["Tri Dao", "Albert Gu"],
            catalogue_date=day,
            featured_on=day,
            github_repo="https://github.com/example/spec",
        ),
        Paper(
            arxiv_id="2601.00002",
            title="A survey of agents",
            authors=["Ada Lovelace"],
            catalogue_date=day,
            announced_on=day,
            source="arxiv",
        ),
    ]
    return Paper.objects.bulk_create(rows)


def test_papers_are_found_by_title_arxiv_id_or_author(
    admin_client: Client, papers: list[Paper]
) -> None:
    url = reverse(PAPERS)
    page = admin_client.get(url)
    assert "Tri Dao, Albert Gu" in page.content.decode()
    for query, expected in [
        ("speculative", ["2601.00001"]),
        ("2601.00002", ["2601.00002"]),
        ("Lovelace", ["2601.00002"]),
        ("tri dao", ["2601.00001"]),
    ]:
        found = listed(admin_client.get(url, {"q": query}))
        assert [p.arxiv_id for p in found] == expected, query


def test_papers_filter_by_code_hugging_face_source_and_date(
    admin_client: Client, papers: list[Paper]
) -> None:
    url = reverse(PAPERS)
    for query, expected in [
        ("?code=yes", ["2601.00001"]),
        ("?code=no", ["2601.00002"]),
        ("?hf=yes", ["2601.00001"]),
        ("?hf=no", ["2601.00002"]),
        ("?source__exact=arxiv", ["2601.00002"]),
        ("?catalogue_date__gte=2026-01-09", []),
    ]:
        assert [p.arxiv_id for p in listed(admin_client.get(url + query))] == expected, query
    html = admin_client.get(url).content.decode()
    assert "has code" in html and "on Hugging Face daily papers" in html


@pytest.fixture
def run(db: None) -> IngestRun:
    def fetch() -> ParseResult:
        result = ParseResult(fetched=4)
        result.records.append(PaperRecord(arxiv_id="2601.00003", title="Kept", source="hf"))
        result.skip("2601.x", "no title")
        result.skip("2601.y", "no title")
        result.skip("2601.z", "<script> in the title")
        return result

    return ingest_run(source=Source.HF, fetch=fetch, detail="test")


def test_ingest_runs_show_counts_and_why_records_were_skipped(
    admin_client: Client, run: IngestRun
) -> None:
    listing = admin_client.get(reverse("admin:papers_ingestrun_changelist")).content.decode()
    assert "Add ingest run" not in listing
    change = reverse("admin:papers_ingestrun_change", args=[run.pk])
    html = admin_client.get(change).content.decode()
    assert "2 × no title" in html and "1 × &lt;script&gt; in the title" in html
    assert "2601.z: &lt;script&gt; in the title" in html
    assert 'name="_save"' not in html  # a record: nothing to edit


def test_ingest_runs_cannot_be_changed_or_deleted(admin_client: Client, run: IngestRun) -> None:
    change = reverse("admin:papers_ingestrun_change", args=[run.pk])
    assert admin_client.post(change, {"detail": "edited"}).status_code == 403
    delete = reverse("admin:papers_ingestrun_delete", args=[run.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    run.refresh_from_db()
    assert run.detail == "test"
