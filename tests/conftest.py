"""The named cast and shared fixtures.

Tests that need PostgreSQL, Redis, a Celery worker or Chromium skip with a reason when
TEST_DATABASE_URL / REDIS_URL do not point at live servers, and fail instead under CI=true.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test import Client

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
CHROMIUM = Path("/usr/bin/chromium")

# aiosmtpd logs every SMTP command at INFO: a failing test's report would drown in it.
logging.getLogger("mail.log").setLevel(logging.WARNING)


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


def need_chromium() -> str:
    """The Debian package's browser: Playwright's own download does not work here."""
    need(CHROMIUM.exists(), f"{CHROMIUM} is not installed (apt-get install chromium)")
    return str(CHROMIUM)


def need_shared(path: Path) -> Path:
    need(path.exists(), f"{path} is not here (the shared/ folder sits beside the project)")
    return path


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Rate limits and locks live in the cache: every test starts with an empty one."""
    from django.core.cache import cache

    from newsletter.planning import forget_runs

    cache.clear()
    forget_runs()
    yield
    cache.clear()
    forget_runs()


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


def staff_with(*codenames: str) -> Client:
    """A logged-in client of a staff user holding just these permissions."""
    from django.contrib.auth.models import Permission, User

    name = "staff-" + "-".join(codenames)
    user = User.objects.create_user(name, f"{name}@example.org", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


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


@dataclass
class Inbox:
    """What the SMTP server accepted, plus the faults it should play: a code to refuse a
    recipient with, a share of messages to defer (451), recipients deferred a number of
    times before they are taken, throttling (SES's 454) until a moment, messages whose
    answer never comes in time or whose connection drops once the body is in (the
    message is kept: the sender cannot know), a pause per message."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    defer_share: float = 0.0
    deferred: int = 0
    defer_first: dict[str, int] = field(default_factory=dict)
    throttle_until: float = 0.0
    throttled: int = 0
    drop_after_data: int = 0
    dropped: int = 0
    stall: dict[str, float] = field(default_factory=dict)
    pause: float = 0.0
    arrived: list[float] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(8058))
    controller: Any = None  # the server: stop it and start another to make it vanish

    def vanish(self, seconds: float) -> None:
        """The server goes away (every connection cut) and comes back on its port."""
        port = self.controller.port
        self.controller.stop()
        time.sleep(seconds)
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.pause:
            await asyncio.sleep(self.pause)
        if time.time() < self.throttle_until:
            self.throttled += 1
            return "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
        first = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        if self.defer_first.get(first, 0) > 0:
            self.defer_first[first] -= 1
            self.deferred += 1
            return "451 4.3.0 Try again later"
        if self.defer_share and self.rng.random() < self.defer_share:
            self.deferred += 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(message)
        self.arrived.append(time.time())
        if self.drop_after_data > 0:  # taken, and the answer never leaves
            self.drop_after_data -= 1
            self.dropped += 1
            server.transport.abort()
            return "250 Message accepted for delivery"
        stall = max((self.stall.get(to, 0.0) for to in envelope.rcpt_tos), default=0.0)
        if stall:
            await asyncio.sleep(stall)
        return "250 Message accepted for delivery"

    def recipients(self) -> Counter[str]:
        return Counter(str(m["To"]) for m in self.messages)

    def wait_for(self, count: int, timeout: float = 60) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.messages) >= count, f"{len(self.messages)} of {count} messages arrived"
        return self.messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    inbox.controller = Controller(inbox, hostname="127.0.0.1", port=port)
    inbox.controller.start()
    try:
        yield inbox, port
    finally:
        inbox.controller.stop(no_assert=True)


@pytest.fixture
def smtp_settings(settings: Any, smtp_server: tuple[Inbox, int]) -> Inbox:
    """This process sends email through Paperboy's SMTP backend to the loopback server."""
    inbox, port = smtp_server
    settings.EMAIL_BACKEND = "newsletter.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    return inbox


MONDAY = date(2026, 1, 12)  # the Monday after the sample week
