"""Shared set-up for the benchmarks: a fresh database, timers, memory and query counts."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
T = TypeVar("T")
sys.path.insert(0, str(ROOT))  # the project's packages, for every benchmark
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/paperboy_bench"


def _postgres_url() -> str | None:
    """BENCH_DATABASE_URL, else the machine's PostgreSQL if it answers (the bench database
    is created when missing), else None for SQLite."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    try:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(
            url.rsplit("/", 1)[0] + "/postgres", autocommit=True, connect_timeout=3
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    except Exception:
        return None
    return url


def django_setup(tmp: str, *, postgres: bool = True, fresh: bool = True) -> str:
    """Configure Django on a fresh database (or, with fresh=False, the one an earlier
    phase set up); returns the database vendor."""
    os.environ["PAPERBOY_VAR_DIR"] = tmp
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps a log of every query
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    for name in ("REDIS_URL", "EMAIL_PROVIDER", "EMAIL_URL", "PYTEST_VERSION"):
        os.environ.pop(name, None)
    url = _postgres_url() if postgres else None
    os.environ["DATABASE_URL"] = url or f"sqlite:///{tmp}/bench.sqlite3"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if not fresh:
        return connection.vendor
    if url:
        with connection.cursor() as cursor:  # start from an empty schema every run
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0, skip_checks=True)
    return connection.vendor


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    from django.db import connection

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(patterns: dict[str, str]) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by every live process whose command line contains one of
    the patterns, per pattern name and pid (Linux /proc; empty elsewhere)."""
    found: dict[str, dict[int, float]] = {name: {} for name in patterns}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for name, pattern in patterns.items():
            if pattern in cmdline:
                found[name][int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                break
    return found


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds per pattern name between two process_cpu() snapshots."""
    return {
        name: sum(seconds - before[name].get(pid, 0.0) for pid, seconds in pids.items())
        for name, pids in after.items()
    }


def weekly_readers(count: int, interests: list[str], *, seed: int = 7) -> None:
    """``count`` active Monday readers with 1-5 random topics and one of ``interests``
    each (bulk-created: two queries per batch)."""
    import random

    from newsletter.models import Subscriber, Topic

    rng = random.Random(seed)
    topics = list(Topic.objects.all())
    subs = Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n}@example.org",
            status="active",
            frequency="weekly",
            weekly_day=0,
            keywords=rng.choice(interests),
        )
        for n in range(count)
    )
    through = Subscriber.topics.through
    through.objects.bulk_create(
        through(subscriber_id=s.pk, topic_id=t.pk)
        for s in subs
        for t in rng.sample(topics, rng.randint(1, 5))
    )
