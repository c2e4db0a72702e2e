"""Ranking quality on the labelled relevance sets in bench/relevance/.

Two sets: the older one (``bench/relevance/``: 16 interests, 354 papers, built with
the word matcher) and the held-out one (``bench/relevance/heldout/``: 48 interests over
742 papers, split once by interest into ``dev`` and ``test``). Weights are fitted on
``dev`` and the older set only (``--fit`` prints them); ``test`` is what is reported.

For each interest, the papers of its set are ranked, in the same process, by:

- ``paperboy``: the digest's order (fused words + meaning + topics + authors, the cut,
  strong matches by trendiness), exactly as planning orders a digest;
- ``bm25``: Okapi BM25 (k1 = 1.2, b = 0.75) over title, abstract, summary and keywords,
  on the typed text, ticked topics' names and followed authors' names;
- ``embeddings``: the cosine of each paper to the typed text (and ticked topics'
  descriptions, and followed authors' papers first), nothing else;
- ``words``: the previous word-only matcher.

nDCG@10 uses the grades as gains (2^g - 1); P@10 counts grades 1 and 2. The feedback
round gives thumbs up to the first digest's papers graded 2 and down to those graded
0, then scores the next 10 papers not yet sent with and without that feedback.
"Starved" counts interests whose digest of 10 holds fewer than min(N, 10) - 2 of the
N relevant papers. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from newsletter import matching  # noqa: E402
from newsletter.matching import (  # noqa: E402
    Catalogue,
    FeedbackModel,
    Preferences,
    TopicTerms,
    paper_features,
    rank,
    reader_preferences,
    scores,
    signals,
)
from newsletter.topic_catalogue import TOPICS, term_list  # noqa: E402
from papers.embedding import (  # noqa: E402
    PAPER_TOKENS,
    embed_papers,
    embed_query,
    model_name,
    paper_texts,
)

DATA = Path(__file__).resolve().parent / "relevance"
SETS = {"old": DATA, "heldout": DATA / "heldout"}
K = 10
_TOKEN = re.compile(r"[a-z0-9]+")
UNRELATED = [
    "marine biology of octopuses",
    "medieval French poetry",
    "cooking recipes for pasta",
    "keeping my dog healthy",
]
MIN_CUTOFF = 0.1  # a reader whose interests match nothing today gets no email
CATALOGUE = [
    TopicTerms(name, tuple(term_list(terms)), "", description)
    for _, name, _, description, terms in TOPICS
]
BY_SLUG = {slug: CATALOGUE[n] for n, (slug, *_) in enumerate(TOPICS)}


def load(path: Path) -> tuple[list[dict], list[dict], dict[str, dict[str, int]]]:
    interests = json.loads((path / "interests.json").read_text())
    papers = [json.loads(line) for line in (path / "papers.jsonl").open()]
    labels = {
        row["arxiv_id"]: row["grades"] for row in map(json.loads, (path / "labels.jsonl").open())
    }
    return interests, papers, labels


def dcg(grades: list[int]) -> float:
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:K]))


def ndcg(ranked: list[str], grades: dict[str, int]) -> float:
    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(a, 0) for a in ranked]) / ideal if ideal else 0.0


def precision(ranked: list[str], grades: dict[str, int]) -> float:
    return sum(1 for a in ranked[:K] if grades.get(a, 0) > 0) / K


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
        scored = []
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
                scored.append((score, pid))
        return [pid for _, pid in sorted(scored, key=lambda s: -s[0])]


def text_of(paper: dict) -> str:
    return " ".join(
        [paper["title"], paper["abstract"], paper["ai_summary"], " ".join(paper["ai_keywords"])]
    )


def vectors_of(papers: list[dict], name: str) -> np.ndarray:
    """The papers' embeddings, cached under var/ per model and set."""
    texts = [
        paper_texts(title=p["title"], abstract=p["abstract"], ai_summary=p["ai_summary"])
        for p in papers
    ]
    digest = hashlib.sha256(repr(texts).encode()).hexdigest()[:12]
    digest += f"-{PAPER_TOKENS}"
    cache = ROOT / "var" / "bench" / f"{model_name()}-{name}-{digest}.npy"
    if cache.exists():
        return np.load(cache)
    vectors = embed_papers(texts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def catalogue_of(papers: list[dict], name: str) -> Catalogue:
    vectors = vectors_of(papers, name)
    return Catalogue(
        [
            paper_features(
                paper_id=n,
                title=p["title"],
                abstract=p["abstract"],
                ai_summary=p["ai_summary"],
                keywords=p["ai_keywords"],
                authors=p["authors"],
                upvotes=p["upvotes"],
                vector=vectors[n],
            )
            for n, p in enumerate(papers)
        ],
        embed=embed_query,
    )


def preferences(interest: dict, catalogue: Catalogue) -> Preferences:
    return reader_preferences(
        catalogue=catalogue,
        catalogue_topics=CATALOGUE,
        topics=[BY_SLUG[s] for s in interest.get("topics", [])],
        keywords=[interest["text"]] if interest.get("text") else [],
        authors=interest.get("authors", []),
    )


def embedding_only(interest: dict, catalogue: Catalogue, ids: list[str]) -> list[str]:
    texts = [interest["text"]] if interest.get("text") else []
    texts += [BY_SLUG[s].meaning for s in interest.get("topics", [])]
    score = np.max([catalogue.semantic(t) for t in texts], axis=0) if texts else np.zeros(len(ids))
    for author in interest.get("authors", []):
        score = score + 10 * catalogue.author(author)
    return [ids[i] for i in np.argsort(-score, kind="stable")]


def bm25_query(interest: dict) -> str:
    parts = [interest.get("text", "")]
    parts += [BY_SLUG[s].name for s in interest.get("topics", [])]
    parts += interest.get("authors", [])
    return " ".join(parts)


def words_only(prefs: Preferences, catalogue: Catalogue, ids: list[str]) -> list[str]:
    total = scores(prefs, catalogue)
    keep = np.flatnonzero(total >= matching.THRESHOLD)
    order = keep[np.lexsort((keep, -(total[keep] * (1 + 0.1 * catalogue.trend[keep]))))]
    return [ids[i] for i in order]


def by_relevance(prefs: Preferences, catalogue: Catalogue, ids: list[str]) -> list[str]:
    """The fused scores in plain relevance order (no trendiness band): what the order
    a reader can follow costs, or gains."""
    final, score = matching.ranked(prefs, catalogue)
    keep = np.flatnonzero(final > -np.inf)
    return [ids[i] for i in keep[np.argsort(-score[keep], kind="stable")]]


def feedback_round(
    prefs: Preferences, catalogue: Catalogue, ids: list[str], grades: dict[str, int]
) -> dict[str, float]:
    """Thumbs on the first digest (its top 10), taken from the labels; then the second
    digest (the next 10 unsent papers) with and without that feedback."""
    first = [m.paper_id for m in rank(prefs, catalogue, limit=K)]
    sent = set(first)
    liked = [n for n in first if grades.get(ids[n], 0) == 2]
    disliked = [n for n in first if grades.get(ids[n], 0) == 0]
    without = [ids[m.paper_id] for m in rank(prefs, catalogue) if m.paper_id not in sent]
    model = FeedbackModel.fit(catalogue, liked=liked, disliked=disliked)
    with_fb = [
        ids[m.paper_id] for m in rank(prefs, catalogue, feedback=model) if m.paper_id not in sent
    ]
    return {"p10_without": precision(without, grades), "p10_with": precision(with_fb, grades)}


def evaluate(interests: list[dict], papers: list[dict], labels: dict, name: str) -> dict:
    ids = [p["arxiv_id"] for p in papers]
    catalogue = catalogue_of(papers, name)
    bm25 = BM25(papers)
    rows = {}
    for interest in interests:
        grades = {a: labels[a].get(interest["id"], 0) for a in ids}
        prefs = preferences(interest, catalogue)
        ours = [ids[m.paper_id] for m in rank(prefs, catalogue)]
        relevant = sum(1 for g in grades.values() if g)
        digest = ours[:K]
        rows[interest["id"]] = {
            "kind": interest["kind"],
            "split": interest.get("split", "old"),
            "relevant": relevant,
            "paperboy": round(ndcg(ours, grades), 3),
            "paperboy_p10": round(precision(ours, grades), 2),
            "by_relevance": round(ndcg(by_relevance(prefs, catalogue, ids), grades), 3),
            "bm25": round(ndcg(bm25.rank(bm25_query(interest)), grades), 3),
            "embeddings": round(ndcg(embedding_only(interest, catalogue, ids), grades), 3),
            "words": round(ndcg(words_only(prefs, catalogue, ids), grades), 3),
            "digest_size": len(digest),
            "digest_relevant": sum(1 for a in digest if grades[a]),
            "starved": sum(1 for a in digest if grades[a]) < min(relevant, K) - 2,
            "feedback": feedback_round(prefs, catalogue, ids, grades),
        }
    return rows


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {}

    def mean(key: str) -> float:
        return round(sum(r[key] for r in rows) / len(rows), 3)

    out: dict[str, object] = {
        "interests": len(rows),
        **{
            f"mean_ndcg10_{m}": mean(m)
            for m in ("paperboy", "by_relevance", "bm25", "embeddings", "words")
        },
        "mean_p10_paperboy": mean("paperboy_p10"),
        "min_ndcg10_paperboy": min(r["paperboy"] for r in rows),
        "below_0.60": sorted(r["id"] for r in rows if r["paperboy"] < 0.6),
        "starved": sorted(r["id"] for r in rows if r["starved"]),
        "feedback_p10_before": round(
            sum(r["feedback"]["p10_without"] for r in rows) / len(rows), 3
        ),
        "feedback_p10_after": round(sum(r["feedback"]["p10_with"] for r in rows) / len(rows), 3),
    }
    out["by_kind"] = {
        kind: {
            m: round(sum(r[m] for r in rows if r["kind"] == kind) / n, 3)
            for m in ("paperboy", "by_relevance", "bm25", "embeddings", "words")
        }
        | {"interests": n}
        for kind in sorted({r["kind"] for r in rows})
        for n in [sum(1 for r in rows if r["kind"] == kind)]
    }
    return out


def fit(sets: dict[str, tuple[list[dict], list[dict], dict]]) -> None:
    """Tune matching's weights, cut and strong band by coordinate ascent on the mean
    nDCG@10 of the digest order, with a penalty for each starved digest, over the dev
    interests and the older set. Never reads the test interests. Prints the result."""
    cases = []
    for name, (interests, papers, labels) in sets.items():
        ids = [p["arxiv_id"] for p in papers]
        catalogue = catalogue_of(papers, name)
        for interest in interests:
            if interest.get("split", "dev") != "dev":
                continue
            prefs = preferences(interest, catalogue)
            grades = np.array([labels[a].get(interest["id"], 0) for a in ids])
            cases.append(
                (
                    signals(prefs, catalogue)[:-1],
                    grades,
                    catalogue.trend,
                    matching.title_hits(prefs, catalogue),
                    bool(prefs.keywords),
                )
            )
    # Interests nothing in the sets is about: their digest should be empty.
    for name, (_, papers, _) in sets.items():
        catalogue = catalogue_of(papers, name)
        for text in UNRELATED:
            prefs = preferences({"text": text}, catalogue)
            cases.append(
                (
                    signals(prefs, catalogue)[:-1],
                    np.zeros(catalogue.n, dtype=int),
                    catalogue.trend,
                    matching.title_hits(prefs, catalogue),
                    True,
                )
            )
    gains = [2.0 ** c[1] - 1 for c in cases]
    ideals = [dcg(sorted(c[1].tolist(), reverse=True)) or 1.0 for c in cases]
    discount = 1 / np.log2(np.arange(2, K + 2))

    def objective(theta: np.ndarray) -> float:
        w, bias, no_text, cut, rel_cut, strong = theta[:8], *theta[8:]
        total = 0.0
        for (x, grades, trend, title, text), gain, ideal in zip(cases, gains, ideals, strict=True):
            logit = w @ x + bias + (0.0 if text else no_text)
            rel = 1 / (1 + np.exp(-logit))
            keep = (rel >= max(cut, rel_cut * rel.max())) | title
            band = keep & ((rel >= strong) | title)
            key = np.where(keep, np.where(band, 2 + trend, rel), -np.inf)
            order = np.argsort(-key, kind="stable")[:K]
            order = order[key[order] > -np.inf]
            relevant = int((grades > 0).sum())
            if not relevant:
                total -= 0.5 * bool(len(order))
                continue
            total += float(gain[order] @ discount[: len(order)]) / ideal
            if int((grades[order] > 0).sum()) < min(relevant, K) - 2:
                total -= 0.05
        return total / (len(cases) - len(UNRELATED) * len(sets))

    theta = np.array(
        [
            *matching.WEIGHTS[:8],
            matching.BIAS,
            matching.NO_TEXT_BIAS,
            matching.CUTOFF,
            matching.RELATIVE_CUTOFF,
            matching.STRONG,
        ]
    )
    best = objective(theta)
    for _ in range(6):
        for j in range(len(theta)):
            for step in (-0.5, -0.2, -0.1, 0.1, 0.2, 0.5) if j < 10 else (-0.1, -0.05, 0.05, 0.1):
                trial = theta.copy()
                trial[j] += step * (max(abs(theta[j]), 1.0) if j < 10 else 1.0)
                if j == 10 and trial[j] < MIN_CUTOFF:
                    continue
                score = objective(trial)
                if score > best + 1e-4:
                    theta, best = trial, score
    print(
        json.dumps(
            {
                "objective": round(best, 4),
                "weights": np.round(theta[:8], 2).tolist(),
                "bias": round(float(theta[8]), 2),
                "no_text_bias": round(float(theta[9]), 2),
                "cutoff": round(float(theta[10]), 3),
                "relative_cutoff": round(float(theta[11]), 3),
                "strong": round(float(theta[12]), 3),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="fit weights on dev and the older set")
    parser.add_argument(
        "--split",
        choices=["dev", "test", "all"],
        default="test",
        help="held-out interests to report in detail (default: test)",
    )
    args = parser.parse_args()
    sets = {name: load(path) for name, path in SETS.items() if (path / "labels.jsonl").exists()}
    if args.fit:
        fit(sets)
        return
    report: dict[str, object] = {"benchmark": "relevance", "model": model_name()}
    for name, (interests, papers, labels) in sets.items():
        rows = evaluate(interests, papers, labels, name)
        for key, row in rows.items():
            row["id"] = key
        if name == "old":
            report["old"] = summary(list(rows.values())) | {"papers": len(papers)}
            continue
        by_split = {s: [r for r in rows.values() if r["split"] == s] for s in ("dev", "test")}
        dev, test = summary(by_split["dev"]), summary(by_split["test"])
        report["dev"] = dev | {"papers": len(papers)}
        report["test"] = test | {"papers": len(papers)}
        report["dev_test_gap"] = round(
            float(dev["mean_ndcg10_paperboy"]) - float(test["mean_ndcg10_paperboy"]),
            3,
        )
        shown = [r for r in rows.values() if args.split == "all" or r["split"] == args.split]
        report["per_interest"] = {r["id"]: r for r in shown}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
