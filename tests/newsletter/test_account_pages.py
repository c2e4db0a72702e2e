"""The account side, all through signed links: preferences, pause and resume,
resubscribe, "email me my link", sign out, download and delete, and every bad link."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from anymail.signals import AnymailTrackingEvent
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.abuse import stamp_issue
from newsletter.models import Delivery, DeliveryItem, EmailEvent, Feedback, Subscriber, Topic
from newsletter.planning import due_now, subscribers_for_date
from newsletter.stats import DailyCounts, daily_counts
from newsletter.tokens import PURPOSES, make_token
from newsletter.tracking import event_record
from papers.models import Paper
from tests.conftest import MONDAY, make_subscriber

pytestmark = pytest.mark.django_db
SITE = "http://127.0.0.1:8000"
DIGEST_DAY = date(2026, 1, 8)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """Emails go out once the transaction commits: run those callbacks in the test."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def token(subscriber: Subscriber, purpose: str) -> str:
    return make_token(subscriber, purpose=purpose)


def manage(subscriber: Subscriber, action: str = "") -> str:
    name = f"manage_{action}" if action else "manage"
    return reverse(name, args=[token(subscriber, "manage")])


def same_link(path: str, expected: str) -> bool:
    """Equal links up to the signing second: a signed token carries the time it was
    made, so a link built in the test a second after the view built its own differs
    there and only there."""
    unstamped = re.compile(r":[0-9A-Za-z]+:([\w-]+)(?=/)")
    return unstamped.sub("", path) == unstamped.sub("", expected)


def paths_in(message: Any) -> list[str]:
    return [url.removeprefix(SITE) for url in re.findall(rf"{SITE}/\S+/", str(message.body))]


def make_paper(arxiv_id: str, title: str, **fields: Any) -> Paper:
    return Paper.objects.create(
        arxiv_id=arxiv_id, title=title, catalogue_date=DIGEST_DAY - timedelta(days=1), **fields
    )


def make_delivery(
    subscriber: Subscriber, papers: list[Paper], *, day: date = DIGEST_DAY, status: str = "sent"
) -> Delivery:
    delivery = Delivery.objects.create(
        subscriber=subscriber,
        digest_date=day,
        period_start=day - timedelta(days=1),
        period_end=day - timedelta(days=1),
        status=status,
        sent_at=timezone.now() if status == "sent" else None,
        provider_id=f"msg-{subscriber.pk}-{day}",
        error=f"550 5.1.1 <{subscriber.email}>: mailbox full" if status == "failed" else "",
    )
    for rank, paper in enumerate(papers, 1):
        DeliveryItem.objects.create(
            delivery=delivery,
            subscriber=subscriber,
            paper=paper,
            rank=rank,
            score=1.0 / rank,
            reason=f"matches your topic Agents: '{paper.title[:20]}'",
        )
    return delivery


def event(subscriber: Subscriber, delivery: Delivery | None, kind: str, day: date) -> EmailEvent:
    return EmailEvent.objects.create(
        provider="postmark",
        event_id=f"{kind}-{subscriber.pk}-{day}",
        event_type=kind,
        recipient=subscriber.email,
        delivery=delivery,
        subscriber=subscriber,
        timestamp=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
        description=f"{kind} for {subscriber.email}",
        payload={"Recipient": subscriber.email},
    )


@pytest.fixture
def history(alice: Subscriber) -> dict[str, Any]:
    """Alice's digests, votes and events, beside Dave's (which must never show in hers)."""
    dave = make_subscriber("dave@example.org", "active", ["rag"], keywords="dave's secret")
    alice.keywords = "KV cache, speculative decoding"
    alice.authors = ["Tri Dao"]
    alice.save()
    papers = [make_paper(f"2601.0000{n}", f"Paper {n}", authors=["A. Author"]) for n in range(4)]
    mine = make_delivery(alice, papers[:2])
    make_delivery(alice, [], day=DIGEST_DAY + timedelta(days=1), status="failed")
    theirs = make_delivery(dave, papers[2:])
    Feedback.objects.create(subscriber=alice, paper=papers[0], vote=Feedback.Vote.UP)
    Feedback.objects.create(subscriber=dave, paper=papers[2], vote=Feedback.Vote.DOWN)
    event(alice, mine, "delivered", DIGEST_DAY)
    event(alice, mine, "bounced", DIGEST_DAY)
    event(dave, theirs, "complained", DIGEST_DAY)
    return {"dave": dave, "papers": papers, "mine": mine, "theirs": theirs}


