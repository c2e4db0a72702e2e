"""Delivery under fire, on real parts: Celery worker processes on Redis, PostgreSQL and an
SMTP server on loopback that defers, refuses, stalls; workers killed mid-run; the broker
restarted mid-run. In the end every reader has their digest, and nobody has it twice
beyond the messages in flight at a crash (the figure is printed)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db.models import Count

from config.celery import app
from newsletter.models import Delivery, Subscriber
from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
from newsletter.queueing import enqueue_sends
from newsletter.tasks import recover_deliveries
from papers.models import Paper
from tests.conftest import IN_CI, Inbox, free_port
from tests.integration.conftest import reset_connections

pytestmark = pytest.mark.integration
THURSDAY = date(2026, 1, 8)
Start = Callable[..., subprocess.Popen[bytes]]


def readers(count: int) -> list[int]:
    """``count`` active readers, planned for Thursday."""
    Subscriber.objects.bulk_create(
        Subscriber(email=f"r{i:04d}@example.org", status="active") for i in range(count)
    )
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    ids = list(planned_ids(THURSDAY))
    assert len(ids) == count
    return ids


def worker_settings(port: int, **extra: str) -> dict[str, str]:
    return {
        "EMAIL_PROVIDER": "smtp",
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "EMAIL_TIMEOUT": "10",
        "PAPERBOY_SEND_RETRY_BASE": "0.2",
        **extra,
    }


def wait_until_done(count: int, timeout: float = 120) -> dict[str, int]:
    """Until every delivery is settled (sent, failed, unknown); returns the statuses."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = dict(Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by())
        open_ = statuses.get("planned", 0) + statuses.get("sending", 0)
        if open_ == 0 or time.monotonic() > deadline:
            assert sum(statuses.values()) == count
            return statuses
        time.sleep(0.25)


