"""Relevance and ranking: pure functions over reader preferences and paper texts.

Nothing here touches the database. Paper features are computed once per run
(``Catalogue``); readers with identical preferences share one ranking (``Preferences``
is hashable and is the cache key).

How a paper scores for a reader:

1. Each interest becomes *concepts*. A keyword ("KV cache") is one concept; a sentence
   ("making LLMs cheaper to run on small devices") is split at function words into
   phrases. Words are stemmed, so "quantized" finds "quantization" and "models" finds
   "model"; an acronym typed in capitals (RAG, MoE) matches only in capitals.
2. A concept found as a phrase scores most in the title, then in HF's keywords, then
   in the abstract; a multi-word concept found only word by word scores less. Rare
   concepts weigh more than common ones (inverse document frequency over the run's
   candidates), so "small devices" outweighs "LLMs".
3. Topics the reader picked contribute their curated terms; topics the reader's own
   words point at (typing "speech recognition" points at the Speech topic) contribute
   theirs at a lower weight. Followed authors are a strong signal.
4. Feedback: a per-reader linear model over the papers' word features (Rocchio: the
   centroid of liked papers minus part of the centroid of disliked ones) pulls similar
   papers up and pushes others down.
5. A threshold drops weak matches. Among relevant papers, trendiness (upvotes) lifts a
   paper by at most a fifth of its relevance, so an irrelevant popular paper never
   outranks a relevant one. A reader with no preferences gets the top trending papers.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np

AUTHOR_WEIGHT = 6.0
KEYWORD_WEIGHT = 1.5
TOPIC_WEIGHT = 1.0
EXPANSION_WEIGHT = 0.8
FEEDBACK_WEIGHT = 8.0
TREND_SHARE = 0.1  # trendiness lifts a relevant paper by at most this fraction
THRESHOLD = 0.75  # relevance below this is a weak match and dropped
MIN_TRIGGER_IDF = 0.35
COVERAGE_POWER = 1.5
PHRASE_BONUS = 1.0
CENTRAL_SHARE = 0.7  # how much of an item's score needs its words in the title or summary
TITLE_SHARE = 0.2  # how much of it needs all of them together in the title
MAX_REASON = 300
MAX_REASONS = 3

STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "for",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "as",
        "is",
        "are",
        "be",
        "been",
        "being",
        "was",
        "were",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "how",
        "why",
        "when",
        "where",
        "than",
        "then",
        "so",
        "such",
        "via",
        "using",
        "use",
        "used",
        "make",
        "making",
        "made",
        "get",
        "getting",
        "let",
        "lets",
        "can",
        "could",
        "should",
        "would",
        "will",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "done",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "they",
        "them",
        "their",
        "he",
        "she",
        "his",
        "her",
        "new",
        "novel",
        "approach",
        "approaches",
        "method",
        "methods",
        "paper",
        "papers",
        "work",
        "works",
        "study",
        "studies",
        "toward",
        "towards",
        "based",
        "more",
        "most",
        "less",
        "very",
        "also",
        "like",
        "want",
        "interested",
        "interest",
        "interests",
        "anything",
        "something",
        "things",
        "thing",
        "stuff",
        "better",
        "improve",
        "improving",
        "improved",
        "run",
        "running",
    }
)
_WORD = re.compile(r"[A-Za-z0-9]+")
_SPLIT = re.compile(r"[,;\n]+")


# Text ------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stemmer: plurals, -ing, -ed, -ation/-ize families, so query and
    paper words meet ("quantized", "quantization", "quantizing" -> "quant")."""
    w = word.lower()
    if len(w) <= 3 or w.isdigit():
        return w
    for suffix, keep in (
        ("izations", 3),
        ("ization", 3),
        ("isation", 3),
        ("ations", 3),
        ("ation", 3),
        ("izing", 3),
        ("ising", 3),
        ("ized", 3),
        ("ised", 3),
        ("izes", 3),
        ("ize", 3),
        ("ates", 3),
        ("ated", 3),
        ("ate", 3),
        ("ities", 3),
        ("ity", 3),
        ("ness", 3),
        ("ments", 3),
        ("ment", 3),
        ("ically", 3),
        ("ical", 3),
        ("ics", 3),
        ("ingly", 3),
        ("ings", 3),
        ("ing", 3),
        ("edly", 3),
        ("ly", 5),
        ("ied", 3),
        ("ies", 3),
        ("ed", 3),
        ("ers", 3),
        ("er", 4),
        ("es", 3),
        ("s", 3),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            w = w[: -len(suffix)] + (
                "y" if suffix in ("ies", "ied") else "ic" if suffix.startswith("ic") else ""
            )
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def stems(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text)]


