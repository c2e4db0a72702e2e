"""The deliveries admin: finding failed and unknown sends, reading what happened to
one, retrying or resending, and the counts per day."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Delivery, EmailEvent, Subscriber
from newsletter.planning import digest_plan, subscribers_for_date
from newsletter.stats import daily_counts
from papers.models import Paper
from tests.conftest import make_subscriber, staff_with

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)
CHANGELIST = "admin:newsletter_delivery_changelist"
LONG_ERROR = "SMTPRecipientsRefused({'erin@example.org': (550, b'5.1.1 " + "x" * 600 + "')})"


@pytest.fixture
def deliveries(sample_week: list[Paper]) -> dict[str, Delivery]:
    """Four planned digests for THURSDAY, then: alice failed, dave unknown, erin sent,
    frank failed but he has unsubscribed since."""
    for email in ("alice", "dave", "erin", "frank"):
        make_subscriber(f"{email}@example.org", "active", ["agents", "reasoning"])
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    states = {"alice": "failed", "dave": "unknown", "erin": "sent", "frank": "failed"}
    found = {}
    for name, status in states.items():
        delivery = Delivery.objects.get(subscriber__email=f"{name}@example.org")
        assert delivery.items.exists(), "the fixture needs sendable digests"
        error = LONG_ERROR if status == "failed" else ""
        Delivery.objects.filter(pk=delivery.pk).update(status=status, attempts=1, error=error)
        found[name] = delivery
    Subscriber.objects.filter(email="frank@example.org").update(status="unsubscribed")
    return found


def status_of(delivery: Delivery) -> str:
    delivery.refresh_from_db()
    return delivery.status


def run_action(client: Client, action: str, ids: list[int], **extra: str) -> Any:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def shown(response: Any) -> set[str]:
    return {d.subscriber.email.split("@")[0] for d in response.context["cl"].result_list}


def test_the_filters_find_failed_and_unknown_deliveries(
    admin_client: Client, deliveries: dict[str, Delivery]
) -> None:
    url = reverse(CHANGELIST)
    page = admin_client.get(url)
    html = page.content.decode()
    assert "Outcome unknown" in html and "Failed or outcome unknown" in html
    assert shown(page) == {"alice", "dave", "erin", "frank"}
    assert shown(admin_client.get(url + "?status__exact=unknown")) == {"dave"}
    assert shown(admin_client.get(url + "?attention=yes")) == {"alice", "dave", "frank"}
    day = "?digest_date__gte=2026-01-08&digest_date__lt=2026-01-09"
    assert len(shown(admin_client.get(url + day))) == 4
    assert shown(admin_client.get(url + "?digest_date__gte=2026-01-09")) == set()
    assert shown(admin_client.get(url + "?q=erin@example.org")) == {"erin"}


def test_the_changelist_shortens_the_error_and_the_change_page_shows_it_all(
    admin_client: Client, deliveries: dict[str, Delivery]
) -> None:
    listing = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "SMTPRecipientsRefused" in listing and "x" * 600 not in listing
    assert "xxx…</span>" in listing  # shortened, the start of it in a tooltip
    alice = deliveries["alice"]
    change = admin_client.get(reverse("admin:newsletter_delivery_change", args=[alice.pk]))
    assert "x" * 600 in change.content.decode()


def test_the_change_page_shows_the_events_in_time_order_escaped(
    admin_client: Client, deliveries: dict[str, Delivery]
) -> None:
    dave = deliveries["dave"]
    at = timezone.make_aware(datetime.combine(THURSDAY, time(7)))
    for minutes, kind, text in [
        (9, "delivered", "<b>x</b>"),
        (1, "queued", "accepted for delivery"),
        (30, "opened", "opened in Thunderbird"),
    ]:
        EmailEvent.objects.create(
            provider="postmark",
            event_type=kind,
            delivery=dave,
            timestamp=at + timedelta(minutes=minutes),
            description=text,
        )
    page = admin_client.get(reverse("admin:newsletter_delivery_change", args=[dave.pk]))
    html = page.content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    positions = [html.index(kind) for kind in ("queued", "delivered", "opened in")]
    assert positions == sorted(positions)
    assert "2026-01-08 07:09:00" in html


def test_retry_sends_failed_and_unknown_and_leaves_the_rest_alone(
    admin_client: Client,
    deliveries: dict[str, Delivery],
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ids = [d.pk for d in deliveries.values()]
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "retry_deliveries", ids)
    assert sorted(m.to[0] for m in mailoutbox) == ["alice@example.org", "dave@example.org"]
    statuses = {name: status_of(d) for name, d in deliveries.items()}
    assert statuses == {"alice": "sent", "dave": "sent", "erin": "sent", "frank": "failed"}
    # A retry starts afresh: one attempt, the one that sent it.
    assert deliveries["alice"].attempts == 1 and deliveries["erin"].attempts == 1
    history = LogEntry.objects.filter(change_message="Requeued (retry).")
    assert sorted(h.object_repr.split("@")[0] for h in history) == ["alice", "dave"]
    assert [str(m) for m in response.context["messages"]] == [
        "Requeued 2 deliveries for sending. Left 2 deliveries alone: "
        "1 not failed or outcome unknown; 1 whose reader is no longer active."
    ]


def test_resend_asks_first_then_mails_again(
    admin_client: Client,
    deliveries: dict[str, Delivery],
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    erin, frank = deliveries["erin"], deliveries["frank"]
    confirm = run_action(admin_client, "resend_deliveries", [erin.pk, frank.pk])
    html = confirm.content.decode()
    assert confirm.status_code == 200 and "Resend these deliveries?" in html
    assert "erin@example.org" in html and 'name="post" value="yes"' in html
    assert "1 whose reader is no longer active" in html
    assert status_of(erin) == "sent" and mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        done = run_action(admin_client, "resend_deliveries", [erin.pk, frank.pk], post="yes")
    assert [m.to for m in mailoutbox] == [["erin@example.org"]]
    assert status_of(erin) == "sent" and status_of(frank) == "failed"
    assert "Requeued 1 delivery for sending." in done.content.decode()


def test_the_change_page_retries_one_delivery_on_post_only(
    admin_client: Client,
    deliveries: dict[str, Delivery],
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    alice, erin = deliveries["alice"], deliveries["erin"]
    retry = reverse("admin:newsletter_delivery_retry", args=[alice.pk])
    page = admin_client.get(reverse("admin:newsletter_delivery_change", args=[alice.pk]))
    assert retry in page.content.decode() and "Retry this delivery" in page.content.decode()
    sent_page = admin_client.get(reverse("admin:newsletter_delivery_change", args=[erin.pk]))
    assert "Retry this delivery" not in sent_page.content.decode()
    assert admin_client.get(retry).status_code == 405
    assert status_of(alice) == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(retry)
    assert response.status_code == 302
    assert status_of(alice) == "sent" and [m.to for m in mailoutbox] == [["alice@example.org"]]


def test_the_retry_button_needs_a_csrf_token(
    admin_user: User, deliveries: dict[str, Delivery]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    alice = deliveries["alice"]
    response = client.post(reverse("admin:newsletter_delivery_retry", args=[alice.pk]))
    assert response.status_code == 403 and status_of(alice) == "failed"


def test_staff_without_change_permission_get_no_actions(
    deliveries: dict[str, Delivery], mailoutbox: list[mail.EmailMessage]
) -> None:
    client = staff_with("view_delivery")
    alice = deliveries["alice"]
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert "retry_deliveries" not in page.content.decode()
    assert "resend_deliveries" not in page.content.decode()
    run_action(client, "retry_deliveries", [alice.pk])
    run_action(client, "resend_deliveries", [alice.pk], post="yes")
    retry = client.post(reverse("admin:newsletter_delivery_retry", args=[alice.pk]))
    assert retry.status_code == 403
    change = client.get(reverse("admin:newsletter_delivery_change", args=[alice.pk]))
    assert change.status_code == 200 and "Retry this delivery" not in change.content.decode()
    assert status_of(alice) == "failed" and mailoutbox == []


@pytest.fixture
def history(db: None) -> tuple[date, date]:
    """Two days: yesterday 3 sent, 1 failed, 1 unknown; three days ago 2 sent, 1 skipped,
    1 planned; events of both days, some not counted, and one outside the window."""
    today = timezone.localdate()
    yesterday, earlier = today - timedelta(days=1), today - timedelta(days=3)
    n = 0

    def deliver(day: date, status: str) -> Delivery:
        nonlocal n
        n += 1
        reader = make_subscriber(f"reader{n}@example.org", "active")
        return Delivery.objects.create(
            subscriber=reader,
            digest_date=day,
            period_start=day - timedelta(days=1),
            period_end=day - timedelta(days=1),
            status=status,
        )

    for day, statuses in [
        (yesterday, ["sent", "sent", "sent", "failed", "unknown"]),
        (earlier, ["sent", "sent", "skipped", "planned"]),
        (today - timedelta(days=45), ["sent"]),
    ]:
        for status in statuses:
            deliver(day, status)

    def event(day: date, kind: str, provider: str = "postmark") -> None:
        at = timezone.make_aware(datetime.combine(day, time(9)))
        EmailEvent.objects.create(provider=provider, event_type=kind, timestamp=at)

    for kind in ["bounced", "bounced", "complained", "delivered", "deferred"]:
        event(yesterday, kind)
    event(earlier, "unsubscribed", provider="paperboy")
    event(earlier, "unsubscribed")
    event(earlier, "bounced")
    event(today - timedelta(days=45), "bounced")
    return yesterday, earlier


COLUMNS = ("planned", "sending", "sent", "failed", "unknown", "skipped")
EVENTS = ("bounced", "complained", "unsubscribed")


def numbers(row: Any) -> tuple[int, ...]:
    return tuple(getattr(row, c) for c in COLUMNS + EVENTS)


def test_the_daily_counts_page_adds_up_the_history(
    admin_client: Client,
    history: tuple[date, date],
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    yesterday, earlier = history
    url = reverse("admin:newsletter_delivery_daily")
    assert url in admin_client.get(reverse(CHANGELIST)).content.decode()  # linked
    with django_assert_max_num_queries(4):
        page = admin_client.get(url)
    assert page.status_code == 200
    rows = {row.day: numbers(row) for row, _ in page.context["rows"]}
    assert len(rows) == 30 and max(rows) == timezone.localdate()
    #                          planned sending sent failed unknown skipped  bo co un
    assert rows[yesterday] == (0, 0, 3, 1, 1, 0, 2, 1, 0)
    assert rows[earlier] == (1, 0, 2, 0, 0, 1, 1, 0, 2)
    assert sum(map(sum, rows.values())) == sum(rows[yesterday] + rows[earlier])
    assert numbers(page.context["total"]) == (1, 0, 5, 1, 1, 1, 3, 1, 2)
    html = page.content.decode()
    assert "Total" in html and f"digest_date__gte={yesterday.isoformat()}" in html
    week = admin_client.get(url + "?days=2")
    assert [row.day for row, _ in week.context["rows"]] == [timezone.localdate(), yesterday]
    wide = admin_client.get(url + "?days=60")
    assert numbers(wide.context["total"])[2] == 6  # the sent digest 45 days ago
    bad = admin_client.get(url + "?days=lots")
    assert bad.status_code == 200 and "is not a number of days" in bad.content.decode()


def test_daily_counts_take_a_fixed_number_of_queries(
    history: tuple[date, date], django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(2):
        daily_counts(days=366)


def test_a_digest_dated_tomorrow_gets_its_own_row(alice: Subscriber) -> None:
    today = date(2026, 1, 8)
    Delivery.objects.create(
        subscriber=alice,
        digest_date=today + timedelta(days=1),
        period_start=today,
        period_end=today,
        status="planned",
    )
    counts = daily_counts(days=2, today=today)
    assert [r.day for r in counts.rows] == [today + timedelta(days=1), today, today.replace(day=7)]
    assert counts.rows[0].planned == counts.total.planned == 1


def test_the_daily_counts_are_staff_only(client: Client, deliveries: dict[str, Delivery]) -> None:
    url = reverse("admin:newsletter_delivery_daily")
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("reader", "reader@example.org", "pw")
    client.login(username="reader", password="pw")
    assert "/admin/login/" in client.get(url)["Location"]
    nobody = staff_with()  # staff, but no permission on deliveries
    assert nobody.get(url).status_code == 403
    viewer = staff_with("view_delivery")
    assert viewer.get(url).status_code == 200


def test_each_delivery_shows_its_attempts_and_why_it_waits(
    admin_client: Client, deliveries: dict[str, Delivery]
) -> None:
    """A planned one retrying after a 451, a claimed one whose worker died, an unknown
    one: the list says why each waits, the change page has the lease and the counts."""
    now = timezone.now()
    alice, dave = deliveries["alice"], deliveries["dave"]
    Delivery.objects.filter(pk=alice.pk).update(
        status="planned",
        attempts=3,
        error="retrying after: SMTPDataError(451, b'4.3.0 Try again later')",
        retry_at=now + timedelta(seconds=40),
        lease_until=now + timedelta(seconds=130),
    )
    erin = deliveries["erin"]
    Delivery.objects.filter(pk=erin.pk).update(
        status="sending", lease_until=now - timedelta(seconds=1), recoveries=1
    )
    listing = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "Why it waits, or the error" in listing
    assert "tried again at" in listing and "451" in listing
    assert "its worker stopped mid-send: recovery sends it again" in listing
    assert "the answer to the send was lost: sent again with the same Message-ID" in listing
    page = admin_client.get(reverse("admin:newsletter_delivery_change", args=[alice.pk]))
    text = page.content.decode()
    for label in ("Attempts", "Lease until", "Retry at", "Recoveries", "Resends", "Queued at"):
        assert label in text
    assert dave.pk  # listed above as unknown


def test_the_dashboard_counts_deliveries_on_their_way(
    admin_client: Client, deliveries: dict[str, Delivery]
) -> None:
    now = timezone.now()
    alice, erin = deliveries["alice"], deliveries["erin"]
    Delivery.objects.filter(pk=alice.pk).update(status="planned", retry_at=now)
    Delivery.objects.filter(pk=erin.pk).update(recoveries=2)
    Delivery.objects.filter(pk=deliveries["frank"].pk).update(status="sending")
    Delivery.objects.update(digest_date=timezone.localdate())
    page = admin_client.get(reverse("admin:dashboard")).content.decode()
    section = page[page.index('id="dashboard-sending"') :]
    section = section[: section.index("</ul>")]
    counts = {
        label: int(n) for n, label in re.findall(r"<strong>(\d+)</strong> ([a-z ]+)</a>", section)
    }
    assert counts == {
        "waiting for a worker or being sent": 1,
        "waiting to be tried again": 1,
        "outcome unknown": 1,
        "recovered in these days": 1,
    }
    retrying = admin_client.get(reverse(CHANGELIST), {"sending": "retrying"})
    assert shown(retrying) == {"alice"}