def wait_for_messages(inbox: Inbox, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(inbox.messages) < count:
        assert time.monotonic() < deadline, f"only {len(inbox.messages)} messages arrived"
        time.sleep(0.02)


@pytest.fixture
def small_chunks(settings: Any) -> None:
    settings.PAPERBOY_SEND_CHUNK = 10


def test_a_server_deferring_30_percent_still_gets_every_digest_once(
    smtp_server: tuple[Inbox, int],
    start_worker: Start,
    sample_week: list[Paper],
    small_chunks: None,
) -> None:
    inbox, port = smtp_server
    inbox.defer_share = 0.3
    ids = readers(100)
    start_worker(name="w1", **worker_settings(port))
    start_worker(name="w2", **worker_settings(port))
    enqueue_sends(ids)
    assert wait_until_done(100) == {"sent": 100}
    received = inbox.recipients()
    assert len(received) == 100 and set(received.values()) == {1}
    assert inbox.deferred >= 20  # the faults really happened
    print(f"\n30% deferral: {inbox.deferred} deferrals, 100 delivered, 0 twice")


def test_a_refused_recipient_fails_alone(
    smtp_server: tuple[Inbox, int],
    start_worker: Start,
    sample_week: list[Paper],
    small_chunks: None,
) -> None:
    inbox, port = smtp_server
    inbox.refuse["r0007@example.org"] = "550 5.1.1 No such user here"
    ids = readers(30)
    start_worker(name="w1", **worker_settings(port))
    enqueue_sends(ids)
    assert wait_until_done(30) == {"sent": 29, "failed": 1}
    failed = Delivery.objects.get(status=Delivery.Status.FAILED)
    assert failed.subscriber.email == "r0007@example.org"
    assert "No such user here" in failed.error and failed.attempts == 1
    assert len(inbox.recipients()) == 29


def test_a_worker_killed_mid_run_loses_nothing(
    smtp_server: tuple[Inbox, int],
    start_worker: Start,
    sample_week: list[Paper],
    small_chunks: None,
) -> None:
    """SIGKILL one of two workers while 500 digests go out; the beat's recovery tasks
    hand its work to the others. Only a message in flight at the kill can arrive twice."""
    inbox, port = smtp_server
    inbox.pause = 0.01
    ids = readers(500)
    recovery = {"PAPERBOY_SEND_STUCK_AFTER": "3", "PAPERBOY_SEND_REQUEUE_AFTER": "1"}
    victim = start_worker(name="w1", **worker_settings(port, **recovery))
    start_worker(name="w2", **worker_settings(port, **recovery))
    enqueue_sends(ids)
    wait_for_messages(inbox, 150)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    at_kill = len(inbox.messages)
    time.sleep(3.5)  # the victim's claims are now older than PAPERBOY_SEND_STUCK_AFTER
    recover_deliveries.delay()  # what beat runs every 10 minutes
    start_worker(name="w3", **worker_settings(port, **recovery))
    assert wait_until_done(500) == {"sent": 500}
    received = inbox.recipients()
    assert len(received) == 500
    duplicates = sum(n - 1 for n in received.values())
    recovered = Delivery.objects.filter(attempts__gte=2).count()
    assert at_kill < 500 and duplicates <= recovered <= 2
    print(f"\nkill at {at_kill}/500: {recovered} in flight recovered, {duplicates} duplicates")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis server of this test's own, so it can be restarted without disturbing the
    machine's: (url, restart)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is needed under CI=true")
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--dir", str(tmp_path)]
    processes = []

    def start() -> None:
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def restart() -> None:
        processes[-1].terminate()
        processes[-1].wait(timeout=10)
        time.sleep(2)  # the workers see the broker gone
        start()

    start()
    url = f"redis://127.0.0.1:{port}/0"
    saved = app.conf.broker_url
    app.conf.update(broker_url=url)
    try:
        yield url, restart
    finally:
        app.conf.update(broker_url=saved)
        reset_connections()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_broker_restart_mid_run_completes_once_it_is_back(
    smtp_server: tuple[Inbox, int],
    start_worker: Start,
    sample_week: list[Paper],
    small_chunks: None,
    own_redis: tuple[str, Callable[[], None]],
) -> None:
    """Redis keeps nothing on disk here, so the restart loses every queued task: the
    beat's re-queueing of planned deliveries finishes the run."""
    url, restart = own_redis
    inbox, port = smtp_server
    inbox.pause = 0.01
    ids = readers(200)
    recovery = {"PAPERBOY_SEND_STUCK_AFTER": "3", "PAPERBOY_SEND_REQUEUE_AFTER": "1"}
    start_worker(name="w1", REDIS_URL=url, **worker_settings(port, **recovery))
    reset_connections()
    enqueue_sends(ids)
    wait_for_messages(inbox, 40)
    restart()
    at_restart = len(inbox.messages)
    assert at_restart < 200
    time.sleep(3.5)
    reset_connections()  # this process's connections died with the server
    recover_deliveries.delay()
    assert wait_until_done(200) == {"sent": 200}
    received = inbox.recipients()
    assert len(received) == 200
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= Delivery.objects.filter(attempts__gte=2).count() <= 1
    print(f"\nbroker restart at {at_restart}/200: all delivered, {duplicates} duplicates")


def test_the_send_rate_holds_across_workers(
    smtp_server: tuple[Inbox, int],
    start_worker: Start,
    sample_week: list[Paper],
    small_chunks: None,
) -> None:
    """Two workers, 20 messages a second between them: no second of the server's clock
    sees more (a message granted at the end of one second may land in the next).

    The windows are whole seconds of the clock, so 60 messages need three of them: the
    first may begin just before its end and the last end just after its start, hence
    a span of at least one second, not three."""
    inbox, port = smtp_server
    ids = readers(60)
    for name in ("w1", "w2"):
        start_worker(name=name, **worker_settings(port, PAPERBOY_SEND_RATE="20"))
    enqueue_sends(ids)
    assert wait_until_done(60) == {"sent": 60}
    per_second: dict[int, int] = {}
    for moment in inbox.arrived:
        per_second[int(moment)] = per_second.get(int(moment), 0) + 1
    assert max(per_second.values()) <= 20 + 2
    assert max(inbox.arrived) - min(inbox.arrived) >= 60 / 20 - 2 - 0.2
    print(f"\nrate 20/s over two workers: busiest second {max(per_second.values())}")