def _seq(text: str) -> str:
    """Stems joined by spaces, padded, so a phrase is a substring search."""
    return " " + " ".join(stems(text)) + " "


# Acronyms papers use for phrases readers type, and the reverse: a paper that says
# "LLM" also says "large language model" for matching (document expansion).
ALIASES = {
    "LLM": "large language model",
    "LM": "language model",
    "VLM": "vision language model",
    "LVLM": "large vision language model",
    "MLLM": "multimodal large language model, vision language model",
    "LMM": "large multimodal model, vision language model",
    "RL": "reinforcement learning",
    "RAG": "retrieval augmented generation",
    "MoE": "mixture of experts",
    "CoT": "chain of thought",
    "3DGS": "3D gaussian splatting",
    "SWE": "software engineering",
    "VLA": "vision language action",
    "GUI": "graphical user interface",
    "RLHF": "reinforcement learning from human feedback",
    "PTQ": "post training quantization",
    "QAT": "quantization aware training",
    "NeRF": "neural radiance field",
    "T2V": "text to video",
    "I2V": "image to video",
    "T2I": "text to image",
    "DiT": "diffusion transformer",
    "SAE": "sparse autoencoder",
    "GNN": "graph neural network",
    "RLVR": "reinforcement learning with verifiable rewards",
    "KV": "key value",
    "LRM": "large reasoning model",
}
# Left out on purpose: TTS (text-to-speech, or test-time scaling), ASR (speech
# recognition, or attack success rate), MT: in 2025 papers they mean several things.
_ALIAS = re.compile(
    r"(?<![\w-])("
    + "|".join(sorted(map(re.escape, ALIASES), key=len, reverse=True))
    + r")s?(?![\w])"
)


# Phrases (any case) that say the same as another phrase readers type.
PHRASE_ALIASES = {
    "multimodal large language model": "vision language model",
    "multimodal llm": "vision language model",
    "large multimodal model": "vision language model",
}
_PHRASE_ALIAS = re.compile("|".join(map(re.escape, PHRASE_ALIASES)), re.IGNORECASE)


def expand_aliases(text: str) -> str:
    """The text with each known acronym's long form appended, once per acronym."""
    found = dict.fromkeys(ALIASES[m.group(1)] for m in _ALIAS.finditer(text))
    found.update(
        dict.fromkeys(PHRASE_ALIASES[m.group(0).lower()] for m in _PHRASE_ALIAS.finditer(text))
    )
    return f"{text} . {' . '.join(found)}" if found else text


def _is_acronym(term: str) -> bool:
    letters = [c for c in term if c.isalpha()]
    return (
        bool(letters)
        and len(term) <= 8
        and " " not in term
        and sum(c.isupper() for c in letters) >= 2
    )


@lru_cache(maxsize=4096)
def acronym_pattern(term: str) -> re.Pattern[str]:
    """An acronym written in capitals (INT4, RAG, MoE) matches only as written, so "rag"
    in "ragged" or "fragment" never counts."""
    return re.compile(rf"(?<![\w-]){re.escape(term)}s?(?![\w])")


def has_acronym(term: str, text: str) -> bool:
    """``acronym_pattern(term)`` found in ``text``; most texts lack the letters at all,
    and a substring test says so ten times faster than the pattern."""
    return term in text and acronym_pattern(term).search(text) is not None


def count_acronym(term: str, text: str) -> int:
    return len(acronym_pattern(term).findall(text)) if term in text else 0


