from __future__ import annotations

import numpy as np

from newsletter.matching import (
    Catalogue,
    FeedbackModel,
    Match,
    PaperFeatures,
    Preferences,
    TopicTerms,
    interest_items,
    interest_topics,
    paper_features,
    rank,
    stem,
)

QUANT = TopicTerms("Quantization", ("quantization", "INT4", "post-training quantization", "RAG"))
TOPICS = [
    QUANT,
    TopicTerms("Speech and audio", ("speech recognition", "text-to-speech", "voice")),
    TopicTerms("Large language models", ("LLM", "large language model")),
]


def paper(
    pid: int,
    title: str,
    abstract: str = "",
    upvotes: int = 0,
    authors: tuple[str, ...] = (),
    summary: str = "",
) -> PaperFeatures:
    return paper_features(
        paper_id=pid,
        title=title,
        abstract=abstract,
        ai_summary=summary,
        keywords=[],
        authors=list(authors),
        upvotes=upvotes,
    )


FILLER = [paper(100 + n, f"Unrelated study number {n} of protein folding") for n in range(20)]


def ids(matches: list[Match]) -> list[int]:
    return [m.paper_id for m in matches]


def test_the_stemmer_joins_word_families() -> None:
    assert stem("quantized") == stem("quantization") == stem("quantizing")
    assert stem("repositories") == stem("repository")
    assert stem("models") == stem("model")


def test_acronyms_match_only_in_capitals() -> None:
    papers = [paper(1, "Fragmented ragged arrays"), paper(2, "INT4 weights for everyone"), *FILLER]
    matches = rank(Preferences(topics=(QUANT,)), papers)
    assert ids(matches) == [2]
    assert matches[0].reasons == ["matches your topic Quantization: 'INT4'"]


def test_the_reason_names_the_topic_and_its_two_strongest_terms() -> None:
    papers = [paper(1, "Post-training quantization at INT4"), *FILLER]
    [match] = rank(Preferences(topics=(QUANT,)), papers)
    assert match.reason.startswith("matches your topic Quantization: ")
    quoted = match.reason.split(": ")[1].split(", ")
    assert "'INT4'" in quoted and len(quoted) == 2


def test_a_paper_matching_the_readers_words_does_not_repeat_the_topic_they_point_at() -> None:
    prefs = Preferences(
        keywords=("speech recognition",), expansions=interest_topics("speech recognition", TOPICS)
    )
    [match] = rank(prefs, [paper(1, "Streaming speech recognition with voice cues"), *FILLER])
    assert match.reasons == ["matches your interest 'speech recognition'"]


def test_an_irrelevant_popular_paper_never_outranks_a_relevant_one() -> None:
    papers = [
        paper(1, "A viral video model", upvotes=900),
        paper(2, "KV cache eviction", upvotes=1),
        *FILLER,
    ]
    matches = rank(Preferences(keywords=("KV cache",)), papers)
    assert ids(matches) == [2]
    assert matches[0].reasons == ["matches your interest 'KV cache'"]


def test_among_equally_relevant_papers_the_more_trending_come_first() -> None:
    papers = [paper(1, "KV cache A", upvotes=3), paper(2, "KV cache B", upvotes=80), *FILLER]
    assert ids(rank(Preferences(keywords=("KV cache",)), papers)) == [2, 1]


def test_a_followed_author_is_a_strong_signal() -> None:
    papers = [
        paper(1, "KV cache tricks", upvotes=50),
        paper(2, "Something else", authors=("Percy Liang",)),
        *FILLER,
    ]
    matches = rank(Preferences(keywords=("KV cache",), authors=("Percy Liang",)), papers)
    assert ids(matches) == [2, 1]
    assert matches[0].reasons == ["by Percy Liang, whom you follow"]


def test_a_reader_with_no_preferences_gets_the_top_trending() -> None:
    papers = [paper(1, "a", upvotes=5), paper(2, "b", upvotes=50), paper(3, "c", upvotes=20)]
    matches = rank(Preferences(), papers)
    assert ids(matches) == [2, 3, 1]
    assert matches[0].reasons == ["trending today: 50 upvotes"]


def test_plurals_and_hyphens_match() -> None:
    prefs = Preferences(keywords=("diffusion model", "long context"))
    papers = [paper(1, "Diffusion models are fun"), paper(2, "Long-context retrieval"), *FILLER]
    assert set(ids(rank(prefs, papers))) == {1, 2}


