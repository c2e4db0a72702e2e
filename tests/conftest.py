"""The named cast and shared fixtures.

Tests that need PostgreSQL, Redis or a Celery worker skip with a reason when
TEST_DATABASE_URL / REDIS_URL do not point at live servers, and fail instead under CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from newsletter.models import Subscriber, Topic
from papers.ingest import ingest_run
from papers.models import Paper, Source
from papers.sources.hf import parse_files

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "papers" / "sample"
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
NEW_SCHEMA = FIXTURES / "hf_daily_papers_2026-01-05.json"
OLD_SCHEMA = FIXTURES / "hf_daily_papers_2025-02-03_older_schema.json"
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip when a service is missing; under CI=true a missing service is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def need_postgres() -> None:
    need(connection.vendor == "postgresql", "TEST_DATABASE_URL does not point at PostgreSQL")


def need_redis() -> None:
    url = os.environ.get("REDIS_URL", "")
    if url:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError:
            url = ""
    need(bool(url), "REDIS_URL does not point at a live Redis server")


def need_shared(path: Path) -> Path:
    need(path.exists(), f"{path} is not here (the shared/ folder sits beside the project)")
    return path


@pytest.fixture
def load_papers(db: None) -> Callable[..., list[Paper]]:
    def load(*paths: Path) -> list[Paper]:
        files = list(paths) or sorted(SAMPLE_DIR.glob("*.json"))
        run = ingest_run(source=Source.HF, fetch=lambda: parse_files(files))
        assert run.status == "succeeded", run.error
        return list(Paper.objects.all())

    return load


@pytest.fixture
def sample_week(load_papers: Callable[..., list[Paper]]) -> list[Paper]:
    """The bundled real week: HF daily papers of 2026-01-05 to 2026-01-09."""
    return load_papers()


def make_subscriber(
    email: str, status: str, topics: Sequence[str] = (), **fields: Any
) -> Subscriber:
    subscriber = Subscriber.objects.create(email=email, status=status, **fields)
    subscriber.topics.set(Topic.objects.filter(slug__in=topics))
    return subscriber


@pytest.fixture
def alice(db: None) -> Subscriber:
    """Active, daily, follows agents and reasoning."""
    return make_subscriber("alice@example.org", "active", ["agents", "reasoning"])


@pytest.fixture
def bob(db: None) -> Subscriber:
    """Pending: signed up, never confirmed."""
    return make_subscriber("bob@example.org", "pending", ["quantization"])


@pytest.fixture
def carol(db: None) -> Subscriber:
    """Unsubscribed."""
    return make_subscriber("carol@example.org", "unsubscribed", ["diffusion"])


MONDAY = date(2026, 1, 12)  # the Monday after the sample week
