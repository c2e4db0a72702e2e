"""The shared send rate limit, held by two workers together, and a throttle mid-run.

Digests planned in PostgreSQL are sent by two Celery workers (prefork, as
deploy/bin/worker runs them: twice as many processes as CPUs each) from one Redis into
an SMTP server on loopback that notes when each message arrives.

1. Unlimited: PAPERBOY_SEND_RATE=0, the baseline of this run (messages per second the
   two workers reach here).
2. Limited: PAPERBOY_SEND_RATE=--rate. The rate the server saw ((N - 1) / the time from
   the first arrival to the last) against the setting: ``rate_error`` is the share off.
   Also the busiest second, and the largest gap between two messages.
3. Throttled: the same, with the server answering SES's 454 for --throttle seconds in
   the middle: messages failed (must be 0), messages throttled, and how long nothing
   went out.

Prints one JSON object. Needs PostgreSQL and Redis (REDIS_URL, default db 14).

    python bench/send_rate.py [--digests N] [--rate R] [--throttle S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from send import free_port, plan
from support import ROOT, django_setup

CELERY = [sys.executable, "-m", "celery", "--app", "config"]
CONCURRENCY = os.environ.get("WORKER_CONCURRENCY", str(2 * (os.cpu_count() or 1)))


class Recorder:
    """An SMTP handler that keeps arrival times and can throttle for a while."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.throttle_until = 0.0
        self.throttled = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if time.time() < self.throttle_until:
            self.throttled += 1
            return "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
        self.arrived.append(time.time())
        await asyncio.sleep(0)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--throttle", type=float, default=2.0)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    with tempfile.TemporaryDirectory() as tmp:
        vendor = django_setup(tmp)
        if vendor != "postgresql":
            sys.exit("bench/send_rate.py needs PostgreSQL (BENCH_DATABASE_URL)")
        figures = run(args, redis_url, tmp)
        print(json.dumps({"benchmark": "send_rate", **figures}))


def run(args: argparse.Namespace, redis_url: str, tmp: str) -> dict[str, object]:
    import redis
    from aiosmtpd.controller import Controller
    from django.conf import settings

    from config.celery import app

    ids = plan(args.digests)
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": redis_url}}
    redis.Redis.from_url(redis_url).flushdb()
    figures: dict[str, object] = {
        "digests": len(ids),
        "workers": 2,
        "processes_each": int(CONCURRENCY),
    }
    try:
        third = len(ids) // 3
        unlimited = send_phase(ids[:third], recorder, port, redis_url, tmp, rate=0)
        figures["unlimited_per_s"] = round(unlimited["rate"], 1)
        limited = send_phase(ids[third : 2 * third], recorder, port, redis_url, tmp, rate=args.rate)
        figures.update(
            {
                "rate_setting": args.rate,
                "rate_seen": round(limited["rate"], 2),
                "rate_error": round(abs(limited["rate"] - args.rate) / args.rate, 4),
                "busiest_second": limited["busiest"],
                "largest_gap_s": round(limited["gap"], 3),
            }
        )
        throttled = send_phase(
            ids[2 * third :], recorder, port, redis_url, tmp, rate=args.rate, throttle=args.throttle
        )
        figures.update(
            {
                "throttle_s": args.throttle,
                "throttled_answers": throttled["throttled"],
                "failed": throttled["failed"],
                "throttle_silence_s": round(throttled["gap"], 2),
                "sent": throttled["sent"],
            }
        )
    finally:
        controller.stop()
    return figures


def send_phase(
    ids: list[int],
    recorder: Recorder,
    port: int,
    redis_url: str,
    tmp: str,
    *,
    rate: float,
    throttle: float = 0.0,
) -> dict[str, Any]:
    from django.db import connection

    from config.celery import app
    from newsletter.models import Delivery
    from newsletter.queueing import enqueue_sends

    db = connection.settings_dict
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "EMAIL_PROVIDER": "smtp",
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "PAPERBOY_VAR_DIR": tmp,
        "PAPERBOY_SEND_RATE": str(rate),
        "PAPERBOY_SEND_THROTTLE_PAUSE": "0.5",
        "DJANGO_DEBUG": "false",
    }
    workers = [
        subprocess.Popen(
            [
                *CELERY,
                "worker",
                "--concurrency",
                CONCURRENCY,
                "--loglevel",
                "WARNING",
                "--hostname",
                f"rate{n}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=(Path(tmp) / f"worker{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
        recorder.arrived.clear()
        recorder.throttled = 0
        enqueue_sends(ids)
        if throttle:
            while len(recorder.arrived) < len(ids) // 2:
                time.sleep(0.01)
            recorder.throttle_until = time.time() + throttle
        done = Delivery.objects.filter(pk__in=ids, status__in=["sent", "failed"])
        deadline = time.monotonic() + 600
        while done.count() < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError("the phase did not finish in 10 minutes")
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    moments = sorted(recorder.arrived)
    per_second: dict[int, int] = {}
    for moment in moments:
        per_second[int(moment)] = per_second.get(int(moment), 0) + 1
    return {
        "rate": (len(moments) - 1) / (moments[-1] - moments[0]),
        "busiest": max(per_second.values()),
        "gap": max(b - a for a, b in itertools.pairwise(moments)),
        "throttled": recorder.throttled,
        "failed": Delivery.objects.filter(pk__in=ids, status="failed").count(),
        "sent": Delivery.objects.filter(pk__in=ids, status="sent").count(),
    }


if __name__ == "__main__":
    main()
