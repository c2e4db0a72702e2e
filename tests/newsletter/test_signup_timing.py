"""The time a signup takes does not tell a known address from an unknown one: every
screened post is held until PAPERBOY_FORM_ANSWER_SECONDS after it arrived. (The gap it
leaves is measured by ``python bench/signup_timing.py``, beside the same form without
the hold: timings belong in the benchmark, not in a test.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from newsletter import abuse
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def holds(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The arrival times the views asked abuse.answer_steady to hold from."""
    seen: list[float] = []
    monkeypatch.setattr(abuse, "answer_steady", seen.append)
    return seen


def post(client: Client, url: str, email: str, **extra: Any) -> Any:
    data = {"email": email, "stamp": abuse.stamp_issue(issued_at=time.time() - 60), **extra}
    return client.post(url, data)


@pytest.mark.parametrize("form", ["signup", "link_request"])
def test_every_screened_post_is_held_known_unknown_bot_or_over_its_rate(
    client: Client, settings: Any, holds: list[float], form: str
) -> None:
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "1/h"
    make_subscriber("known@example.org", "unsubscribed", ["agents"])
    url = reverse(form)
    answers = [
        post(client, url, "known@example.org"),
        post(client, url, "new@example.org"),
        post(client, url, "bot@example.org", website="http://spam.example"),
        post(client, url, "known@example.org"),  # over its address's rate: ignored
    ]
    assert {a.status_code for a in answers} == {302}
    assert len(holds) == 4 and all(isinstance(at, float) for at in holds)


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
    abuse.answer_steady(100.0)  # already slower than the hold: no more waiting
    assert len(slept) == 1


def test_the_hold_is_on_by_default_outside_the_test_suite() -> None:
    from tests.test_settings import manage

    code = "from django.conf import settings as s; print(s.PAPERBOY_FORM_ANSWER_SECONDS)"
    assert manage("shell", "-v", "0", "-c", code, env={}).stdout.strip() == "0.15"
