"""The time a signup takes does not tell a known address from an unknown one: every
screened post is answered PAPERBOY_FORM_ANSWER_SECONDS after it arrived."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from newsletter import abuse
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db
FLOOR = 0.08
ROUNDS = 9


def timed(client: Client, url: str, email: str) -> float:
    data = {"email": email, "stamp": abuse.stamp_issue(issued_at=time.time() - 60)}
    started = time.perf_counter()
    response = client.post(url, data)
    elapsed = time.perf_counter() - started
    assert response.status_code == 302
    return elapsed


@pytest.mark.parametrize("form", ["signup", "link_request"])
def test_known_and_unknown_addresses_take_the_same_time(
    client: Client, settings: Any, form: str
) -> None:
    settings.PAPERBOY_FORM_ANSWER_SECONDS = FLOOR
    settings.PAPERBOY_FORM_RATE_PER_IP = "1000/h"
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "1000/h"
    for n in range(ROUNDS):
        make_subscriber(f"known{n}@example.org", "unsubscribed", ["agents"])
    url = reverse(form)
    known, unknown = [], []
    for n in range(ROUNDS):  # interleaved, so a slow moment hits both alike
        known.append(timed(client, url, f"known{n}@example.org"))
        unknown.append(timed(client, url, f"new{n}@example.org"))
    assert min(known) >= FLOOR and min(unknown) >= FLOOR
    gap = abs(statistics.median(known) - statistics.median(unknown))
    assert gap < FLOOR / 5, (statistics.median(known), statistics.median(unknown))


def test_the_hold_counts_from_when_the_post_arrived(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PAPERBOY_FORM_ANSWER_SECONDS = 0.2
    slept: list[float] = []
    monkeypatch.setattr(abuse.time, "sleep", slept.append)
    monkeypatch.setattr(abuse.time, "monotonic", lambda: 100.05)
    abuse.answer_steady(100.0)
    assert slept == [pytest.approx(0.15)]
    monkeypatch.setattr(abuse.time, "monotonic", lambda: 100.3)
    abuse.answer_steady(100.0)  # already slower than the floor: no more waiting
    assert len(slept) == 1