# Papers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperFeatures:
    paper_id: int
    title: str
    text: str  # title, abstract, AI summary and keywords as written
    authors: frozenset[str]  # case-folded names
    upvotes: int
    title_seq: str = ""
    keyword_seq: str = ""
    body_seq: str = ""
    bag: tuple[tuple[str, int], ...] = ()  # stem counts, for feedback
    tf: dict[str, float] = field(default_factory=dict, compare=False, hash=False)  # field-weighted
    length: float = 1.0
    head: frozenset[str] = frozenset()  # stems of the title, keywords and one-line summary


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
    body = expand_aliases(f"{abstract} {ai_summary}")
    long_title = expand_aliases(title)
    words = [
        w
        for w in stems(f"{long_title} {long_title} {body} {' '.join(keywords)}")
        if w not in STOPWORDS
    ]
    tf: dict[str, float] = defaultdict(float)
    for text, weight in ((long_title, 3.0), (" ".join(keywords), 2.0), (body, 1.0)):
        for word in stems(text):
            tf[word] += weight
    return PaperFeatures(
        paper_id=paper_id,
        title=title,
        text=" ".join([title, abstract, ai_summary, " ".join(keywords)]),
        authors=frozenset(a.casefold() for a in authors),
        upvotes=upvotes,
        title_seq=_seq(long_title),
        keyword_seq=" | ".join([*(_seq(k) for k in keywords), _seq(expand_aliases(ai_summary))]),
        body_seq=_seq(body),
        bag=tuple(Counter(words).items()),
        tf=dict(tf),
        length=max(1.0, sum(tf.values())),
        head=frozenset(stems(f"{long_title} {' '.join(keywords)} {expand_aliases(ai_summary)}")),
    )


# Interests ---------------------------------------------------------------------------


class CachedHash:
    """Frozen dataclasses used as cache keys millions of times per run: hash once."""

    def __hash__(self) -> int:
        try:
            cached: int = self.__dict__["_hash"]
            return cached
        except KeyError:
            value = hash(tuple(getattr(self, f) for f in self.__dataclass_fields__))  # type: ignore[attr-defined]
            object.__setattr__(self, "_hash", value)
            return value


@dataclass(frozen=True, eq=True)
class TopicTerms(CachedHash):
    name: str
    terms: tuple[str, ...]
    trigger: str = ""  # for a topic a reader's words point at: the term that pointed

    __hash__ = CachedHash.__hash__


@dataclass(frozen=True)
class Concept:
    label: str  # as the reader (or the catalogue) wrote it
    seq: str  # stemmed phrase, padded for substring search
    words: tuple[str, ...]  # its stems
    acronym: bool = False


@lru_cache(maxsize=16384)
def concept(term: str) -> Concept | None:
    term = " ".join(term.split())
    words = tuple(stem(w) for w in _WORD.findall(term))
    if not words:
        return None
    return Concept(
        label=term, seq=" " + " ".join(words) + " ", words=words, acronym=_is_acronym(term)
    )


@dataclass(frozen=True)
class Item(CachedHash):
    """One comma-separated piece of a free-text interest: its terms (stems, or acronyms
    as typed) and its phrases (runs of two or more content words)."""

    label: str
    terms: tuple[str, ...]
    words: tuple[str, ...]  # the terms as the reader typed them, for reasons
    phrases: tuple[Concept, ...]

    __hash__ = CachedHash.__hash__


_COMPOUND = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+")
_AND = re.compile(r"\s+(?:and|or)\s+", re.IGNORECASE)


def _is_noun_phrase(text: str) -> bool:
    words = _WORD.findall(text)
    return len(words) >= 2 and not any(w.lower() in STOPWORDS - {"to"} for w in words)


def _pieces(text: str) -> list[str]:
    """Comma-separated items; "X and Y" is two items when both sides are phrases of two
    or more content words ("speech recognition and text-to-speech"), but not in "agents
    that write and fix code", where "and" joins verbs of one request."""
    pieces = []
    for item in _SPLIT.split(text):
        parts = _AND.split(item)
        if len(parts) > 1 and all(_is_noun_phrase(p) for p in parts):
            pieces.extend(parts)
        else:
            pieces.append(item)
    return [p for p in pieces if p.strip()]


