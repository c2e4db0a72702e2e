"""The admin's control room: actions an operator starts, and the state of the machinery.

An action is a ControlRun row, audit-logged, and run by a worker as the
``run_control`` task (at once, in this process, where tasks are eager): ingest a source
now, see what planning would send (a dry run), plan and send now, retry what failed or
whose outcome is unknown. The status panel reads beat's schedule from settings, the
last run of each scheduled task from TaskBeat (each worker records the tasks it runs),
the broker's queue length and the workers that answer a ping.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from celery.schedules import crontab, maybe_schedule, schedule
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from config.celery import app, task_later, tasks_eager
from newsletter.models import ControlRun, Delivery, Subscriber, TaskBeat
from newsletter.planning import digest_preview, due_now, planned_ids, subscribers_for_date
from newsletter.queueing import enqueue_plans, enqueue_sends
from newsletter.sending import RETRYABLE, deliveries_requeue
from papers.models import Source
from papers.tasks import ingest_arxiv_days, ingest_hf_days, recent_days

log = logging.getLogger(__name__)

DRY_RUN_SHOWN = 100  # readers ranked and listed by a dry run started from the admin
RETRY_DAYS = 7  # the retry action's default reach back, in digest dates
LATE_AFTER = timedelta(seconds=90)  # beat's tick plus a worker's pickup
RUN_LIMIT = timedelta(minutes=55)  # run_control's hard time limit


# Actions -----------------------------------------------------------------------------


def control_run_start(*, action: str, params: dict[str, Any], user_id: int) -> ControlRun:
    """Record the action, log who asked, and hand it to a worker once committed."""
    run = ControlRun.objects.create(action=action, params=params, requested_by_id=user_id)
    LogEntry.objects.log_actions(
        user_id, ControlRun.objects.filter(pk=run.pk), ADDITION, "Started from the control room."
    )
    transaction.on_commit(lambda: task_later("run_control", run.pk))
    return run


def control_run_execute(*, run_id: int) -> None:
    """Claim the run (a redelivered task finds it taken), do it, record what came of it.
    A failure is the run's result, not an error page: the operator reads it there."""
    now = timezone.now()
    if not ControlRun.objects.filter(pk=run_id, state=ControlRun.State.QUEUED).update(
        state=ControlRun.State.RUNNING, started=now
    ):
        return
    run = ControlRun.objects.get(pk=run_id)
    try:
        lines = list(RUNNERS[run.action](run))
        state = ControlRun.State.DONE
    except Exception as exc:
        log.exception("control run #%s (%s) failed", run.pk, run.action)
        lines, state = [f"Failed: {type(exc).__name__}: {exc}"], ControlRun.State.FAILED
    ControlRun.objects.filter(pk=run_id).update(
        state=state, result="\n".join(lines), finished=timezone.now()
    )


def control_run_lost(run: ControlRun, now: datetime | None = None) -> bool:
    """Still queued or running past the task's time limit: its worker died with it."""
    waiting = run.state in (ControlRun.State.QUEUED, ControlRun.State.RUNNING)
    return waiting and (now or timezone.now()) - (run.started or run.created) > RUN_LIMIT


def _day(run: ControlRun, key: str = "date") -> date | None:
    raw = run.params.get(key)
    return date.fromisoformat(raw) if raw else None


def _ingest(run: ControlRun) -> Iterator[str]:
    source = run.params["source"]
    day = _day(run)
    days = [day] if day else recent_days(source)
    fetch = ingest_hf_days if source == Source.HF else ingest_arxiv_days
    yield from fetch(days).splitlines()


def digest_batches(day: date | None) -> list[tuple[date, QuerySet[Subscriber]]]:
    """A date's digest to every reader whose schedule includes it, whatever the hour;
    no date: the readers due now, as beat plans them, one batch per local date."""
    if day:
        return [(day, subscribers_for_date(day))]
    by_day: dict[date, QuerySet[Subscriber]] = {}
    for digest_date, subscribers in due_now():
        known = by_day.get(digest_date)
        by_day[digest_date] = subscribers if known is None else known | subscribers
    return [(d, readers) for d, readers in sorted(by_day.items()) if readers.exists()]


NOBODY_DUE = "Nobody is due now: no reader's local send hour has come without a digest."


