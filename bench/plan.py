"""Plan one day's digests for 100,000 readers on PostgreSQL. Prints one JSON object.

Readers: 1-5 topics each, 30% with free-text interests, 10% following authors, 20% with
a feedback history; 70% daily, 30% weekly. Candidates: 1,000 papers from the shared
year of Hugging Face daily papers, spread over the week before the digest date.

Figures: wall time, readers per second and peak RSS of the planning run in one process
and in two processes side by side (this machine's two cores, as two Celery workers
taking the chunks that planning fans out), queries per 1,000 readers, and the
per-reader cost of the same work done by a naive loop (each reader planned alone:
candidates loaded, features computed and ranked for that reader only, rows written one
reader at a time) on a sample, as a ratio to the one-process run.

    python bench/plan.py [--readers N] [--sample N]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SHARED, count_queries, django_setup, peak_rss_mb

from papers.sources import PaperRecord

YEAR = SHARED / "datasets" / "hf_daily_papers_2025-02-02_2026-01-13.tar.gz"
DIGEST = date(2026, 2, 2)  # a Monday
CANDIDATES = 1000
INTERESTS = [
    "KV cache, speculative decoding",
    "quantization",
    "diffusion models that generate or edit video",
    "making LLMs cheaper to run on small devices",
    "reinforcement learning to improve reasoning",
    "GUI agents, web agents",
    "3D reconstruction, Gaussian splatting",
    "speech recognition",
    "hallucination in vision-language models",
    "robot manipulation",
    "mixture of experts",
    "RAG",
    "LLM agents that fix code in real repositories",
    "medical imaging",
    "jailbreak, red teaming",
    "theorem proving",
    "long context",
    "world models",
    "text-to-image editing",
    "multilingual translation",
    "protein design",
    "time series forecasting",
    "evaluation benchmarks for agents",
    "synthetic data for pretraining",
    "sparse autoencoders",
]


def load_papers(tmp: str) -> list[PaperRecord]:
    with tarfile.open(YEAR) as archive:
        archive.extractall(tmp, filter="data")
    from papers.sources.hf import parse_file

    records: dict[str, PaperRecord] = {}
    for path in sorted(Path(tmp).rglob("*.json")):
        for record in parse_file(path).records:
            records.setdefault(record.arxiv_id, record)
    return list(records.values())


def embed_cached() -> None:
    """The papers' embeddings, as ingest computes them; cached under var/ between runs
    (embedding 4,000 papers takes minutes, and it is measured by bench/ingest.py)."""
    import numpy as np

    from papers.embedding import model_name, papers_embed, to_bytes
    from papers.models import Paper

    cache = Path(__file__).resolve().parent.parent / "var" / "bench" / f"plan-{model_name()}.npz"
    if cache.exists():
        stored = np.load(cache)
        vectors = dict(zip(stored["ids"].tolist(), stored["vectors"], strict=True))
        papers = list(Paper.objects.only("arxiv_id"))
        for paper in papers:
            if paper.arxiv_id in vectors:
                paper.embedding = to_bytes(vectors[paper.arxiv_id])
                paper.embedding_model = model_name()
        Paper.objects.bulk_update(papers, ["embedding", "embedding_model"], batch_size=1000)
    papers_embed()
    rows = list(Paper.objects.values_list("arxiv_id", "embedding"))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        ids=np.array([a for a, _ in rows]),
        vectors=np.stack([np.frombuffer(bytes(e or b""), dtype=np.float16) for _, e in rows]),
    )


def seed(readers: int, tmp: str) -> dict[str, int]:
    """Candidates, older voted papers, readers, their topics and feedback, in bulk."""
    from dataclasses import replace

    from newsletter.models import Feedback, Subscriber, Topic
    from papers.ingest import papers_upsert
    from papers.models import Paper

    rng = random.Random(42)
    records = load_papers(tmp)
    rng.shuffle(records)
    week = [DIGEST - timedelta(days=d) for d in range(1, 8)]
    candidates = [replace(r, featured_on=week[i % 7]) for i, r in enumerate(records[:CANDIDATES])]
    older = [
        replace(r, featured_on=DIGEST - timedelta(days=60))
        for r in records[CANDIDATES : CANDIDATES + 3000]
    ]
    papers_upsert(records=candidates + older)
    embed_cached()
    old_ids = list(
        Paper.objects.filter(catalogue_date__lt=DIGEST - timedelta(days=30)).values_list(
            "id", flat=True
        )
    )
    authors = [a for r in candidates for a in r.authors[:2]]
    topics = list(Topic.objects.values_list("id", flat=True))
    subscribers = Subscriber.objects.bulk_create(
        (
            Subscriber(
                email=f"reader{n}@example.org",
                status="active",
                frequency="weekly" if n % 10 < 3 else "daily",
                weekly_day=DIGEST.weekday(),
                keywords=", ".join(rng.sample(INTERESTS, rng.randint(1, 2)))
                if rng.random() < 0.3
                else "",
                authors=rng.sample(authors, rng.randint(1, 3)) if rng.random() < 0.1 else [],
                max_papers=rng.choice([5, 10, 10, 15]),
            )
            for n in range(readers)
        ),
        batch_size=5000,
    )
    through = Subscriber.topics.through
    through.objects.bulk_create(
        (
            through(subscriber_id=s.pk, topic_id=t)
            for s in subscribers
            for t in rng.sample(topics, rng.randint(1, 5))
        ),
        batch_size=10000,
    )
    Feedback.objects.bulk_create(
        (
            Feedback(subscriber_id=s.pk, paper_id=p, vote=rng.choice([1, 1, -1]))
            for s in subscribers
            if rng.random() < 0.2
            for p in rng.sample(old_ids, rng.randint(3, 15))
        ),
        batch_size=10000,
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would after a bulk load
            cursor.execute("ANALYZE")
    return {"candidates": Paper.objects.filter(catalogue_date__gte=week[-1]).count()}


def naive(sample: int) -> float:
    """Seconds per reader for a per-reader loop over the same services."""
    from newsletter.models import Subscriber
    from newsletter.planning import (
        PlanCounts,
        Run,
        _last_period_ends,
        _sent,
        _topic_ids,
        _write,
        digest_period,
        run_window,
    )

    readers = list(Subscriber.objects.order_by("?")[:sample])
    start = time.perf_counter()
    counts = PlanCounts()
    for subscriber in readers:
        run = Run(run_window(DIGEST))  # candidates and their features, for this reader alone
        period = digest_period(
            subscriber, DIGEST, _last_period_ends([subscriber], DIGEST).get(subscriber.pk)
        )
        prefs = run.preferences(
            subscriber,
            _topic_ids([subscriber])[subscriber.pk],
            run.feedback_models([subscriber]).get(subscriber.pk),
        )
        chosen = run.choose(subscriber, prefs, period, _sent([subscriber], run)[subscriber.pk])
        _write(DIGEST, [(subscriber, *period, [m for _, m in chosen])], counts)
    return (time.perf_counter() - start) / len(readers)


def plan_phase(part: int, parts: int) -> None:
    """Plans every ``parts``-th chunk of readers, as one Celery worker would (the same
    chunks ``enqueue_plans`` fans out). Runs in a fresh process so its peak RSS is the
    planner's alone."""
    from django.conf import settings

    from newsletter.planning import digest_plan, subscribers_for_date

    chunk = settings.PAPERBOY_PLAN_CHUNK
    ids = list(subscribers_for_date(DIGEST).values_list("pk", flat=True))
    planned = skipped = 0
    start = time.perf_counter()
    with count_queries() as queries:
        for n in range(part, (len(ids) + chunk - 1) // chunk, parts):
            batch = ids[n * chunk : (n + 1) * chunk]
            counts = digest_plan(
                digest_date=DIGEST, subscribers=subscribers_for_date(DIGEST).filter(pk__in=batch)
            )
            planned += counts.planned
            skipped += counts.skipped
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "plan_s": round(elapsed, 2),
                "planned": planned,
                "skipped": skipped,
                "queries": queries.count,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def run_planners(tmp: str, parts: int) -> dict[str, float]:
    """Start ``parts`` planner processes side by side; wall time until all are done."""
    from django.db import connection

    from newsletter.models import Delivery, DeliveryItem

    with connection.cursor() as cursor:  # a clean slate for each planning run
        if connection.vendor == "postgresql":
            cursor.execute(
                f"TRUNCATE {DeliveryItem._meta.db_table}, {Delivery._meta.db_table} CASCADE"
            )
        else:
            cursor.execute(f"DELETE FROM {DeliveryItem._meta.db_table}")  # noqa: S608
            cursor.execute(f"DELETE FROM {Delivery._meta.db_table}")  # noqa: S608
    start = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--phase", "plan", "--tmp", tmp, "--part", f"{k}/{parts}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(parts)
    ]
    results = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 2),
        "planned": sum(r["planned"] for r in results),
        "skipped": sum(r["skipped"] for r in results),
        "queries": sum(r["queries"] for r in results),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "deliveries": Delivery.objects.filter(digest_date=DIGEST).count(),
        "items": DeliveryItem.objects.filter(delivery__digest_date=DIGEST).count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--phase", choices=["all", "plan"], default="all")
    parser.add_argument("--tmp", default="")
    parser.add_argument("--part", default="0/1")
    args = parser.parse_args()
    if args.phase == "plan":
        django_setup(args.tmp, fresh=False)
        part, parts = map(int, args.part.split("/"))
        plan_phase(part, parts)
        return
    if not YEAR.exists():
        print(json.dumps({"benchmark": "plan", "skipped": f"{YEAR} is not here"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        vendor = django_setup(tmp)
        seeded = seed(args.readers, tmp)
        per_reader_naive = naive(args.sample)
        one = run_planners(tmp, 1)
        two = run_planners(tmp, 2)  # this machine's two cores, as two Celery workers
        per_reader = one["wall_s"] / args.readers
        print(
            json.dumps(
                {
                    "benchmark": "plan",
                    "database": vendor,
                    "readers": args.readers,
                    **seeded,
                    "deliveries": two["deliveries"],
                    "items": two["items"],
                    "skipped": two["skipped"],
                    "one_process_s": one["wall_s"],
                    "one_process_readers_per_s": round(args.readers / one["wall_s"]),
                    "one_process_peak_rss_mb": one["peak_rss_mb"],
                    "two_processes_s": two["wall_s"],
                    "two_processes_readers_per_s": round(args.readers / two["wall_s"]),
                    "two_processes_peak_rss_mb_each": two["peak_rss_mb"],
                    "queries_per_1000_readers": round(one["queries"] * 1000 / args.readers, 1),
                    "naive_sample": args.sample,
                    "naive_ms_per_reader": round(per_reader_naive * 1000, 2),
                    "ms_per_reader": round(per_reader * 1000, 3),
                    "naive_vs_batched_cost_ratio": round(per_reader_naive / per_reader, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
