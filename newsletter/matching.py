"""Relevance and ranking: pure functions over reader preferences and paper texts.

Nothing here touches the database. A paper's features are computed once per run
(``PaperFeatures``) and readers with identical preferences share one ranking
(``Preferences`` is hashable and is the cache key).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

AUTHOR_WEIGHT = 4.0
KEYWORD_WEIGHT = 2.0
TOPIC_WEIGHT = 1.0
TITLE_BONUS = 0.5
MAX_REASON = 300


@dataclass(frozen=True)
class TopicTerms:
    name: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Preferences:
    topics: tuple[TopicTerms, ...] = ()
    keywords: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.topics or self.keywords or self.authors)


@dataclass(frozen=True)
class PaperFeatures:
    paper_id: int
    title: str
    text: str  # title, abstract, AI summary and keywords in one string
    authors: frozenset[str]  # lower-case names
    upvotes: int


@dataclass
class Match:
    paper_id: int
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        text = "; ".join(self.reasons)
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def paper_features(
    *,
    paper_id: int,
    title: str,
    abstract: str,
    ai_summary: str,
    keywords: list[str],
    authors: list[str],
    upvotes: int,
) -> PaperFeatures:
    text = " ".join([title, abstract, ai_summary, " ".join(keywords)])
    return PaperFeatures(
        paper_id=paper_id,
        title=title,
        text=text,
        authors=frozenset(a.casefold() for a in authors),
        upvotes=upvotes,
    )


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str]:
    """Whole-word match, plural tolerant. An acronym written in capitals (INT4, RAG)
    matches only in capitals, so "rag" in "ragged" or "fragment" never counts."""
    body = re.escape(term.strip()).replace(r"\ ", r"[\s-]+")
    flags = 0 if _is_acronym(term) else re.IGNORECASE
    return re.compile(rf"(?<![\w-]){body}(?:s|es)?(?![\w])", flags)


def _is_acronym(term: str) -> bool:
    letters = [c for c in term if c.isalpha()]
    return bool(letters) and len(term) <= 8 and all(c.isupper() for c in letters)


def found_terms(terms: tuple[str, ...], text: str) -> list[str]:
    return [term for term in terms if term_pattern(term).search(text)]


def trend(upvotes: int) -> float:
    """Trendiness in [0, 1): a tie-breaker that never outweighs one real match."""
    return 1 - 1 / (1 + math.log1p(max(upvotes, 0)) / 3)


class Catalogue:
    """The candidate papers of one run, with term lookups memoised per topic and keyword,
    so each is searched for once per run, not once per reader."""

    def __init__(self, papers: list[PaperFeatures]) -> None:
        self.papers = papers
        self._topics: dict[TopicTerms, list[tuple[list[str], bool]]] = {}
        self._keywords: dict[str, list[tuple[bool, bool]]] = {}

    def topic_hits(self, topic: TopicTerms) -> list[tuple[list[str], bool]]:
        """Per paper: the topic's terms found, and whether one is in the title."""
        if topic not in self._topics:
            self._topics[topic] = [
                (terms, bool(terms) and bool(found_terms(topic.terms, p.title)))
                for p in self.papers
                for terms in [found_terms(topic.terms, p.text)]
            ]
        return self._topics[topic]

    def keyword_hits(self, keyword: str) -> list[tuple[bool, bool]]:
        """Per paper: whether the keyword is found, and whether in the title."""
        if keyword not in self._keywords:
            pattern = term_pattern(keyword)
            self._keywords[keyword] = [
                (found, found and bool(pattern.search(p.title)))
                for p in self.papers
                for found in [bool(pattern.search(p.text))]
            ]
        return self._keywords[keyword]


def _relevance(prefs: Preferences, catalogue: Catalogue) -> list[Match]:
    matches = [Match(paper_id=p.paper_id, score=0.0) for p in catalogue.papers]
    for author in prefs.authors:
        name = author.casefold()
        for paper, match in zip(catalogue.papers, matches, strict=True):
            if name in paper.authors:
                match.score += AUTHOR_WEIGHT
                match.reasons.append(f"by {author}, whom you follow")
    for keyword in prefs.keywords:
        for (found, in_title), match in zip(catalogue.keyword_hits(keyword), matches, strict=True):
            if found:
                match.score += KEYWORD_WEIGHT + (TITLE_BONUS if in_title else 0)
                match.reasons.append(f"matches your keyword '{keyword}'")
    for topic in prefs.topics:
        for (terms, in_title), match in zip(catalogue.topic_hits(topic), matches, strict=True):
            if terms:
                match.score += TOPIC_WEIGHT * min(len(terms), 3) ** 0.5
                match.score += TITLE_BONUS if in_title else 0
                quoted = ", ".join(f"'{t}'" for t in terms[:3])
                match.reasons.append(f"matches your topic {topic.name}: {quoted}")
    return matches


def rank(prefs: Preferences, papers: list[PaperFeatures] | Catalogue) -> list[Match]:
    """Every relevant paper, best first: relevance decides, trendiness breaks ties.

    A reader with no preferences gets every paper by trendiness alone.
    """
    catalogue = papers if isinstance(papers, Catalogue) else Catalogue(papers)
    if prefs.empty:
        matches = [
            Match(p.paper_id, round(trend(p.upvotes), 4), [f"trending today: {p.upvotes} upvotes"])
            for p in catalogue.papers
        ]
    else:
        matches = []
        for paper, match in zip(catalogue.papers, _relevance(prefs, catalogue), strict=True):
            if match.score > 0:
                match.score = round(match.score + trend(paper.upvotes), 4)
                matches.append(match)
    matches.sort(key=lambda m: -m.score)
    return matches
