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
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np

AUTHOR_WEIGHT = 6.0
KEYWORD_WEIGHT = 1.5
TOPIC_WEIGHT = 1.0
EXPANSION_WEIGHT = 0.8
FEEDBACK_WEIGHT = 8.0
MEANING_FEEDBACK = 0.5  # weight of the liked papers' centroid beside their words
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
    shown: str = ""  # title, abstract and summary: what the email shows, for quotes
    vector: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)


def paper_features(
    *,
    paper_id: int,
    title: str,
    abstract: str,
    ai_summary: str,
    keywords: list[str],
    authors: list[str],
    upvotes: int,
    vector: np.ndarray | None = None,
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
        shown=f"{title}\n{abstract}\n{ai_summary}",
        vector=vector,
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
    description: str = ""

    @property
    def meaning(self) -> str:
        """What the topic is about, in words, for semantic matching."""
        return f"{self.name}: {self.description}" if self.description else self.name

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

    def __init__(
        self, papers: list[PaperFeatures], embed: Callable[[str], np.ndarray] | None = None
    ) -> None:
        self.papers = papers
        self.n = len(papers)
        # Semantic side: the papers' unit vectors (zero rows where a paper has none) and
        # the function that turns an interest's words into a vector.
        self.embed = embed
        dimensions = next((len(p.vector) for p in papers if p.vector is not None), 0)
        self.vectors = np.zeros((self.n, dimensions), dtype=np.float32)
        for i, p in enumerate(papers):
            if p.vector is not None and len(p.vector) == dimensions:
                self.vectors[i] = p.vector
        self.has_vectors = bool(dimensions) and embed is not None
        # The meaning signals of the latest interest texts, bounded: memory must not
        # grow with the number of distinct interests readers type.
        self.meanings: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
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

    def query(self, text: str) -> np.ndarray | None:
        """An interest's unit vector, or None without a model."""
        if not self.has_vectors or self.embed is None:
            return None
        key = ("query", text)
        return self._memo(key, lambda: np.asarray(self.embed(text), dtype=np.float32))  # type: ignore[misc]

    def semantic(self, text: str) -> np.ndarray:
        """Each paper's cosine similarity to the text (zeros without a model)."""

        def build() -> np.ndarray:
            vector = self.query(text)
            if vector is None:
                return np.zeros(self.n)
            return (self.vectors @ vector).astype(np.float64)

        return self._memo(("semantic", text), build)

    def semantic_of(self, vector: np.ndarray) -> np.ndarray:
        if not self.has_vectors:
            return np.zeros(self.n)
        return (self.vectors @ vector).astype(np.float64)

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
    centroid: bytes = b""  # liked minus half the disliked papers, in embedding space (float32)

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
            centroid=_centroid(catalogue, liked, disliked),
        )

    def vector(self, catalogue: Catalogue) -> np.ndarray:
        """Each candidate's score under the model: words (a dot product, by postings)
        plus meaning (the cosine to the liked papers' centroid)."""
        out = np.zeros(catalogue.n)
        for word, weight in self.weights:
            index, values = catalogue.postings(word)
            out[index] += weight * values
        if self.centroid and catalogue.has_vectors:
            centroid = np.frombuffer(self.centroid, dtype=np.float32)
            if len(centroid) == catalogue.vectors.shape[1]:
                out += MEANING_FEEDBACK * catalogue.semantic_of(centroid)
        return out


def _centroid(
    catalogue: Catalogue,
    liked: Sequence[int | PaperFeatures],
    disliked: Sequence[int | PaperFeatures],
) -> bytes:
    if not catalogue.has_vectors:
        return b""
    total = np.zeros(catalogue.vectors.shape[1], dtype=np.float32)
    for group, sign in ((liked, 1.0), (disliked, -0.5)):
        rows = [
            catalogue.vectors[i] if isinstance(i, int) else i.vector
            for i in group
            if isinstance(i, int) or i.vector is not None
        ]
        usable = [r for r in rows if r is not None and len(r) == len(total) and r.any()]
        if usable:
            total += sign * np.mean(np.stack(usable), axis=0)
    return total.astype(np.float32).tobytes() if total.any() else b""


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


# Fusion ------------------------------------------------------------------------------