@lru_cache(maxsize=4096)
def interest_items(text: str) -> tuple[Item, ...]:
    items = []
    for piece in _pieces(text):
        compounds = [concept(c) for c in _COMPOUND.findall(piece)]  # "text-to-speech"
        words = _WORD.findall(piece)
        terms: list[str] = []
        typed: list[str] = []
        runs: list[list[str]] = [[]]
        for word in words:
            if word.lower() in STOPWORDS:
                runs.append([])
                continue
            runs[-1].append(word)
            term = f"A:{word}" if _is_acronym(word) else stem(word)
            if term not in terms:
                terms.append(term)
                typed.append(word)
        phrases = tuple(
            c
            for c in [*(concept(" ".join(run)) for run in runs if len(run) > 1), *compounds]
            if c is not None
        )
        if terms:
            items.append(Item(" ".join(piece.split()), tuple(terms), tuple(typed), phrases))
    return tuple(items)


def interest_topics(text: str, topics: list[TopicTerms]) -> tuple[TopicTerms, ...]:
    """Catalogue topics a reader's own words point at: the topic's name, or one of its
    specific terms (a phrase, an acronym, or a word of 6+ letters), appears in the text."""
    seq = _seq(text)
    raw = text
    words = set(seq.split())
    chosen = []
    for topic in topics:
        name_words = {w for w in stems(topic.name) if w not in STOPWORDS}
        if len(name_words) > 1 and name_words <= words:  # "generate ... video" -> Video generation
            chosen.append(TopicTerms(topic.name, topic.terms, trigger=topic.name))
            continue
        for term in (topic.name, *topic.terms):
            c = concept(term)
            if c is None:
                continue
            if c.acronym:
                hit = has_acronym(term, raw)
            else:
                specific = len(c.words) > 1 or len(term) >= 6
                hit = specific and c.seq in seq
            if hit:
                chosen.append(TopicTerms(topic.name, topic.terms, trigger=term))
                break
    return tuple(chosen)


@dataclass(frozen=True)
class Preferences(CachedHash):
    topics: tuple[TopicTerms, ...] = ()
    keywords: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    expansions: tuple[TopicTerms, ...] = ()  # topics the reader's own words point at
    feedback: FeedbackModel | None = None

    __hash__ = CachedHash.__hash__

    @property
    def empty(self) -> bool:
        return not (self.topics or self.keywords or self.authors or self.feedback)


# The run's candidates ------------------------------------------------------------------


