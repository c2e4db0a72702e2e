"""The public side: the front page with its sample and signup form, "check your
inbox", confirmation (and a fresh link when it expired), the archive, the guards of
every public form and the Content-Security-Policy header."""

from __future__ import annotations

import os
import re
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core import mail
from django.core.cache import caches
from django.forms import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from config.cache import RedisCache
from newsletter import abuse
from newsletter.middleware import ADMIN_POLICY, PUBLIC_POLICY
from newsletter.models import Delivery, DeliveryItem, Subscriber, Topic
from newsletter.subscriptions import subscriber_signup
from newsletter.tasks import expire_pending_signups
from newsletter.tokens import make_token
from papers.models import Paper
from tests.conftest import make_subscriber, need_redis

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
LATEST = date(2026, 1, 9)  # the last day of the bundled sample week


def stamp(age: float = 60) -> str:
    """A form stamp as if the form had been shown ``age`` seconds ago."""
    return abuse.stamp_issue(issued_at=time.time() - age)


def post_signup(client: Client, email: str, **fields: Any) -> Any:
    data: dict[str, Any] = {"email": email, "stamp": stamp(), **fields}
    return client.post(reverse("signup"), {k: v for k, v in data.items() if v is not None})


def topic_ids(*slugs: str) -> list[int]:
    return list(Topic.objects.filter(slug__in=slugs).values_list("pk", flat=True))


def confirm_links() -> list[str]:
    links = [re.search(r"http://\S+/confirm/\S+/", str(m.body)) for m in mail.outbox]
    return [m.group(0).removeprefix(settings.SITE_URL) for m in links if m]


def hostile_paper(**fields: Any) -> Paper:
    values: dict[str, Any] = {
        "arxiv_id": "2601.99999",
        "title": HOSTILE,
        "abstract": f"An abstract with {HOSTILE} inside.",
        "authors": ["<img src=x onerror=alert(2)>"],
        "organization": "<b>Org</b>",
        "featured_on": LATEST,
        "catalogue_date": LATEST,
        "upvotes": 10_000,
        "github_repo": "javascript:alert(3)",
        "project_page": "https://example.org/project",
    }
    return Paper.objects.create(**{**values, **fields})


# The front page -----------------------------------------------------------------------


def test_the_front_page_shows_the_latest_days_top_papers(
    client: Client, sample_week: list[Paper]
) -> None:
    top = Paper.objects.filter(featured_on=LATEST).order_by("-upvotes", "arxiv_id")[:5]
    response = client.get("/")
    assert response.status_code == 200
    text = response.content.decode()
    positions = [text.index(f'href="{paper.hf_url}"') for paper in top]
    assert positions == sorted(positions)  # most upvoted first
    assert "Friday, January 9" in text
    assert reverse("archive_day", args=["2026-01-09"]) in text


