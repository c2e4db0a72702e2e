"""The subscriber's web experience: signup posts and pages under a fixed offered load.

1. A production site on loopback: deploy/bin/web as it is (gunicorn and its worker
   settings) with DJANGO_DEBUG=false and every production variable set, PostgreSQL
   holding the sample week of papers, the topic catalogue and --subscribers readers, and
   Redis (db 11 unless REDIS_URL) as the cache and the Celery broker: the confirmation
   sends asked for queue up in Redis as in production (no worker takes them here).
2. An open-loop load generator in C (bench/support/loadgen.c, built with cc): requests
   are due at a constant rate whatever the answers, so a slow server makes them queue,
   and the wait counts in their latency (measured from when each was due).
3. Scenarios, one after the other, each at a fixed rate for --seconds: GET /healthz/
   (the baseline: the same stack doing no work), signup posts, the landing page, an
   archive day and "check your inbox". A signup post is what a browser sends: a fresh
   address, topics, interests and a schedule, the CSRF cookie and token and the signed
   stamp of a landing page fetched beforehand, from its own client address.
4. Afterwards: every accepted signup made exactly one pending subscriber with its topics,
   owed its confirmation email; and how few sends the web processes asked workers for
   (about one a second each, whatever the number of signups).

The rate limits stay at their production defaults: each post comes from its own client
address (the last X-Forwarded-For hop, in 198.18.0.0/15, the range set aside for
benchmarks, only ever written in a header) and carries a stamp older than
PAPERBOY_MIN_SUBMIT_SECONDS, so the per-IP, per-address and minimum-time checks all run
and none trips.

Prints one JSON object: per scenario the offered and achieved rate, p50/p90/p99 latency
in ms (overall and per second of the run), errors (non-2xx/3xx, connection errors,
timeouts after 5 s), CPU ms per request of each process, and p99 as a ratio to the
baseline's; the signup goal (--rate posts a second, p99 under 100 ms, no errors) and
whether it was met; the gunicorn workers' peak RSS; the signup bookkeeping check.

    python bench/web.py [--rate 300] [--page-rate 50] [--seconds 20] [--subscribers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import ROOT, cpu_used, django_setup, process_cpu

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paperboy_bench_web")
HOST = "papers.example.org"
SIGNUP_DOMAIN = "signup.example.org"
LOADGEN = Path(__file__).resolve().parent / "support" / "loadgen.c"
TIMEOUT_MS = 5000
GOAL_P99_MS = 100
BASELINE = "baseline_healthz"
SIGNUP = "signup_post"
LANDING_FORMS = 100  # browsers whose landing page (CSRF cookie, token, stamp) posts reuse
INTERESTS = [
    "",
    "",
    "KV cache, speculative decoding",
    "making LLMs cheaper to run on small devices",
    "diffusion models that generate or edit video",
    "reinforcement learning to improve reasoning",
    "GUI agents, web agents",
    "3D reconstruction, Gaussian splatting",
    "hallucination in vision-language models",
    "mixture of experts, long context",
]
AUTHORS = ["", "", "", "Tri Dao", "Percy Liang\nChristopher D. Manning", "Kaiming He"]
ZONES = ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]
Result = tuple[int, int, int]  # due (µs from the start), HTTP status (0 error, -1 timeout), µs


@dataclass
class Scenario:
    name: str
    rate: float
    requests: list[bytes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300, help="signups (and baseline) a second")
    parser.add_argument("--page-rate", type=float, default=50, help="page GETs a second")
    parser.add_argument("--seconds", type=float, default=20, help="per scenario")
    parser.add_argument("--subscribers", type=int, default=50_000, help="readers already there")
    parser.add_argument("--connections", type=int, default=512, help="at most in flight")
    parser.add_argument("--only", nargs="*", default=[], help="these scenarios (and the baseline)")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11")
    with tempfile.TemporaryDirectory() as tmp:
        if django_setup(tmp) != "postgresql":
            sys.exit("bench/web.py needs PostgreSQL (BENCH_DATABASE_URL)")
        print(json.dumps({"benchmark": "web", **run(args, redis_url, tmp)}))


def run(args: argparse.Namespace, redis_url: str, tmp: str) -> dict[str, object]:
    import redis

    from newsletter.models import Topic

    loadgen = build_loadgen(tmp)
    day = populate(args.subscribers)
    topics = list(Topic.objects.values_list("pk", flat=True))
    redis.Redis.from_url(redis_url).flushdb()
    env = server_env(tmp, redis_url)
    port = free_port()
    server = start_server(env, port, tmp)
    try:
        site = Site(loadgen, port, args.connections, tmp)
        figures = measure(site, args, day, topics, redis_url)
        figures["gunicorn_worker_peak_rss_mb"] = workers_peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures["server"] = {
        "command": "deploy/bin/web, bound to 127.0.0.1",
        "workers": int(env.get("WEB_CONCURRENCY", 2 * len(os.sched_getaffinity(0)))),
        "existing_subscribers": args.subscribers,
        "seconds_per_scenario": args.seconds,
    }
    return figures


def build_loadgen(tmp: str) -> str:
    binary = f"{tmp}/loadgen"
    subprocess.run(["cc", "-O2", "-o", binary, str(LOADGEN)], check=True)
    return binary


def populate(subscribers: int) -> str:
    """The sample week of papers, static files and readers already subscribed; returns
    the latest archive day."""
    from django.core.management import call_command

    from newsletter.archive import archive_latest_day
    from newsletter.models import Subscriber, Topic
    from papers.ingest import ingest_run
    from papers.models import Source
    from papers.sources.hf import parse_files

    files = sorted((ROOT / "papers" / "sample").glob("*.json"))
    ingest_run(source=Source.HF, fetch=lambda: parse_files(files))
    call_command("collectstatic", interactive=False, verbosity=0)
    rng = random.Random(11)
    topics = list(Topic.objects.values_list("pk", flat=True))
    readers = Subscriber.objects.bulk_create(
        (
            Subscriber(
                email=f"reader{n}@example.com", status="active", keywords=rng.choice(INTERESTS)
            )
            for n in range(subscribers)
        ),
        batch_size=5000,
    )
    through = Subscriber.topics.through
    through.objects.bulk_create(
        (
            through(subscriber_id=s.pk, topic_id=t)
            for s in readers
            for t in rng.sample(topics, rng.randint(1, 4))
        ),
        batch_size=10_000,
    )
    day = archive_latest_day()
    assert day is not None
    return day.isoformat()


def server_env(tmp: str, redis_url: str) -> dict[str, str]:
    """Everything production sets (newsletter/checks.py), and nothing that relaxes it."""
    from django.db import connection

    db = connection.settings_dict
    keep = ("HOME", "LANG", "LC_ALL", "WEB_CONCURRENCY")
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "SITE_URL": f"https://{HOST}",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "DEFAULT_FROM_EMAIL": f"Paperboy <digest@{HOST}>",
        "EMAIL_PROVIDER": "smtp",  # never reached: no worker takes the tasks
        "EMAIL_URL": "smtp://127.0.0.1:25",
        "PAPERBOY_VAR_DIR": tmp,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, tmp: str) -> subprocess.Popen[bytes]:
    """deploy/bin/web as it is, bound to loopback instead of every interface, once the
    settings pass `check --deploy` as deploy/bin/migrate requires."""
    script = (ROOT / "deploy" / "bin" / "web").read_text()
    if '"0.0.0.0:' not in script:
        raise RuntimeError("deploy/bin/web no longer binds 0.0.0.0:PORT; update bench/web.py")
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if check.returncode:
        raise RuntimeError(f"the production settings fail their checks:\n{check.stderr}")
    log = Path(tmp) / "gunicorn.log"  # its access log, as production writes it
    server = subprocess.Popen(
        ["bash", "-c", script.replace('"0.0.0.0:', '"127.0.0.1:')],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-2000:])


# Requests ------------------------------------------------------------------------------


def http_request(
    method: str, path: str, *, client: str, cookie: str = "", body: bytes = b""
) -> bytes:
    """One request as the TLS-terminating proxy hands it to gunicorn."""
    headers = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        "User-Agent: Mozilla/5.0 (bench/web.py)",
        "Accept: text/html,application/xhtml+xml",
        "Accept-Encoding: gzip",
        "X-Forwarded-Proto: https",
        f"X-Forwarded-For: {client}",
        "Connection: close",
    ]
    if cookie:
        headers.append(f"Cookie: csrftoken={cookie}")
    if method == "POST":
        headers += [
            f"Origin: https://{HOST}",
            f"Referer: https://{HOST}/",
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}",
        ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def client_address(n: int) -> str:
    """The n-th client, in 198.18.0.0/15 (set aside for benchmarks)."""
    return f"198.{18 + (n >> 16) % 2}.{(n >> 8) & 255}.{n & 255}"


def landing_forms(port: int, count: int) -> list[tuple[str, str, str]]:
    """(CSRF cookie, form token, stamp) from ``count`` first visits of the landing page."""
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    forms = []
    headers = {"X-Forwarded-Proto": "https", "Host": HOST}
    for n in range(count):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as web:
            page = web.get("/", headers={"X-Forwarded-For": client_address(100_000 + n)})
            page.raise_for_status()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        stamp = re.search(r'name="stamp" value="([^"]+)"', page.text)
        assert token and stamp, "the landing page has no signup form"
        forms.append((page.cookies["csrftoken"], token.group(1), stamp.group(1)))
    return forms


def signup_requests(
    first: int, count: int, forms: list[tuple[str, str, str]], topics: list[int]
) -> list[bytes]:
    """Posts of the signup form, each with a fresh address, as people fill it in."""
    rng = random.Random(first)
    requests = []
    for n in range(first, first + count):
        cookie, token, stamp = forms[n % len(forms)]
        fields: list[tuple[str, object]] = [
            ("csrfmiddlewaretoken", token),
            ("email", f"Bench.Reader{n}@{SIGNUP_DOMAIN}"),
            *[("topics", t) for t in rng.sample(topics, rng.randint(1, 5))],
            ("keywords", rng.choice(INTERESTS)),
            ("authors_text", rng.choice(AUTHORS)),
            ("frequency", rng.choice(["daily", "daily", "weekly"])),
            ("weekly_day", rng.randint(0, 6)),
            ("send_hour", rng.choice([6, 7, 7, 8, 9])),
            ("timezone", rng.choice(ZONES)),
            ("max_papers", rng.choice([5, 10, 10, 20])),
            ("website", ""),
            ("stamp", stamp),
        ]
        body = urlencode(fields).encode()
        requests.append(
            http_request("POST", "/", client=client_address(n), cookie=cookie, body=body)
        )
    return requests


# Driving the site ----------------------------------------------------------------------


class CpuSampler(threading.Thread):
    """CPU seconds per process while a scenario runs, sampled twice a second so that a
    process that ends meanwhile (a database connection recycled after CONN_MAX_AGE)
    still counts."""

    def __init__(self, patterns: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.patterns = patterns
        self.before = process_cpu(patterns)
        self.seen = process_cpu(patterns)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.sample()

    def sample(self) -> None:
        for name, pids in process_cpu(self.patterns).items():
            self.seen[name].update(pids)

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.join()
        self.sample()
        return cpu_used(self.before, self.seen)


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the load generator's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Site:
    loadgen: str
    port: int
    connections: int
    tmp: str

    def drive(self, scenario: Scenario, seconds: float) -> list[Result]:
        """Offer the scenario's requests at its rate for ``seconds``."""
        path = Path(self.tmp) / f"{scenario.name}.requests"
        with path.open("wb") as out:
            for request in scenario.requests:
                out.write(b"%d\n" % len(request) + request)
        command = [self.loadgen, "127.0.0.1", str(self.port), str(scenario.rate), str(seconds)]
        command += [str(self.connections), str(TIMEOUT_MS), str(path)]
        output = subprocess.run(command, capture_output=True, check=True).stdout
        return [
            (int(due), int(status), int(us))
            for due, status, us in map(bytes.split, output.splitlines())
        ]

    def settle(self) -> None:
        """Wait until the workers have worked off what an earlier scenario left queued
        (they go on with requests whose client gave up), so each scenario starts idle."""
        import httpx

        quick, deadline = 0, time.monotonic() + 300
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Host": HOST}) as web:
            while quick < 5 and time.monotonic() < deadline:
                start = time.perf_counter()
                web.get("/healthz/", timeout=60)
                quick = quick + 1 if time.perf_counter() - start < 0.02 else 0
                time.sleep(0.2)


def percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000


def summarise(results: list[Result], rate: float, seconds: float) -> dict[str, Any]:
    statuses = Counter(status for _, status, _ in results)
    ok = sum(n for status, n in statuses.items() if 200 <= status < 400)
    latencies = [latency for _, _, latency in results]
    last_answer = max(due + latency for due, _, latency in results) / 1e6
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(ok / max(seconds, last_answer), 1),
        "requests": len(results),
        "p50_ms": percentile(latencies, 0.50),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies) / 1000,
        "errors": len(results) - ok,
        "timeouts": statuses.get(-1, 0),
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "p99_ms_by_second": p99_by_second(results),
    }


def p99_by_second(results: list[Result]) -> list[float]:
    """p99 of the requests due in each second of the run: a stall (a checkpoint, another
    process) shows as a few bad seconds, an overload as a climb."""
    seconds: dict[int, list[int]] = {}
    for due, _, latency in results:
        seconds.setdefault(due // 1_000_000, []).append(latency)
    return [round(percentile(seconds[s], 0.99), 1) for s in sorted(seconds)]


def accepted_posts(scenario: Scenario, results: list[Result]) -> list[bytes]:
    """The posts answered with the redirect to "check your inbox"."""
    return [scenario.requests[i] for i, (_, status, _) in enumerate(results) if status == 302]


def measure(
    site: Site, args: argparse.Namespace, day: str, topics: list[int], redis_url: str
) -> dict[str, object]:
    from django.conf import settings
    from django.db import connection

    forms = landing_forms(site.port, LANDING_FORMS)
    time.sleep(settings.PAPERBOY_MIN_SUBMIT_SECONDS + 0.5)  # people take longer than that
    warm_posts, posts = int(args.rate * 2), int(args.rate * args.seconds)
    get = lambda path: [http_request("GET", path, client=client_address(0))]  # noqa: E731
    scenarios = [
        Scenario(BASELINE, args.rate, get("/healthz/")),
        Scenario(SIGNUP, args.rate, signup_requests(warm_posts, posts, forms, topics)),
        Scenario("landing_get", args.page_rate, get("/")),
        Scenario("archive_day_get", args.page_rate, get(f"/archive/{day}/")),
        Scenario("check_inbox_get", args.page_rate, get("/check-your-inbox/")),
    ]
    scenarios = [s for s in scenarios if not args.only or s.name in [*args.only, BASELINE]]
    # Two seconds of each first: every worker has compiled the templates, opened its
    # connections and taken its first requests before anything is measured.
    warm = Scenario("warm_signup", args.rate, signup_requests(0, warm_posts, forms, topics))
    accepted = accepted_posts(warm, site.drive(warm, 2))
    for scenario in scenarios:
        if scenario.name != SIGNUP:
            site.drive(scenario, 2)
    db = connection.settings_dict
    patterns = {
        "gunicorn": "config.wsgi:application",
        "postgres": f": {db['USER']} {db['NAME']} ",
        "redis": "redis-server",
    }
    figures: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        site.settle()
        sampler, children = CpuSampler(patterns), children_cpu()
        sampler.start()
        results = site.drive(scenario, args.seconds)
        cpu = sampler.stop() | {"loadgen": children_cpu() - children}
        summary = summarise(results, scenario.rate, args.seconds)
        summary["cpu_ms_per_request"] = {
            name: round(1000 * used / len(results), 2) for name, used in cpu.items()
        }
        figures[scenario.name] = summary
        if scenario.name == SIGNUP:
            accepted += accepted_posts(scenario, results)
    for summary in figures.values():
        summary["p99_vs_baseline"] = round(summary["p99_ms"] / figures[BASELINE]["p99_ms"], 1)
    site.settle()  # the posts the workers had taken are all done before counting rows
    return {
        "scenarios": figures,
        "signup_goal": signup_goal(figures.get(SIGNUP), args.rate),
        "rate_limits": "production defaults, not relaxed (PAPERBOY_FORM_RATE_PER_IP=20/h, "
        "PAPERBOY_FORM_RATE_PER_ADDRESS=5/h, PAPERBOY_MIN_SUBMIT_SECONDS=2): each post from "
        "its own client address (X-Forwarded-For) with a stamp older than 2 s",
        "signups": check_signups(accepted, redis_url),
    }


def signup_goal(summary: dict[str, Any] | None, rate: float) -> dict[str, object]:
    met = summary is not None and (
        summary["achieved_per_s"] >= 0.99 * rate
        and summary["p99_ms"] <= GOAL_P99_MS
        and summary["errors"] == 0
    )
    return {"posts_per_s": rate, "p99_ms_at_most": GOAL_P99_MS, "errors": 0, "met": met}


# Checks afterwards ---------------------------------------------------------------------


def queued_sends(redis_url: str) -> int:
    """The confirmation sends waiting in the Celery queue (kombu's Redis list); nothing
    else is queued by the site."""
    import redis

    queued = cast(list[bytes], redis.Redis.from_url(redis_url).lrange("celery", 0, -1))
    for raw in queued:
        message = json.loads(raw)
        assert message["headers"]["task"] == "newsletter.tasks.send_due_confirmations"
    return len(queued)


def check_signups(accepted: list[bytes], redis_url: str) -> dict[str, object]:
    """Every accepted post made one pending subscriber with its topics, owed its
    confirmation email (the outbox a worker sends from); the sends the web processes
    asked workers for. (A post whose client timed out may still have been served: it is
    not counted as accepted, but its row is there.)"""
    from newsletter.models import Subscriber

    expected: dict[str, int] = {}
    for request in accepted:
        form = parse_qs(request.split(b"\r\n\r\n", 1)[1].decode())
        expected[form["email"][0].lower()] = len(form["topics"])
    created = Subscriber.objects.filter(email__endswith=f"@{SIGNUP_DOMAIN}")
    rows = {
        s.email: (s.status, len(s.topics.all()), s.confirmation_due is not None)
        for s in created.prefetch_related("topics")
    }
    sends = queued_sends(redis_url)
    return {
        "posts_accepted": len(accepted),
        "subscribers_created": len(rows),
        "pending_with_their_topics_owed_a_confirmation": sum(
            rows.get(e) == ("pending", n, True) for e, n in expected.items()
        ),
        "confirmation_sends_queued": sends,
        "sends_queued_per_1000_signups": round(1000 * sends / max(len(rows), 1), 1),
    }


def workers_peak_rss_mb(master: int) -> list[float]:
    """VmHWM of each gunicorn worker: the most resident memory it ever had."""
    peaks = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != master:
                continue
            status = (entry / "status").read_text()
        except (OSError, ValueError):
            continue
        kb = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        peaks.append(round(int(kb.group(1)) / 1024, 1) if kb else 0.0)
    return sorted(peaks)


if __name__ == "__main__":
    main()