# Preferences ---------------------------------------------------------------------------


def test_the_manage_page_groups_topics_by_area_and_labels_every_field(
    client: Client, alice: Subscriber
) -> None:
    page = client.get(manage(alice))
    assert page.status_code == 200
    html = page.content.decode()
    areas = set(Topic.objects.exclude(area="").values_list("area", flat=True))
    assert areas and all(f"<legend>{area}</legend>" in html for area in areas)
    for name in ("keywords", "authors_text", "weekly_day", "send_hour", "timezone"):
        assert f'<label for="id_{name}">' in html
    assert "<legend>How often</legend>" in html and '<label for="id_frequency_1">' in html
    assert 'aria-describedby="id_keywords_helptext"' in html
    assert 'id="id_keywords_helptext"' in html
    assert "Pause my digests" in html and "Download my data" in html
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]


def test_saving_preferences_never_overwrites_a_status_changed_meanwhile(
    client: Client, alice: Subscriber
) -> None:
    path = manage(alice)
    Subscriber.objects.filter(pk=alice.pk).update(status=Subscriber.Status.BOUNCED)
    data = {"keywords": "diffusion", "frequency": "daily", "weekly_day": "0"}
    data |= {"send_hour": "6", "timezone": "Europe/Paris", "max_papers": "7"}
    assert client.post(path, data).status_code == 200
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.BOUNCED
    assert (alice.keywords, alice.send_hour, alice.timezone) == ("diffusion", 6, "Europe/Paris")


def test_an_empty_post_is_a_form_error(client: Client, alice: Subscriber) -> None:
    assert client.post(manage(alice)).status_code == 400


# Pause, resume, resubscribe ------------------------------------------------------------


def due_ids(day: date = MONDAY) -> set[int]:
    return set(subscribers_for_date(day).values_list("pk", flat=True))


def due_now_ids() -> set[int]:
    now = datetime(2026, 1, 12, 12, tzinfo=UTC)
    return {pk for _, readers in due_now(now) for pk in readers.values_list("pk", flat=True)}


def test_a_paused_reader_is_not_planned_until_resumed(client: Client, alice: Subscriber) -> None:
    assert due_ids() == due_now_ids() == {alice.pk}
    response = client.post(manage(alice, "pause"))
    assert response.status_code == 302 and same_link(
        response["Location"], manage(alice) + "?done=paused"
    )
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.PAUSED
    assert due_ids() == due_now_ids() == set()
    page = client.get(response["Location"])
    assert b"No digests until you resume" in page.content and b"Resume my digests" in page.content
    assert client.post(manage(alice, "resume"))["Location"].endswith("?done=resumed")
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.ACTIVE
    assert due_ids() == due_now_ids() == {alice.pk}


