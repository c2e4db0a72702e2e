"""The subscribers admin: finding readers, the actions (suppress, reactivate, resend the
confirmation, export), CSV import with its dry run, a reader's history on their page,
and a test send of their next digest to the admin."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Delivery, DeliveryItem, EmailEvent, Feedback, Subscriber, Topic
from newsletter.planning import digest_plan, digest_preview, subscribers_for_date
from newsletter.subscriber_csv import EXPORT_COLUMNS
from papers.models import Paper
from tests.conftest import make_subscriber, staff_with

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:newsletter_subscriber_changelist"
IMPORT = "admin:newsletter_subscriber_import"
THURSDAY = date(2026, 1, 8)
OnCommit = Callable[..., Any]


def run_action(client: Client, action: str, subscribers: list[Subscriber], **extra: str) -> Any:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(s.pk) for s in subscribers], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def notices(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def refreshed(subscriber: Subscriber) -> Subscriber:
    subscriber.refresh_from_db()
    return subscriber


def shown(response: Any) -> set[str]:
    return {s.email.split("@")[0] for s in response.context["cl"].result_list}


# Finding readers -------------------------------------------------------------------------


def test_the_changelist_searches_by_email_and_filters(
    admin_client: Client, alice: Subscriber, bob: Subscriber, carol: Subscriber
) -> None:
    make_subscriber("dave@example.org", "active", ["agents"], frequency="weekly")
    Subscriber.objects.filter(email="carol@example.org").update(
        created=timezone.now() - timedelta(days=40)
    )
    url = reverse(CHANGELIST)
    page = admin_client.get(url)
    assert shown(page) == {"alice", "bob", "carol", "dave"}
    html = page.content.decode()
    assert reverse(IMPORT) in html and reverse("admin:dashboard") in html
    assert "Agents" in html  # the topics column
    assert shown(admin_client.get(url + "?q=bob@")) == {"bob"}
    assert shown(admin_client.get(url + "?status__exact=pending")) == {"bob"}
    agents = Topic.objects.get(slug="agents")
    assert shown(admin_client.get(url + f"?topics__id__exact={agents.pk}")) == {"alice", "dave"}
    assert shown(admin_client.get(url + "?frequency__exact=weekly")) == {"dave"}
    now = timezone.now()
    this_month = f"?created__year={now.year}&created__month={now.month}"
    assert shown(admin_client.get(url + this_month)) == {"alice", "bob", "dave"}


# Actions ---------------------------------------------------------------------------------


def test_suppress_stops_email_and_leaves_the_rest_alone(
    admin_client: Client, alice: Subscriber, bob: Subscriber, carol: Subscriber
) -> None:
    paused = make_subscriber("paula@example.org", "paused")
    bounced = make_subscriber("ben@example.org", "bounced")
    response = run_action(admin_client, "suppress", [alice, bob, carol, paused, bounced])
    statuses = {s.email.split("@")[0]: refreshed(s).status for s in (alice, bob, carol, paused)}
    assert statuses == {
        "alice": "unsubscribed",
        "bob": "unsubscribed",
        "carol": "unsubscribed",
        "paula": "unsubscribed",
    }
    assert refreshed(bounced).status == "bounced"
    assert notices(response) == ["Suppressed 3 subscribers. Left alone: 1 bounced, 1 unsubscribed."]
    events = EmailEvent.objects.filter(provider="admin", event_type="unsubscribed")
    assert sorted(events.values_list("subscriber__email", flat=True)) == [
        "alice@example.org",
        "bob@example.org",
        "paula@example.org",
    ]
    history = LogEntry.objects.filter(change_message__startswith="Suppressed")
    assert history.count() == 3


def test_reactivate_brings_back_only_readers_who_once_confirmed(
    admin_client: Client, alice: Subscriber
) -> None:
    once = timezone.now() - timedelta(days=30)
    came_back = make_subscriber("carol@example.org", "unsubscribed", consent_at=once)
    paused = make_subscriber("paula@example.org", "paused", consent_at=once)
    never = make_subscriber("nick@example.org", "unsubscribed")
    bounced = make_subscriber("ben@example.org", "bounced", consent_at=once)
    response = run_action(admin_client, "reactivate", [alice, came_back, paused, never, bounced])
    assert refreshed(came_back).status == "active" and refreshed(paused).status == "active"
    assert refreshed(never).status == "unsubscribed" and refreshed(bounced).status == "bounced"
    assert notices(response) == [
        'Reactivated 2 subscribers. 1 subscriber never confirmed: "Resend confirmation email" '
        "would ask them first. Left alone: 1 active, 1 bounced, 1 unsubscribed."
    ]


def test_resend_confirmation_mails_pending_readers_only(
    admin_client: Client,
    alice: Subscriber,
    bob: Subscriber,
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    Subscriber.objects.filter(pk=bob.pk).update(updated=timezone.now() - timedelta(days=6))
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "resend_confirmation", [alice, bob])
    assert [m.to for m in mailoutbox] == [["bob@example.org"]]
    assert mailoutbox[0].subject.startswith("Confirm your")
    assert refreshed(bob).confirm_url() in mailoutbox[0].body
    assert refreshed(bob).updated > timezone.now() - timedelta(minutes=1)  # clock restarted
    assert notices(response) == [
        "Queued a confirmation email to 1 subscriber. Left alone: 1 active."
    ]


def test_staff_without_change_permission_cannot_run_the_actions(
    alice: Subscriber, mailoutbox: list[mail.EmailMessage]
) -> None:
    viewer = staff_with("view_subscriber")
    page = viewer.get(reverse(CHANGELIST)).content.decode()
    assert "export_csv" in page and "suppress" not in page
    run_action(viewer, "suppress", [alice])
    assert refreshed(alice).status == "active"


def export(client: Client, subscribers: list[Subscriber]) -> list[list[str]]:
    data = {"action": "export_csv", ACTION_CHECKBOX_NAME: [str(s.pk) for s in subscribers]}
    response: Any = client.post(reverse(CHANGELIST), data)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="subscribers-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_export_streams_the_selected_rows(
    admin_client: Client, alice: Subscriber, bob: Subscriber, carol: Subscriber
) -> None:
    consent = timezone.now().replace(microsecond=0)
    Subscriber.objects.filter(pk=alice.pk).update(
        keywords='KV cache, "speculative" decoding',
        authors=["Tri Dao", "Albert Gu"],
        frequency="weekly",
        send_hour=6,
        timezone="Europe/Paris",
        consent_at=consent,
    )
    Subscriber.objects.filter(pk=bob.pk).update(keywords='=HYPERLINK("http://x")')
    rows = export(admin_client, [alice, bob])
    assert rows[0] == list(EXPORT_COLUMNS)
    alice.refresh_from_db()
    assert rows[1] == [
        "alice@example.org",
        "active",
        "agents;reasoning",
        'KV cache, "speculative" decoding',
        "Tri Dao;Albert Gu",
        "weekly",
        "6",
        "Europe/Paris",
        alice.created.isoformat(),
        consent.isoformat(),
    ]
    assert rows[2][:4] == ["bob@example.org", "pending", "quantization", '\'=HYPERLINK("http://x")']
    assert rows[2][-1] == ""  # never confirmed
    assert len(rows) == 3  # carol was not selected


def test_export_of_everything_takes_a_few_queries(
    admin_client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    readers = [
        make_subscriber(f"reader{n}@example.org", "active", ["agents", "quantization"])
        for n in range(30)
    ]
    data = {"action": "export_csv", "select_across": "1", "index": "0"}
    data[ACTION_CHECKBOX_NAME] = str(readers[0].pk)
    with django_assert_max_num_queries(10):  # 8, and the audit entry's count and insert
        response: Any = admin_client.post(reverse(CHANGELIST), data)
        lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 31


# Import ----------------------------------------------------------------------------------

BAD_FILE = """email,topics,keywords,frequency,send_hour,timezone,notes
new@example.org,quantization;Agents,"KV cache, speculative decoding",weekly,6,Europe/Paris,hi
Alice@Example.org,diffusion,,,,,
carol@example.org,agents,,,,,
not-an-email,,,,,,
bad-topic@example.org,quantization;astrology,,,,,
bad-hour@example.org,,,,25,,
bad-zone@example.org,,,,,Mars/Olympus,
NEW@example.org,,,,,,
bad-frequency@example.org,,,hourly,,,
,,,,,,
"""


def upload(
    client: Client, text: str, run: str = "check", consented: bool = False, **extra: str
) -> Any:
    data: dict[str, Any] = {"file": SimpleUploadedFile("readers.csv", text.encode()), "run": run}
    if consented:
        data["consented"] = "on"
    return client.post(reverse(IMPORT), {**data, **extra})


def outcomes(response: Any) -> dict[int, tuple[str, str]]:
    return {row.line: (row.action, "; ".join(row.notes)) for row in response.context["report"].rows}


def test_the_import_page_explains_itself(admin_client: Client) -> None:
    page = admin_client.get(reverse(IMPORT))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Check (dry run)" in html and 'enctype="multipart/form-data"' in html
    assert "already consented" in html and "confirmation email" in html


def test_a_dry_run_reports_every_line_and_writes_nothing(
    admin_client: Client,
    alice: Subscriber,
    carol: Subscriber,
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    before = list(Subscriber.objects.order_by("pk").values())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(admin_client, BAD_FILE)
    assert response.status_code == 200
    assert list(Subscriber.objects.order_by("pk").values()) == before
    assert refreshed(alice).topics.filter(slug="diffusion").count() == 0
    assert mailoutbox == [] and callbacks == [] and LogEntry.objects.count() == 0
    found = outcomes(response)
    assert found[2] == ("create", "pending: confirmation email")
    assert found[3] == ("update", "topics")
    assert found[4][0] == "skip" and "never resubscribes" in found[4][1]
    assert found[5][0] == "error" and "'not-an-email' is not a valid email address" in found[5][1]
    assert found[6] == (
        "error",
        "unknown topic 'astrology' (use a slug or a name from Topics)",
    )
    assert found[7] == ("error", "send_hour must be a whole hour from 0 to 23, not '25'")
    assert found[8] == ("error", "unknown time zone 'Mars/Olympus' (use a name like Europe/Paris)")
    assert found[9] == ("error", "new@example.org is already on line 2")
    assert found[10] == ("error", "frequency must be daily or weekly, not 'hourly'")
    assert 11 not in found  # a blank line
    report = response.context["report"]
    assert (report.created, report.updated, report.skipped, report.errors) == (1, 1, 1, 6)
    assert report.ignored_columns == ["notes"]
    html = response.content.decode()
    assert "Dry run: nothing was written" in html and "Columns not used (ignored): notes" in html
    assert 'name="checked"' in html and "Import: create 1, update 1" in html


def test_the_import_creates_pending_readers_and_asks_them_to_confirm(
    admin_client: Client,
    admin_user: User,
    alice: Subscriber,
    carol: Subscriber,
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, BAD_FILE, run="import")
    new = Subscriber.objects.get(email="new@example.org")
    assert new.status == "pending" and new.consent_at is None
    assert sorted(new.topics.values_list("slug", flat=True)) == ["agents", "quantization"]
    assert (new.keywords, new.frequency, new.send_hour, new.timezone) == (
        "KV cache, speculative decoding",
        "weekly",
        6,
        "Europe/Paris",
    )
    assert [m.to for m in mailoutbox] == [["new@example.org"]]  # a confirmation email
    assert sorted(refreshed(alice).topics.values_list("slug", flat=True)) == ["diffusion"]
    assert refreshed(alice).status == "active"
    assert refreshed(carol).status == "unsubscribed"
    assert not Subscriber.objects.filter(email__startswith="bad").exists()
    assert Subscriber.objects.count() == 3
    assert "Import done" in response.content.decode()
    assert notices(response) == [
        "Imported: 1 created, 1 updated, 1 skipped, 6 with errors (not imported)."
    ]
    added = LogEntry.objects.get(action_flag=ADDITION)
    assert added.object_repr == "new@example.org" and added.user == admin_user
    assert "pending confirmation" in added.change_message


def test_the_dry_runs_import_button_imports_the_checked_file(
    admin_client: Client,
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    text = "email,topics\nada@example.org,agents\ngrace@example.org,\n"
    checked = upload(admin_client, text)
    assert Subscriber.objects.count() == 0
    carried = checked.context["checked"]
    assert carried == text
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse(IMPORT), {"checked": carried, "run": "import"})
    assert sorted(Subscriber.objects.values_list("email", "status")) == [
        ("ada@example.org", "pending"),
        ("grace@example.org", "pending"),
    ]
    assert len(mailoutbox) == 2


def test_imported_readers_who_already_consented_are_active_and_not_mailed(
    admin_client: Client,
    bob: Subscriber,
    mailoutbox: list[mail.EmailMessage],
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    text = "email\nada@example.org\nbob@example.org\n"
    dry = upload(admin_client, text, consented=True)
    assert outcomes(dry)[3] == ("update", "status: active, consent given")
    assert 'name="consented" value="on"' in dry.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, text, run="import", consented=True)
    ada = Subscriber.objects.get(email="ada@example.org")
    assert ada.status == "active" and ada.consent_at is not None
    assert refreshed(bob).status == "active" and bob.consent_at is not None
    assert mailoutbox == []
    assert "consent given elsewhere" in LogEntry.objects.get(action_flag=ADDITION).change_message


def test_an_export_imports_back_unchanged(admin_client: Client, alice: Subscriber) -> None:
    Subscriber.objects.filter(pk=alice.pk).update(
        keywords="-based methods, @scale", authors=["Tri Dao"], timezone="Asia/Tokyo"
    )
    rows = export(admin_client, [alice])
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = upload(admin_client, buffer.getvalue())
    assert outcomes(response) == {2: ("skip", "already up to date")}
    assert response.context["report"].ignored_columns == ["status", "created", "consent_at"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"name,topics\nada,agents\n", "one of them must be email"),
        (b"email,email\nada@example.org,x\n", "The column email appears twice."),
        ("email\nzoë@example.org\n".encode("latin-1"), "not UTF-8"),
        (b"", "The submitted file is empty."),
        (b"email;topics\nada@example.org;agents\n", "separated by semicolons"),
    ],
)
def test_a_file_that_cannot_be_read_says_why(
    admin_client: Client, content: bytes, problem: str
) -> None:
    data = {"file": SimpleUploadedFile("x.csv", content), "run": "import"}
    response = admin_client.post(reverse(IMPORT), data)
    assert response.status_code == 200 and response.context["report"] is None
    assert problem in response.content.decode().replace("&#x27;", "'")
    assert Subscriber.objects.count() == 0


def test_the_import_asks_for_a_file(admin_client: Client) -> None:
    response = admin_client.post(reverse(IMPORT), {"run": "check"})
    assert "Choose a CSV file." in response.content.decode()


def test_the_import_needs_add_and_change_permissions(client: Client) -> None:
    url = reverse(IMPORT)
    assert "/admin/login/" in client.get(url)["Location"]
    viewer = staff_with("view_subscriber")
    assert viewer.get(url).status_code == 403
    assert 'href="' + url not in viewer.get(reverse(CHANGELIST)).content.decode()
    editor = staff_with("view_subscriber", "add_subscriber", "change_subscriber")
    assert editor.get(url).status_code == 200
    response = upload(editor, "email\nada@example.org\n", run="import")
    assert response.status_code == 200
    assert Subscriber.objects.filter(email="ada@example.org").exists()


# A reader's page -------------------------------------------------------------------------


def test_the_change_page_shows_deliveries_events_and_feedback(
    admin_client: Client, sample_week: list[Paper], alice: Subscriber
) -> None:
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    delivery = Delivery.objects.get(subscriber=alice)
    paper = DeliveryItem.objects.filter(delivery=delivery).first()
    assert paper is not None
    EmailEvent.objects.create(
        provider="postmark",
        event_type="opened",
        subscriber=alice,
        delivery=delivery,
        description="<b>opened</b> in Thunderbird",
    )
    Feedback.objects.create(subscriber=alice, paper_id=paper.paper_id, vote=1)
    page = admin_client.get(reverse("admin:newsletter_subscriber_change", args=[alice.pk]))
    html = page.content.decode()
    assert reverse("admin:newsletter_delivery_change", args=[delivery.pk]) in html
    assert "2026-01-08" in html and "All 1 deliveries" in html
    assert f"?subscriber__id__exact={alice.pk}" in html
    assert "&lt;b&gt;opened&lt;/b&gt; in Thunderbird" in html and "All 1 events" in html
    assert "Thumbs up" in html and "(1 up, 0 down)" in html
    assert reverse("admin:papers_paper_change", args=[paper.paper_id]) in html
    assert "Preview the next digest" in html and "Send this digest to me as a test" in html
    filtered = admin_client.get(
        reverse("admin:newsletter_delivery_changelist") + f"?subscriber__id__exact={alice.pk}"
    )
    assert [d.pk for d in filtered.context["cl"].result_list] == [delivery.pk]


def test_the_add_page_has_no_history(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:newsletter_subscriber_add"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Send this digest to me as a test" not in html and "Recent deliveries" not in html


def test_send_as_a_test_goes_to_the_admin_only_and_records_nothing(
    admin_client: Client,
    sample_week: list[Paper],
    alice: Subscriber,
    mailoutbox: list[mail.EmailMessage],
) -> None:
    expected = digest_preview(subscriber=alice, digest_date=THURSDAY)
    assert expected.items
    url = reverse("admin:newsletter_subscriber_test", args=[alice.pk])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url, {"date": "2026-01-08", "next": "preview"}, follow=True)
    assert [m.to for m in mailoutbox] == [["admin@example.com"]]
    message = mailoutbox[0]
    assert message.subject.startswith("[Test] ") and "for you" in message.subject
    assert "List-Unsubscribe" not in message.extra_headers
    assert expected.items[0][0].title in message.body
    assert Delivery.objects.count() == 0 and DeliveryItem.objects.count() == 0
    n = len(expected.items)
    assert notices(response) == [
        f"Sent a test of the digest dated 2026-01-08 ({n} papers) to admin@example.com. "
        "Nothing was recorded: the reader can still get these papers."
    ]
    assert response.redirect_chain[-1][0].endswith("/preview/?date=2026-01-08")
    # The reader's real digest still carries every paper of the test.
    call_command("send_digests", "--date", "2026-01-08")
    sent = Delivery.objects.get(subscriber=alice)
    assert sent.status == "sent"
    assert set(sent.items.values_list("paper_id", flat=True)) == {p.pk for p, _ in expected.items}
    assert [m.to for m in mailoutbox[1:]] == [["alice@example.org"]]


def test_send_as_a_test_says_when_nothing_matches_or_there_is_no_address(
    admin_client: Client,
    admin_user: User,
    alice: Subscriber,
    mailoutbox: list[mail.EmailMessage],
) -> None:
    url = reverse("admin:newsletter_subscriber_test", args=[alice.pk])
    empty = admin_client.post(url, {"date": "2026-01-08"}, follow=True)  # no papers at all
    assert mailoutbox == []
    assert "no test was sent" in notices(empty)[0]
    assert empty.redirect_chain[-1][0] == reverse(
        "admin:newsletter_subscriber_change", args=[alice.pk]
    )
    User.objects.filter(pk=admin_user.pk).update(email="")
    nowhere = admin_client.post(url, follow=True)
    assert notices(nowhere) == ["Your admin account has no email address: add one under Users."]
    assert mailoutbox == []


def test_the_subscriber_pages_are_staff_only(client: Client, alice: Subscriber) -> None:
    pages: list[tuple[str, Callable[..., Any]]] = [
        (reverse("admin:newsletter_subscriber_test", args=[alice.pk]), client.post),
        (reverse("admin:newsletter_subscriber_preview", args=[alice.pk]), client.get),
        (reverse(IMPORT), client.get),
    ]
    for url, method in pages:
        response = method(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("reader", "reader@example.org", "pw")
    client.login(username="reader", password="pw")
    response = client.post(reverse("admin:newsletter_subscriber_test", args=[alice.pk]))
    assert "/admin/login/" in response["Location"]
    nobody = staff_with()
    test_url = reverse("admin:newsletter_subscriber_test", args=[alice.pk])
    assert nobody.post(test_url).status_code == 403


def test_the_change_page_edits_fields_as_a_reader_sees_them(admin_client: Client) -> None:
    reader = make_subscriber(
        "lines@example.org", "active", authors=["Tri Dao", "Albert Gu"], weekly_day=2
    )
    page = admin_client.get(reverse("admin:newsletter_subscriber_change", args=[reader.pk]))
    html = page.content.decode()
    assert "Tri Dao\nAlbert Gu</textarea>" in html and "[&quot;" not in html
    assert '<option value="2" selected>Wednesday</option>' in html
    assert '<select name="timezone"' in html and '<select name="send_hour"' in html
    assert 'name="token_version"' not in html  # shown, not editable
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(authors="Yann LeCun\n\n Yoshua  Bengio ", liked_papers="", topics=[])
    admin_client.post(reverse("admin:newsletter_subscriber_change", args=[reader.pk]), data)
    reader.refresh_from_db()
    assert reader.authors == ["Yann LeCun", "Yoshua Bengio"]


def test_the_time_zone_list_leaves_out_legacy_aliases_but_keeps_a_readers_own(
    client: Client,
) -> None:
    from newsletter.tokens import make_token

    signup = client.get(reverse("signup")).content.decode()
    for alias in ("ROK", "W-SU", "Zulu", "UCT", "US/Samoa"):
        assert f'value="{alias}"' not in signup
    assert 'value="Europe/Oslo"' in signup and 'value="UTC"' in signup
    old = make_subscriber("old@example.org", "active", timezone="ROK")
    manage = client.get(reverse("manage", args=[make_token(old, purpose="manage")]))
    assert '<option value="ROK" selected>' in manage.content.decode()


def test_a_test_copy_never_carries_the_real_digests_message_id(
    admin_client: Client,
    sample_week: list[Paper],
    alice: Subscriber,
    mailoutbox: list[mail.EmailMessage],
) -> None:
    """The real digest's Message-ID is the same on every try (so copies can be folded);
    a test copy of that digest gets a new one each time, or mail systems would fold it."""
    call_command("send_digests", "--date", "2026-01-08")
    url = reverse("admin:newsletter_subscriber_test", args=[alice.pk])
    for _ in range(2):
        admin_client.post(url, {"date": "2026-01-08", "next": "preview"})
    real, *tests = (m.extra_headers["Message-ID"] for m in mailoutbox)
    assert real == Delivery.objects.get(subscriber=alice).message_id
    assert len({real, *tests}) == 3
