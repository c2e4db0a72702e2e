"""Ranking quality on the labelled relevance set in bench/relevance/.

For each interest (typed as a reader would, as free text), rank the set's papers with
Paperboy's matcher and with a BM25 baseline over the same texts, and score both against
the graded judgements: nDCG@10 and P@10 (a paper graded 1 or 2 counts as relevant).
Then one round of simulated feedback: thumbs up on the first digest's papers graded 2,
thumbs down on those graded 0, and the second digest (papers not yet sent) is scored.
Prints one JSON object.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.matching import (  # noqa: E402
    Catalogue,
    Preferences,
    TopicTerms,
    interest_topics,
    paper_features,
    rank,
)
from newsletter.topic_catalogue import TOPICS, term_list  # noqa: E402

DATA = Path(__file__).resolve().parent / "relevance"
K = 10
_TOKEN = re.compile(r"[a-z0-9]+")


def load() -> tuple[list[dict], list[dict], dict[str, dict[str, int]]]:
    interests = json.loads((DATA / "interests.json").read_text())
    papers = [json.loads(line) for line in (DATA / "papers.jsonl").open()]
    labels = {
        row["arxiv_id"]: row["grades"] for row in map(json.loads, (DATA / "labels.jsonl").open())
    }
    return interests, papers, labels


def dcg(grades: list[int]) -> float:
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:K]))


def ndcg(ranked: list[str], grades: dict[str, int]) -> float:
    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades[a] for a in ranked]) / ideal if ideal else 0.0


def precision(ranked: list[str], grades: dict[str, int]) -> float:
    return sum(1 for a in ranked[:K] if grades[a] > 0) / K


class BM25:
    """Okapi BM25 (k1=1.2, b=0.75) over title + abstract + AI summary + keywords."""

    def __init__(self, papers: list[dict]) -> None:
        self.ids = [p["arxiv_id"] for p in papers]
        self.docs = [Counter(_TOKEN.findall(text_of(p).lower())) for p in papers]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / len(self.lengths)
        df: Counter[str] = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def rank(self, query: str) -> list[str]:
        terms = _TOKEN.findall(query.lower())
        scores = []
        for pid, doc, length in zip(self.ids, self.docs, self.lengths, strict=True):
            score = sum(
                self.idf.get(t, 0)
                * doc[t]
                * 2.2
                / (doc[t] + 1.2 * (0.25 + 0.75 * length / self.avg))
                for t in terms
                if doc[t]
            )
            if score > 0:
                scores.append((score, pid))
        return [pid for _, pid in sorted(scores, key=lambda s: -s[0])]


def text_of(paper: dict) -> str:
    return " ".join(
        [paper["title"], paper["abstract"], paper["ai_summary"], " ".join(paper["ai_keywords"])]
    )


def main() -> None:
    interests, papers, labels = load()
    features = [
        paper_features(
            paper_id=n,
            title=p["title"],
            abstract=p["abstract"],
            ai_summary=p["ai_summary"],
            keywords=p["ai_keywords"],
            authors=p["authors"],
            upvotes=p["upvotes"],
        )
        for n, p in enumerate(papers)
    ]
    ids = [p["arxiv_id"] for p in papers]
    catalogue = Catalogue(features)
    topics = [TopicTerms(name, tuple(term_list(terms))) for _, name, _, _, terms in TOPICS]
    bm25 = BM25(papers)
    per_interest = {}
    for interest in interests:
        grades = {a: labels[a][interest["id"]] for a in ids}
        prefs = Preferences(
            keywords=(interest["text"],), expansions=interest_topics(interest["text"], topics)
        )
        ours = [ids[m.paper_id] for m in rank(prefs, catalogue)]
        base = bm25.rank(interest["text"])
        per_interest[interest["id"]] = {
            "kind": interest["kind"],
            "relevant": sum(1 for g in grades.values() if g),
            "ndcg10": round(ndcg(ours, grades), 3),
            "p10": round(precision(ours, grades), 2),
            "bm25_ndcg10": round(ndcg(base, grades), 3),
            "bm25_p10": round(precision(base, grades), 2),
            "feedback": feedback_round(prefs, catalogue, ids, grades),
        }
    rows = per_interest.values()
    mean = lambda key: round(sum(r[key] for r in rows) / len(rows), 3)  # noqa: E731
    print(
        json.dumps(
            {
                "benchmark": "relevance",
                "papers": len(papers),
                "interests": len(interests),
                "mean_ndcg10": mean("ndcg10"),
                "mean_p10": mean("p10"),
                "min_ndcg10": min(r["ndcg10"] for r in rows),
                "bm25_mean_ndcg10": mean("bm25_ndcg10"),
                "bm25_mean_p10": mean("bm25_p10"),
                "gain_over_bm25": round(mean("ndcg10") - mean("bm25_ndcg10"), 3),
                "feedback_second_digest_p10_before": round(
                    sum(r["feedback"]["p10_without"] for r in rows) / len(rows), 3
                ),
                "feedback_second_digest_p10_after": round(
                    sum(r["feedback"]["p10_with"] for r in rows) / len(rows), 3
                ),
                "per_interest": per_interest,
            }
        )
    )


def feedback_round(
    prefs: Preferences, catalogue: Catalogue, ids: list[str], grades: dict[str, int]
) -> dict[str, float]:
    """Thumbs on the first digest (its top 10), taken from the labels; then the second
    digest (the next 10 unsent papers) with and without that feedback."""
    from newsletter.matching import FeedbackModel

    first = [m.paper_id for m in rank(prefs, catalogue, limit=K)]
    sent = set(first)
    liked = [n for n in first if grades[ids[n]] == 2]
    disliked = [n for n in first if grades[ids[n]] == 0]
    without = [ids[m.paper_id] for m in rank(prefs, catalogue) if m.paper_id not in sent]
    model = FeedbackModel.fit(catalogue, liked=liked, disliked=disliked)
    with_fb = [
        ids[m.paper_id] for m in rank(prefs, catalogue, feedback=model) if m.paper_id not in sent
    ]
    return {
        "p10_without": precision(without, grades),
        "p10_with": precision(with_fb, grades),
        "liked": len(liked),
        "disliked": len(disliked),
    }


if __name__ == "__main__":
    main()