def test_a_planned_digest_of_a_reader_who_paused_is_skipped_not_sent(
    client: Client, alice: Subscriber
) -> None:
    from newsletter.sending import deliveries_send

    delivery = make_delivery(alice, [make_paper("2601.00001", "P")], status="planned")
    client.post(manage(alice, "pause"))
    deliveries_send(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SKIPPED and not mail.outbox


def test_a_paused_reader_who_bounces_is_suppressed(alice: Subscriber) -> None:
    Subscriber.objects.filter(pk=alice.pk).update(status=Subscriber.Status.PAUSED)
    event_record(
        event=AnymailTrackingEvent(event_type="bounced", recipient=alice.email, event_id="b1"),
        esp_name="postmark",
    )
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.BOUNCED


def test_pausing_applies_only_to_active_readers(client: Client, carol: Subscriber) -> None:
    response = client.post(manage(carol, "pause"))
    assert same_link(response["Location"], manage(carol))  # no notice: nothing changed
    carol.refresh_from_db()
    assert carol.status == Subscriber.Status.UNSUBSCRIBED


def test_an_unsubscribed_reader_resubscribes_from_the_manage_page(
    client: Client, carol: Subscriber
) -> None:
    page = client.get(manage(carol))
    assert b"You're unsubscribed" in page.content and b">Resubscribe<" in page.content
    response = client.post(manage(carol, "resubscribe"))
    assert response["Location"].endswith("?done=resubscribed")
    carol.refresh_from_db()
    assert carol.status == Subscriber.Status.ACTIVE and carol.consent_at is not None
    assert carol.pk in due_ids()


def test_the_unsubscribed_page_has_a_resubscribe_button_that_works(
    client: Client, alice: Subscriber
) -> None:
    done = client.post(reverse("unsubscribe", args=[token(alice, "unsubscribe")]))
    assert done.status_code == 200
    [action] = re.findall(r'<form method="post" action="([^"]+)">', done.content.decode())
    assert same_link(action, reverse("unsubscribe_undo", args=[token(alice, "unsubscribe")]))
    assert b"Welcome back" in client.post(action).content
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.ACTIVE


def test_a_pending_reader_starts_their_digests_from_the_manage_page(
    client: Client, bob: Subscriber
) -> None:
    assert b"Start my digests" in client.get(manage(bob)).content
    client.post(manage(bob, "resubscribe"))
    bob.refresh_from_db()
    assert bob.status == Subscriber.Status.ACTIVE and bob.consent_at is not None


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_a_suppressed_reader_needs_a_fresh_opt_in(
    client: Client, alice: Subscriber, status: str, run_on_commit: Callable[[], Any]
) -> None:
    Subscriber.objects.filter(pk=alice.pk).update(status=status)
    page = client.get(manage(alice))
    assert b"this page alone cannot start the digests again" in page.content
    assert b"Email me a confirmation link" in page.content
    assert b">Resubscribe<" not in page.content
    client.post(manage(alice, "resubscribe"))  # the manage link alone lifts nothing
    alice.refresh_from_db()
    assert alice.status == status
    with run_on_commit():
        response = client.post(manage(alice, "resubscribe_link"))
    assert response["Location"].endswith("?done=resubscribe-link")
    [message] = mail.outbox
    assert message.to == [alice.email] and "again" in message.subject
    [path] = paths_in(message)
    assert path.startswith("/resubscribe/")
    assert isinstance(message, EmailMultiAlternatives) and path in str(message.alternatives[0][0])
    assert client.get(path).status_code == 200  # a scanner's GET changes nothing
    alice.refresh_from_db()
    assert alice.status == status
    assert b"You're subscribed again" in client.post(path).content
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.ACTIVE and alice.pk in due_ids()


def test_fresh_opt_in_emails_are_capped_per_day(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    Subscriber.objects.filter(pk=alice.pk).update(status=Subscriber.Status.BOUNCED)
    with run_on_commit():
        answers = [client.post(manage(alice, "resubscribe_link"))["Location"] for _ in range(5)]
    assert len(mail.outbox) == 3
    assert answers[-1].endswith("?done=resubscribe-link-limit")
    assert b"several confirmation links today" in client.get(answers[-1]).content


def test_an_active_reader_gets_no_fresh_opt_in_email(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    with run_on_commit():
        assert same_link(client.post(manage(alice, "resubscribe_link"))["Location"], manage(alice))
    assert not mail.outbox


# Email me my link ----------------------------------------------------------------------


def ask_for_link(client: Client, email: str, *, age: float = 60, **extra: Any) -> HttpResponse:
    stamp = stamp_issue(issued_at=time.time() - age)
    data = {"email": email, "stamp": stamp, "website": "", **extra}
    return client.post(reverse("link_request"), data)  # type: ignore[return-value]


def test_email_me_my_link_sends_a_working_manage_link(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    page = client.get(reverse("link_request"))
    assert page.status_code == 200 and b'<label for="id_email">' in page.content
    with run_on_commit():
        response = ask_for_link(client, " Alice@Example.org ")
    assert response.status_code == 302 and response["Location"] == reverse("link_sent")
    [message] = mail.outbox
    assert message.to == [alice.email]
    [path] = paths_in(message)
    assert same_link(path, manage(alice))
    assert b"alice@example.org" in client.get(path).content
    assert b"Check your inbox" in client.get(reverse("link_sent")).content


@pytest.mark.parametrize("status", ["active", "pending", "unsubscribed", "paused"])
def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    status: str, run_on_commit: Callable[[], Any]
) -> None:
    make_subscriber("known@example.org", status)
    answers = []
    for email in ("known@example.org", "unknown@example.org"):
        with run_on_commit():
            response = ask_for_link(Client(), email)
        answers.append((response.status_code, response["Location"], response.content))
    assert answers[0] == answers[1]
    assert [m.to for m in mail.outbox] == [["known@example.org"]]


def test_a_deleted_reader_gets_nothing(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    client.post(manage(alice, "delete"))
    with run_on_commit():
        assert ask_for_link(client, "alice@example.org").status_code == 302
    assert not mail.outbox


def test_bots_get_the_same_answer_and_nothing_is_sent(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    with run_on_commit():
        response = ask_for_link(client, alice.email, website="http://spam.example")
    assert response.status_code == 302 and response["Location"] == reverse("link_sent")
    assert not mail.outbox


def test_a_form_sent_too_fast_is_shown_again_whatever_the_address(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    with run_on_commit():
        pages = [ask_for_link(client, email, age=0.1) for email in (alice.email, "x@example.org")]
    assert {page.status_code for page in pages} == {400}
    assert all(b"That was quick" in page.content for page in pages)
    assert not mail.outbox


def test_a_form_without_its_stamp_is_refused(client: Client, alice: Subscriber) -> None:
    response = client.post(reverse("link_request"), {"email": alice.email})
    assert response.status_code == 400 and not mail.outbox


def test_a_bad_address_is_a_message_on_the_form(client: Client) -> None:
    response = ask_for_link(client, "not an address")
    assert response.status_code == 400 and b"errorlist" in response.content


def test_one_network_is_rate_limited(client: Client, settings: Any) -> None:
    settings.PAPERBOY_FORM_RATE_PER_IP = "5/h"
    statuses = [ask_for_link(client, f"r{n}@example.org").status_code for n in range(8)]
    assert statuses == [302] * 5 + [429] * 3


def test_one_address_gets_a_few_links_whoever_asks(
    alice: Subscriber, settings: Any, run_on_commit: Callable[[], Any]
) -> None:
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "3/h"
    with run_on_commit():
        for n in range(6):
            client = Client(REMOTE_ADDR=f"10.0.0.{n}")
            assert ask_for_link(client, alice.email).status_code == 302
    assert len(mail.outbox) == 3


# Sign out my links ---------------------------------------------------------------------


def old_links(subscriber: Subscriber, paper_id: int) -> list[str]:
    return [
        manage(subscriber),
        manage(subscriber, "export"),
        reverse("unsubscribe", args=[token(subscriber, "unsubscribe")]),
        reverse("feedback", args=[token(subscriber, "feedback"), paper_id, "up"]),
        reverse("confirm", args=[token(subscriber, "confirm")]),
        reverse("resubscribe", args=[token(subscriber, "resubscribe")]),
    ]


def test_signing_out_kills_every_old_link_and_emails_a_new_one(
    client: Client, alice: Subscriber, history: dict[str, Any], run_on_commit: Callable[[], Any]
) -> None:
    links = old_links(alice, history["papers"][0].pk)
    with run_on_commit():
        page = client.post(manage(alice, "sign_out"))
    assert page.status_code == 200 and b"A new link" in page.content
    for path in links:
        response = client.post(path)
        assert response.status_code == 400, path
        assert b"no longer valid" in response.content
        assert reverse("link_request").encode() in response.content
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.ACTIVE
    assert Feedback.objects.filter(subscriber=alice).count() == 1  # the vote did not change
    [message] = mail.outbox
    assert message.to == [alice.email] and "new" in message.subject.lower()
    [path] = paths_in(message)
    assert client.get(path).status_code == 200


# Download my data ----------------------------------------------------------------------


EXPORT_KEYS = (
    "exported_at profile topics interests authors liked_papers requested_preferences "
    "deliveries feedback events"
)


def test_the_download_holds_exactly_the_readers_data(
    client: Client, alice: Subscriber, history: dict[str, Any]
) -> None:
    response = client.post(manage(alice, "export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert re.fullmatch(
        r'attachment; filename="paperboy-data-[\d-]+\.json"', response["Content-Disposition"]
    )
    data = json.loads(response.content)
    assert set(data) == set(EXPORT_KEYS.split())
    assert data["profile"]["email"] == "alice@example.org"
    assert data["profile"]["status"] == "active"
    assert {t["slug"] for t in data["topics"]} == {"agents", "reasoning"}
    assert (data["interests"], data["authors"]) == ("KV cache, speculative decoding", ["Tri Dao"])
    first, second = data["deliveries"]
    assert (first["digest_date"], first["status"]) == ("2026-01-08", "sent")
    assert [p["arxiv_id"] for p in first["papers"]] == ["2601.00000", "2601.00001"]
    assert (second["status"], second["papers"]) == ("failed", [])
    assert [(f["arxiv_id"], f["vote"]) for f in data["feedback"]] == [("2601.00000", "up")]
    assert [e["type"] for e in data["events"]] == ["delivered", "bounced"]
    text = response.content.decode()
    assert "dave" not in text and "2601.00002" not in text and "complained" not in text


def test_the_download_is_a_post(client: Client, alice: Subscriber) -> None:
    assert client.get(manage(alice, "export")).status_code == 405


def test_the_download_costs_a_fixed_number_of_queries(
    client: Client,
    alice: Subscriber,
    history: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(10):
        make_delivery(alice, [make_paper(f"2602.{n:05d}", f"More {n}")], day=date(2026, 2, n + 1))
    with django_assert_max_num_queries(10):
        assert client.post(manage(alice, "export")).status_code == 200


# Delete my data ------------------------------------------------------------------------


def counts_by_day(counts: DailyCounts) -> dict[date | None, tuple[int, ...]]:
    """Sent, failed, bounced, complained per day up to the last digest (the day's
    "unsubscribed" is today, past the window)."""
    rows = [r for r in counts.rows if r.day and r.day <= DIGEST_DAY + timedelta(days=1)]
    return {r.day: (r.sent, r.failed, r.bounced, r.complained) for r in rows}


def test_delete_asks_first(client: Client, alice: Subscriber) -> None:
    page = client.get(manage(alice, "delete"))
    assert page.status_code == 200 and b"cannot be undone" in page.content
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.ACTIVE and alice.email == "alice@example.org"


def test_delete_erases_personal_data_and_keeps_the_counts(
    client: Client, alice: Subscriber, history: dict[str, Any]
) -> None:
    links = old_links(alice, history["papers"][0].pk)
    web = history["mine"].web_url().removeprefix(SITE)
    assert client.get(web).status_code == 200
    before = daily_counts(days=3, today=DIGEST_DAY + timedelta(days=1))
    page = client.post(manage(alice, "delete"))
    assert page.status_code == 200 and b"Your data is deleted" in page.content
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.DELETED
    assert "alice" not in alice.email and alice.email.endswith(".invalid")
    assert (alice.keywords, alice.authors, alice.consent_at) == ("", [], None)
    assert (alice.timezone, alice.frequency) == ("UTC", "daily")
    assert not alice.topics.exists()
    assert not Feedback.objects.filter(subscriber=alice).exists()
    assert not DeliveryItem.objects.filter(subscriber=alice).exists()
    assert Delivery.objects.filter(subscriber=alice).count() == 2
    assert not Delivery.objects.filter(subscriber=alice).exclude(error="").exists()
    for stored in EmailEvent.objects.filter(subscriber=alice).exclude(provider="paperboy"):
        assert (stored.recipient, stored.description, stored.payload) == ("", "", {})
    assert "alice" not in json.dumps(list(EmailEvent.objects.values()), default=str)
    # Dave keeps everything.
    assert Feedback.objects.filter(subscriber=history["dave"]).count() == 1
    assert EmailEvent.objects.get(subscriber=history["dave"]).recipient == "dave@example.org"
    # The counts: the same digests and events, plus Alice leaving today.
    after = daily_counts(days=3, today=DIGEST_DAY + timedelta(days=1))
    assert counts_by_day(after) == counts_by_day(before)
    assert counts_by_day(before)[DIGEST_DAY] == (2, 0, 1, 1)
    today = daily_counts(days=1)
    assert today.total.unsubscribed == 1
    # Every link ever sent is dead, the web copy too; nothing will be planned.
    for path in [*links, web]:
        assert client.post(path).status_code in (400, 404), path
    assert client.get(web).status_code == 404
    assert alice.pk not in due_ids()


def test_a_late_provider_event_about_a_deleted_reader_keeps_no_address(
    client: Client, alice: Subscriber, history: dict[str, Any]
) -> None:
    client.post(manage(alice, "delete"))
    late = AnymailTrackingEvent(
        event_type="complained",
        recipient="alice@example.org",
        message_id=history["mine"].provider_id,
        event_id="late-1",
        description="alice@example.org complained",
        esp_event={"Email": "alice@example.org"},
    )
    stored = event_record(event=late, esp_name="postmark")
    assert stored is not None and stored.subscriber_id == alice.pk
    assert (stored.recipient, stored.description, stored.payload) == ("", "", {})
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.DELETED


def test_a_deleted_readers_address_can_sign_up_afresh(
    client: Client, alice: Subscriber, run_on_commit: Callable[[], Any]
) -> None:
    client.post(manage(alice, "delete"))
    fresh = make_subscriber("alice@example.org", "pending")
    assert fresh.pk != alice.pk and fresh.token_version == 1


# Bad links -----------------------------------------------------------------------------


def url_for(kind: str, tok: str, paper_id: int) -> str:
    if kind == "feedback":
        return reverse("feedback", args=[tok, paper_id, "up"])
    return reverse(kind, args=[tok])


URL_PURPOSE = {
    "confirm": "confirm",
    "unsubscribe": "unsubscribe",
    "feedback": "feedback",
    "resubscribe": "resubscribe",
    "manage": "manage",
    "manage_pause": "manage",
    "manage_resume": "manage",
    "manage_resubscribe": "manage",
    "manage_resubscribe_link": "manage",
    "manage_sign_out": "manage",
    "manage_export": "manage",
    "manage_delete": "manage",
}


@pytest.fixture
def sent_paper(alice: Subscriber) -> Paper:
    paper = make_paper("2601.00042", "A paper Alice was sent")
    make_delivery(alice, [paper])
    return paper


def assert_friendly(response: Any, status: int = 400) -> None:
    assert response.status_code == status
    assert b"<h1>Sorry, this link" in response.content
    assert reverse("link_request").encode() in response.content
    assert b"Traceback" not in response.content


def unchanged(subscriber: Subscriber) -> tuple[Any, ...]:
    fresh = Subscriber.objects.get(pk=subscriber.pk)
    return (fresh.status, fresh.email, fresh.token_version, fresh.keywords)


@pytest.mark.parametrize(
    ("purpose", "kind"),
    [(p, k) for p in PURPOSES for k in URL_PURPOSE if URL_PURPOSE[k] != p],
)
def test_a_token_for_one_purpose_never_works_for_another(
    client: Client, alice: Subscriber, sent_paper: Paper, purpose: str, kind: str
) -> None:
    Subscriber.objects.filter(pk=alice.pk).update(status=Subscriber.Status.PENDING)
    before = unchanged(alice)
    path = url_for(kind, token(alice, purpose), sent_paper.pk)
    assert_friendly(client.post(path))
    if not kind.startswith("manage_") or kind == "manage_delete":
        assert_friendly(client.get(path))
    assert unchanged(alice) == before
    assert not Feedback.objects.exists() and not mail.outbox


@pytest.mark.parametrize("kind", list(URL_PURPOSE))
def test_forged_and_tampered_tokens_get_a_friendly_400(
    client: Client, alice: Subscriber, sent_paper: Paper, kind: str
) -> None:
    good = token(alice, URL_PURPOSE[kind])
    payload, signature = good.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other = make_subscriber("mallory@example.org", "active")
    swapped = token(other, URL_PURPOSE[kind]).split(":", 1)[0] + ":" + good.split(":", 1)[1]
    for bad in (f"{payload}:{flipped}", "WzEsMV0:forged:signature", swapped, "x", good[:-5]):
        assert_friendly(client.post(url_for(kind, bad, sent_paper.pk)))
    assert unchanged(alice)[0] == Subscriber.Status.ACTIVE


@pytest.mark.parametrize("purpose", ["confirm", "resubscribe"])
def test_opt_in_links_expire_after_seven_days(
    client: Client, bob: Subscriber, time_machine: Any, purpose: str
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    path = reverse(purpose, args=[token(bob, purpose)])
    time_machine.shift(timedelta(days=6, hours=23))
    assert client.get(path).status_code == 200
    time_machine.shift(timedelta(hours=2))
    response = client.post(path)
    assert response.status_code == 410 and b"expired" in response.content
    bob.refresh_from_db()
    assert bob.status == Subscriber.Status.PENDING


def test_manage_unsubscribe_and_feedback_links_never_expire(
    client: Client, alice: Subscriber, sent_paper: Paper, time_machine: Any
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)
    paths = [
        manage(alice),
        reverse("unsubscribe", args=[token(alice, "unsubscribe")]),
        reverse("feedback", args=[token(alice, "feedback"), sent_paper.pk, "up"]),
    ]
    time_machine.shift(timedelta(days=3 * 365))
    assert [client.get(path).status_code for path in paths] == [200, 200, 200]


def test_the_bad_link_page_offers_email_me_my_link(client: Client) -> None:
    page = client.get(reverse("manage", args=["nonsense"]))
    assert_friendly(page)
    assert b"Email me my link" in page.content


# CSRF ----------------------------------------------------------------------------------


@pytest.fixture
def strict() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize(
    "kind",
    [
        "manage",
        "manage_pause",
        "manage_resume",
        "manage_resubscribe",
        "manage_resubscribe_link",
        "manage_sign_out",
        "manage_export",
        "manage_delete",
        "resubscribe",
        "feedback",
    ],
)
def test_forms_without_a_csrf_token_are_refused(
    strict: Client, alice: Subscriber, sent_paper: Paper, kind: str
) -> None:
    Subscriber.objects.filter(pk=alice.pk).update(status=Subscriber.Status.BOUNCED)
    before = unchanged(alice)
    response = strict.post(url_for(kind, token(alice, URL_PURPOSE[kind]), sent_paper.pk))
    assert response.status_code == 403
    assert unchanged(alice) == before and not Feedback.objects.exists()


def test_email_me_my_link_without_a_csrf_token_is_refused(
    strict: Client, alice: Subscriber
) -> None:
    response = ask_for_link(strict, alice.email)
    assert response.status_code == 403 and not mail.outbox


def test_one_click_unsubscribe_alone_needs_no_csrf_token(strict: Client, alice: Subscriber) -> None:
    path = reverse("unsubscribe", args=[token(alice, "unsubscribe")])
    response = strict.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200 and not response.has_header("Location")
    assert b">Resubscribe<" in response.content
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.UNSUBSCRIBED


def test_the_forms_carry_their_csrf_token(client: Client, alice: Subscriber) -> None:
    html = client.get(manage(alice)).content.decode()
    forms = re.findall(r"<form method=\"post\".*?</form>", html, flags=re.S)
    assert len(forms) == 4  # pause, preferences, download, sign out
    assert all("csrfmiddlewaretoken" in form for form in forms)


# Feedback and escaping -----------------------------------------------------------------

NASTY = '<img src=x onerror="alert(1)"> & <b>"bold"</b>'


def test_feedback_shows_a_button_then_records_and_shows_the_paper(
    client: Client, alice: Subscriber
) -> None:
    paper = make_paper("2601.00666", NASTY, authors=["<script>alert(2)</script>"])
    make_delivery(alice, [paper])
    path = reverse("feedback", args=[token(alice, "feedback"), paper.pk, "down"])
    page = client.get(path)
    assert page.status_code == 200 and b"Fewer papers like this?" in page.content
    assert not Feedback.objects.exists()
    done = client.post(path)
    assert done.status_code == 200 and b"Thanks: fewer papers like this" in done.content
    assert Feedback.objects.get().vote == Feedback.Vote.DOWN
    for response in (page, done):
        html = response.content.decode()
        assert "<img src=x" not in html and "<script>alert" not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;b&gt;" in html


def test_reader_text_is_escaped_on_the_manage_page(client: Client, alice: Subscriber) -> None:
    alice.keywords = "</textarea><script>alert(3)</script>"
    alice.authors = ['"><img src=x onerror=alert(4)>']
    alice.save()
    html = client.get(manage(alice)).content.decode()
    assert "<script>alert(3)" not in html and "<img src=x" not in html


def test_every_account_page_renders_without_scripts_or_inline_styles(
    client: Client, alice: Subscriber
) -> None:
    pages = [
        manage(alice),
        manage(alice, "delete"),
        reverse("unsubscribe", args=[token(alice, "unsubscribe")]),
        reverse("link_request"),
        reverse("link_sent"),
    ]
    for path in pages:
        html = client.get(path).content.decode()
        assert '<meta name="viewport"' in html, path
        assert "<script" not in html and " style=" not in html, path
