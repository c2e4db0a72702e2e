"""The control room on real parts: its status panel counts a real worker and the Redis
queue, and an action posted in the admin runs on that worker and shows its result."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from config.celery import app
from newsletter.control import machinery_status
from newsletter.models import ControlRun, Subscriber, TaskBeat
from papers.models import Paper

pytestmark = pytest.mark.integration


def wait_until(check: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def test_the_panel_counts_workers_and_queue_and_actions_run_on_a_worker(
    start_worker: Callable[..., subprocess.Popen[bytes]],
    sample_week: list[Paper],
    alice: Subscriber,
) -> None:
    before = machinery_status()
    assert not before.eager and not before.broker_error
    assert before.workers == [] and before.queued == 0

    start_worker(name="control")
    status = wait_until(lambda: (s := machinery_status()).workers and s, "the worker's pong")
    assert [name.split("@")[0] for name in status.workers] == ["control"]
    assert status.queued == 0 and status.unacked == 0

    admin = User.objects.create_superuser("operator", "op@example.org", "pw")
    client = Client()
    client.force_login(admin)
    response = client.post("/admin/control/", {"action": "dry_run", "digests-date": "2026-01-08"})
    assert response.status_code == 302
    run = ControlRun.objects.get()
    done = wait_until(
        lambda: ControlRun.objects.filter(pk=run.pk, state="done").first(), "the run's result"
    )
    assert done.summary().startswith("2026-01-08: 1 reader(s) due; 1 would get a digest")
    page = client.get("/admin/control/").content.decode()
    assert "1 would get a digest" in page and "control@" in page

    # A scheduled task, as beat sends it, is recorded by the worker that ran it.
    app.send_task("newsletter.tasks.send_due_confirmations")
    beat = wait_until(
        lambda: TaskBeat.objects.filter(
            task="newsletter.tasks.send_due_confirmations", state="done"
        ).first(),
        "the task's record",
    )
    assert beat.runs == 1 and "sent 0" in beat.result