def digests_dry_run(day: date | None, shown: int | None = DRY_RUN_SHOWN) -> Iterator[str]:
    """Who would get how many papers, writing nothing: a line for each of the first
    ``shown`` readers of each date (all of them with None) after a summary line."""
    batches = digest_batches(day)
    if not batches:
        yield NOBODY_DUE
    for digest_date, subscribers in batches:
        readers = subscribers.prefetch_related("topics")
        listed = readers if shown is None else readers[:shown]
        lines, counts = [], Counter[str]()
        for subscriber in listed.iterator(chunk_size=500):
            preview = digest_preview(subscriber=subscriber, digest_date=digest_date)
            counts["checked"] += 1
            counts["would"] += bool(preview.items)
            counts["papers"] += len(preview.items)
            first = f": {preview.items[0][0].title}" if preview.items else " (no email)"
            lines.append(f"{subscriber.email}: {len(preview.items)} paper(s){first}")
        due = counts["checked"] if shown is None else subscribers.count()
        checked = "" if counts["checked"] == due else f" of the first {counts['checked']} ranked"
        yield (
            f"{digest_date}: {due} reader(s) due; {counts['would']}{checked} would get a digest "
            f"({counts['papers']} papers), {counts['checked'] - counts['would']} nothing "
            "(no email is sent). Dry run: nothing written or sent."
        )
        yield from lines


def digests_start(day: date | None) -> Iterator[str]:
    """Plan the batches and fan out their sending, also what an earlier, cut-short run
    left planned; one line per date with the counts so far (all of them where tasks
    are eager). Running it again sends nothing twice."""
    batches = digest_batches(day)
    if not batches:
        yield NOBODY_DUE
    for digest_date, subscribers in batches:
        started = timezone.now()
        leftovers = list(planned_ids(digest_date))
        chunks = enqueue_plans(digest_date, subscribers)
        enqueue_sends(leftovers)
        status = Counter(
            Delivery.objects.filter(digest_date=digest_date)
            .filter(Q(created__gte=started) | Q(pk__in=leftovers))
            .values_list("status", flat=True)
        )
        yield (
            f"{digest_date}: {chunks} planning chunk(s) queued; so far planned "
            f"{sum(status.values()) - status['skipped']}, skipped {status['skipped']} "
            f"(nothing to send), sent {status['sent']}, failed {status['failed']}, "
            f"waiting {status['planned'] + status['sending']}"
        )


def _plan_send(run: ControlRun) -> Iterator[str]:
    return digests_start(_day(run))


def _dry_run(run: ControlRun) -> Iterator[str]:
    return digests_dry_run(_day(run))


def _retry(run: ControlRun) -> Iterator[str]:
    """Failed and unknown deliveries from ``since`` on go back to the workers."""
    since = _day(run, "since") or timezone.localdate() - timedelta(days=RETRY_DAYS)
    found = Delivery.objects.filter(status__in=RETRYABLE, digest_date__gte=since)
    ids = list(found.values_list("pk", flat=True))
    requeued = deliveries_requeue(delivery_ids=ids, statuses=RETRYABLE)
    if requeued and run.requested_by_id is not None:
        done = Delivery.objects.filter(pk__in=requeued).select_related("subscriber")
        note = f"Requeued (retry, control room run #{run.pk})."
        LogEntry.objects.log_actions(run.requested_by_id, done, CHANGE, note)
    chunks = enqueue_sends(requeued)
    yield (
        f"{len(requeued)} of {len(ids)} failed or unknown deliveries since {since} requeued "
        f"in {chunks} send chunk(s)"
        + (f"; {len(ids) - len(requeued)} left: their reader is no longer active" if ids else "")
    )


RUNNERS: dict[str, Callable[[ControlRun], Iterator[str]]] = {
    ControlRun.Action.INGEST: _ingest,
    ControlRun.Action.DRY_RUN: _dry_run,
    ControlRun.Action.PLAN_SEND: _plan_send,
    ControlRun.Action.RETRY: _retry,
}


# Scheduled tasks' last runs ----------------------------------------------------------


