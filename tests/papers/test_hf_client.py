"""The real Hugging Face client over HTTP, against a local server replaying responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from papers.sources import SourceError
from papers.sources.hf import HFClient
from tests.conftest import NEW_SCHEMA, need_shared
from tests.replay import ReplayServer, Reply

DAY = date(2026, 1, 5)


def item(n: int) -> dict[str, object]:
    return {"paper": {"id": f"2601.{n:05d}", "title": f"Paper {n}", "upvotes": n}}


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(server: ReplayServer, slept: list[float]) -> Iterator[HFClient]:
    hf = HFClient(
        base_url=server.url,
        min_interval=0,
        timeout=1.0,
        attempts=3,
        backoff=0.01,
        sleep=slept.append,
    )
    yield hf
    hf.close()


def test_it_fetches_one_day(server: ReplayServer, client: HFClient) -> None:
    server.queue(Reply(body=need_shared(NEW_SCHEMA).read_bytes()))
    result = client.fetch_day(DAY)
    assert len(result.records) == 14
    assert server.requests == [{"date": ["2026-01-05"], "limit": ["100"], "p": ["0"]}]


def test_a_full_page_of_100_is_followed_by_the_next_page(
    server: ReplayServer, client: HFClient
) -> None:
    server.queue(
        Reply(body=json.dumps([item(n) for n in range(100)]).encode()),
        Reply(body=json.dumps([item(n) for n in range(100, 103)]).encode()),
    )
    result = client.fetch_day(DAY)
    assert len(result.records) == 103
    assert [r["p"] for r in server.requests] == [["0"], ["1"]]


def test_a_weekend_is_an_empty_result(server: ReplayServer, client: HFClient) -> None:
    server.queue(Reply(body=b"[]"))
    result = client.fetch_day(date(2026, 1, 10))
    assert (result.fetched, result.records, result.skipped) == (0, [], [])


def test_429_waits_as_long_as_retry_after_asks(
    server: ReplayServer, client: HFClient, slept: list[float]
) -> None:
    server.queue(Reply(429, b"slow down", {"Retry-After": "7"}), Reply(body=b"[]"))
    client.fetch_day(DAY)
    assert len(server.requests) == 2
    assert 7 in slept


def test_429_honours_the_ratelimit_header(
    server: ReplayServer, client: HFClient, slept: list[float]
) -> None:
    server.queue(Reply(429, b"", {"RateLimit": '"api";r=0;t=42'}), Reply(body=b"[]"))
    client.fetch_day(DAY)
    assert 42 in slept


def test_500s_are_retried_with_backoff(
    server: ReplayServer, client: HFClient, slept: list[float]
) -> None:
    server.queue(Reply(500), Reply(502), Reply(body=json.dumps([item(1)]).encode()))
    assert len(client.fetch_day(DAY).records) == 1
    assert len(slept) == 2


def test_persistent_500s_fail_clearly(server: ReplayServer, client: HFClient) -> None:
    server.queue(Reply(500), Reply(500), Reply(500))
    with pytest.raises(SourceError, match="HTTP 500, after 3 attempts"):
        client.fetch_day(DAY)


def test_a_404_is_not_retried(server: ReplayServer, client: HFClient) -> None:
    server.queue(Reply(404, b"{}"))
    with pytest.raises(SourceError, match="HTTP 404"):
        client.fetch_day(DAY)
    assert len(server.requests) == 1


def test_a_truncated_body_fails_the_fetch(server: ReplayServer, client: HFClient) -> None:
    body = json.dumps([item(n) for n in range(20)]).encode()
    server.queue(*[Reply(body=body, truncate=True)] * 3)
    with pytest.raises(SourceError):
        client.fetch_day(DAY)


def test_a_slow_answer_hits_the_timeout(server: ReplayServer, client: HFClient) -> None:
    server.queue(*[Reply(body=b"[]", delay=2.0)] * 3)
    with pytest.raises(SourceError, match="timed out"):
        client.fetch_day(DAY)


def test_a_body_that_is_not_json_fails_clearly(server: ReplayServer, client: HFClient) -> None:
    server.queue(Reply(body=b"<html>maintenance</html>"))
    with pytest.raises(SourceError, match="not JSON"):
        client.fetch_day(DAY)