SIGNALS = (
    "words",  # the reader's interests found in the paper's words (stemmed BM25, phrases)
    "topics",  # ticked topics' curated terms
    "expansions",  # topics the reader's words or meaning point at
    "authors",  # a followed author
    "meaning",  # cosine of the paper to the closest interest
    "meaning_z",  # the same, standardised over the run's candidates
    "topic_meaning",  # cosine of the paper to the closest ticked topic's description
    "title",  # the reader's exact phrase, or a ticked topic's name, in the title
    "feedback",  # the reader's thumbs, in words and in meaning
)
# Logistic weights over SIGNALS, fitted on the labelled dev interests and the older
# set (bench/relevance.py --fit); the blind test interests never took part.
WEIGHTS = np.array([1.53, 1.2, 0.76, 4.72, 0.6, 1.09, 2.07, -0.26, 8.0])
BIAS = -4.43
NO_TEXT_BIAS = 0.78  # a reader without free text: the topic signals carry everything
CUTOFF = 0.2  # relevance below this is not sent...
RELATIVE_CUTOFF = 0.2  # ...nor below this share of the reader's best match
STRONG = 0.85  # strong matches: ordered by trendiness
MEANING_TOPIC = 0.45  # an interest this close to a topic's description points at it


def interest_texts(prefs: Preferences) -> list[str]:
    """What a reader's free text means, piece by piece: each comma-separated piece and,
    when there are several, the whole."""
    pieces = [p.strip() for k in prefs.keywords for p in _SPLIT.split(k) if p.strip()]
    whole = ", ".join(pieces)
    return [*dict.fromkeys([*pieces, whole] if len(pieces) > 1 else pieces)]


def meaning_topics(
    texts: Sequence[str], topics: Sequence[TopicTerms], catalogue: Catalogue
) -> tuple[TopicTerms, ...]:
    """Catalogue topics whose description is close in meaning to the reader's words:
    "smaller and cheaper LLMs" reaches Efficient inference and Quantization."""
    if not texts or not catalogue.has_vectors:
        return ()
    chosen = []
    vectors = [catalogue.query(t) for t in texts]
    for topic in topics:
        meaning = catalogue.query(topic.meaning)
        if meaning is None:
            continue
        best = max(float(v @ meaning) for v in vectors if v is not None)
        if best >= MEANING_TOPIC:
            chosen.append((best, topic))
    chosen.sort(key=lambda c: -c[0])
    return tuple(TopicTerms(t.name, t.terms, "", t.description) for _, t in chosen[:2])


def title_hits(prefs: Preferences, catalogue: Catalogue) -> np.ndarray:
    """Papers whose title carries the reader's exact phrase or a ticked topic's name
    (each phrase and name looked up once per run, shared by every reader)."""
    out = np.zeros(catalogue.n, dtype=bool)
    for phrase in interest_texts(prefs):
        if 0 < len(phrase.split()) <= 6:
            out |= catalogue._memo(
                ("title-phrase", phrase),
                lambda p=phrase: np.array(  # type: ignore[misc]
                    [quoted(p, paper.title) for paper in catalogue.papers], dtype=bool
                ),
            )
    for topic in prefs.topics:
        for part in _name_parts(topic.name):
            c = concept(part)
            if c is not None:
                out |= catalogue._memo(
                    ("title-name", c.seq),
                    lambda c=c: np.array(  # type: ignore[misc]
                        [c.seq in paper.title_seq for paper in catalogue.papers], dtype=bool
                    ),
                )
    return out


def _name_parts(name: str) -> list[str]:
    return [p for p in re.split(r",|\s+and\s+", name) if p.strip()]