class Catalogue:
    """The candidate papers of one run. Every lookup (a term, a phrase, a topic, an
    interest item, an author) is computed once per run as a vector over the papers and
    memoised, so scoring a reader is a few vector additions."""

    K1, B = 1.2, 0.75

    def __init__(self, papers: list[PaperFeatures]) -> None:
        self.papers = papers
        self.n = len(papers)
        self.trend = np.array([trend(p.upvotes) for p in papers], dtype=np.float64)
        self._avg_length = sum(p.length for p in papers) / max(self.n, 1)
        self._vectors: dict[object, np.ndarray] = {}
        self._idf: dict[object, float] = {}
        self._df: Counter[str] | None = None
        self._units: dict[int, dict[str, float]] = {}
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._reasons: dict[tuple[object, int], str] = {}
        self._sparse: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._word_ids: dict[str, int] = {}
        self.vocabulary: list[str] = []

    def _memo(self, key: object, build: Callable[[], np.ndarray]) -> np.ndarray:
        vector = self._vectors.get(key)
        if vector is None:
            vector = self._vectors[key] = build()
        return vector

    # Phrases: 3 in the title, 2 in the keywords or one-line summary, 1 in the abstract.
    def hits(self, c: Concept) -> np.ndarray:
        def build() -> np.ndarray:
            vector = np.array([_strength(c, p) for p in self.papers], dtype=np.float64)
            present = int(np.count_nonzero(vector))
            self._idf[c] = (
                math.log((self.n + 1) / (present + 0.5)) / math.log(self.n + 1.5) if self.n else 1.0
            )
            return vector

        return self._memo(c, build)

    def idf(self, c: Concept) -> float:
        self.hits(c)
        return max(0.15, self._idf[c])

    # Terms: BM25 over field-weighted frequencies (title x3, keywords x2, abstract x1).
    def term_scores(self, term: str) -> np.ndarray:
        def build() -> np.ndarray:
            if term.startswith("A:"):
                tfs = [
                    3.0 * count_acronym(term[2:], p.title) + count_acronym(term[2:], p.text)
                    for p in self.papers
                ]
            else:
                tfs = [p.tf.get(term, 0.0) for p in self.papers]
            tf = np.array(tfs, dtype=np.float64)
            present = int(np.count_nonzero(tf))
            idf = math.log(1 + (self.n - present + 0.5) / (present + 0.5))
            self._idf[("term", term)] = idf
            lengths = np.array([p.length for p in self.papers], dtype=np.float64)
            norm = self.K1 * (1 - self.B + self.B * lengths / max(self._avg_length, 1.0))
            return idf * tf * (self.K1 + 1) / (tf + norm)

        return self._memo(("term", term), build)

    def term_idf(self, term: str) -> float:
        self.term_scores(term)
        return self._idf[("term", term)]

    def item(self, item: Item) -> np.ndarray:
        return self._memo(item, lambda: _item_vector(item, self))

    def topic(self, topic: TopicTerms) -> np.ndarray:
        return self._memo(topic, lambda: _topic_vector(topic, self))

    def author(self, name: str) -> np.ndarray:
        key = ("author", name.casefold())
        return self._memo(
            key,
            lambda: np.array([name.casefold() in p.authors for p in self.papers], dtype=np.float64),
        )

    def sparse(self, item: int | PaperFeatures) -> tuple[np.ndarray, np.ndarray]:
        """A paper's unit TF-IDF vector as (word ids, weights) arrays, cached per paper."""
        key = item if isinstance(item, int) else -1 - item.paper_id
        found = self._sparse.get(key)
        if found is None:
            unit = self.unit(item) if isinstance(item, int) else self.unit_of(item)
            ids = np.array([self._word_id(w) for w in unit], dtype=np.int64)
            found = self._sparse[key] = (
                ids,
                np.fromiter(unit.values(), dtype=np.float64, count=len(unit)),
            )
        return found

    def _word_id(self, word: str) -> int:
        index = self._word_ids.get(word)
        if index is None:
            index = self._word_ids[word] = len(self.vocabulary)
            self.vocabulary.append(word)
        return index

    def postings(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """The papers containing a word and its weight in their unit TF-IDF vectors."""
        if self._postings is None:
            lists: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
            for i in range(self.n):
                for w, weight in self.unit(i).items():
                    lists[w][0].append(i)
                    lists[w][1].append(weight)
            self._postings = {w: (np.array(ix), np.array(ws)) for w, (ix, ws) in lists.items()}
        return self._postings.get(word, _NO_POSTINGS)

    def unit(self, index: int) -> dict[str, float]:
        """A candidate's unit TF-IDF vector."""
        if index not in self._units:
            self._units[index] = _unit_vector(self.papers[index], self.document_frequency(), self.n)
        return self._units[index]

    def unit_of(self, paper: PaperFeatures) -> dict[str, float]:
        """The unit TF-IDF vector of a paper outside the run (one a reader voted on)."""
        key = -1 - paper.paper_id  # never a candidate's index
        if key not in self._units:
            self._units[key] = _unit_vector(paper, self.document_frequency(), self.n)
        return self._units[key]

    def reason(self, key: tuple[object, int], build: Callable[[], str]) -> str:
        """A reason's text for a paper, shared by every reader it applies to."""
        text = self._reasons.get(key)
        if text is None:
            text = self._reasons[key] = build()
        return text

    def document_frequency(self) -> Counter[str]:
        if self._df is None:
            self._df = Counter()
            for p in self.papers:
                self._df.update(w for w, _ in p.bag)
        return self._df


_NO_POSTINGS = (np.zeros(0, dtype=np.int64), np.zeros(0))


def _strength(c: Concept, p: PaperFeatures) -> float:
    if c.acronym:
        if not has_acronym(c.label, p.text):
            return 0.0
        return 3.0 if has_acronym(c.label, p.title) else 1.5
    if c.seq in p.title_seq:
        return 3.0
    if c.seq in p.keyword_seq:
        return 2.0
    if c.seq in p.body_seq:
        return 1.0 + min(p.body_seq.count(c.seq) - 1, 3) * 0.2
    if len(c.words) > 1:
        present = sum(1 for w in c.words if f" {w} " in p.title_seq or f" {w} " in p.body_seq)
        if present == len(c.words):
            return 0.6
    return 0.0


def _item_vector(item: Item, catalogue: Catalogue) -> np.ndarray:
    """How well each paper matches one interest item, in [0, 3 x KEYWORD_WEIGHT]: BM25
    over the item's terms, times the share of the item's meaning (idf mass) found raised
    to COVERAGE_POWER, plus a bonus for its phrases; scaled down when the words are
    only in the abstract, not in the title, keywords or one-line summary, and again when
    the title does not carry all of it: "RL for LLM reasoning" in a title is the paper
    about all three, where "RL for visual reasoning" only touches the third in passing."""
    if catalogue.n == 0:
        return np.zeros(0)
    scores = [catalogue.term_scores(t) for t in item.terms]
    idfs = np.array([catalogue.term_idf(t) for t in item.terms])
    total = float(idfs.sum()) or 1.0
    present = np.array([s > 0 for s in scores])  # terms x papers
    in_head = (
        np.array(
            [[t.startswith("A:") or t in p.head for p in catalogue.papers] for t in item.terms]
        )
        & present
    )
    in_title = np.array(
        [
            [
                has_acronym(t[2:], p.title) if t.startswith("A:") else f" {t} " in p.title_seq
                for p in catalogue.papers
            ]
            for t in item.terms
        ]
    )
    lexical = np.sum(scores, axis=0)
    coverage = (idfs @ present) / total
    central = (idfs @ in_head) / total
    titled = (idfs @ in_title) / total
    bonus = np.zeros(catalogue.n)
    phrase_idf = 0.0
    for c in item.phrases:
        idf = sum(catalogue.term_idf(w) for w in c.words)
        phrase_idf += idf
        hits = catalogue.hits(c)
        bonus += np.where(hits >= 1.0, idf * np.minimum(hits, 3.0) / 3.0, 0.0)
    best = total * (Catalogue.K1 + 1) + PHRASE_BONUS * phrase_idf
    score = 3 * KEYWORD_WEIGHT * (lexical * coverage**COVERAGE_POWER + PHRASE_BONUS * bonus) / best
    score *= 1 - CENTRAL_SHARE + CENTRAL_SHARE * central
    score *= 1 - TITLE_SHARE + TITLE_SHARE * titled
    return np.where(lexical > 0, score, 0.0)


def _topic_vector(topic: TopicTerms, catalogue: Catalogue) -> np.ndarray:
    """Per paper: the best term's strength x idf, plus a quarter of the next three."""
    concepts = [c for c in (concept(t) for t in topic.terms) if c is not None]
    if not concepts or catalogue.n == 0:
        return np.zeros(catalogue.n)
    columns = np.array([catalogue.hits(c) * catalogue.idf(c) for c in concepts])
    columns.sort(axis=0)
    top = columns[::-1][:4]
    return top[0] + 0.25 * top[1:].sum(axis=0)


# Feedback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackModel:
    """A per-reader linear model over the papers' word features: Rocchio's centroid of
    liked papers minus half the centroid of disliked ones, on unit TF-IDF vectors.
    Hashable, so it can be part of a cache key."""

    weights: tuple[tuple[str, float], ...]
    liked_titles: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        catalogue: Catalogue,
        *,
        liked: Sequence[int | PaperFeatures],
        disliked: Sequence[int | PaperFeatures],
        size: int = 60,
    ) -> FeedbackModel | None:
        """Liked and disliked papers, given as indices into the catalogue or as features
        of papers outside it (what readers voted on is usually older than the run)."""

        if not liked and not disliked:
            return None
        ids: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for group, sign in ((liked, 1.0), (disliked, -0.5)):
            for item in group:
                word_ids, weights = catalogue.sparse(item)
                ids.append(word_ids)
                values.append(weights * (sign / len(group)))
        words, inverse = np.unique(np.concatenate(ids), return_inverse=True)
        totals = np.bincount(inverse, weights=np.concatenate(values))
        keep = np.flatnonzero(totals)
        if len(keep) > size:
            keep = keep[np.argpartition(-np.abs(totals[keep]), size - 1)[:size]]
        vocabulary = catalogue.vocabulary
        ordered = sorted(keep, key=lambda j: (-abs(totals[j]), vocabulary[words[j]]))
        titles = tuple(
            (catalogue.papers[i].title if isinstance(i, int) else i.title) for i in liked[:3]
        )
        return cls(
            weights=tuple((vocabulary[words[j]], round(float(totals[j]), 5)) for j in ordered),
            liked_titles=titles,
        )

    def vector(self, catalogue: Catalogue) -> np.ndarray:
        """Each candidate's score under the model (a dot product, by postings)."""
        out = np.zeros(catalogue.n)
        for word, weight in self.weights:
            index, values = catalogue.postings(word)
            out[index] += weight * values
        return out


