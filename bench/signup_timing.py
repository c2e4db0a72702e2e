"""How long a signup takes for a known address and for an unknown one, with the answer
held to PAPERBOY_FORM_ANSWER_SECONDS (as shipped) and, as the baseline in the same run,
without the hold. The figure that matters is the gap between the medians: what an
attacker timing the form could tell apart.

Prints one JSON object. Runs on a fresh schema in the machine's PostgreSQL (or
BENCH_DATABASE_URL), else on SQLite in a temporary folder.

    python bench/signup_timing.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import django_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vendor = django_setup(tmp)
        print(json.dumps({"benchmark": "signup_timing", "database": vendor, **run(args.rounds)}))


def run(rounds: int) -> dict[str, object]:
    import logging

    from django.conf import settings

    logging.getLogger("celery").setLevel(logging.WARNING)  # a line per confirmation sent
    from django.test import Client
    from django.test.utils import override_settings

    from newsletter import abuse
    from newsletter.models import Subscriber

    def post(client: Client, email: str) -> float:
        stamp = abuse.stamp_issue(issued_at=time.time() - 60)
        started = time.perf_counter()
        response = client.post("/", {"email": email, "stamp": stamp}, secure=True)
        assert response.status_code == 302, response.status_code
        return (time.perf_counter() - started) * 1000

    figures: dict[str, object] = {"rounds": rounds}
    shipped = settings.PAPERBOY_FORM_ANSWER_SECONDS
    limits = {"PAPERBOY_FORM_RATE_PER_IP": "100000/h", "PAPERBOY_FORM_RATE_PER_ADDRESS": "100000/h"}
    for label, hold in (("baseline_no_hold", 0.0), ("shipped", shipped)):
        with override_settings(PAPERBOY_FORM_ANSWER_SECONDS=hold, ALLOWED_HOSTS=["*"], **limits):
            client = Client()
            for n in range(rounds):
                Subscriber.objects.create(email=f"known-{label}-{n}@example.org", status="active")
            known, unknown = [], []
            for n in range(rounds):  # interleaved: a slow moment hits both alike
                known.append(post(client, f"known-{label}-{n}@example.org"))
                unknown.append(post(client, f"new-{label}-{n}@example.org"))
        k, u = statistics.median(known), statistics.median(unknown)
        figures[label] = {
            "hold_ms": round(hold * 1000, 1),
            "known_median_ms": round(k, 2),
            "unknown_median_ms": round(u, 2),
            "gap_ms": round(abs(k - u), 2),
            "gap_ratio": round(max(k, u) / min(k, u), 3),
        }
    return figures


if __name__ == "__main__":
    main()