def signals(
    prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None = None
) -> np.ndarray:
    """The reader's signals for every paper, one row per name in SIGNALS."""
    out = np.zeros((len(SIGNALS), catalogue.n))
    for keyword in prefs.keywords:
        for item in interest_items(keyword):
            out[0] += catalogue.item(item)
    for topic in prefs.topics:
        out[1] += catalogue.topic(topic)
    for topic in _usable_expansions(prefs, catalogue):
        out[2] += catalogue.topic(topic)
    for author in prefs.authors:
        out[3] = np.maximum(out[3], catalogue.author(author))
    out[:3] = np.log1p(out[:3])
    if prefs.keywords and catalogue.has_vectors:
        meaning = catalogue.meanings.get(prefs.keywords)
        if meaning is None:
            meaning = _meaning(prefs, catalogue, out[0].copy())
            catalogue.meanings[prefs.keywords] = meaning
            if len(catalogue.meanings) > MEANINGS_KEPT:
                catalogue.meanings.popitem(last=False)
        out[4:6] = meaning
    if prefs.topics and catalogue.has_vectors:
        out[6] = np.max([catalogue.semantic(t.meaning) for t in prefs.topics], axis=0)
    out[7] = title_hits(prefs, catalogue)
    if nudge is None:
        nudge = feedback_nudge(prefs, catalogue)
    if nudge is not None:
        out[8] = nudge
    return out


MEANINGS_KEPT = 2048  # interest texts whose meaning signals a run keeps
MEANING_FLOOR = 0.22  # cosine below which a paper is unrelated to an interest
MEANING_RAMP = 0.1  # and above FLOOR + RAMP, fully related
PRF_SHARE = 0.5  # weight of the best few papers' centroid beside the reader's words
PRF_DEPTH = 3


def _meaning(prefs: Preferences, catalogue: Catalogue, words: np.ndarray) -> np.ndarray:
    """The two meaning signals of a reader's free text (they depend on nothing else, so
    readers who typed the same words share them)."""
    closest = np.max([catalogue.semantic(t) for t in interest_texts(prefs)], axis=0)
    z = _standardised(closest + PRF_SHARE * _pseudo_feedback(closest + words, catalogue))
    # Standing out among today's papers counts only for a paper that is close in
    # absolute terms too: on a day with nothing about octopuses, the least unrelated
    # paper is still unrelated.
    return np.vstack([closest, z * np.clip((closest - MEANING_FLOOR) / MEANING_RAMP, 0.0, 1.0)])


def _pseudo_feedback(first: np.ndarray, catalogue: Catalogue) -> np.ndarray:
    """Cosine to the centroid of the best few papers by a first pass (pseudo-relevance
    feedback): a vague sentence borrows the vocabulary of the papers it clearly means."""
    if catalogue.n <= PRF_DEPTH:
        return np.zeros(catalogue.n)
    best = np.argpartition(-first, PRF_DEPTH - 1)[:PRF_DEPTH]
    centroid = catalogue.vectors[best].mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    return catalogue.semantic_of(centroid / norm) if norm else np.zeros(catalogue.n)


def _standardised(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - float(values.mean())) / spread if spread > 0 else np.zeros(len(values))


def relevance(
    prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None = None
) -> np.ndarray:
    """How likely each paper is to be what the reader wants, in [0, 1]."""
    logit = WEIGHTS @ signals(prefs, catalogue, nudge) + BIAS
    if not prefs.keywords:
        logit += NO_TEXT_BIAS
    return 1 / (1 + np.exp(-logit))


def ranking(
    prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None = None
) -> np.ndarray:
    """Order keys, -inf for papers not to send (``relevance`` gives the scores).

    1. Papers below CUTOFF, or below RELATIVE_CUTOFF of the reader's best, are dropped:
       the cut adapts to how well the day matches this reader. A paper whose title
       carries the reader's phrase or a ticked topic's name always stays.
    2. Strong matches (relevance >= STRONG, or the reader's phrase or a ticked topic's
       name in the title) come first, most trending first.
    3. The rest follow, best match first.
    A reader with no preferences gets the most trending papers.
    """
    return ranked(prefs, catalogue, nudge)[0]