def _unit_vector(paper: PaperFeatures, df: Counter[str], n: int) -> dict[str, float]:
    vector = {w: (1 + math.log(c)) * math.log((n + 1) / (df.get(w, 0) + 1)) for w, c in paper.bag}
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {w: v / norm for w, v in vector.items()}


# Ranking -----------------------------------------------------------------------------


@dataclass
class Match:
    paper_id: int
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        text = "; ".join(self.reasons)
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def trend(upvotes: int) -> float:
    """Trendiness in [0, 1)."""
    return 1 - 1 / (1 + math.log1p(max(upvotes, 0)) / 3)


def _usable_expansions(prefs: Preferences, catalogue: Catalogue) -> list[TopicTerms]:
    """Expansion topics whose trigger is specific in today's papers: a word as common
    as "LLM" points at nothing."""
    out = []
    for topic in prefs.expansions:
        trigger = concept(topic.trigger) if topic.trigger else None
        if trigger is None or catalogue.idf(trigger) >= MIN_TRIGGER_IDF:
            out.append(topic)
    return out


def scores(prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None = None) -> np.ndarray:
    """Each paper's relevance to the reader (0 = none)."""
    total = np.zeros(catalogue.n)
    for author in prefs.authors:
        total += AUTHOR_WEIGHT * catalogue.author(author)
    for keyword in prefs.keywords:
        for item in interest_items(keyword):
            total += catalogue.item(item)
    for topic in prefs.topics:
        total += TOPIC_WEIGHT * catalogue.topic(topic)
    for topic in _usable_expansions(prefs, catalogue):
        total += EXPANSION_WEIGHT * catalogue.topic(topic)
    if nudge is None:
        nudge = feedback_nudge(prefs, catalogue)
    if nudge is not None:
        # Feedback sharpens relevant papers; alone it must be strong to bring one in.
        total = np.where((total > 0) | (nudge > THRESHOLD), total + nudge, total)
    return total


