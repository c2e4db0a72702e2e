"""The links in a digest, followed: thumbs up/down, manage preferences, view in browser."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client

from newsletter.emails import digest_message
from newsletter.models import Delivery, Feedback, Subscriber, Topic
from newsletter.planning import digest_plan, subscribers_for_date
from papers.models import Paper

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)


def links_in(delivery: Delivery) -> dict[str, list[str]]:
    body = str(digest_message(delivery).body)
    found: dict[str, list[str]] = {}
    for url in re.findall(r"http://127\.0\.0\.1:8000(/\S+)", body):
        found.setdefault(url.split("/")[1], []).append(url)
    return found


@pytest.fixture
def delivery(sample_week: list[Paper], alice: Subscriber) -> Delivery:
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    return Delivery.objects.select_related("subscriber").get(subscriber=alice)


def test_every_paper_has_thumbs_and_the_footer_has_manage_and_web_links(
    delivery: Delivery,
) -> None:
    links = links_in(delivery)
    papers = delivery.items.count()
    assert len(links["feedback"]) == 2 * papers
    assert len(links["manage"]) == 1 and len(links["digest"]) == 1


def test_a_thumb_shows_a_button_then_records_the_vote(
    client: Client, delivery: Delivery, alice: Subscriber
) -> None:
    up = next(u for u in links_in(delivery)["feedback"] if u.endswith("/up/"))
    page = client.get(up)  # a mail scanner following the link changes nothing
    assert page.status_code == 200 and b"More papers like this?" in page.content
    assert not Feedback.objects.exists()
    done = client.post(up)
    feedback = Feedback.objects.get()
    assert (feedback.subscriber, feedback.vote) == (alice, Feedback.Vote.UP)
    assert feedback.paper.title.encode() in done.content.replace(b"&#x27;", b"'")
    client.post(up.replace("/up/", "/down/"))  # changing one's mind replaces the vote
    assert list(Feedback.objects.values_list("vote", flat=True)) == [Feedback.Vote.DOWN]


def test_thumbs_only_work_for_papers_the_reader_was_sent(
    client: Client, delivery: Delivery
) -> None:
    up = next(u for u in links_in(delivery)["feedback"] if u.endswith("/up/"))
    sent = {i.paper_id for i in delivery.items.all()}
    other = Paper.objects.exclude(pk__in=sent).values_list("pk", flat=True).first()
    forged = re.sub(r"/\d+/up/$", f"/{other}/up/", up)
    assert client.post(forged).status_code == 404
    assert client.post(up.replace("/up/", "/sideways/")).status_code == 404
    assert client.post(up.replace("/feedback/", "/feedback/x")).status_code == 400
    assert not Feedback.objects.exists()


def test_the_manage_link_edits_preferences(
    client: Client, delivery: Delivery, alice: Subscriber
) -> None:
    [manage] = links_in(delivery)["manage"]
    page = client.get(manage)
    assert page.status_code == 200 and b"alice@example.org" in page.content
    topic = Topic.objects.get(slug="agents")
    data = {
        "topics": [topic.pk],
        "keywords": "speculative decoding, KV cache",
        "authors_text": "Yann LeCun\n  Yann   LeCun \nFei-Fei Li",
        "frequency": "weekly",
        "weekly_day": "4",
        "send_hour": "18",
        "timezone": "Asia/Tokyo",
        "max_papers": "5",
    }
    saved = client.post(manage, data)
    assert saved.status_code == 200 and b"Saved." in saved.content
    alice.refresh_from_db()
    assert list(alice.topics.all()) == [topic]
    assert alice.authors == ["Yann LeCun", "Fei-Fei Li"]
    assert (alice.frequency, alice.weekly_day, alice.send_hour) == ("weekly", 4, 18)
    assert (alice.timezone, alice.max_papers) == ("Asia/Tokyo", 5)


def test_bad_preferences_are_messages_on_the_form_and_change_nothing(
    client: Client, delivery: Delivery, alice: Subscriber
) -> None:
    [manage] = links_in(delivery)["manage"]
    bad = {"frequency": "hourly", "send_hour": "25", "timezone": "Mars/Olympus", "max_papers": "0"}
    page = client.post(manage, bad)
    assert page.status_code == 400
    assert page.content.count(b'class="errorlist') >= 4
    before = (alice.frequency, alice.send_hour, alice.timezone, alice.max_papers)
    alice.refresh_from_db()
    assert (alice.frequency, alice.send_hour, alice.timezone, alice.max_papers) == before


def test_a_manage_token_is_not_an_unsubscribe_token(client: Client, delivery: Delivery) -> None:
    [manage] = links_in(delivery)["manage"]
    assert client.post(manage.replace("/manage/", "/unsubscribe/")).status_code == 400
    delivery.subscriber.refresh_from_db()
    assert delivery.subscriber.status == Subscriber.Status.ACTIVE


def test_view_in_browser_is_the_emails_html_with_a_strict_policy(
    client: Client, delivery: Delivery
) -> None:
    [web] = links_in(delivery)["digest"]
    page = client.get(web)
    assert page.status_code == 200
    first = delivery.items.select_related("paper").first()
    assert first is not None and first.paper.hf_url.encode() in page.content
    assert "default-src 'none'" in page["Content-Security-Policy"]
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    assert client.get(web.replace(str(delivery.public_id)[:8], "00000000")).status_code == 404
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SKIPPED)
    assert client.get(web).status_code == 404