def _by_words(
    prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Without an embedding model (none installed, or the papers not embedded yet):
    word matching alone, relevance above THRESHOLD lifted by trendiness."""
    if nudge is not None:
        nudge = FEEDBACK_WEIGHT * nudge
    relevant = scores(prefs, catalogue, nudge)
    final = relevant * (1 + TREND_SHARE * catalogue.trend)
    return np.where(relevant >= THRESHOLD, final, -np.inf), final


def ranked(
    prefs: Preferences, catalogue: Catalogue, nudge: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``ranking``'s order keys and each paper's score (its relevance, or its
    trendiness for a reader with no preferences)."""
    if prefs.empty:
        return catalogue.trend.copy(), catalogue.trend.copy()
    if not catalogue.has_vectors:
        return _by_words(prefs, catalogue, nudge)
    rel = relevance(prefs, catalogue, nudge)
    best = float(rel.max()) if catalogue.n else 0.0
    titled = title_hits(prefs, catalogue)
    keep = (rel >= max(CUTOFF, RELATIVE_CUTOFF * best)) | titled
    strong = keep & ((rel >= STRONG) | titled)
    key = np.where(strong, 2.0 + catalogue.trend, rel)
    return np.where(keep, key, -np.inf), rel


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


def quoted(phrase: str, text: str) -> bool:
    """The phrase occurs in the text as written: any case, whole words, and not as part
    of a hyphenated name ("Thinking" in "GPT-5-Thinking" does not count)."""
    pattern = _quote_pattern(phrase)
    return pattern is not None and pattern.search(text) is not None


@lru_cache(maxsize=65536)
def _quote_pattern(phrase: str) -> re.Pattern[str] | None:
    words = phrase.split()
    if not words:
        return None
    flags = 0 if _is_acronym(" ".join(words)) else re.IGNORECASE
    body = r"\s+".join(map(re.escape, words))
    return re.compile(rf"(?<![\w-]){body}(?![\w]|-\w)", flags)


def _in_words(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


MEANING_REASON = 0.45  # a paper this close to an interest is said to be close in meaning


def explain(
    prefs: Preferences, catalogue: Catalogue, indices: list[int], nudge: np.ndarray | None = None
) -> list[list[str]]:
    """Why each of these papers was picked, in the reader's terms. A quoted phrase is
    always one the paper's title, abstract or summary carries as written; a match in
    meaning says so in words and quotes nothing. ``nudge`` is the reader's feedback
    vector, when the caller already has it."""
    if prefs.empty:
        return [[f"trending today: {catalogue.papers[i].upvotes} upvotes"] for i in indices]
    authors = [(a, catalogue.author(a)) for a in prefs.authors]
    items = [(it, catalogue.item(it)) for kw in prefs.keywords for it in interest_items(kw)]
    topics = [(t, catalogue.topic(t)) for t in prefs.topics]
    expansions = [(t, catalogue.topic(t)) for t in _usable_expansions(prefs, catalogue)]
    texts = interest_texts(prefs) if catalogue.has_vectors else []
    meanings = [(t, catalogue.semantic(t)) for t in texts]
    topic_meanings = (
        [(t, catalogue.semantic(t.meaning)) for t in prefs.topics] if catalogue.has_vectors else []
    )
    model = prefs.feedback
    if model is not None and model.liked_titles and nudge is None:
        nudge = model.vector(catalogue)
    out = []
    for i in indices:
        paper = catalogue.papers[i]
        reasons = [f"by {a}, whom you follow" for a, vector in authors if vector[i]]
        quotes = [
            q
            for item, vector in items
            if vector[i] > 0
            for q in [catalogue.reason((item, i), partial(_item_quote, item, paper))]
            if q
        ]
        if quotes:
            reasons.append(
                f"matches your interest{'s' if len(quotes) > 1 else ''} {', '.join(quotes)}"
            )
        elif meanings:
            text, vector = max(meanings, key=lambda m: m[1][i])
            if vector[i] >= MEANING_REASON or not reasons:
                reasons.append(f"close in meaning to your interest in {_in_words(text)}")
        direct = bool(reasons)
        for topic, vector in topics:
            if vector[i] > 0:
                quote = catalogue.reason((topic, i), partial(_topic_quote, topic, paper))
                if quote:
                    reasons.append(f"matches your topic {topic.name}: {quote}")
        for topic, vector in topic_meanings:
            if not any(topic.name in r for r in reasons) and vector[i] >= MEANING_REASON:
                reasons.append(f"close in meaning to your topic {topic.name}")
        if not direct:  # the reader's own words already say why
            for topic, vector in expansions:
                if vector[i] > 0:
                    quote = catalogue.reason((topic, i), partial(_topic_quote, topic, paper))
                    if quote:
                        reasons.append(f"related to your interests via {topic.name}: {quote}")
        if model is not None and model.liked_titles and nudge is not None and nudge[i] > 0.15:
            reasons.append(f"like papers you liked, such as {_in_words(model.liked_titles[0])}")
        if not reasons:
            reasons.append(_fallback_reason(prefs))
        out.append(reasons[:MAX_REASONS])
    return out


def _fallback_reason(prefs: Preferences) -> str:
    if prefs.topics:
        return f"related to your topic {prefs.topics[0].name}"
    if prefs.keywords:
        return f"related to your interest in {_in_words(prefs.keywords[0])}"
    return "like papers you liked"


def reasons_for(
    prefs: Preferences, catalogue: Catalogue, index: int, nudge: np.ndarray | None = None
) -> list[str]:
    return explain(prefs, catalogue, [index], nudge)[0]


def _topic_quote(topic: TopicTerms, paper: PaperFeatures) -> str:
    """Up to two of the topic's terms that the paper carries as written."""
    found = [t for t in dict.fromkeys(topic.terms) if quoted(t, paper.shown)]
    found.sort(key=lambda t: (not quoted(t, paper.title), -len(t)))
    return ", ".join(f"'{t}'" for t in _distinct(found)[:2])


def _distinct(terms: list[str]) -> list[str]:
    """Terms, leaving out one contained in a term already kept ("RL" beside "offline RL")."""
    kept: list[str] = []
    for term in terms:
        if not any(term.lower() in k.lower() or k.lower() in term.lower() for k in kept):
            kept.append(term)
    return kept


_PAPER_WORD = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?![\w-])")


def _item_quote(item: Item, paper: PaperFeatures) -> str:
    """The reader's phrases the paper carries as written; else the paper's own words
    for the reader's terms ("quantization" for a reader who typed "quantized")."""
    phrases = [c.label for c in item.phrases if quoted(c.label, paper.shown)]
    if quoted(item.label, paper.shown):
        phrases.insert(0, item.label)
    if phrases:
        return ", ".join(f"'{p}'" for p in _distinct(list(dict.fromkeys(phrases)))[:2])
    words: list[str] = []
    for term, typed in zip(item.terms, item.words, strict=True):
        if term.startswith("A:"):
            if quoted(typed, paper.shown):
                words.append(typed)
            continue
        if quoted(typed, paper.shown):
            words.append(typed)
            continue
        form = next(
            (w for w in _PAPER_WORD.findall(paper.shown) if "-" not in w and stem(w) == term), None
        )
        if form is not None:
            words.append(form.lower() if not form.isupper() else form)
    words = list(dict.fromkeys(words))
    return ", ".join(f"'{w}'" for w in words[:3])


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
    nudge = feedback_nudge(prefs, catalogue)
    final, score = ranked(prefs, catalogue, nudge)
    chosen = top(final, limit, eligible)
    reasons = explain(prefs, catalogue, chosen, nudge)
    return [
        Match(catalogue.papers[i].paper_id, round(float(score[i]), 4), why)
        for i, why in zip(chosen, reasons, strict=True)
    ]


def feedback_nudge(prefs: Preferences, catalogue: Catalogue) -> np.ndarray | None:
    return None if prefs.feedback is None else prefs.feedback.vector(catalogue)


def reader_preferences(
    *,
    catalogue: Catalogue,
    catalogue_topics: Sequence[TopicTerms],
    topics: Sequence[TopicTerms] = (),
    keywords: Sequence[str] = (),
    authors: Sequence[str] = (),
    feedback: FeedbackModel | None = None,
) -> Preferences:
    """A reader's preferences, with the topics their words point at: by the words
    themselves ("speech recognition" -> Speech and audio) and by meaning ("smaller and
    cheaper LLMs" -> Efficient inference)."""
    keywords = tuple(keywords)
    lexical = interest_topics(", ".join(keywords), list(catalogue_topics)) if keywords else ()
    meaning = meaning_topics(
        interest_texts(Preferences(keywords=keywords)), catalogue_topics, catalogue
    )
    taken = {t.name for t in (*topics, *lexical)}
    return Preferences(
        topics=tuple(topics),
        keywords=keywords,
        authors=tuple(authors),
        expansions=(*lexical, *(t for t in meaning if t.name not in taken)),
        feedback=feedback,
    )