def test_the_front_page_needs_a_handful_of_queries(
    client: Client, sample_week: list[Paper], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(4):
        assert client.get("/").status_code == 200


def test_the_front_page_works_before_any_paper_arrives(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert b'id="subscribe"' in response.content


def test_the_form_groups_topics_by_area_with_their_descriptions(client: Client) -> None:
    text = client.get("/").content.decode()
    areas = set(Topic.objects.exclude(area="").values_list("area", flat=True))
    assert len(areas) > 1
    for area in areas:
        assert f"<legend>{escape(area)}</legend>" in text
    for topic in Topic.objects.exclude(description=""):
        assert escape(topic.description) in text


def test_the_form_has_every_preference_labelled(client: Client) -> None:
    text = client.get("/").content.decode()
    fields = ("email", "keywords", "authors_text", "weekly_day", "send_hour", "timezone")
    for name in (*fields, "max_papers"):
        assert f'<label for="id_{name}">' in text, name
    assert 'type="radio" name="frequency" value="weekly"' in text
    assert 'aria-describedby="id_keywords_helptext"' in text


def test_the_time_zone_is_a_select_that_a_static_script_fills_in(client: Client) -> None:
    text = client.get("/").content.decode()
    select = re.search(r'<select name="timezone"[^>]*>', text)
    assert select and "data-detect-timezone" in select.group(0)
    assert '<option value="UTC" selected>' in text
    assert '<option value="Europe/Berlin">' in text
    script = re.search(r'<script src="([^"]+)" defer></script>', text)
    assert script and script.group(1) == "/static/paperboy/timezone.js"
    assert "<script>" not in text and "<style" not in text  # nothing inline for CSP
    source = finders.find("paperboy/timezone.js")
    assert source and "resolvedOptions().timeZone" in Path(str(source)).read_text()


def test_a_form_shown_again_keeps_the_chosen_zone(client: Client) -> None:
    response = post_signup(client, "not an address", timezone="Asia/Tokyo")
    text = response.content.decode()
    assert '<option value="Asia/Tokyo" selected>' in text
    assert "data-detect-timezone" not in text  # the script leaves the reader's choice


def test_the_form_and_every_page_use_no_inline_style(client: Client) -> None:
    for url in ("/", reverse("check_inbox"), reverse("archive")):
        text = client.get(url).content.decode()
        assert "<style" not in text and ' style="' not in text
        assert '<link rel="stylesheet" href="/static/paperboy/site.css">' in text


# Signing up ---------------------------------------------------------------------------


def test_a_new_reader_gets_every_preference_they_picked(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signup(
            client,
            " New.Reader@Example.ORG ",
            topics=topic_ids("quantization", "agents"),
            keywords="  KV cache, speculative decoding ",
            authors_text="Tri  Dao\n\nAlbert Gu\nTri Dao\n",
            frequency="weekly",
            weekly_day="4",
            send_hour="6",
            timezone="Europe/Berlin",
            max_papers="20",
        )
    assert response.status_code == 302 and response["Location"] == reverse("check_inbox")
    reader = Subscriber.objects.get()
    assert reader.email == "new.reader@example.org"
    assert reader.status == Subscriber.Status.PENDING
    assert set(reader.topics.values_list("slug", flat=True)) == {"quantization", "agents"}
    assert reader.keywords == "KV cache, speculative decoding"
    assert reader.authors == ["Tri Dao", "Albert Gu"]
    assert (reader.frequency, reader.weekly_day, reader.send_hour) == ("weekly", 4, 6)
    assert (reader.timezone, reader.max_papers) == ("Europe/Berlin", 20)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.reader@example.org"]


def test_a_signup_without_schedule_fields_gets_the_defaults(client: Client) -> None:
    assert post_signup(client, "plain@example.org").status_code == 302
    reader = Subscriber.objects.get()
    assert (reader.frequency, reader.send_hour, reader.timezone, reader.max_papers) == (
        "daily",
        7,
        "UTC",
        10,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not an address", "errorlist"),
        ("email", "someone@erased.invalid", "errorlist"),
        ("timezone", "Mars/Olympus_Mons", "is not a known time zone"),
        ("send_hour", "24", "less than or equal to 23"),
        ("weekly_day", "7", "less than or equal to 6"),
        ("frequency", "hourly", "Select a valid choice"),
        ("max_papers", "0", "greater than or equal to 1"),
        ("max_papers", "51", "less than or equal to 50"),
        ("topics", "999999", "Select a valid choice"),
        ("keywords", "x" * 1001, "under 1,000 characters"),
        ("authors_text", "\n".join(f"Author {n}" for n in range(51)), "at most 50 authors"),
        ("authors_text", "A" * 101, "at most 100 characters"),
    ],
)
def test_a_bad_value_is_a_message_on_the_form_and_stores_nothing(
    client: Client, field: str, value: str, message: str
) -> None:
    fields = {"email": "reader@example.org", field: value}
    response = post_signup(client, **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Subscriber.objects.exists() and not mail.outbox


def test_an_existing_address_keeps_its_preferences(
    client: Client, alice: Subscriber, bob: Subscriber
) -> None:
    for reader in (alice, bob):
        post_signup(
            client,
            reader.email.upper(),
            topics=topic_ids("diffusion"),
            keywords="something else",
            frequency="weekly",
            max_papers="3",
        )
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert set(alice.topics.values_list("slug", flat=True)) == {"agents", "reasoning"}
    assert set(bob.topics.values_list("slug", flat=True)) == {"quantization"}
    assert (bob.keywords, bob.frequency, bob.max_papers) == ("", "daily", 10)
    assert alice.status == Subscriber.Status.ACTIVE and bob.status == Subscriber.Status.PENDING
    assert Subscriber.objects.count() == 2


@pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit
def test_a_signup_whose_topic_was_deleted_meanwhile_is_logged_not_lost_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = Topic.objects.create(slug="short-lived", name="Short-lived")
    Topic.objects.filter(pk=topic.pk).delete()  # after the form was checked
    assert subscriber_signup(email="new@example.org", topics=[topic]) is None
    assert not Subscriber.objects.exists()
    [record] = [r for r in caplog.records if r.name == "newsletter.subscriptions"]
    assert record.levelname == "WARNING" and "signup not recorded" in record.getMessage()
    assert "new@example.org" not in record.getMessage()


def _answer(client: Client, email: str) -> tuple[int, str, int, bytes]:
    response = post_signup(client, email, topics=topic_ids("rag"))
    page = client.get(response["Location"])
    return response.status_code, response["Location"], page.status_code, page.content


def test_known_unknown_suppressed_and_limited_addresses_get_the_same_answer(
    client: Client, alice: Subscriber, bob: Subscriber, carol: Subscriber, settings: Any
) -> None:
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "1/h"
    make_subscriber("bounced@example.org", "bounced")
    make_subscriber("complained@example.org", "complained")
    post_signup(client, "limited@example.org")  # uses up the address's one post an hour
    answers = {
        email: _answer(client, email)
        for email in (
            "stranger@example.org",
            alice.email,
            bob.email,
            carol.email,
            "bounced@example.org",
            "complained@example.org",
            "limited@example.org",
        )
    }
    assert len(set(answers.values())) == 1, answers.keys()
    status, location, page_status, body = answers["stranger@example.org"]
    assert (status, location, page_status) == (302, reverse("check_inbox"), 200)
    assert b"Check your inbox" in body


def test_the_honeypot_stores_and_sends_nothing(client: Client, alice: Subscriber) -> None:
    for email in ("bot@example.org", alice.email):
        response = post_signup(client, email, website="http://spam.example")
        assert response.status_code == 302 and response["Location"] == reverse("check_inbox")
    assert list(Subscriber.objects.values_list("email", flat=True)) == [alice.email]
    assert not mail.outbox


def test_a_form_sent_back_too_fast_is_shown_again_with_a_message(client: Client) -> None:
    quick = stamp(age=0.5)
    response = post_signup(client, "quick@example.org", stamp=quick)
    assert response.status_code == 200 and b"That was quick: nothing has been sent yet" in (
        response.content
    )
    assert not Subscriber.objects.exists() and not mail.outbox
    assert f'value="{quick}"'.encode() in response.content  # the time keeps counting
    again = post_signup(client, "quick@example.org", stamp=stamp(age=3))
    assert again.status_code == 302 and Subscriber.objects.count() == 1


def test_the_minimum_time_comes_from_the_settings(client: Client, settings: Any) -> None:
    settings.PAPERBOY_MIN_SUBMIT_SECONDS = 10
    post_signup(client, "slowish@example.org", stamp=stamp(age=5))
    assert not Subscriber.objects.exists()
    post_signup(client, "slow@example.org", stamp=stamp(age=11))
    assert Subscriber.objects.get().email == "slow@example.org"


@pytest.mark.parametrize(
    "bad_stamp",
    [
        None,
        "",
        "forged",
        abuse.stamp_issue()[:-2] + "xx",
        "signed:for-another-purpose",
    ],
)
def test_a_missing_or_forged_stamp_is_a_form_error(client: Client, bad_stamp: str | None) -> None:
    response = post_signup(client, "reader@example.org", stamp=bad_stamp)
    assert response.status_code == 200
    assert abuse.STALE_FORM in response.content.decode()
    assert not Subscriber.objects.exists() and not mail.outbox
    fresh = re.search(r'name="stamp" value="([^"]+)"', response.content.decode())
    assert fresh and abuse.stamp_age(fresh.group(1)) < 5  # sending it again works


def test_a_stamp_from_yesterday_is_refused(client: Client) -> None:
    response = post_signup(client, "reader@example.org", stamp=stamp(age=25 * 3600))
    assert response.status_code == 200 and abuse.STALE_FORM in response.content.decode()
    assert not Subscriber.objects.exists()


def test_a_form_shown_again_after_an_error_keeps_its_stamp(client: Client) -> None:
    original = stamp(age=30)
    response = post_signup(client, "typo@", stamp=original)
    assert f'name="stamp" value="{original}"' in response.content.decode()


def test_posts_from_one_ip_are_rate_limited(client: Client, settings: Any) -> None:
    settings.PAPERBOY_FORM_RATE_PER_IP = "3/h"
    statuses = [post_signup(client, f"r{n}@example.org").status_code for n in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    assert Subscriber.objects.count() == 3
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert post_signup(other, "elsewhere@example.org").status_code == 302


def test_the_ip_limit_answers_with_the_form_and_a_message(client: Client, settings: Any) -> None:
    settings.PAPERBOY_FORM_RATE_PER_IP = "1/h"
    post_signup(client, "first@example.org")
    response = post_signup(client, "second@example.org")
    assert response.status_code == 429
    assert b"Too many signups from your network" in response.content
    assert b'id="subscribe"' in response.content


def test_posts_for_one_address_are_rate_limited_silently(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "2/h"
    settings.PAPERBOY_CONFIRMATIONS_PER_DAY = 100
    responses = []
    for n in range(4):  # from four networks, each after the last one's email went
        with django_capture_on_commit_callbacks(execute=True):
            client = Client(REMOTE_ADDR=f"198.51.100.{n}")
            responses.append(post_signup(client, "target@example.org"))
    assert {(r.status_code, r["Location"]) for r in responses} == {(302, "/check-your-inbox/")}
    assert len(mail.outbox) == 2


def test_at_most_three_confirmations_a_day_go_to_one_address(
    time_machine: Any, django_capture_on_commit_callbacks: Any
) -> None:
    time_machine.move_to("2026-01-05T08:00Z", tick=False)
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            subscriber_signup(email="flooded@example.org")
    assert len(mail.outbox) == 3
    time_machine.move_to("2026-01-06T08:00Z", tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        subscriber_signup(email="flooded@example.org")
    assert len(mail.outbox) == 4
    assert Subscriber.objects.count() == 1


def test_the_daily_confirmation_cap_comes_from_the_settings(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PAPERBOY_CONFIRMATIONS_PER_DAY = 1
    for email in ("one@example.org", "one@example.org", "two@example.org"):
        with django_capture_on_commit_callbacks(execute=True):
            subscriber_signup(email=email)
    assert sorted(m.to[0] for m in mail.outbox) == ["one@example.org", "two@example.org"]


def test_a_post_without_the_csrf_token_is_refused(alice: Subscriber) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/")
    assert page.status_code == 200
    response = post_signup(client, "nocsrf@example.org")
    assert response.status_code == 403
    assert b"could not be accepted" in response.content
    assert response["Content-Security-Policy"] == PUBLIC_POLICY
    assert not Subscriber.objects.exclude(pk=alice.pk).exists() and not mail.outbox


def test_a_post_with_the_csrf_token_goes_through() -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    response = post_signup(client, "withcsrf@example.org", csrfmiddlewaretoken=token.group(1))
    assert response.status_code == 302
    assert Subscriber.objects.filter(email="withcsrf@example.org").exists()


def test_each_page_answers_only_its_methods(client: Client) -> None:
    assert client.head("/").status_code == 200
    assert client.put("/").status_code == 405
    assert client.get(reverse("confirm_resend", args=["x"])).status_code == 405
    for url in (reverse("check_inbox"), reverse("archive")):
        assert client.post(url).status_code == 405


# Confirming ---------------------------------------------------------------------------


def test_the_confirmed_page_links_to_the_preferences(client: Client, bob: Subscriber) -> None:
    response = client.post(reverse("confirm", args=[make_token(bob, purpose="confirm")]))
    assert response.status_code == 200
    bob.refresh_from_db()
    assert bob.status == Subscriber.Status.ACTIVE
    assert "/manage/" in response.content.decode()


def test_an_expired_link_offers_a_fresh_one_that_works(
    client: Client, bob: Subscriber, time_machine: Any, django_capture_on_commit_callbacks: Any
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    old = make_token(bob, purpose="confirm")
    time_machine.move_to("2026-01-09T09:00Z", tick=False)
    page = client.get(reverse("confirm", args=[old]))
    assert page.status_code == 410
    text = page.content.decode()
    resend = reverse("confirm_resend", args=[old])
    assert f'<form method="post" action="{resend}"' in text and "csrfmiddlewaretoken" in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend, {"stamp": stamp()})
    assert response.status_code == 302 and response["Location"] == reverse("check_inbox")
    [fresh] = confirm_links()
    assert client.get(fresh).status_code == 200
    assert client.post(fresh).status_code == 200
    bob.refresh_from_db()
    assert bob.status == Subscriber.Status.ACTIVE


def test_a_fresh_link_keeps_the_pending_signup_alive(
    client: Client, bob: Subscriber, time_machine: Any
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    Subscriber.objects.filter(pk=bob.pk).update(created=timezone.now(), updated=timezone.now())
    old = make_token(bob, purpose="confirm")
    time_machine.move_to("2026-01-07T09:00Z", tick=False)
    client.post(reverse("confirm_resend", args=[old]), {"stamp": stamp()})
    time_machine.move_to("2026-01-09T09:00Z", tick=False)
    assert expire_pending_signups() == {"deleted": 0}
    assert Subscriber.objects.filter(pk=bob.pk).exists()


def test_the_resend_button_is_guarded_like_every_public_form(
    client: Client, bob: Subscriber, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PAPERBOY_FORM_RATE_PER_IP = "3/h"
    resend = reverse("confirm_resend", args=[make_token(bob, purpose="confirm")])
    with django_capture_on_commit_callbacks(execute=True):
        too_fast = client.post(resend, {"stamp": stamp(age=0)})
        honeypot = client.post(resend, {"stamp": stamp(), "website": "x"})
    assert honeypot["Location"] == reverse("check_inbox")
    assert too_fast.status_code == 400 and b"That was quick" in too_fast.content
    assert not mail.outbox
    missing = client.post(resend, {})
    assert missing.status_code == 400 and abuse.STALE_FORM in missing.content.decode()
    limited = client.post(resend, {"stamp": stamp()})
    assert limited.status_code == 429 and b"Too many requests" in limited.content
    assert not mail.outbox


def test_the_resend_button_needs_the_csrf_token(bob: Subscriber) -> None:
    client = Client(enforce_csrf_checks=True)
    resend = reverse("confirm_resend", args=[make_token(bob, purpose="confirm")])
    assert client.post(resend, {"stamp": stamp()}).status_code == 403
    assert not mail.outbox


def test_a_forged_link_gets_a_friendly_400_and_no_resend(client: Client, bob: Subscriber) -> None:
    forged = make_token(bob, purpose="confirm")[:-3] + "abc"
    for response in (
        client.get(reverse("confirm", args=[forged])),
        client.post(reverse("confirm_resend", args=[forged]), {"stamp": stamp()}),
        client.post(
            reverse("confirm_resend", args=[make_token(bob, purpose="unsubscribe")]),
            {"stamp": stamp()},
        ),
    ):
        assert response.status_code == 400
        assert b"not valid" in response.content
    assert not mail.outbox


def test_a_revoked_expired_link_sends_nothing(
    client: Client, bob: Subscriber, time_machine: Any
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    old = make_token(bob, purpose="confirm")
    Subscriber.objects.filter(pk=bob.pk).update(token_version=bob.token_version + 1)
    time_machine.move_to("2026-01-09T09:00Z", tick=False)
    page = client.get(reverse("confirm", args=[old]))
    assert page.status_code == 410 and b"Sign up again" in page.content
    assert b"resend" not in page.content
    response = client.post(reverse("confirm_resend", args=[old]), {"stamp": stamp()})
    assert response.status_code == 400 and not mail.outbox


def test_an_expired_link_of_a_removed_signup_says_sign_up_again(
    client: Client, bob: Subscriber, time_machine: Any
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    old = make_token(bob, purpose="confirm")
    bob.delete()
    time_machine.move_to("2026-01-09T09:00Z", tick=False)
    page = client.get(reverse("confirm", args=[old]))
    assert page.status_code == 410
    assert b"Sign up again" in page.content and b"resend" not in page.content


# Unconfirmed signups expire -------------------------------------------------------------


def test_the_expiry_task_deletes_only_old_pending_signups(time_machine: Any) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    old_pending = make_subscriber("old@example.org", "pending", ["agents"])
    old_active = make_subscriber("active@example.org", "active")
    old_unsubscribed = make_subscriber("gone@example.org", "unsubscribed")
    old_bounced = make_subscriber("bounced@example.org", "bounced")
    time_machine.move_to("2026-01-06T09:00Z", tick=False)
    recent_pending = make_subscriber("recent@example.org", "pending")
    time_machine.move_to("2026-01-08T09:01Z", tick=False)
    assert expire_pending_signups() == {"deleted": 1}
    left = set(Subscriber.objects.values_list("pk", flat=True))
    assert old_pending.pk not in left
    assert {old_active.pk, old_unsubscribed.pk, old_bounced.pk, recent_pending.pk} <= left
    assert expire_pending_signups() == {"deleted": 0}


def test_the_expiry_age_comes_from_the_settings(time_machine: Any, settings: Any) -> None:
    settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS = 2
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    make_subscriber("old@example.org", "pending")
    time_machine.move_to("2026-01-03T10:00Z", tick=False)
    assert expire_pending_signups() == {"deleted": 1}


def test_beat_runs_the_expiry_task_daily() -> None:
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["expire-pending-signups"]
    assert entry["task"] == "newsletter.tasks.expire_pending_signups"
    assert entry["options"]["expires"] <= 24 * 3600


# The archive ---------------------------------------------------------------------------


def test_the_archive_lists_days_newest_first(client: Client, sample_week: list[Paper]) -> None:
    response = client.get(reverse("archive"))
    assert response.status_code == 200
    text = response.content.decode()
    days = re.findall(r'href="/archive/(\d{4}-\d{2}-\d{2})/"', text)
    assert days == ["2026-01-09", "2026-01-08", "2026-01-07", "2026-01-06", "2026-01-05"]
    count = Paper.objects.filter(featured_on=LATEST).count()
    assert f"{count} papers" in text


def test_the_archive_is_paginated(
    client: Client, sample_week: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsletter.views.ARCHIVE_DAYS_PER_PAGE", 2)
    first = client.get(reverse("archive")).content.decode()
    assert re.findall(r'href="/archive/([\d-]+)/"', first) == ["2026-01-09", "2026-01-08"]
    assert "Page 1 of 3" in first and 'href="?page=2"' in first
    last = client.get(reverse("archive"), {"page": "3"}).content.decode()
    assert re.findall(r'href="/archive/([\d-]+)/"', last) == ["2026-01-05"]
    clamped = client.get(reverse("archive"), {"page": "nonsense"})
    assert clamped.status_code == 200


def test_a_days_page_lists_its_papers_by_upvotes(
    client: Client, sample_week: list[Paper], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(4):
        response = client.get(reverse("archive_day", args=["2026-01-07"]))
    assert response.status_code == 200
    text = response.content.decode()
    papers = Paper.objects.filter(featured_on=date(2026, 1, 7)).order_by("-upvotes", "arxiv_id")
    positions = [text.index(f'href="{paper.hf_url}"') for paper in papers]
    assert positions == sorted(positions) and len(positions) == papers.count()
    assert 'href="/archive/2026-01-08/"' in text and 'href="/archive/2026-01-06/"' in text


@pytest.mark.parametrize("day", ["2026-01-10", "2026-02-30", "2025-13-01"])
def test_a_day_without_a_list_is_404(client: Client, sample_week: list[Paper], day: str) -> None:
    response = client.get(f"/archive/{day}/")
    assert response.status_code == 404
    assert response["Content-Security-Policy"] == PUBLIC_POLICY


def test_paper_text_is_escaped_everywhere_it_shows(client: Client) -> None:
    hostile_paper()
    for url in ("/", reverse("archive"), reverse("archive_day", args=[LATEST.isoformat()])):
        text = client.get(url).content.decode()
        assert HOSTILE not in text, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url
        assert "<img src=x" not in text and "<b>Org</b>" not in text
        assert "javascript:" not in text  # a stored non-web link is left out
    day = client.get(reverse("archive_day", args=[LATEST.isoformat()])).content.decode()
    assert 'href="https://example.org/project"' in day


# Content-Security-Policy -----------------------------------------------------------------


def test_every_page_has_a_content_security_policy(
    client: Client, bob: Subscriber, sample_week: list[Paper]
) -> None:
    urls = [
        "/",
        reverse("check_inbox"),
        reverse("archive"),
        reverse("archive_day", args=["2026-01-09"]),
        reverse("confirm", args=[make_token(bob, purpose="confirm")]),
        reverse("confirm", args=["forged"]),
        "/no-such-page/",
    ]
    for url in urls:
        policy = client.get(url)["Content-Security-Policy"]
        assert policy == PUBLIC_POLICY, url
    assert "script-src 'self'" in PUBLIC_POLICY and "unsafe-inline" not in PUBLIC_POLICY
    assert "frame-ancestors 'none'" in PUBLIC_POLICY


def test_the_admin_may_use_inline_styles_but_no_inline_script(client: Client) -> None:
    response = client.get(reverse("admin:index"))  # to the login page
    assert response["Content-Security-Policy"] == ADMIN_POLICY
    assert "script-src 'self';" in ADMIN_POLICY


def test_the_web_copy_of_a_digest_keeps_its_stricter_policy(
    client: Client, alice: Subscriber, sample_week: list[Paper]
) -> None:
    delivery = Delivery.objects.create(
        subscriber=alice,
        digest_date=LATEST,
        period_start=LATEST - timedelta(days=1),
        period_end=LATEST - timedelta(days=1),
        status=Delivery.Status.SENT,
    )
    DeliveryItem.objects.create(
        delivery=delivery, subscriber=alice, paper=sample_week[0], rank=1, score=1, reason="r"
    )
    response = client.get(reverse("digest_web", args=[delivery.public_id]))
    assert response["Content-Security-Policy"].startswith("default-src 'none'")


# The guards on their own ---------------------------------------------------------------


def test_a_stamp_tells_its_age_and_refuses_forgeries() -> None:
    assert 59 < abuse.stamp_age(stamp(age=60)) < 61
    for bad in ("", "x", stamp()[:-1], "1700000000.0"):
        with pytest.raises(abuse.BadStamp):
            abuse.stamp_age(bad)


def test_behind_the_proxy_the_client_ip_is_the_last_forwarded_hop(rf: Any, settings: Any) -> None:
    settings.PAPERBOY_BEHIND_PROXY = True
    request = rf.get("/", HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.9", REMOTE_ADDR="127.0.0.1")
    assert abuse.client_ip(request) == "203.0.113.9"
    assert abuse.client_ip(rf.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"


def test_without_a_proxy_a_forwarded_header_is_not_believed(rf: Any, settings: Any) -> None:
    settings.PAPERBOY_BEHIND_PROXY = False
    settings.PAPERBOY_FORM_RATE_PER_IP = "2/h"
    posts = [
        rf.post("/", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}", REMOTE_ADDR="192.0.2.9")
        for n in range(3)
    ]
    assert abuse.client_ip(posts[0]) == "192.0.2.9"
    assert [abuse.limits_take(p, group="g", email=None)[0] for p in posts] == [False, False, True]


def test_daily_quotas_count_per_kind_and_address(time_machine: Any) -> None:
    time_machine.move_to("2026-01-05T23:00Z", tick=False)
    taken = [abuse.daily_quota_take(kind="k", email="a@example.org", per_day=2) for _ in range(3)]
    assert taken == [True, True, False]
    assert abuse.daily_quota_take(kind="k", email="b@example.org", per_day=2)
    assert abuse.daily_quota_take(kind="other", email="a@example.org", per_day=2)
    time_machine.move_to("2026-01-06T00:30Z", tick=False)
    assert abuse.daily_quota_take(kind="k", email="a@example.org", per_day=2)


def test_addresses_are_normalised() -> None:
    assert abuse.email_normalise("  Someone@Example.ORG ") == "someone@example.org"
    with pytest.raises(ValidationError):
        abuse.email_normalise("nobody@")


def test_rate_windows_count_per_key_and_start_afresh(time_machine: Any) -> None:
    time_machine.move_to("2026-01-05T10:00Z", tick=False)
    rates = [("a", "2/h"), ("b", "1/10m")]
    assert [abuse.counters_take(rates) for _ in range(3)] == [
        [False, False],
        [False, True],
        [True, False],  # a is over: b is left alone
    ]
    time_machine.shift(600)  # b's window has ended, a's has not
    assert abuse.counters_take(rates) == [True, False]
    assert abuse.counters_take([("b", "1/10m")]) == [False]
    assert abuse.rate_parse("20/h") == (20, 3600) and abuse.rate_parse("10/15m") == (10, 900)


def test_one_ipv6_household_counts_as_one_client(rf: Any, settings: Any) -> None:
    settings.PAPERBOY_FORM_RATE_PER_IP = "2/h"

    def over(ip: str) -> bool:
        return abuse.limits_take(rf.post("/", REMOTE_ADDR=ip), group="g", email=None)[0]

    assert [over(f"2001:db8:1:2::{n}") for n in range(3)] == [False, False, True]
    assert not over("2001:db8:1:3::1")  # the next /64
    assert [over("192.0.2.1"), over("192.0.2.2")] == [False, False]  # IPv4: per address
    assert [over("::ffff:192.0.2.3"), over("::ffff:192.0.2.4")] == [False, False]
    assert [over("::ffff:192.0.2.1"), over("192.0.2.1")] == [False, True]  # one client


def test_a_client_over_its_limit_uses_up_nobody_elses_address(rf: Any, settings: Any) -> None:
    settings.PAPERBOY_FORM_RATE_PER_IP = "1/h"
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "2/h"
    spammer = rf.post("/", REMOTE_ADDR="203.0.113.66")
    results = [abuse.limits_take(spammer, group="g", email="victim@example.org") for _ in range(5)]
    assert results == [(False, False)] + [(True, False)] * 4
    victim = rf.post("/", REMOTE_ADDR="192.0.2.10")
    assert abuse.limits_take(victim, group="g", email="victim@example.org") == (False, False)


def test_on_redis_both_counters_move_in_one_round_trip(rf: Any, settings: Any) -> None:
    need_redis()
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": "paperboy-test",
        }
    }
    settings.PAPERBOY_FORM_RATE_PER_IP = "6/h"
    backend = caches["default"]
    assert isinstance(backend, RedisCache)
    client: Any = backend._cache.get_client(write=True)
    for key in client.keys("paperboy-test:*limit.t.*"):  # an earlier run's
        client.delete(key)
    calls: list[str] = []
    connection_class = client.connection_pool.connection_class

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]).upper())
        return send_command(self, *args, **kwargs)

    send_command = connection_class.send_command
    request = rf.post("/", REMOTE_ADDR="192.0.2.55")
    results = [abuse.limits_take(request, group="t", email="x@example.org")]  # connects
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection_class, "send_command", counted)
        results += [abuse.limits_take(request, group="t", email="x@example.org") for _ in range(7)]
    assert calls == ["EVALSHA"] * 7  # one command, one trip, per post
    assert results[5] == (False, True)  # 5 posts an hour for an address
    assert results[6:] == [(True, False)] * 2  # over the network's 6: the address is spared
    keys = client.keys("paperboy-test:*limit.t.*")
    counts = sorted(int(client.get(key)) for key in keys)
    assert counts == [6, 8] and all(0 < client.ttl(key) <= 3600 for key in keys)
    client.delete(*keys)


def test_a_known_address_signing_up_again_is_told_and_gets_the_new_choices_on_confirming(
    client: Client, carol: Subscriber, django_capture_on_commit_callbacks: Any
) -> None:
    """Carol (unsubscribed, diffusion, daily, UTC) signs up again with new choices."""
    with django_capture_on_commit_callbacks(execute=True):
        post_signup(
            client,
            carol.email,
            topics=topic_ids("agents"),
            keywords="robots that plan",
            frequency="weekly",
            weekly_day="2",
            send_hour="6",
            timezone="Europe/Paris",
            max_papers="5",
        )
    carol.refresh_from_db()
    assert set(carol.topics.values_list("slug", flat=True)) == {"diffusion"}  # not yet
    assert (carol.keywords, carol.frequency, carol.timezone) == ("", "daily", "UTC")
    [email] = mail.outbox
    body = str(email.body)
    assert "Confirming also replaces its preferences" in body
    assert "Topics: Agents" in body and "Interests: robots that plan" in body
    assert "When: Every Wednesday at 06:00 (Europe/Paris)" in body
    assert "When: Every Wednesday at 06:00 (Europe/Paris)" in str(email.alternatives[0][0])  # type: ignore[union-attr]
    [link] = confirm_links()
    page = client.get(link).content.decode()
    assert "Every Wednesday at 06:00 (Europe/Paris)" in page
    done = client.post(link).content.decode()
    assert "These preferences now apply" in done
    assert "Every Wednesday at 06:00 (Europe/Paris)" in done and "Topics: Agents" in done
    carol.refresh_from_db()
    assert carol.status == Subscriber.Status.ACTIVE
    assert set(carol.topics.values_list("slug", flat=True)) == {"agents"}
    assert (carol.keywords, carol.weekly_day, carol.send_hour, carol.max_papers) == (
        "robots that plan",
        2,
        6,
        5,
    )
    assert carol.pending_preferences == {}


def test_a_used_confirmation_link_says_so_and_offers_nothing_to_press(
    client: Client, bob: Subscriber
) -> None:
    link = reverse("confirm", args=[make_token(bob, purpose="confirm")])
    client.post(link)
    page = client.get(link).content.decode()
    assert "already subscribed" in page and "Yes, confirm" not in page


def test_a_weekly_readers_confirmed_page_names_the_day(client: Client) -> None:
    weekly = make_subscriber(
        "weekly@example.org", "pending", ["agents"], frequency="weekly", weekly_day=4
    )
    page = client.post(reverse("confirm", args=[make_token(weekly, purpose="confirm")]))
    assert "Every Friday at 07:00 (UTC)" in page.content.decode()


def test_the_form_details_read_right(client: Client, alice: Subscriber) -> None:
    """Papers per digest offers 1 to 50; one "Your interests" label; frequency as radio
    buttons and topic descriptions on both forms; the Topics legend holds its name only."""
    signup = client.get(reverse("signup")).content.decode()
    manage = client.get(reverse("manage", args=[make_token(alice, purpose="manage")]))
    for page in (signup, manage.content.decode()):
        box = re.search(r'<input type="number" name="max_papers"[^>]*>', page)
        assert box is not None and 'min="1"' in box.group(0) and 'max="50"' in box.group(0)
        assert 'type="radio" name="frequency"' in page
        assert 'Quantization</strong> <span class="muted">' in page
        assert re.search(r"<legend>(<strong>)?Topics(</strong>)?</legend>", page)
    assert signup.count(">Your interests<") + signup.count(">Your interests ") == 1
