from __future__ import annotations

from newsletter.matching import PaperFeatures, Preferences, TopicTerms, paper_features, rank


def paper(
    pid: int, title: str, abstract: str = "", upvotes: int = 0, authors: tuple[str, ...] = ()
) -> PaperFeatures:
    return paper_features(
        paper_id=pid,
        title=title,
        abstract=abstract,
        ai_summary="",
        keywords=[],
        authors=list(authors),
        upvotes=upvotes,
    )


QUANT = TopicTerms("Quantization", ("quantization", "INT4", "post-training quantization", "RAG"))


def test_acronyms_match_only_in_capitals() -> None:
    papers = [paper(1, "Fragmented ragged arrays"), paper(2, "INT4 weights for everyone")]
    matches = rank(Preferences(topics=(QUANT,)), papers)
    assert [m.paper_id for m in matches] == [2]
    assert matches[0].reasons == ["matches your topic Quantization: 'INT4'"]


def test_the_reason_names_the_topic_and_the_terms_found() -> None:
    matches = rank(Preferences(topics=(QUANT,)), [paper(1, "Post-training quantization at INT4")])
    assert matches[0].reason == (
        "matches your topic Quantization: 'quantization', 'INT4', 'post-training quantization'"
    )


def test_an_irrelevant_popular_paper_never_outranks_a_relevant_one() -> None:
    papers = [
        paper(1, "A viral video model", upvotes=900),
        paper(2, "KV cache eviction", upvotes=1),
    ]
    matches = rank(Preferences(keywords=("KV cache",)), papers)
    assert [m.paper_id for m in matches] == [2]
    assert matches[0].reasons == ["matches your keyword 'KV cache'"]


def test_among_relevant_papers_the_more_trending_come_first() -> None:
    papers = [paper(1, "KV cache A", upvotes=3), paper(2, "KV cache B", upvotes=80)]
    assert [m.paper_id for m in rank(Preferences(keywords=("KV cache",)), papers)] == [2, 1]


def test_a_followed_author_is_a_strong_signal() -> None:
    papers = [
        paper(1, "KV cache tricks", upvotes=50),
        paper(2, "Something else", authors=("Percy Liang",)),
    ]
    prefs = Preferences(keywords=("KV cache",), authors=("percy liang",))
    matches = rank(prefs, papers)
    assert matches[0].paper_id == 2
    assert matches[0].reasons == ["by percy liang, whom you follow"]


def test_a_reader_with_no_preferences_gets_the_top_trending() -> None:
    papers = [paper(1, "a", upvotes=5), paper(2, "b", upvotes=50), paper(3, "c", upvotes=20)]
    matches = rank(Preferences(), papers)
    assert [m.paper_id for m in matches] == [2, 3, 1]
    assert matches[0].reasons == ["trending today: 50 upvotes"]


def test_plurals_and_hyphens_match() -> None:
    prefs = Preferences(keywords=("diffusion model", "long context"))
    papers = [paper(1, "Diffusion models are fun"), paper(2, "Long-context retrieval")]
    assert {m.paper_id for m in rank(prefs, papers)} == {1, 2}