def ranking(
    prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None = None
) -> np.ndarray:
    """Final scores, -inf for papers not to send: relevance above the threshold lifted
    by trendiness, or trendiness alone for a reader with no preferences."""
    if prefs.empty:
        return catalogue.trend.copy()
    relevant = scores(prefs, catalogue, nudge)
    return np.where(relevant >= THRESHOLD, relevant * (1 + TREND_SHARE * catalogue.trend), -np.inf)


def top(
    final: np.ndarray, limit: int | None = None, eligible: np.ndarray | None = None
) -> list[int]:
    """Indices of the best papers, best first; ties go to the earlier paper."""
    if eligible is not None:
        final = np.where(eligible, final, -np.inf)
    candidates = np.flatnonzero(final > -np.inf)
    if limit is not None and len(candidates) > limit:
        part = np.argpartition(-final[candidates], limit - 1)[:limit]
        candidates = candidates[part]
    order = np.lexsort((candidates, -final[candidates]))
    return [int(i) for i in candidates[order]]


def explain(
    prefs: Preferences, catalogue: Catalogue, indices: list[int], nudge: np.ndarray | None = None
) -> list[list[str]]:
    """Why each of these papers was picked, in the reader's terms. ``nudge`` is the
    reader's feedback vector, when the caller already has it."""
    if prefs.empty:
        return [[f"trending today: {catalogue.papers[i].upvotes} upvotes"] for i in indices]
    authors = [(a, catalogue.author(a)) for a in prefs.authors]
    items = [(it, catalogue.item(it)) for kw in prefs.keywords for it in interest_items(kw)]
    topics = [(t, catalogue.topic(t)) for t in prefs.topics]
    expansions = [(t, catalogue.topic(t)) for t in _usable_expansions(prefs, catalogue)]
    model = prefs.feedback
    if model is not None and model.liked_titles and nudge is None:
        nudge = FEEDBACK_WEIGHT * model.vector(catalogue)
    out = []
    for i in indices:
        reasons = [f"by {a}, whom you follow" for a, vector in authors if vector[i]]
        quotes = [
            catalogue.reason((item, i), partial(_item_quote, item, catalogue, i))
            for item, vector in items
            if vector[i] > 0
        ]
        if quotes:
            reasons.append(
                f"matches your interest{'s' if len(quotes) > 1 else ''} {', '.join(quotes)}"
            )
        direct = bool(reasons)
        for topic, vector in topics:
            if vector[i] > 0:
                quote = catalogue.reason((topic, i), partial(_topic_quote, topic, catalogue, i))
                reasons.append(f"matches your topic {topic.name}: {quote}")
        if (
            not direct
        ):  # the reader's own words already say why; the topic they point at adds nothing
            for topic, vector in expansions:
                if vector[i] > 0:
                    quote = catalogue.reason((topic, i), partial(_topic_quote, topic, catalogue, i))
                    reasons.append(f"related to your interests via {topic.name}: {quote}")
        if model is not None and model.liked_titles and nudge is not None and nudge[i] > 0.3:
            reasons.append(f"like papers you liked ('{model.liked_titles[0][:60]}')")
        out.append(reasons[:MAX_REASONS])
    return out


