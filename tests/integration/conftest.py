"""Real parts for end-to-end tests: an SMTP server on loopback (aiosmtpd), a Celery
worker process on the machine's Redis, and the test PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery import app
from newsletter import subscriptions
from newsletter.models import Topic
from newsletter.topic_catalogue import seed_topics
from tests.conftest import ROOT, need_postgres, need_redis


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module", autouse=True)
def _topic_catalogue(django_db_setup: None, django_db_blocker: Any) -> Iterator[list[Topic]]:
    """The seeded topics as the migrations left them. A live-server test empties every
    table when it ends, the catalogue included: each test here starts with it put back,
    and so do the tests that run after each module (every one here is such a test)."""
    with django_db_blocker.unblock():
        if not Topic.objects.exists():
            seed_topics(Topic)
        catalogue = list(Topic.objects.all())
    yield catalogue
    with django_db_blocker.unblock():
        Topic.objects.bulk_create(catalogue, ignore_conflicts=True)


@pytest.fixture(autouse=True)
def _topics(transactional_db: None, _topic_catalogue: list[Topic]) -> None:
    Topic.objects.bulk_create(_topic_catalogue, ignore_conflicts=True)


@pytest.fixture
def services(transactional_db: None) -> None:
    need_postgres()
    need_redis()


@pytest.fixture
def broker(services: None) -> Iterator[str]:
    """This process enqueues to Redis instead of running tasks eagerly."""
    url = os.environ["REDIS_URL"]
    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.update(task_always_eager=False, broker_url=url)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    subprocess.run(
        [sys.executable, "-m", "celery", "--app", "config", "purge", "-f"],
        cwd=ROOT,
        env=worker_env({}),
        capture_output=True,
        timeout=60,
        check=True,
    )
    flush_redis(url)
    subscriptions._drain_at = 0.0  # a confirmation send asked for earlier is gone with it
    try:
        yield url
    finally:
        flush_redis(url)  # a killed worker's unacknowledged tasks must not outlive the test
        app.conf.update(task_always_eager=saved[0], broker_url=saved[1])
        settings.CELERY_TASK_ALWAYS_EAGER = True
        reset_connections()


def reset_connections() -> None:
    """Drop this process's broker connections (the broker moved or restarted)."""
    pool = getattr(app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
        setattr(app, "_pool", None)  # noqa: B010
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    kombu.pools.reset()


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update({"DATABASE_URL": database_url(), "REDIS_URL": os.environ.get("REDIS_URL", "")})
    env.update(extra)
    return env


@pytest.fixture
def start_worker(broker: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    workers: list[subprocess.Popen[bytes]] = []

    def start(*, name: str = "w1", **extra: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "config",
                "worker",
                "--pool",
                "solo",
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=worker_env({"PAPERBOY_VAR_DIR": str(tmp_path), **extra}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    for log in sorted(tmp_path.glob("*.log")):
        sys.stdout.write(f"--- {log.name}\n{log.read_text()[-4000:]}\n")


@pytest.fixture(scope="session", autouse=True)
def _release_test_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Worker processes and the live server's thread keep PostgreSQL sessions open; end
    them before the test database is dropped."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