def scheduled_tasks() -> set[str]:
    return {str(entry["task"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()}


@task_prerun.connect
def _task_started(sender: Any = None, **kwargs: Any) -> None:
    name = getattr(sender, "name", "")
    if name in scheduled_tasks():
        _record(name, state=TaskBeat.State.RUNNING, started=timezone.now(), finished=None)


@task_postrun.connect
def _task_finished(sender: Any = None, state: str = "", retval: Any = None, **kw: Any) -> None:
    name = getattr(sender, "name", "")
    if name in scheduled_tasks():
        done = state == "SUCCESS"
        result = _result_text(retval) if done else f"{state}: {retval!r}"[:2000]
        _record(
            name,
            state=TaskBeat.State.DONE if done else TaskBeat.State.FAILED,
            finished=timezone.now(),
            result=result,
        )


def _result_text(retval: Any) -> str:
    if isinstance(retval, dict):
        return ", ".join(f"{key} {value}" for key, value in retval.items())
    return "" if retval is None else str(retval)[:2000]


def _record(name: str, **fields: Any) -> None:
    """Bookkeeping must never fail the task it describes."""
    try:
        if "started" in fields:
            beat, _ = TaskBeat.objects.update_or_create(task=name, defaults=fields)
            TaskBeat.objects.filter(pk=beat.pk).update(runs=F("runs") + 1)
        else:
            TaskBeat.objects.filter(task=name).update(**fields)
    except Exception:
        log.exception("could not record the run of %s", name)


# The status panel --------------------------------------------------------------------


@dataclass
class BeatEntry:
    name: str
    task: str
    about: str  # the task's docstring, first line
    when: str  # the schedule in words
    last: TaskBeat | None
    next_at: datetime | None
    late: bool


@dataclass
class Machinery:
    eager: bool  # no broker: tasks run in the process that asks for them
    broker_error: str
    workers: list[str]
    queued: int | None  # tasks waiting in the default queue
    unacked: int | None  # tasks handed to a worker and not yet acknowledged
    beat: list[BeatEntry]

    @property
    def late(self) -> list[BeatEntry]:
        return [entry for entry in self.beat if entry.late]


def schedule_words(when: Any) -> str:
    """A beat schedule in words, with the cron fields: "every 5 minutes (*/5 * * * *)"."""
    if isinstance(when, crontab):
        fields = [
            str(getattr(when, f"_orig_{part}"))
            for part in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
        ]
        minute, hour, rest = fields[0], fields[1], fields[2:]
        words = " ".join(fields)
        if rest == ["*", "*", "*"]:
            if hour == "*" and minute == "*":
                words = "every minute"
            elif hour == "*" and minute.startswith("*/"):
                words = f"every {minute[2:]} minutes"
            elif hour == "*" and minute.isdigit():
                words = f"hourly at :{int(minute):02d}"
            elif hour.isdigit() and minute.isdigit():
                words = f"daily at {int(hour):02d}:{int(minute):02d} {settings.CELERY_TIMEZONE}"
        return f"{words} ({' '.join(fields)})"
    if isinstance(when, schedule):
        return f"every {int(when.seconds)} s"
    return str(when)


def _about(task: str) -> str:
    found = app.tasks.get(task)
    doc = (getattr(found, "__doc__", None) or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


def beat_entries(now: datetime | None = None) -> list[BeatEntry]:
    """Each entry of beat's schedule with its task's last recorded run and the next
    time beat will send it; late when that time passed LATE_AFTER ago without a run."""
    now = now or timezone.now()
    lasts = {beat.task: beat for beat in TaskBeat.objects.all()}
    entries = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        when: Any = maybe_schedule(entry["schedule"])  # type: ignore[arg-type]  # seconds
        task = str(entry["task"])
        last = lasts.get(task)
        # remaining_estimate reads the clock again, a moment after ``now``: round it off
        next_at = now + when.remaining_estimate(last.started if last else now)
        next_at = (next_at + timedelta(milliseconds=500)).replace(microsecond=0)
        late = last is not None and next_at < now - LATE_AFTER
        entries.append(
            BeatEntry(name, task, _about(task), schedule_words(when), last, next_at, late)
        )
    return entries


def broker_state() -> tuple[str, list[str], int | None, int | None]:
    """(error, workers that answered a ping, tasks queued, tasks unacknowledged)."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
            channel: Any = conn.default_channel
            queued = channel.queue_declare(queue=app.conf.task_default_queue).message_count
            client = getattr(channel, "client", None)
            unacked = client.hlen(channel.unacked_key) if client is not None else None
            replies = app.control.ping(timeout=1.0, connection=conn) or []
    except Exception as exc:  # the panel says what is wrong instead of failing
        return f"{type(exc).__name__}: {exc}", [], None, None
    workers = sorted(name for reply in replies for name in reply)
    return "", workers, queued, unacked


def machinery_status(now: datetime | None = None) -> Machinery:
    beat = beat_entries(now)
    if tasks_eager():
        return Machinery(True, "", [], None, None, beat)
    return Machinery(False, *broker_state(), beat=beat)