def reasons_for(
    prefs: Preferences, catalogue: Catalogue, index: int, nudge: np.ndarray | None = None
) -> list[str]:
    return explain(prefs, catalogue, [index], nudge)[0]


def _topic_quote(topic: TopicTerms, catalogue: Catalogue, index: int) -> str:
    """The topic's two strongest terms found in the paper (synonyms counted once)."""
    found: dict[str, tuple[float, str]] = {}
    for c in (concept(t) for t in topic.terms):
        if c is not None and catalogue.hits(c)[index]:
            strength = float(catalogue.hits(c)[index] * catalogue.idf(c))
            if c.seq not in found or found[c.seq][0] < strength:
                found[c.seq] = (strength, c.label)
    best = sorted(found.values(), key=lambda f: -f[0])[:2]
    return ", ".join(f"'{label}'" for _, label in best)


def _item_quote(item: Item, catalogue: Catalogue, index: int) -> str:
    phrases = [c.label for c in item.phrases if catalogue.hits(c)[index] >= 1.0]
    if phrases:
        return ", ".join(f"'{p}'" for p in dict.fromkeys(phrases))
    if len(item.terms) == 1:
        return f"'{item.label}'"
    words = [
        w
        for t, w in zip(item.terms, item.words, strict=True)
        if catalogue.term_scores(t)[index] > 0
    ]
    return ", ".join(f"'{w}'" for w in words)


def rank(
    prefs: Preferences,
    papers: list[PaperFeatures] | Catalogue,
    *,
    feedback: FeedbackModel | None = None,
    limit: int | None = None,
    eligible: np.ndarray | None = None,
) -> list[Match]:
    """The papers to send, best first, each with its score and reasons. A reader with
    no preferences gets the most trending papers."""
    catalogue = papers if isinstance(papers, Catalogue) else Catalogue(papers)
    if feedback is not None:
        prefs = Preferences(prefs.topics, prefs.keywords, prefs.authors, prefs.expansions, feedback)
    final = ranking(prefs, catalogue)
    chosen = top(final, limit, eligible)
    reasons = explain(prefs, catalogue, chosen, feedback_nudge(prefs, catalogue))
    return [
        Match(catalogue.papers[i].paper_id, round(float(final[i]), 4), why)
        for i, why in zip(chosen, reasons, strict=True)
    ]


def feedback_nudge(prefs: Preferences, catalogue: Catalogue) -> np.ndarray | None:
    return None if prefs.feedback is None else FEEDBACK_WEIGHT * prefs.feedback.vector(catalogue)
