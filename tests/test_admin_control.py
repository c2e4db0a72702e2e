"""The admin's control room: ingest, dry run, plan and send, retry, each a task with its
result on the page and an entry in the admin log; beat's schedule with each task's last
and next run. (Against a real Redis and worker: tests/integration/test_end_to_end.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.test import Client
from django.urls import reverse

from config.celery import app
from newsletter.control import beat_entries, schedule_words
from newsletter.models import ControlRun, Delivery, Subscriber, TaskBeat
from newsletter.tasks import send_due_confirmations
from papers.models import IngestRun, Paper
from tests.conftest import ROOT, staff_with
from tests.replay import ReplayServer, Reply

pytestmark = pytest.mark.django_db

URL = "/admin/control/"
THURSDAY = "2026-01-08"


@pytest.fixture
def post(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Post an action; its task starts when the request's transaction commits, as in
    production (tests run inside one transaction, so the commit is simulated here)."""

    def posted(client: Client, action: str, **fields: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, {"action": action, **fields})

    return posted


def latest() -> ControlRun:
    return ControlRun.objects.order_by("-pk").first()  # type: ignore[return-value]


def test_the_home_page_leads_to_the_control_room(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'href="/admin/control/"' in html and "Control room" in html


def test_it_shows_beats_schedule_with_the_next_run_of_every_entry(admin_client: Client) -> None:
    with time_machine.travel(datetime(2026, 3, 2, 10, 3, tzinfo=UTC), tick=False):
        page = admin_client.get(URL)
    html = page.content.decode()
    assert page.status_code == 200
    for name in ("ingest-hf-hourly", "plan-due-digests", "recover-deliveries"):
        assert f'id="beat-{name}"' in html
    assert "hourly at :07 (7 * * * *)" in html and "every 5 minutes (*/5 * * * *)" in html
    assert "2026-03-02 10:07" in html  # the hourly ingest's next run
    assert "2026-03-02 10:05" in html  # planning's
    assert "not yet recorded" in html
    assert "No broker is configured" in html  # tests run tasks eagerly


def test_a_scheduled_task_records_its_last_run_and_result() -> None:
    send_due_confirmations.apply()
    beat = TaskBeat.objects.get(task="newsletter.tasks.send_due_confirmations")
    assert beat.state == "done" and beat.runs == 1 and beat.finished is not None
    assert "sent 0" in beat.result
    send_due_confirmations.apply()
    assert TaskBeat.objects.get(pk=beat.pk).runs == 2


def test_a_task_that_did_not_run_when_due_is_late() -> None:
    TaskBeat.objects.create(
        task="newsletter.tasks.send_due_confirmations",
        state="done",
        started=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    entries = {e.name: e for e in beat_entries(now)}
    assert entries["send-due-confirmations"].late
    assert not entries["plan-due-digests"].late  # never recorded: not called late


def test_schedule_words_read_like_a_person_wrote_them() -> None:
    from celery.schedules import crontab

    assert schedule_words(crontab(minute="*")) == "every minute (* * * * *)"
    assert schedule_words(crontab(hour=2, minute=17)) == "daily at 02:17 UTC (17 2 * * *)"
    assert schedule_words(crontab(minute=0, hour=6, day_of_week=1)) == "0 6 * * 1 (0 6 * * 1)"


def test_a_dry_run_lists_what_would_go_and_writes_nothing(
    post: Callable[..., Any], admin_client: Client, sample_week: list[Paper], alice: Subscriber
) -> None:
    response = post(admin_client, "dry_run", **{"digests-date": THURSDAY})
    assert response.status_code == 302
    run = latest()
    assert run.state == "done" and run.requested_by is not None
    assert run.summary().startswith(f"{THURSDAY}: 1 reader(s) due; 1 would get a digest")
    assert "alice@example.org: " in run.result
    assert not Delivery.objects.exists() and not mail.outbox
    html = admin_client.get(URL).content.decode()
    assert f'id="run-{run.pk}"' in html and "Dry run: what would be sent (2026-01-08)" in html
    assert "1 would get a digest" in html


def test_plan_and_send_mails_the_due_readers_once(
    post: Callable[..., Any], admin_client: Client, sample_week: list[Paper], alice: Subscriber
) -> None:
    post(admin_client, "plan_send", **{"digests-date": THURSDAY})
    assert latest().state == "done" and "sent 1" in latest().result
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.org"]
    post(admin_client, "plan_send", **{"digests-date": THURSDAY})
    assert len(mail.outbox) == 1  # nothing twice
    assert "0 planning chunk(s)" in latest().result


def test_without_a_date_it_plans_the_readers_due_now(
    post: Callable[..., Any], admin_client: Client, alice: Subscriber
) -> None:
    with time_machine.travel(datetime(2026, 1, 8, 3, 0, tzinfo=UTC), tick=False):
        post(admin_client, "dry_run")
    assert latest().result.startswith("Nobody is due now")


def test_retry_requeues_failed_and_unknown_deliveries(
    post: Callable[..., Any],
    admin_client: Client,
    sample_week: list[Paper],
    alice: Subscriber,
    bob: Subscriber,
) -> None:
    post(admin_client, "plan_send", **{"digests-date": THURSDAY})
    delivery = Delivery.objects.get(subscriber=alice)
    Delivery.objects.filter(pk=delivery.pk).update(status="failed", error="HTTP 503")
    mail.outbox.clear()
    post(admin_client, "retry", **{"retry-since": "2026-01-01"})
    run = latest()
    assert run.result.startswith("1 of 1 failed or unknown deliveries since 2026-01-01 requeued")
    assert Delivery.objects.get(pk=delivery.pk).status == "sent" and len(mail.outbox) == 1
    logged = LogEntry.objects.filter(
        content_type__model="delivery", object_id=str(delivery.pk)
    ).values_list("change_message")
    assert [(f"Requeued (retry, control room run #{run.pk}).",)] == list(logged)


def test_every_action_is_audit_logged_with_who_started_it(
    post: Callable[..., Any], admin_client: Client, sample_week: list[Paper]
) -> None:
    post(admin_client, "dry_run", **{"digests-date": THURSDAY})
    run = latest()
    entry = LogEntry.objects.get(content_type__model="controlrun", object_id=str(run.pk))
    assert (
        entry.user.username == "admin" and entry.change_message == "Started from the control room."
    )
    assert run.requested_by == entry.user


def test_ingest_fetches_the_source_and_says_what_came_in(
    post: Callable[..., Any], admin_client: Client, settings: Any
) -> None:
    body = (ROOT / "papers" / "sample" / "2026-01-05.json").read_bytes()
    with ReplayServer() as server:
        server.queue(Reply(body=body))
        settings.PAPERBOY_HF_API_URL = server.url
        settings.PAPERBOY_HF_MIN_INTERVAL = 0
        post(admin_client, "ingest", **{"ingest-source": "hf", "ingest-date": "2026-01-05"})
    run = latest()
    assert run.state == "done", run.result
    assert run.result.startswith("2026-01-05: succeeded, ") and " new, 0 updated" in run.result
    assert Paper.objects.exists() and IngestRun.objects.get().status == "succeeded"


def test_a_failing_action_shows_its_error_as_the_result(
    post: Callable[..., Any], admin_client: Client, settings: Any
) -> None:
    with ReplayServer() as server:
        server.queue(*[Reply(status=503, body=b"down")] * 5)
        settings.PAPERBOY_HF_API_URL = server.url
        settings.PAPERBOY_HF_MIN_INTERVAL = 0
        post(admin_client, "ingest", **{"ingest-source": "hf", "ingest-date": "2026-01-05"})
    run = latest()
    assert run.state == "done" and "failed" in run.result and "503" in run.result


def test_a_bad_date_is_a_message_on_the_form_and_starts_nothing(
    post: Callable[..., Any], admin_client: Client
) -> None:
    response = post(admin_client, "plan_send", **{"digests-date": "2026-02-30"})
    assert response.status_code == 400
    assert "Enter a valid date." in response.content.decode()
    assert not ControlRun.objects.exists()


def test_an_unknown_action_starts_nothing(post: Callable[..., Any], admin_client: Client) -> None:
    response = post(admin_client, "drop_tables")
    assert response.status_code == 302 and not ControlRun.objects.exists()


def test_viewing_and_acting_need_their_permissions(
    post: Callable[..., Any], sample_week: list[Paper]
) -> None:
    assert staff_with("view_subscriber").get(URL).status_code == 403
    viewer = staff_with("view_controlrun")
    page = viewer.get(URL)
    assert page.status_code == 200 and b"Plan and send" not in page.content
    assert post(viewer, "plan_send", **{"digests-date": THURSDAY}).status_code == 403
    actor = staff_with("view_controlrun", "add_controlrun")
    assert post(actor, "dry_run", **{"digests-date": THURSDAY}).status_code == 302
    assert ControlRun.objects.count() == 1


def test_a_run_whose_worker_died_is_shown_as_lost(admin_client: Client) -> None:
    run = ControlRun.objects.create(
        action="plan_send", state="running", created=datetime(2026, 1, 1, tzinfo=UTC)
    )
    run.started = run.created
    run.save()
    html = admin_client.get(URL).content.decode()
    assert "lost (no result within the task's time limit)" in html


def test_a_redelivered_run_is_done_once(
    post: Callable[..., Any], admin_client: Client, sample_week: list[Paper]
) -> None:
    post(admin_client, "dry_run", **{"digests-date": THURSDAY})
    run = latest()
    app.tasks["newsletter.tasks.run_control"].apply(args=(run.pk,))
    assert ControlRun.objects.get(pk=run.pk).finished == run.finished


def test_the_page_refreshes_itself_while_a_run_waits(admin_client: Client) -> None:
    ControlRun.objects.create(action="dry_run")
    html = admin_client.get(URL).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in html
