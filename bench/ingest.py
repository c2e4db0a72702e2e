"""Ingest the shared year of Hugging Face daily papers (246 days, 6,337 items) into
PostgreSQL, twice: a first ingest and a re-ingest. Prints one JSON object.

Figures: papers per second, wall time, queries per 1,000 papers, peak RSS after the
first half and after the whole year (flat memory: about the same), and the ratio of
ingest time to a baseline measured in the same run, json.loads of the same files.
The year is stored without embeddings, then embedded in one pass (papers per second on
this CPU); last, the busiest day is ingested again from scratch as the hourly task does
it, embeddings included.

    python bench/ingest.py        (BENCH_DATABASE_URL picks another database)
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SHARED, count_queries, django_setup, peak_rss_mb, timed

YEAR = SHARED / "datasets" / "hf_daily_papers_2025-02-02_2026-01-13.tar.gz"


def ingest(files: list[Path], embed: bool = False) -> tuple[int, int, int, int]:
    from papers.ingest import ingest_run
    from papers.models import Source
    from papers.sources.hf import date_from_filename, parse_file

    fetched = created = updated = 0
    with count_queries() as queries:
        for path in files:
            day = date_from_filename(path)
            run = ingest_run(
                source=Source.HF, fetch=partial(parse_file, path), window=(day, day), embed=embed
            )
            fetched += run.fetched
            created += run.created_count
            updated += run.updated_count
    return fetched, created, updated, queries.count


def main() -> None:
    if not YEAR.exists():
        print(json.dumps({"benchmark": "ingest", "skipped": f"{YEAR} is not here"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(YEAR) as archive:
            archive.extractall(tmp, filter="data")
        files = sorted(Path(tmp).rglob("*.json"))
        vendor = django_setup(tmp)
        _, parse_s = timed(lambda: [json.loads(f.read_bytes()) for f in files])
        half = len(files) // 2
        (f1, c1, _, q1), first_a = timed(lambda: ingest(files[:half]))
        rss_half = peak_rss_mb()
        (f2, c2, _, q2), first_b = timed(lambda: ingest(files[half:]))
        rss_full = peak_rss_mb()
        (f3, c3, u3, q3), second = timed(lambda: ingest(files))
        from papers.embedding import papers_embed
        from papers.models import Paper
        from papers.sources.hf import date_from_filename

        embedded, embed_s = timed(papers_embed)
        rss_embed = peak_rss_mb()
        busiest = max(files, key=lambda f: len(json.loads(f.read_bytes())))
        Paper.objects.filter(featured_on=date_from_filename(busiest)).delete()
        (day_items, _, _, _), day_s = timed(lambda: ingest([busiest], embed=True))

        first = first_a + first_b
        print(
            json.dumps(
                {
                    "benchmark": "ingest",
                    "database": vendor,
                    "days": len(files),
                    "items": f1 + f2,
                    "papers": Paper.objects.count(),
                    "first_pass_s": round(first, 2),
                    "first_pass_papers_per_s": round((f1 + f2) / first),
                    "first_pass_created": c1 + c2,
                    "first_pass_queries_per_1000": round((q1 + q2) * 1000 / (f1 + f2)),
                    "reingest_s": round(second, 2),
                    "reingest_papers_per_s": round(f3 / second),
                    "reingest_created": c3,
                    "reingest_updated": u3,
                    "reingest_queries_per_1000": round(q3 * 1000 / f3),
                    "json_parse_baseline_s": round(parse_s, 2),
                    "first_pass_vs_json_parse_ratio": round(first / parse_s, 1),
                    "peak_rss_mb_after_half_year": rss_half,
                    "peak_rss_mb_after_full_year": rss_full,
                    "embedded_papers": embedded,
                    "embedding_s": round(embed_s, 1),
                    "embedding_papers_per_s": round(embedded / embed_s, 1),
                    "peak_rss_mb_after_embedding": rss_embed,
                    "busiest_day_items": day_items,
                    "busiest_day_ingest_with_embedding_s": round(day_s, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