def test_a_sentence_is_understood_as_its_phrases() -> None:
    [item] = interest_items("making LLMs cheaper to run on small devices")
    assert [c.label for c in item.phrases] == ["LLMs cheaper", "small devices"]
    assert "A:LLMs" in item.terms and stem("devices") in item.terms
    speech = interest_items("speech recognition and text-to-speech")
    assert [i.label for i in speech] == ["speech recognition", "text-to-speech"]
    one = interest_items("LLM agents that write and fix code in real repositories")
    assert len(one) == 1  # "and" joins two verbs of one request here


def test_a_sentence_matches_papers_covering_more_of_it() -> None:
    prefs = Preferences(
        keywords=("reinforcement learning to improve reasoning in language models",)
    )
    papers = [
        paper(1, "Reinforcement learning for better reasoning in large language models"),
        paper(2, "Reinforcement learning for robot control"),
        paper(3, "Reasoning about pictures"),
        *FILLER,
    ]
    assert ids(rank(prefs, papers))[0] == 1


def test_a_title_that_carries_the_whole_interest_comes_first() -> None:
    """Both papers have every word of the interest in their keywords and summary; the
    more popular one's title is about visual grounding, the other's about all of it."""
    prefs = Preferences(
        keywords=("reinforcement learning to improve reasoning in language models",)
    )
    body = "We apply reinforcement learning to reasoning in language models."
    keywords = ["language models", "reasoning", "reinforcement learning", "language models"]
    partial = paper_features(
        paper_id=1,
        title="Reasoning for visual grounding with reinforcement learning",
        abstract=body,
        ai_summary=body,
        keywords=keywords,
        authors=[],
        upvotes=100,
    )
    whole = paper(2, "Reinforcement learning for reasoning in language models", body, summary=body)
    assert ids(rank(prefs, [partial, whole, *FILLER]))[:2] == [2, 1]


def test_the_readers_words_point_at_topics_but_common_words_do_not() -> None:
    chosen = interest_topics("speech recognition for meetings", TOPICS)
    assert [t.name for t in chosen] == ["Speech and audio"]
    assert chosen[0].trigger == "speech recognition"
    prefs = Preferences(
        keywords=("LLM serving",), expansions=interest_topics("LLM serving", TOPICS)
    )
    # Every paper says "LLM": the LLM topic must not pull in all of them.
    papers = [paper(n, f"An LLM paper {n}") for n in range(10)]
    assert rank(prefs, papers) == []


def test_acronyms_in_papers_count_as_their_long_form() -> None:
    prefs = Preferences(keywords=("retrieval-augmented generation",))
    papers = [paper(1, "Better RAG for legal questions"), *FILLER]
    assert ids(rank(prefs, papers)) == [1]


def test_feedback_pulls_similar_papers_up_and_pushes_others_down() -> None:
    papers = [
        paper(1, "Sparse attention kernels for long context", upvotes=10),
        paper(2, "Long context evaluation benchmark with human raters", upvotes=10),
        paper(3, "Sparse attention kernels on GPUs for long context inference", upvotes=10),
        *FILLER,
    ]
    catalogue = Catalogue(papers)
    prefs = Preferences(keywords=("long context",))
    before = {m.paper_id: m.score for m in rank(prefs, catalogue)}
    liked_elsewhere = paper(50, "Block-sparse attention kernels", "Fast sparse attention kernels.")
    # Disliked: catalogue index 1, the evaluation benchmark (paper 2).
    model = FeedbackModel.fit(catalogue, liked=[liked_elsewhere], disliked=[1])
    assert model is not None
    after = rank(prefs, catalogue, feedback=model)
    scores = {m.paper_id: m.score for m in after}
    assert scores[1] > before[1] and scores[3] > before[3]
    assert 2 not in scores or scores[2] < before[2]
    assert ids(after)[:2] in ([1, 3], [3, 1])
    assert any(
        r.startswith("like papers you liked, such as Block-sparse") for r in after[0].reasons
    )


def test_limit_and_eligibility_select_without_sorting_everything() -> None:
    papers = [paper(n, "KV cache", upvotes=n) for n in range(10)]
    eligible = np.array([n % 2 == 0 for n in range(10)])
    matches = rank(Preferences(keywords=("KV cache",)), papers, limit=3, eligible=eligible)
    assert ids(matches) == [8, 6, 4]
