"""Digest rendering and delivery throughput, against this machine's ceiling.

1. Render: Jinja2 + css-inline of prebuilt digest contexts, in this one process
   (digests per second per core); also the whole message build with its queries.
2. Ceiling: a plain smtplib loop sends N prebuilt digest messages over one connection
   to a local aiosmtpd server (a separate process that discards what it gets).
3. End to end: the same N digests, planned in PostgreSQL, sent by a Celery worker
   (prefork, twice as many processes as CPUs, as deploy/bin/worker runs it) from Redis
   into the same server: claim, render, inline, send, record. Reported as a share of
   the ceiling, with the worker's process count (WORKER_CONCURRENCY overrides it).

Prints one JSON object. Needs PostgreSQL and Redis (REDIS_URL, default db 14).

    python bench/send.py [--digests N]
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import ROOT, cpu_used, django_setup, peak_rss_mb, process_cpu, timed, weekly_readers

MONDAY = date(2026, 1, 12)  # the weekly digest of the bundled sample week
CELERY = [sys.executable, "-m", "celery", "--app", "config"]
# Where the CPU goes, per process (the PostgreSQL pattern is set once the database is known).
PROCESSES = {
    "worker": "celery --app config worker",
    "smtp_server": "aiosmtpd",
    "redis": "redis-server",
}
CONCURRENCY = os.environ.get(
    "WORKER_CONCURRENCY", str(2 * (os.cpu_count() or 1))
)  # as deploy/bin/worker runs it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=10_000)
    parser.add_argument("--render-sample", type=int, default=1_000)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    with tempfile.TemporaryDirectory() as tmp:
        vendor = django_setup(tmp)
        if vendor != "postgresql":
            sys.exit("bench/send.py needs PostgreSQL (BENCH_DATABASE_URL)")
        figures = run(args.digests, args.render_sample, redis_url, tmp)
        print(json.dumps({"benchmark": "send", "database": vendor, **figures}))


def plan(digests: int) -> list[int]:
    from newsletter.planning import digest_plan, planned_ids, subscribers_for_date
    from papers.ingest import ingest_run
    from papers.models import Source
    from papers.sources.hf import parse_files

    files = sorted((ROOT / "papers" / "sample").glob("*.json"))
    ingest_run(source=Source.HF, fetch=lambda: parse_files(files))
    weekly_readers(digests, ["", "", "", "KV cache", "video generation, diffusion"])
    digest_plan(digest_date=MONDAY, subscribers=subscribers_for_date(MONDAY))
    return list(planned_ids(MONDAY))


def measure_render(ids: list[int], sample: int) -> dict[str, object]:
    from newsletter.emails import digest_context, digest_message, render
    from newsletter.sending import _chunk

    chosen = ids[:sample]
    papers: dict[int, dict[str, object]] = {}
    deliveries = list(_chunk(chosen, papers).values())
    contexts = [digest_context(d, papers=papers) for d in deliveries]
    render("digest", contexts[0])  # templates compiled once, as in a worker
    rendered, render_s = timed(lambda: [render("digest", c) for c in contexts])

    def build() -> list[object]:
        cache: dict[int, dict[str, object]] = {}
        return [digest_message(d, papers=cache) for d in _chunk(chosen, cache).values()]

    _, build_s = timed(build)
    sizes = sorted(len(r.html.encode()) for r in rendered)
    return {
        "render_digests_per_s_per_core": round(len(contexts) / render_s),
        "build_with_queries_digests_per_s": round(len(chosen) / build_s),
        "papers_per_digest": round(sum(len(c["papers"]) for c in contexts) / len(contexts), 1),
        "html_kb_median": round(sizes[len(sizes) // 2] / 1024, 1),
        "html_kb_max": round(sizes[-1] / 1024, 1),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smtp_sink(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f":{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
                client.noop()
            return server
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


def plain_loop(ids: list[int], port: int) -> dict[str, float]:
    from newsletter.emails import digest_message
    from newsletter.sending import _chunk

    prebuilt = []
    for start in range(0, len(ids), 500):
        cache: dict[int, dict[str, object]] = {}
        for delivery in _chunk(ids[start : start + 500], cache).values():
            message = digest_message(delivery, papers=cache)
            data = message.message().as_bytes(linesep="\r\n")  # type: ignore[call-arg]
            prebuilt.append((message.from_email, message.to, data))

    def send_all() -> None:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for sender, to, data in prebuilt:
                client.sendmail(sender, to, data)

    before = process_cpu(PROCESSES)
    _, seconds = timed(send_all)
    cpu = cpu_used(before, process_cpu(PROCESSES))
    return {
        "plain_smtplib_per_s": round(len(prebuilt) / seconds),
        "plain_seconds": seconds,
        "plain_server_cpu_ms_per_message": round(1000 * cpu["smtp_server"] / len(prebuilt), 2),
    }


def end_to_end(ids: list[int], port: int, redis_url: str, tmp: str) -> dict[str, float]:
    import redis
    from django.conf import settings
    from django.db import connection

    from config.celery import app
    from newsletter.models import Delivery
    from newsletter.queueing import enqueue_sends

    redis.Redis.from_url(redis_url).flushdb()
    db = connection.settings_dict
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "EMAIL_PROVIDER": "smtp",
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "PAPERBOY_VAR_DIR": tmp,
        "DJANGO_DEBUG": "false",
    }
    log = Path(tmp) / "worker.log"
    worker = subprocess.Popen(
        [*CELERY, "worker", "--concurrency", CONCURRENCY, "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        app.conf.update(broker_url=redis_url, task_always_eager=False)
        settings.CELERY_TASK_ALWAYS_EAGER = False
        ping_deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > ping_deadline:
                raise RuntimeError("the worker did not start:\n" + log.read_text()[-2000:])
        before = process_cpu(PROCESSES)
        start = time.perf_counter()
        enqueue_sends(ids)
        pending = Delivery.objects.filter(status__in=["planned", "sending"])
        deadline = time.monotonic() + 1800
        while pending.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("end to end did not finish in 30 minutes")
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        cpu = cpu_used(before, process_cpu(PROCESSES))
        sent = Delivery.objects.filter(status="sent").count()
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    per_message = {
        f"e2e_{name}_cpu_ms_per_message": round(1000 * used / max(sent, 1), 2)
        for name, used in cpu.items()
    }
    return {
        "end_to_end_per_s": round(sent / seconds),
        "end_to_end_seconds": seconds,
        "sent": sent,
        **per_message,
    }


def run(digests: int, render_sample: int, redis_url: str, tmp: str) -> dict[str, object]:
    ids, plan_s = timed(lambda: plan(digests))
    figures: dict[str, object] = {"digests": len(ids), "plan_seconds": round(plan_s, 1)}
    figures.update(measure_render(ids, min(render_sample, len(ids))))
    port = free_port()
    server = smtp_sink(port)
    try:
        plain = plain_loop(ids, port)
        e2e = end_to_end(ids, port, redis_url, tmp)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures.update(
        {
            "plain_smtplib_per_s": plain["plain_smtplib_per_s"],
            "end_to_end_per_s": e2e["end_to_end_per_s"],
            "end_to_end_vs_plain": round(e2e["end_to_end_per_s"] / plain["plain_smtplib_per_s"], 2),
            "sent": e2e["sent"],
            "worker_processes": int(CONCURRENCY),
            "plain_server_cpu_ms_per_message": plain["plain_server_cpu_ms_per_message"],
            **{k: v for k, v in e2e.items() if k.endswith("_per_message")},
            "end_to_end_seconds": round(e2e["end_to_end_seconds"], 1),
            "peak_rss_mb": peak_rss_mb(),
        }
    )
    return figures


if __name__ == "__main__":
    main()
